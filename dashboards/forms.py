"""The scenario form: plain inputs for lists and maps, hyperparameters per algorithm, a cron schedule.

Validation is the same as the API's (``scenario_config_clean``); its field errors are attached to
the inputs they concern, hyperparameters included.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist

from recsys_site.errors import ValidationFailed
from scenarios.models import SLICE_FIELDS, ComputeQueue, Objective, Scenario
from scenarios.services import EDITABLE_FIELDS, scenario_config_clean, scenario_schedule_clean
from training.algorithms.registry import UnknownAlgorithm, algorithm_fits_objective, algorithm_names, get_algorithm
from training.evaluation.metrics import RANKING_METRICS
from training.evaluation.objectives import objective_default
from training.evaluation.rating import RATING_METRICS
from training.tuning.selectors import study_algorithm_choices

HP_PREFIX = "hp__"


EVENT_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
WEIGHTS_FORMAT = (
    "Write kind:weight pairs separated by commas, e.g. rating:1, click:0.5 "
    "(a kind is a lower-case word such as rating or click; a kind alone weighs 1)."
)

# The scenario form's inputs, grouped as the page shows them.
FIELDSETS = (
    ("Scenario", ("slug", "name", "description", "parent")),
    ("Slice", SLICE_FIELDS),
    ("Evaluation protocol", ("split", "validation_share", "test_share", "k_list", "objective")),
    ("Model", ("algorithm", "compute_queue", "seed", "schedule")),
    (
        "Serving",
        (
            "default_k",
            "exclude_seen",
            "policy_exclude_items",
            "policy_exclude_categories",
            "policy_max_per_category",
            "policy_boost_categories",
            "policy_exclude_older_than",
        ),
    ),
)


def _label(name: str) -> str:
    """A field or hyperparameter name as a reader says it: ``embedding_size`` → ``embedding size``."""
    try:
        field = Scenario._meta.get_field(name)
    except FieldDoesNotExist:
        return name.replace("_", " ")
    return str(getattr(field, "verbose_name", name.replace("_", " ")))


class CommaSeparatedField(forms.CharField):
    """Text of comma-separated parts, cleaned to the list of its non-blank parts, stripped."""

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        return [part.strip() for part in text.split(",") if part.strip()]


def _policy_initial(policy: dict[str, Any]) -> dict[str, Any]:
    """The stored serving policy as the form's inputs."""
    return {
        "policy_exclude_items": ", ".join(policy.get("exclude_items") or []),
        "policy_exclude_categories": ", ".join(policy.get("exclude_categories") or []),
        "policy_max_per_category": policy.get("max_per_category"),
        "policy_boost_categories": ", ".join(f"{k}:{v:g}" for k, v in (policy.get("boost_categories") or {}).items()),
        "policy_exclude_older_than": policy.get("exclude_older_than"),
    }


def _policy_from_form(cleaned: dict[str, Any]) -> dict[str, Any]:
    """The policy inputs as the stored object; empty inputs are left out."""
    older = cleaned.get("policy_exclude_older_than")
    policy = {
        "exclude_items": cleaned.get("policy_exclude_items"),
        "exclude_categories": cleaned.get("policy_exclude_categories"),
        "max_per_category": cleaned.get("policy_max_per_category"),
        "boost_categories": cleaned.get("policy_boost_categories"),
        "exclude_older_than": older.isoformat() if older else None,
    }
    return {key: value for key, value in policy.items() if value}


class AlgorithmSelect(forms.Select):
    """The algorithm menu: each option says which objectives it fits (``data-objectives``), and one that does not
    fit ``objective`` is hidden and disabled unless it is the one chosen (the page's script redoes this when the
    objective changes)."""

    objective: str = Objective.RANKING

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        fits = [
            objective
            for objective in Objective.values
            if algorithm_fits_objective(str(value), ratings=objective == Objective.RATING)
        ]
        option["attrs"]["data-objectives"] = " ".join(fits)
        if self.objective not in fits and not option["selected"]:
            option["attrs"].update(hidden=True, disabled=True)
        return option


