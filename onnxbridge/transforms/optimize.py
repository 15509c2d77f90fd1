"""Optimised exports: transformer fusions and ONNX Runtime's offline graph optimisations.

Two passes, each optional, each reporting what it changed:

- ``fuse``: transformer fusions into ONNX Runtime's contrib ops (Attention, SkipLayerNormalization,
  BiasGelu / FastGelu ...). onnxscript's ``ort_fusions`` rewriter goes first (it knows the graphs the
  ``torch.export`` exporter writes), then ``onnxruntime.transformers.optimizer.optimize_model`` with the
  model type (it knows TorchScript-, tf2onnx- and Keras-exported graphs).
- ``target``: ONNX Runtime's offline optimisation for one provider, saved through
  ``SessionOptions.optimized_model_filepath`` into a private temp folder (never over any input).
  The level is ``extended``: the fusions that hold on any machine of the provider's kind. The
  hardware-specific layout passes (``all``) are left to the session that loads the model.

The result is kept only when ``check`` (a parity check against the unoptimised model) passes.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import OnnxBridgeError
from ..options import OptimizeOptions
from ..results import OptimizeResult

if TYPE_CHECKING:
    import onnx

    from ..results import ParityReport

__all__ = [
    "OptimizeResult",
    "optimize_model",
    "fuse_transformer",
    "ort_offline",
    "detect_model_type",
    "transformer_hints",
    "optimize_step",
]

# ONNX Runtime's fusion families; other Hugging Face model types map onto the nearest one.
_FAMILY = {
    "bert": "bert",
    "roberta": "bert",
    "distilbert": "bert",
    "albert": "bert",
    "electra": "bert",
    "xlm-roberta": "bert",
    "camembert": "bert",
    "deberta": "bert",
    "mpnet": "bert",
    "gpt2": "gpt2",
    "gpt_neo": "gpt2",
    "gptj": "gpt2",
    "opt": "gpt2",
    "codegen": "gpt2",
    "vit": "vit",
    "deit": "vit",
    "beit": "vit",
    "dinov2": "vit",
}
_FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "LayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "GemmFastGelu",
    "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization",
    "RotaryEmbedding",
    "GroupQueryAttention",
)


def transformer_hints(model: Any) -> dict[str, Any]:
    """model_type / num_heads / hidden_size from a Hugging Face model's ``config``, when it has one."""
    config = getattr(model, "config", None)
    if config is None:
        return {}
    hints: dict[str, Any] = {}
    family = _FAMILY.get(str(getattr(config, "model_type", "") or ""))
    if family:
        hints["model_type"] = family
    for key, names in (("num_heads", ("num_attention_heads", "n_head")), ("hidden_size", ("hidden_size", "n_embd"))):
        for n in names:
            value = getattr(config, n, None)
            if isinstance(value, int) and value > 0:
                hints[key] = value
                break
    return hints


def detect_model_type(model: onnx.ModelProto, hints: Mapping[str, Any] | None = None) -> str | None:
    """The fusion family: from the source's config when known, else guessed from the graph; None: not a transformer."""
    if hints and hints.get("model_type"):
        return str(hints["model_type"])
    from ..onnxio import graph_inputs

    ops = Counter(n.op_type for n in model.graph.node)
    if not (ops.get("Softmax") or ops.get("Attention") or ops.get("MultiHeadAttention")):
        return None
    inputs = graph_inputs(model)
    float_4d = any(
        len(i.type.tensor_type.shape.dim) == 4 and i.type.tensor_type.elem_type in (1, 10, 16) for i in inputs
    )
    if float_4d or ops.get("Conv"):
        return "vit"
    if ops.get("Trilu") or any("past" in i.name or "position_ids" in i.name for i in inputs):
        return "gpt2"
    return "bert"


def _fused_counts(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node if n.op_type in _FUSED_OPS and n.domain == "com.microsoft")


def fuse_transformer(
    model: onnx.ModelProto,
    model_type: str,
    *,
    num_heads: int = 0,
    hidden_size: int = 0,
    use_gpu: bool = False,
    use_ort_optimizer: bool = True,
) -> tuple[onnx.ModelProto, list[str]]:
    """Fuse attention, layer norm and GELU subgraphs into ONNX Runtime contrib ops; returns the steps that ran."""
    steps: list[str] = []
    try:
        import onnx_ir as ir
        from onnxscript.rewriter.ort_fusions import optimize_for_ort
    except ImportError:  # onnxscript is an optional dependency (the torch extra)
        pass
    else:
        ir_model = ir.from_proto(model)
        optimize_for_ort(ir_model)
        model = ir.to_proto(ir_model)
        steps.append("onnxscript.ort_fusions")
    if not use_ort_optimizer:
        return model, steps
    from onnxruntime.transformers.optimizer import optimize_model as ort_optimize

    from .._util import quiet

    with quiet():
        optimizer = ort_optimize(
            model,
            model_type=model_type,
            num_heads=num_heads,
            hidden_size=hidden_size,
            opt_level=0,
            use_gpu=use_gpu,
        )
    steps.append(f"onnxruntime.transformers({model_type})")
    return optimizer.model, steps


