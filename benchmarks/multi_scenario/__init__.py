"""Multi-scenario adaptation on MovieLens: scenario-alone vs pretrain + fine-tune vs STAR vs a distilled student, and
content / hybrid models on cold items. One experiment per config file:

    .venv/bin/python -m benchmarks.multi_scenario benchmarks/multi_scenario/configs/NAME.toml [--cache DIR]

Scenarios (the rule, ``data.GROUPS``): each film belongs to the first of these genre groups its genres meet:
action-thriller, comedy-romance, and drama-other (everything else). A scenario's events are the ratings of its films.

Protocol: the whole dataset (the group) is split leave-last-out per user; each scenario keeps the parts of that
split on its films, so pretraining on the group never sees a scenario's test events. Full ranking over the
scenario's films, training and validation items excluded, NDCG@10 and Recall@10.

Parts (``parts`` in the config):
- ``adaptation``: (a) SASRec on each scenario alone; (b) SASRec pretrained on the group, fine-tuned per scenario;
  (c) one STAR model on the group, one domain per scenario; (d) a student distilled from (b) with distill's
  defaults, as large as a quarter of (b)'s parameters allows (``fitting.student_size``).
- ``students``: (b) and (d) under ``students.seeds`` seeds from one pretrained group model, the students' settings
  in ``[students.params]`` (distill's hyperparameters, as the API takes them); each seed keeps, of the depths in
  ``students.layers``, the student best on validation. Shares of (b)'s NDCG@10 come with a 95% paired bootstrap
  interval over the test users.
- ``cold``: 10% of the films held out of training entirely (``cold.draws`` draws); popularity (random tie orders),
  content, the content ridge, SASRec and the content hybrids (``cold.hybrids``: prior, side) rank them for the
  users who rated them. Every setting is chosen on pseudo-cold films, never on the cold ones (``cold.py``).

``--cache DIR`` keeps the pretrained group model and each fine-tuned (b) for the students part, and
reuses them in a later run with the same dataset, seed, epoch cap, device and thread count.
"""
