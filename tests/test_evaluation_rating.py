"""Rating errors (RMSE, MAE) against values computed by hand, and held-out sets that carry ratings."""

import numpy as np
import pytest
import torch

from training.evaluation.rating import errors_of_sums, mae, rating_errors, rating_errors_by_user, rmse
from training.evaluation.splits import split_from_events
from training.interactions import HeldOut, InteractionData


def test_rmse_and_mae_match_hand_computed_values():
    predicted, actual = np.array([3.5, 4.0, 2.0, 5.0]), np.array([4.0, 4.0, 1.0, 3.0])
    # Errors −0.5, 0, 1, 2: squares 0.25 + 0 + 1 + 4 = 5.25 over 4; absolutes 0.5 + 0 + 1 + 2 = 3.5 over 4.
    assert rmse(predicted, actual) == pytest.approx(np.sqrt(5.25 / 4))
    assert mae(predicted, actual) == pytest.approx(3.5 / 4)


def test_exact_predictions_have_no_error():
    ratings = np.array([1.0, 2.5, 5.0])
    assert rmse(ratings, ratings) == 0.0 and mae(ratings, ratings) == 0.0


@pytest.mark.parametrize(
    ("predicted", "actual"),
    [
        (np.array([1.0, 2.0]), np.array([1.0])),
        (np.zeros(0), np.zeros(0)),
        (np.array([[1.0]]), np.array([[1.0]])),
        (np.array([np.nan]), np.array([1.0])),
        (np.array([1.0]), np.array([np.inf])),
    ],
)
def test_bad_inputs_are_refused(predicted, actual):
    with pytest.raises(ValueError):
        rmse(predicted, actual)
    with pytest.raises(ValueError):
        mae(predicted, actual)


class FixedRatings:
    """Predicts ``table[user, item]``."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = torch.as_tensor(table, dtype=torch.float32)

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> torch.Tensor:
        return self.table[torch.as_tensor(users), torch.as_tensor(items)]


def test_rating_errors_compare_each_held_out_pair_with_its_rating():
    model = FixedRatings(np.array([[4.0, 3.0, 2.0], [1.0, 5.0, 5.0]]))
    heldout = HeldOut.from_pairs(2, 3, np.array([0, 1, 1]), np.array([1, 0, 2]), np.array([5.0, 1.0, 3.0]))
    # Pairs (0, 1): 3 vs 5; (1, 0): 1 vs 1; (1, 2): 5 vs 3. Errors 2, 0, 2.
    errors = rating_errors(model, heldout, batch_size=2)
    assert errors["rmse"] == pytest.approx(np.sqrt(8 / 3))
    assert errors["mae"] == pytest.approx(4 / 3)


def test_each_users_sums_of_errors_and_ratings_add_up_to_the_errors():
    model = FixedRatings(np.array([[4.0, 3.0, 2.0], [1.0, 5.0, 5.0], [3.0, 3.0, 3.0]]))
    heldout = HeldOut.from_pairs(3, 3, np.array([0, 1, 1]), np.array([1, 0, 2]), np.array([5.0, 2.0, 2.0]))
    # User 0: (0, 1) 3 vs 5, error −2. User 1: (1, 0) 1 vs 2 and (1, 2) 5 vs 2, errors −1 and 3. User 2: none.

    by_user = rating_errors_by_user(model, heldout, batch_size=2)

    assert by_user == {"users": [0, 1], "rmse": [4.0, 10.0], "mae": [2.0, 4.0], "ratings": [1, 2]}
    assert errors_of_sums(by_user) == pytest.approx(rating_errors(model, heldout))
    assert errors_of_sums(by_user)["rmse"] == pytest.approx(np.sqrt(14 / 3))


def test_rating_errors_need_values():
    model = FixedRatings(np.ones((2, 3)))
    assert rating_errors(model, HeldOut.from_pairs(2, 3, np.array([0]), np.array([1]))) == {}
    assert rating_errors_by_user(model, HeldOut.from_pairs(2, 3, np.array([0]), np.array([1]))) == {}
    assert rating_errors(model, HeldOut.from_pairs(2, 3, np.zeros(0), np.zeros(0), np.zeros(0))) == {}


def test_a_pair_held_out_twice_keeps_the_mean_of_its_ratings():
    heldout = HeldOut.from_pairs(2, 4, np.array([1, 0, 1]), np.array([3, 2, 3]), np.array([2.0, 4.0, 5.0]))
    assert heldout.items.tolist() == [2, 3]
    assert heldout.values is not None and heldout.values.tolist() == [4.0, 3.5]


def test_values_must_align_with_the_pairs():
    with pytest.raises(ValueError):
        HeldOut.from_pairs(2, 4, np.array([1, 0]), np.array([3, 2]), np.array([2.0]))


def test_a_split_carries_the_ratings_of_its_held_out_events():
    data = InteractionData(
        n_users=2,
        n_items=4,
        users=np.array([0, 0, 1, 1, 1]),
        items=np.array([0, 1, 0, 2, 3]),
        weights=np.array([5.0, 3.0, 4.0, 1.0, 2.0], dtype=np.float32),
        timestamps=np.arange(5),
    )
    split = split_from_events(data, np.array([1]), np.array([3, 4]))
    assert split.validation.values is not None and split.validation.values.tolist() == [3.0]
    assert split.test.items.tolist() == [2, 3] and split.test.values.tolist() == [1.0, 2.0]
