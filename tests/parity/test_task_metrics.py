"""Task-level metrics for deployment variants: row cosines, argmax agreement per position, near-ties,
and the budget they are judged by."""

from __future__ import annotations

import numpy as np
import pytest

from onnxbridge.errors import UsageError
from onnxbridge.options import Budget, VariantOptions, parse_budget
from onnxbridge.parity.metrics import argmax_agreement, decisive_rows, row_cosines
from onnxbridge.variants.accuracy import judge_accuracy, measure
from onnxbridge.variants.registry import KINDS


def test_argmax_agreement_is_per_position_for_sequence_logits():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 5, 7))  # [batch, seq, vocab]
    got = ref.copy()
    got[1, 3] = -got[1, 3]  # one position's logits flipped
    assert argmax_agreement(ref, got) == (9, 10)
    assert argmax_agreement(ref, got, k=7) == (10, 10)
    assert argmax_agreement(ref[..., :1], got[..., :1]) is None  # no class axis


def test_near_ties_are_left_out_of_top1_decisive():
    ref = np.array([[5.0, 0.0, 0.0, 0.0], [1.0, 1.001, 0.0, 0.0]])  # row 1: a near-tie
    got = np.array([[5.0, 0.0, 0.0, 0.0], [1.001, 1.0, 0.0, 0.0]])  # which the variant flips
    assert decisive_rows(ref, 0.05).tolist() == [True, False]
    (o,) = measure([[ref]], [[got]], ["logits"], margin=0.05)
    assert o.top1 == 0.5 and o.top1_decisive == 1.0 and (o.decisive_rows, o.rows) == (1, 2)


def test_row_cosines_and_non_finite_values():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = np.array([[1.0, 2.0], [-3.0, -4.0]])
    np.testing.assert_allclose(row_cosines(ref, got), [1.0, -1.0])
    assert row_cosines(np.zeros((1, 3)), np.zeros((1, 3))).tolist() == [1.0]
    bad = ref.copy()
    bad[0, 0] = np.inf
    (o,) = measure([[ref]], [[bad]], ["y"], margin=0.05)
    assert o.nonfinite == 1 and o.max_abs == float("inf")
    judged = judge_accuracy((o,), KINDS.get("fp16").budget)
    assert not judged.passed and "y: nonfinite 1 > 0" in judged.failures


def test_cosines_take_the_worst_case_and_agreements_pool_every_case():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    worse = a + 0.5 * rng.standard_normal(a.shape)
    (o,) = measure([[a], [b]], [[worse], [b]], ["y"], margin=0.05)
    assert o.cosine == pytest.approx(float(row_cosines(a.ravel(), worse.ravel())[0]))
    assert o.rows == 8


def test_budgets_parse_and_refuse_nonsense():
    assert parse_budget("cosine=0.999,top1=0.99") == {"cosine": 0.999, "top1": 0.99}
    assert parse_budget(["cosine=0.9", "nonfinite=0"]) == {"cosine": 0.9, "nonfinite": 0.0}
    for bad in ("cosin=0.9", "cosine", "cosine=abc", "cosine=-1"):
        with pytest.raises(UsageError):
            parse_budget(bad)
    opts = VariantOptions(("int8", "int4"), budget="top1=0.5")
    assert KINDS.get("int8").budget_for(opts).as_dict() == {
        "cosine": 0.99,
        "top1_decisive": 0.98,
        "nonfinite": 0.0,
        "top1": 0.5,
    }
    assert "top1" not in dict(KINDS.get("int4").budget.limits)  # int4 reports argmax agreement, does not gate it
    assert Budget((("max_abs", 1e-3),)).describe() == "max_abs<=0.001"
    assert KINDS.get("ort").speed_rule(VariantOptions(("ort",))) is None
    assert KINDS.get("int8").speed_rule(VariantOptions(("int8",))) == 1.0
    assert KINDS.get("int8").speed_rule(VariantOptions(("int8",), min_speedup=0)) is None