class ScenarioForm(forms.ModelForm):
    include_categories = CommaSeparatedField(required=False, help_text="Comma-separated; empty means every category.")
    exclude_categories = CommaSeparatedField(required=False, help_text="Comma-separated.")
    event_weights = CommaSeparatedField(
        required=False,
        help_text="kind:weight pairs, comma-separated, e.g. rating:1, click:0.5. Empty: every kind, weight 1.",
    )
    k_list = CommaSeparatedField(initial="5, 10, 20", help_text="Cut-offs K for the metrics, comma-separated.")
    algorithm = forms.ChoiceField(choices=(), widget=AlgorithmSelect)
    schedule = forms.CharField(
        required=False, help_text="Cron, UTC: minute hour day month weekday (e.g. 0 3 * * *). Empty: no schedule."
    )
    policy_exclude_items = CommaSeparatedField(
        required=False, label="Never serve items", help_text="Item ids, comma-separated."
    )
    policy_exclude_categories = CommaSeparatedField(
        required=False, label="Never serve categories", help_text="Comma-separated."
    )
    policy_max_per_category = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1000,
        label="At most per category",
        help_text="Items of one category in a list. Empty: no limit.",
    )
    policy_boost_categories = CommaSeparatedField(
        required=False,
        label="Boost or bury categories",
        help_text="category:weight pairs, weight from -1 (bury) to 1 (lift above all), e.g. Comedy:0.3, Horror:-1.",
    )
    policy_exclude_older_than = forms.DateField(
        required=False, label="Only items added since", help_text="YYYY-MM-DD. Empty: any age."
    )

    class Meta:
        model = Scenario
        # hyperparameters: one input each; the serving policy: one input per rule
        fields = [name for name in EDITABLE_FIELDS if name not in ("hyperparameters", "serving_policy")]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, schedule: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        algorithm_field = self.fields["algorithm"]
        assert isinstance(algorithm_field, forms.ChoiceField)
        algorithm_field.choices = [(name, get_algorithm(name).label) for name in algorithm_names()]
        assert isinstance(algorithm_field.widget, AlgorithmSelect)
        algorithm_field.widget.objective = self._objective()
        self.fields["schedule"].initial = schedule
        # The model's long label for "auto" does not fit a select of the grid's width: the detail goes to the help.
        queue_field = self.fields["compute_queue"]
        assert isinstance(queue_field, forms.ChoiceField)
        queue_field.choices = [
            (value, "Auto" if value == ComputeQueue.AUTO else label) for value, label in ComputeQueue.choices
        ]
        self.fields["compute_queue"].help_text = "Auto: the GPU queue when GPU workers are configured, else CPU."
        self.fields["objective"].required = False  # a form from before the choice existed keeps the current one
        if self.instance.pk:
            self.fields["slug"].disabled = True
            parent_field = self.fields["parent"]
            assert isinstance(parent_field, forms.ModelChoiceField)
            parent_field.queryset = Scenario.objects.exclude(pk=self.instance.pk)
            self.initial.update(
                include_categories=", ".join(self.instance.include_categories),
                exclude_categories=", ".join(self.instance.exclude_categories),
                event_weights=", ".join(f"{k}:{v:g}" for k, v in self.instance.event_weights.items()),
                k_list=", ".join(str(k) for k in self.instance.k_list),
                **_policy_initial(self.instance.serving_policy),
            )

    def _objective(self) -> str:
        """The objective the form shows: the one submitted, else the scenario's (ranking for a new one)."""
        submitted = self.data.get("objective") if self.is_bound else None
        if submitted in Objective.values:
            return str(submitted)
        return self.instance.objective or Objective.RANKING

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        """Each legend of the page with its inputs (for the template)."""
        return [(legend, [self[name] for name in names]) for legend, names in FIELDSETS]

    def algorithm_fieldsets(self) -> list[dict[str, Any]]:
        """Per algorithm, its hyperparameters with current values (for the template)."""
        selected = self.data.get("algorithm") or self.initial.get("algorithm") or self.instance.algorithm
        stored = self.instance.hyperparameters if self.instance.pk else {}
        sets = []
        for name in algorithm_names():
            algorithm = get_algorithm(name)
            params = []
            for param in algorithm.params:
                key = f"{HP_PREFIX}{name}__{param.name}"
                value = (
                    self.data.get(key)
                    if self.is_bound
                    else stored.get(param.name, param.default)
                    if name == self.instance.algorithm
                    else param.default
                )
                params.append(
                    {
                        **param.describe(),
                        "input_name": key,
                        "value": value,
                        "error": self.hyperparameter_errors.get(param.name) if name == selected else None,
                    }
                )
            sets.append(
                {
                    "name": name,
                    "label": algorithm.label,
                    "description": algorithm.description,
                    "params": params,
                    "selected": name == selected,
                }
            )
        return sets

    @property
    def hyperparameter_errors(self) -> dict[str, str]:
        return getattr(self, "_hyperparameter_errors", {})

    def clean_objective(self) -> str:
        return self.cleaned_data.get("objective") or self.instance.objective or Objective.RANKING

    def clean_event_weights(self) -> dict[str, float]:
        weights = {}
        for pair in self.cleaned_data["event_weights"]:
            kind, _, weight = (part.strip() for part in pair.partition(":"))
            if not EVENT_KIND.match(kind):
                raise forms.ValidationError(f"“{pair}” is not a kind:weight pair. {WEIGHTS_FORMAT}")
            try:
                weights[kind] = float(weight) if weight else 1.0
            except ValueError:
                raise forms.ValidationError(f"“{pair}”: the weight must be a number. {WEIGHTS_FORMAT}") from None
        return weights

    def clean_policy_boost_categories(self) -> dict[str, float]:
        boosts = {}
        for pair in self.cleaned_data["policy_boost_categories"]:
            name, _, weight = (part.strip() for part in pair.rpartition(":"))
            try:
                boosts[name] = float(weight)
            except ValueError:
                raise forms.ValidationError(f"“{pair}” is not a category:weight pair, e.g. Comedy:0.3") from None
            if not name:
                raise forms.ValidationError(f"“{pair}” names no category, e.g. Comedy:0.3")
        return boosts

    def clean_k_list(self) -> list[int]:
        try:
            return [int(part) for part in self.cleaned_data["k_list"]]
        except ValueError:
            raise forms.ValidationError("whole numbers, comma-separated") from None

    def clean_schedule(self) -> str:
        schedule = " ".join(self.cleaned_data["schedule"].split())
        if schedule:
            try:
                scenario_schedule_clean(cron=schedule)
            except ValidationFailed as error:
                raise forms.ValidationError(error.detail_by_field()["schedule"]) from None
        return schedule

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        algorithm = cleaned.get("algorithm")
        cleaned["hyperparameters"] = {
            key.rsplit("__", 1)[1]: value
            for key, value in self.data.items()
            if algorithm and key.startswith(f"{HP_PREFIX}{algorithm}__") and value != ""
        }
        # Validated even when another field failed to parse (that field takes its default meanwhile), so every
        # error, hyperparameters included, shows on the first submit.
        cleaned["serving_policy"] = _policy_from_form(cleaned)
        data = {name: value for name, value in cleaned.items() if name != "schedule" and not name.startswith("policy_")}
        try:
            validated = scenario_config_clean(data=data, instance=self.instance if self.instance.pk else None)
        except ValidationFailed as error:
            self.attach_errors(error.detail_by_field())
            return cleaned
        cleaned["hyperparameters"] = validated["hyperparameters"]
        return cleaned

    def attach_errors(self, detail: dict[str, list[str]]) -> None:
        """Put the service's errors on the inputs they concern, and name them by label in the summary."""
        self._hyperparameter_errors = {}
        for field, messages in detail.items():
            if field in self.errors:
                continue  # already reported by the field's own parsing; the service saw a default instead
            if field.startswith("serving_policy."):
                field = "policy_" + field.split(".", 1)[1]
            if field in self.errors:
                continue
            if field.startswith("hyperparameters."):
                name = field.split(".", 1)[1]
                self._hyperparameter_errors[name] = "; ".join(messages)
                self.add_error(
                    None, f"{self._algorithm_label()} hyperparameter “{_label(name)}”: {'; '.join(messages)}"
                )
            elif field in self.fields:
                self.add_error(field, messages)
            else:
                self.add_error(None, f"{_label(field).capitalize()}: {'; '.join(messages)}")

    def _algorithm_label(self) -> str:
        algorithm = self.cleaned_data.get("algorithm") if hasattr(self, "cleaned_data") else None
        try:
            return get_algorithm(algorithm or self.instance.algorithm).label
        except UnknownAlgorithm:
            return "Model"

    def scenario_data(self) -> dict[str, Any]:
        """What the scenario services take."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields if name in self.cleaned_data}
        data["hyperparameters"] = self.cleaned_data["hyperparameters"]
        data["serving_policy"] = self.cleaned_data["serving_policy"]
        if self.instance.pk:
            data.pop("slug", None)
        return data


class StudyForm(forms.Form):
    """The scenario page's *Tune* form: it offers only what a study of the scenario takes (the algorithms that fit
    its objective, validation objectives it measures), and refuses the rest."""

    algorithms = forms.MultipleChoiceField(choices=(), widget=forms.CheckboxSelectMultiple)
    max_trials = forms.IntegerField(min_value=1, max_value=10_000, required=False, initial=20)
    max_minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, required=False)
    objective = forms.CharField(max_length=32, required=False)  # empty: the scenario's default

    def __init__(self, *args: Any, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        algorithms = self.fields["algorithms"]
        assert isinstance(algorithms, forms.MultipleChoiceField)
        algorithms.choices = study_algorithm_choices(scenario=scenario)
        ratings = scenario.objective == Objective.RATING
        objective = self.fields["objective"]
        objective.initial = objective_default(ratings=ratings)
        ranking = ", ".join(f"{metric}@K" for metric in RANKING_METRICS)
        objective.label = (
            f"Objective: validation {' or '.join(RATING_METRICS)}, minimised; or {ranking}, maximised"
            if ratings
            else f"Objective: validation {ranking}, maximised"
        )
        at_k = [f"{metric}@{k}" for k in scenario.k_list for metric in RANKING_METRICS]
        self.objective_suggestions = [*(RATING_METRICS if ratings else ()), *at_k]
