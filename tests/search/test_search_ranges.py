"""Border warnings and coarse-to-fine narrowing (seeds/002), against hand-computed ranges."""

from __future__ import annotations

import math

import pytest

from cnnlab.search.ranges import border_warnings, narrow
from cnnlab.search.spec import parse_param

LR = parse_param("optim.lr", {"log_uniform": [1e-6, 1e-3]})
KEEP = parse_param("model.keep", {"uniform": [0.5, 1.0]})
BATCH = parse_param("train.batch_size", {"choice": [64, 128]})


def test_best_value_in_the_outer_tenth_warns_with_the_bound_to_widen():
    # the seed's worrying fine stage: best lr 9.47e-4 of [1e-4, 1e-3] sits at the top in log units
    ranked = [{"optim.lr": 9.5e-4, "model.keep": 0.75}, {"optim.lr": 1e-5, "model.keep": 0.7}]
    warnings = border_warnings([LR, KEEP], ranked)
    assert [(w.key, w.side) for w in warnings] == [("optim.lr", "high")]
    message = warnings[0].message()
    assert "optim.lr" in message and "upper bound" in message and "log scale" in message


def test_value_inside_the_range_does_not_warn():
    ranked = [{"optim.lr": 3e-5}]  # log units: (log 3e-5 - log 1e-6) / (log 1e-3 - log 1e-6) = 0.49
    assert border_warnings([LR], ranked) == []


def test_most_of_the_top_tenth_on_a_border_warns_even_if_the_best_is_not():
    ranked = [{"model.keep": 0.6}] + [{"model.keep": 0.51}] * 19 + [{"model.keep": 0.75}] * 10
    # 30 trials: the top 10% are the first 3: 0.6 (inside), 0.51, 0.51 (low border) -> 2/3 > half
    (w,) = border_warnings([KEEP], ranked)
    assert (w.side, round(w.share, 3)) == ("low", 0.667)


def test_choices_never_warn():
    assert border_warnings([BATCH], [{"train.batch_size": 64}]) == []


def test_narrowing_takes_the_top_k_span_widened_twice_in_log_units():
    ranked = [{"optim.lr": 1e-5}, {"optim.lr": 1e-4}, {"optim.lr": 1e-6}]
    (n,) = narrow([LR], ranked, k=2, warnings=[])
    # top 2 span [1e-5, 1e-4] -> centre 10^-4.5, half-width 0.5 decade x2 = 1 decade
    assert n.param.low == pytest.approx(10 ** -5.5) and n.param.high == pytest.approx(10 ** -3.5)


def test_narrowing_stays_inside_the_old_range_unless_the_border_warned():
    ranked = [{"optim.lr": 9e-4}, {"optim.lr": 5e-4}]
    (kept,) = narrow([LR], ranked, k=2, warnings=[])
    assert kept.param.high == pytest.approx(1e-3)
    warned = border_warnings([LR], ranked)
    (grown,) = narrow([LR], ranked, k=2, warnings=warned)
    centre, half = (math.log(9e-4) + math.log(5e-4)) / 2, (math.log(9e-4) - math.log(5e-4))
    assert grown.param.high == pytest.approx(math.exp(centre + half)) and grown.param.high > 1e-3
    assert "extended above the old bound" in grown.note


def test_linear_and_integer_narrowing():
    units = parse_param("model.units", {"int": [1, 100]})
    ranked = [{"model.keep": 0.7, "model.units": 10}, {"model.keep": 0.8, "model.units": 13}]
    keep, ints = narrow([KEEP, units], ranked, k=2, warnings=[])
    assert (keep.param.low, keep.param.high) == pytest.approx((0.65, 0.85))
    assert (ints.param.low, ints.param.high) == (8, 15)  # [8.5, 14.5] rounded outward


def test_choices_are_kept():
    (n,) = narrow([BATCH], [{"train.batch_size": 64}], k=1, warnings=[])
    assert n.param == BATCH and "kept" in n.note
