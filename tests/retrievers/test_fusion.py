"""Fusion against hand-computed examples: ties, candidates present in only one list, every normalisation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rrbench.retrievers.fusion import alpha_weights, competition_ranks, load_fuser, normalise, rrf, weighted
from rrbench.util.errors import UnknownComponentError, UsageError

# Run A ranks 1, 2, 3; run B ranks 3 and 4 only (1 and 2 are absent from B, 4 is absent from A).
A = (np.array([1, 2, 3]), np.array([3.0, 2.0, 1.0]))
B = (np.array([3, 4]), np.array([0.9, 0.5]))


def as_dict(run):
    ids, scores = run
    return dict(zip(ids.tolist(), scores.tolist()))


def test_competition_ranks_share_the_best_rank_on_ties():
    assert competition_ranks(np.array([5.0, 3.0, 3.0, 1.0])).tolist() == [1, 2, 2, 4]
    assert competition_ranks(np.array([1.0, 3.0, 3.0, 5.0])).tolist() == [4, 2, 2, 1]


def test_rrf_hand_computed_with_a_document_in_one_list_only():
    ids, scores = rrf([A, B], k0=60)
    expected = {1: 1 / 61, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62}
    assert as_dict((ids, scores)) == pytest.approx(expected)
    # 2 and 4 tie exactly (1/62 each): the smaller id comes first, whatever the input order.
    assert ids.tolist() == [3, 1, 2, 4]
    assert rrf([B, A], k0=60)[0].tolist() == [3, 1, 2, 4]


def test_rrf_ties_inside_a_run_get_equal_contributions():
    run = (np.array([10, 11, 12, 13]), np.array([5.0, 3.0, 3.0, 1.0]))
    fused = as_dict(rrf([run], k0=1))
    assert fused == pytest.approx({10: 1 / 2, 11: 1 / 3, 12: 1 / 3, 13: 1 / 5})


def test_rrf_k0_changes_the_order():
    # x (id 1) is ranked 1st and 4th, y (id 2) 2nd twice: 1/(k+1) + 1/(k+4) against 2/(k+2).
    # k0=1: x 0.700 > y 0.667; k0=60: x 0.03202 < y 0.03226. Small k0 rewards one top rank, large k0 consistency.
    r1 = (np.array([1, 2, 3, 4]), np.array([4.0, 3.0, 2.0, 1.0]))
    r2 = (np.array([3, 2, 4, 1]), np.array([4.0, 3.0, 2.0, 1.0]))
    order_small = rrf([r1, r2], k0=1)[0].tolist()
    order_large = rrf([r1, r2], k0=60)[0].tolist()
    assert order_small.index(1) < order_small.index(2)
    assert order_large.index(2) < order_large.index(1)


def test_weighted_minmax_hand_computed():
    # A -> [1, .5, 0]; B -> [1, 0]; absent -> the run's minimum (0).
    fused = as_dict(weighted([A, B], [0.7, 0.3], "minmax"))
    assert fused == pytest.approx({1: 0.7, 2: 0.35, 3: 0.3, 4: 0.0})


def test_weighted_zscore_hand_computed():
    sa = math.sqrt(2 / 3)
    za = {1: 1 / sa, 2: 0.0, 3: -1 / sa}
    zb = {3: 1.0, 4: -1.0}
    absent_a, absent_b = -1 / sa, -1.0
    expected = {d: 0.5 * za.get(d, absent_a) + 0.5 * zb.get(d, absent_b) for d in (1, 2, 3, 4)}
    ids, scores = weighted([A, B], [0.5, 0.5], "zscore")
    assert as_dict((ids, scores)) == pytest.approx(expected)
    assert ids.tolist() == [1, 3, 2, 4]


def test_weighted_rank_hand_computed():
    # A (n=3) -> 1, 2/3, 1/3; B (n=2) -> 1, 1/2; absent -> 0.
    ids, scores = weighted([A, B], [0.5, 0.5], "rank")
    assert as_dict((ids, scores)) == pytest.approx({1: 0.5, 2: 1 / 3, 3: 1 / 6 + 0.5, 4: 0.25})
    assert ids.tolist() == [3, 1, 2, 4]


def test_normalisations_of_a_constant_run_carry_no_signal():
    for method in ("minmax", "zscore", "rank"):
        assert normalise(np.array([2.0, 2.0, 2.0]), method).tolist() == [0.0, 0.0, 0.0]


def test_alpha_weights():
    assert alpha_weights(0.25, 2) == [0.25, 0.75]
    assert alpha_weights(0.4, 3) == pytest.approx([0.4, 0.3, 0.3])


def test_fuser_plugins_fuse_like_the_functions():
    assert as_dict(load_fuser("rrf", {"k0": 20}).fuse([A, B])) == pytest.approx(as_dict(rrf([A, B], 20)))
    fuser = load_fuser("weighted", {"alpha": 0.7, "norm": "minmax"})
    assert as_dict(fuser.fuse([A, B])) == pytest.approx({1: 0.7, 2: 0.35, 3: 0.3, 4: 0.0})
    assert load_fuser("reciprocal-rank-fusion").options == {"k0": 60}


@pytest.mark.parametrize("name, options, fragment", [
    ("rrf", {"k0": 0}, "k0"),
    ("rrf", {"k0": -5}, "k0"),
    ("weighted", {"alpha": 1.5}, "option .alpha. must be within \\[0, 1\\]"),
    ("weighted", {"alpha": -0.1}, "alpha"),
    ("weighted", {"norm": "softmax"}, "minmax, zscore, rank"),
    ("rrf", {"alpha": 0.5}, "no option"),
    ("rrf", {"k": 5}, "Did you mean: k0"),
])
def test_bad_fusion_options_are_usage_errors(name, options, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        load_fuser(name, options)
    assert "\n" not in str(info.value)


def test_unknown_fusion_suggests_a_close_name():
    with pytest.raises(UnknownComponentError, match="Did you mean: rrf"):
        load_fuser("rff")


def test_duplicate_ids_in_a_run_are_rejected():
    with pytest.raises(ValueError, match="twice"):
        rrf([(np.array([1, 1]), np.array([1.0, 0.5]))])