def ort_offline(model: onnx.ModelProto, target: str, *, threads: int | None = None) -> onnx.ModelProto:
    """ONNX Runtime's ``extended`` graph optimisations for ``target``, as ONNX Runtime saves them.

    The provider must really start (``ProviderError`` otherwise): the fusions differ per provider.
    """
    import onnx

    from ..onnxio import TWO_GB
    from ..runtime.providers import create_session
    from ..runtime.timing import session_options

    tmpdir = Path(tempfile.mkdtemp(prefix="onnxbridge-optimize-"))
    try:
        src = tmpdir / "input.onnx"
        dst = tmpdir / "optimized.onnx"
        options = session_options(threads, "extended")
        options.optimized_model_filepath = str(dst)
        if model.ByteSize() >= TWO_GB:
            onnx.save_model(model, str(src), save_as_external_data=True, location="input.onnx.data")
            options.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", "optimized.onnx.data"
            )
            payload: bytes | str = str(src)
        else:
            payload = model.SerializeToString()
        create_session(payload, target, options=options)
        if not dst.exists():
            raise RuntimeError("onnxruntime wrote no optimised model")
        return onnx.load(str(dst))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def optimize_model(
    model: onnx.ModelProto,
    *,
    target: str | None = None,
    fuse: str | None = None,
    hints: Mapping[str, Any] | None = None,
    check: Callable[[onnx.ModelProto, str], ParityReport] | None = None,
) -> tuple[onnx.ModelProto, OptimizeResult]:
    """Fuse (``fuse``: a family or ``auto``) and / or optimise offline for ``target``; keep the result only
    if ``check(optimised, provider)`` passes. A provider that cannot start raises ``ProviderError``."""
    OptimizeOptions(target, fuse)  # refuses unknown targets and families
    first = _optimize_once(model, target, fuse, hints, check, use_ort_optimizer=True)
    if first[1].applied or fuse is None or not any(st.startswith("onnxruntime.transformers") for st in first[1].steps):
        return first
    # onnxruntime.transformers' patterns can misfire on graphs they were not written for: retry without them
    second = _optimize_once(model, target, fuse, hints, check, use_ort_optimizer=False)
    if second[1].applied:
        return second[0], dataclasses.replace(
            second[1], reason=f"onnxruntime.transformers' fusions were dropped: {first[1].reason}"
        )
    return first


def _optimize_once(model, target, fuse, hints, check, *, use_ort_optimizer: bool):
    from .._util import first_line
    from ..onnxio import node_count

    hints = dict(hints or {})
    before = node_count(model)
    t0 = time.perf_counter()
    provider = target or "cpu"
    steps: list[str] = []
    family: str | None = None
    result = model
    fused: dict[str, int] = {}

    def unoptimised(reason: str, parity: bool | None = None, worst: float | None = None):
        return model, OptimizeResult(
            False, target, family, before, before, time.perf_counter() - t0, fused, tuple(steps), reason, parity, worst
        )

    try:
        if fuse is not None:
            family = fuse if fuse != "auto" else detect_model_type(model, hints)
            if family is None:
                steps.append("no transformer found: fusions skipped")
            else:
                result, fsteps = fuse_transformer(
                    result,
                    family,
                    num_heads=int(hints.get("num_heads", 0)),
                    hidden_size=int(hints.get("hidden_size", 0)),
                    use_gpu=provider == "cuda",
                    use_ort_optimizer=use_ort_optimizer,
                )
                steps += fsteps
        if target is not None:
            result = ort_offline(result, target)
            steps.append(f"onnxruntime offline ({target}, extended)")
    except OnnxBridgeError:
        raise
    except Exception as e:
        return unoptimised(f"optimisation failed: {first_line(e)}")
    from ..localize.metadata import carry_metadata

    carry_metadata(model, result)  # ONNX Runtime's optimiser drops node metadata (module scopes, source lines)
    fused = dict(_fused_counts(result))
    after = node_count(result)
    if check is None:
        return result, OptimizeResult(
            True, target, family, before, after, time.perf_counter() - t0, fused, tuple(steps)
        )
    try:
        report = check(result, provider)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return unoptimised(f"optimised model did not run: {first_line(e)}")
    worst = max((o.max_abs for c in report.cases for o in c.outputs), default=0.0)
    if not report.passed:
        return unoptimised(
            f"optimised model broke parity ({report.summary()}); kept the unoptimised model", False, worst
        )
    return result, OptimizeResult(
        True, target, family, before, after, time.perf_counter() - t0, fused, tuple(steps), None, True, worst
    )


def optimize_step(
    model: onnx.ModelProto,
    options: OptimizeOptions,
    specs,
    axis_sizes: Mapping[str, int],
    id_ranges,
    seed: int,
    *,
    hints: Mapping[str, Any] | None = None,
) -> tuple[onnx.ModelProto, OptimizeResult]:
    """``optimize_model`` with the pipeline's parity check: the unoptimised model on ONNX Runtime CPU is
    the reference, the optimised one runs on the target provider, over seeded cases and the axis sweep."""
    from ..options import ParityPlan
    from ..parity.check import check_generated
    from ..runtime.sessions import OrtRunner

    reference = OrtRunner(model, "cpu", name="unoptimised model (onnxruntime cpu)")

    def check(optimised: onnx.ModelProto, provider: str) -> ParityReport:
        return check_generated(
            reference,
            OrtRunner(optimised, provider),
            specs,
            axis_sizes,
            ParityPlan.from_seed(seed, 1),
            int_high=id_ranges,
        )

    return optimize_model(model, target=options.target, fuse=options.fuse, hints=hints, check=check)
