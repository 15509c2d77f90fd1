"""The variant-kind registry: a kind is one declaration, a throwaway one is built, judged and written (or
refused) by the same stage, and the CLI, the docs and the schema list exactly the registered kinds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from onnxbridge.options import Budget, TimingPlan, VariantOptions
from onnxbridge.results import VariantStatus
from onnxbridge.variants.build import BuildContext, Built, save
from onnxbridge.variants.kind import VariantKind, VariantKinds
from onnxbridge.variants.registry import KINDS
from onnxbridge.variants.stage import run_variants
from tests.conftest import files_in
from tests.variants import models
from tests.variants.conftest import rerun

ROOT = Path(__file__).resolve().parents[2]


def _scaled(factor: float):
    """A builder that multiplies the classifier's output by ``factor`` (1.0: the fp32 model as is)."""

    def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
        from onnx import helper, numpy_helper

        out = model.graph.output[0]
        inner = out.name + "_unscaled"
        for node in model.graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
        model.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "factor"))
        model.graph.node.append(helper.make_node("Mul", [inner, "factor"], [out.name]))
        save(model, dst)
        return Built(dst, f"outputs x{factor}", {"factor": factor})

    return build


def _run(classifier, classifier_files, kinds: VariantKinds, name: str):
    options = VariantOptions(
        (name,),
        budget={},
        min_speedup=0,
        inputs_file=classifier_files / "clusters.npz",
        timing=TimingPlan(warmup=1, runs=3),
        rounds=1,
    )
    (v,) = run_variants(classifier, options, kinds=kinds).variants
    return v


def test_a_throwaway_kind_is_one_declaration_and_one_registration_line(classifier, classifier_files):
    kinds = VariantKinds()
    kinds.register(
        VariantKind(
            "same",
            _scaled(1.0),
            Budget((("cosine", 0.9999),)),
            "the fp32 model, copied",
            notes=lambda options: ("copied, not converted",),
        )
    )
    v = _run(classifier, classifier_files, kinds, "same")
    assert v.status is VariantStatus.PASSED, v.reasons
    assert v.path == str(classifier.parent / "classifier.same.onnx") and v.budget == {"cosine": 0.9999}
    assert v.notes == ("copied, not converted",) and v.details == {"factor": 1.0} and v.worst("cosine") > 0.9999
    x, _ = models.cluster_inputs(7, seed=321)  # batch 7; the gate judged batch 4
    np.testing.assert_allclose(rerun(v.path, x), rerun(classifier, x), rtol=1e-5, atol=1e-5)


def test_a_throwaway_kind_that_breaks_the_model_is_refused_by_its_own_budget(classifier, classifier_files):
    kinds = VariantKinds([VariantKind("flipped", _scaled(-1.0), Budget((("cosine", 0.99),)), "negated logits")])
    v = _run(classifier, classifier_files, kinds, "flipped")
    assert v.status is VariantStatus.REFUSED and v.path is None
    assert "over the accuracy budget (cosine>=0.99)" in v.reasons[0] and v.worst("cosine") < 0
    assert files_in(classifier.parent) == {"classifier.onnx"}


def test_a_kind_name_is_registered_once_and_unknown_names_are_refused_before_any_work(run_cli, classifier):
    kinds = VariantKinds([KINDS.get("int8")])
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(KINDS.get("int8"))
    r = run_cli("variant", classifier, "--to", "int8,fp8")
    assert r.code == 2 and "unknown variant 'fp8'" in r.err and KINDS.help() in r.err, r.out + r.err
    assert files_in(classifier.parent) == {"classifier.onnx"}


def test_every_built_in_kind_declares_its_budget_and_the_docs_list_exactly_the_registry():
    assert KINDS.names() == ("fp16", "bf16", "int8", "int8-static", "int4", "ort")
    assert KINDS.get("int4").budget.as_dict() == {"cosine": 0.9, "nonfinite": 0.0}
    assert (
        KINDS.get("ort").filename(Path("m.onnx")) == "m.ort"
        and KINDS.get("fp16").filename(Path("m.onnx")) == "m.fp16.onnx"
    )
    schema = json.loads((ROOT / "docs/schema/report.schema.json").read_text())
    assert tuple(schema["$defs"]["variant"]["properties"]["kind"]["enum"]) == KINDS.names()
    cli = (ROOT / "docs/cli.md").read_text()
    listed = re.search(r"\| `--to ([^`]+)` \|", cli).group(1)
    assert tuple(listed.split(",")) == KINDS.names()


def test_the_help_lists_the_registered_kinds(run_cli):
    r = run_cli("variant", "--help")
    assert r.code == 0 and " ".join(KINDS.help().split()) in " ".join(r.out.split())


def test_the_ort_kinds_table_is_declared_by_the_kind():
    from onnxbridge.results import VariantResult

    kind_table = KINDS.get("ort").table
    mobile = {
        "eps": [
            {
                "ep": "NNAPI",
                "suitability": "yes",
                "supported_nodes": 3,
                "nodes": 4,
                "partitions": 1,
                "with_fixed_shapes": None,
            }
        ],
        "recommendation": "use NNAPI",
    }
    v = VariantResult(
        kind="ort", status=VariantStatus.PASSED, path=None, reasons=(), budget={}, details={"mobile": mobile}
    )
    table = kind_table(v)
    assert table.rows[0] == ("NNAPI", "yes", "3/4", "1", "-") and table.rows[-1][:2] == ("recommendation", "use NNAPI")
    assert (
        KINDS.get("int8").table(
            VariantResult(kind="int8", status=VariantStatus.PASSED, path=None, reasons=(), budget={})
        )
        is None
    )
