"""``onnxbridge bench OUT_DIR``: prefill latency and decode tokens/s of a with-past folder on ONNX Runtime
(plain feeds, and IO binding that hands each step's ``present`` OrtValues to the next step without a copy)
and of the source folder in transformers with its cache, interleaved trial by trial so both sides see the
same machine load. Both sides run the same greedy loop over the same random prompt (no padding)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._memory import peak_rss_bytes, reset_peak, rss_bytes
from .._util import Progress, no_progress
from ..errors import UsageError
from ..results import Report
from ..results.decode_bench import GENAI, ORT, TORCH, DecodeBench, DecodeTiming
from .loop import DecoderSession

__all__ = ["ORT_MODES", "DecodeBenchConfig", "Trial", "bench_decoder", "bench_folder"]

ORT_MODES = ("feeds", "io-binding")


@dataclass(frozen=True)
class DecodeBenchConfig:
    """What to time: ``prompt_length`` tokens of prefill, then ``new_tokens`` greedy tokens in all (the
    first from the prefill, the rest one decode step each), per batch size, ``trials`` times each side."""

    prompt_length: int = 128
    batches: tuple[int, ...] = (1, 4)
    new_tokens: int = 64
    trials: int = 3
    threads: int | None = None
    provider: str = "cpu"
    ort_modes: tuple[str, ...] = ORT_MODES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.prompt_length < 1:
            raise UsageError(f"--prompt-length {self.prompt_length} must be >= 1", "e.g. --prompt-length 128")
        if self.new_tokens < 2:
            raise UsageError(
                f"--new-tokens {self.new_tokens} must be >= 2 (one from the prefill, one decoded)",
                "e.g. --new-tokens 64",
            )
        if not self.batches or min(self.batches) < 1:
            raise UsageError(f"--batch {self.batches} needs sizes >= 1", "e.g. --batch 1,4")
        if self.trials < 1:
            raise UsageError(f"--trials {self.trials} must be >= 1", "e.g. --trials 3")
        bad = [m for m in self.ort_modes if m not in ORT_MODES]
        if bad or not self.ort_modes:
            raise UsageError(f"unknown ONNX Runtime mode(s) {bad or self.ort_modes}", f"use {', '.join(ORT_MODES)}")


@dataclass(frozen=True)
class Trial:
    """One timed run: seconds of the prefill and of the decode steps, and the memory it used."""

    prefill_s: float
    decode_s: float
    peak_rss: int
    peak_added: int
    tokens: tuple[tuple[int, ...], ...]  # per row, the greedy tokens the run chose


Runner = Callable[[Any, int], Trial]  # (input_ids [batch, prompt], decode steps) -> Trial


def _measured(fn: Callable[[list[Any]], tuple[float, float]]) -> Trial:
    chosen: list[Any] = []
    reset_peak()
    start = rss_bytes()
    prefill, decode = fn(chosen)
    peak = peak_rss_bytes()
    rows = tuple(zip(*(tuple(int(t) for t in c) for c in chosen)))
    return Trial(prefill, decode, peak, max(0, peak - start), rows)


class _OrtRunner:
    """The with-past graph in a plain greedy loop, feeding numpy arrays or binding OrtValues."""

    def __init__(self, session: DecoderSession, mode: str) -> None:
        self.s, self.mode = session, mode
        self.device = "cuda" if "CUDA" in session.provider.used else "cpu"

    def __call__(self, ids: Any, steps: int) -> Trial:
        return _measured(
            lambda out: self._io(ids, steps, out) if self.mode == "io-binding" else self._feeds(ids, steps, out)
        )

    def _small(self, ids: Any) -> tuple[Any, Any]:
        import numpy as np

        batch, width = ids.shape
        return np.ones((batch, width), dtype=np.int64), np.tile(np.arange(width, dtype=np.int64), (batch, 1))

    def _feeds(self, ids: Any, steps: int, chosen: list[Any]) -> tuple[float, float]:
        import numpy as np

        layout = self.s.layout
        mask, pos = self._small(ids)
        feeds = {"input_ids": ids, "attention_mask": mask, **layout.empty_past(ids.shape[0])}
        t0 = time.perf_counter()
        if layout.position_ids:
            feeds["position_ids"] = pos
        logits, present = self.s.step(feeds)
        t1 = time.perf_counter()
        ones = np.ones((ids.shape[0], 1), dtype=np.int64)
        for _ in range(steps):
            nxt = logits[:, -1, :].argmax(-1)[:, None].astype(np.int64)
            chosen.append(nxt[:, 0])
            mask = np.concatenate([mask, ones], axis=1)
            feeds = {"input_ids": nxt, "attention_mask": mask, **dict(zip(layout.past_names, present))}
            if layout.position_ids:
                feeds["position_ids"] = np.full_like(nxt, mask.shape[1] - 1)
            logits, present = self.s.step(feeds)
        t2 = time.perf_counter()
        chosen.append(logits[:, -1, :].argmax(-1))
        return t1 - t0, t2 - t1

    def _io(self, ids: Any, steps: int, chosen: list[Any]) -> tuple[float, float]:
        import numpy as np

        layout, sess = self.s.layout, self.s.session
        out_names = [o.name for o in sess.get_outputs()]
        logits_at = out_names.index("logits")
        present_at = [out_names.index(n) for n in layout.present_names]
        binding = sess.io_binding()
        mask, pos = self._small(ids)

        def run(feeds: dict[str, Any], past: Sequence[Any] | None) -> tuple[Any, list[Any]]:
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
            if past is not None:
                for name, value in zip(layout.past_names, past):
                    binding.bind_ortvalue_input(name, value)
            for name in out_names:
                binding.bind_output(name, self.device)
            sess.run_with_iobinding(binding)
            outs = binding.get_outputs()
            return outs[logits_at].numpy(), [outs[i] for i in present_at]

        t0 = time.perf_counter()
        first = {"input_ids": ids, "attention_mask": mask, **layout.empty_past(ids.shape[0])}
        if layout.position_ids:
            first["position_ids"] = pos
        logits, present = run(first, None)
        t1 = time.perf_counter()
        ones = np.ones((ids.shape[0], 1), dtype=np.int64)
        for _ in range(steps):
            nxt = np.ascontiguousarray(logits[:, -1, :].argmax(-1)[:, None].astype(np.int64))
            chosen.append(nxt[:, 0])
            mask = np.concatenate([mask, ones], axis=1)
            feeds = {"input_ids": nxt, "attention_mask": mask}
            if layout.position_ids:
                feeds["position_ids"] = np.full_like(nxt, mask.shape[1] - 1)
            logits, present = run(feeds, present)
        t2 = time.perf_counter()
        chosen.append(logits[:, -1, :].argmax(-1))
        return t1 - t0, t2 - t1


class _GenaiRunner:
    """A GenAI-built folder (``genai_config.json``) through onnxruntime-genai's own Generator: the prefill is
    ``append_tokens`` plus the first token's choice, each later ``generate_next_token`` one decode step."""

    def __init__(self, folder: Path, cuda: bool, threads: int | None) -> None:
        import json

        import onnxruntime_genai as og

        config = og.Config(str(folder))
        config.clear_providers()
        if cuda:
            config.append_provider("cuda")
        if threads is not None:
            options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.og, self.model = og, og.Model(config)

    def __call__(self, ids: Any, steps: int) -> Trial:
        return _measured(lambda chosen: self._run(ids, steps, chosen))

    def _run(self, ids: Any, steps: int, chosen: list[Any]) -> tuple[float, float]:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(batch_size=ids.shape[0], max_length=ids.shape[1] + steps + 1, do_sample=False)
        generator = self.og.Generator(self.model, params)
        t0 = time.perf_counter()
        generator.append_tokens(ids.astype("int32"))
        generator.generate_next_token()
        t1 = time.perf_counter()
        chosen.append(generator.get_next_tokens().copy())
        for _ in range(steps):
            generator.generate_next_token()
            chosen.append(generator.get_next_tokens().copy())
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1


class _TorchRunner:
    """The source in transformers with its cache (``DynamicCache``), the loop ``generate()`` runs: the
    prefill keeps only the last position's logits where the model supports ``logits_to_keep``."""

    def __init__(self, model: Any) -> None:
        import inspect

        self.model = model
        self.keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    def __call__(self, ids: Any, steps: int) -> Trial:
        return _measured(lambda out: self._run(ids, steps, out))

    def _run(self, ids: Any, steps: int, chosen: list[Any]) -> tuple[float, float]:
        import torch

        x = torch.from_numpy(ids)
        mask = torch.ones_like(x)
        extra = {"logits_to_keep": 1} if self.keep else {}
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = self.model(input_ids=x, attention_mask=mask, use_cache=True, **extra)
            t1 = time.perf_counter()
            ones = torch.ones((x.shape[0], 1), dtype=mask.dtype)
            for _ in range(steps):
                nxt = out.logits[:, -1, :].argmax(-1)[:, None]
                chosen.append(nxt[:, 0].numpy())
                mask = torch.cat([mask, ones], dim=1)
                out = self.model(
                    input_ids=nxt, attention_mask=mask, past_key_values=out.past_key_values, use_cache=True
                )
            t2 = time.perf_counter()
            chosen.append(out.logits[:, -1, :].argmax(-1).numpy())
            return t1 - t0, t2 - t1


def _timing(runtime: str, mode: str, batch: int, trials: Sequence[Trial], tokens: int, variant: str) -> DecodeTiming:
    prefill = tuple(t.prefill_s * 1e3 for t in trials)
    rate = tuple(tokens / t.decode_s if t.decode_s > 0 else 0.0 for t in trials)
    return DecodeTiming(
        runtime,
        mode,
        batch,
        statistics.median(prefill),
        statistics.median(rate),
        max(t.peak_rss for t in trials),
        max(t.peak_added for t in trials),
        len(trials),
        prefill,
        rate,
        variant,
    )


def bench_decoder(
    folder: str | Path,
    config: DecodeBenchConfig = DecodeBenchConfig(),
    *,
    source: Any = None,
    source_label: str | None = None,
    variants: Mapping[str, str | Path] | None = None,
    trust: bool = False,
    progress: Progress = no_progress,
) -> DecodeBench:
    """Time ``folder``'s ``model.onnx``, ``variants`` (name -> a quantised copy of the folder, e.g. from
    :func:`onnxbridge.generation.quantize.quantize_folder`) and (given) ``source``, a transformers causal LM
    or a folder holding one, interleaved: per trial, per batch, each ONNX Runtime folder and mode, then the
    source. The greedy-token check compares the fp32 folder with the source (a quantised copy may differ).
    ``trust``: the source folder's own code (``auto_map``) may run (``--trust-model``)."""
    import numpy as np

    folder = Path(folder)
    notes: list[str] = []
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    session = DecoderSession(folder, config.provider, threads=config.threads)
    runners: list[tuple[str, str, str, Runner]] = [(ORT, m, "fp32", _OrtRunner(session, m)) for m in config.ort_modes]
    for name, path in (variants or {}).items():
        other = DecoderSession(path, config.provider, threads=config.threads)
        runners += [(ORT, m, name, _OrtRunner(other, m)) for m in config.ort_modes]
    for name, path in (("fp32", folder), *(variants or {}).items()):
        if (Path(path) / "genai_config.json").is_file():
            from .genai import INSTALL, installed

            if not installed():
                notes.append(f"{path}: a GenAI-built folder: {INSTALL} to time onnxruntime-genai's Generator too")
                continue
            cuda = "CUDA" in session.provider.used
            runners.append((GENAI, "generator", name, _GenaiRunner(Path(path), cuda, config.threads)))
    if source is not None:
        if isinstance(source, (str, Path)):
            from .lm_source import load_causal_lm

            source_label = source_label or str(source)
            progress(f"loading {source}")
            source = load_causal_lm(Path(source), trust)
        runner = _TorchRunner(source)
        runners.append((TORCH, "dynamic-cache", "fp32", runner))
        if not runner.keep:
            notes.append("the source's forward takes no logits_to_keep: its prefill computes every position's logits")
    vocab = (
        int(session.session.get_outputs()[0].shape[-1])
        if isinstance(session.session.get_outputs()[0].shape[-1], int)
        else 32
    )
    rng = np.random.default_rng(config.seed)
    prompts = {
        b: rng.integers(3, max(4, vocab), size=(b, config.prompt_length), dtype=np.int64) for b in config.batches
    }
    steps = config.new_tokens - 1
    for b in config.batches:  # warm-up: allocator arenas, kernels, lazy initialisation
        for *_, run in runners:
            run(prompts[b], min(steps, 2))
    trials: dict[tuple[str, str, str, int], list[Trial]] = {}
    for t in range(config.trials):
        progress(f"trial {t + 1}/{config.trials}")
        for b in config.batches:
            for runtime, mode, variant, run in runners:
                trials.setdefault((runtime, mode, variant, b), []).append(run(prompts[b], steps))
    rows = tuple(
        _timing(rt, mode, b, trials[(rt, mode, v, b)], b * steps, v)
        for b in config.batches
        for rt, mode, v, _ in runners
    )
    agree = []
    for b in config.batches:
        first = {trials[(rt, mode, v, b)][0].tokens for rt, mode, v, _ in runners if v == "fp32"}
        agree.append(len(first) == 1)
        if len(first) > 1:
            notes.append(
                f"batch {b}: the runtimes chose different greedy tokens (near-ties on random weights, or "
                "a folder that is not SOURCE's export): run onnxbridge validate SOURCE OUT_DIR"
            )
    return DecodeBench(
        str(folder),
        source_label,
        session.provider.used,
        config.prompt_length,
        config.new_tokens,
        tuple(config.batches),
        config.threads,
        rows,
        tuple(notes),
        tuple(agree),
    )


def bench_folder(
    folder: str | Path,
    config: DecodeBenchConfig,
    *,
    source: str | None = None,
    trust: bool = False,
    progress: Progress = no_progress,
) -> Report:
    """:func:`bench_decoder` as a run report (``command`` bench, ``decode_bench`` filled, peak RSS)."""
    from .._memory import StagePeaks

    peaks = StagePeaks()
    t0 = time.perf_counter()
    with peaks.stage("bench"):
        result = bench_decoder(folder, config, source=source, trust=trust, progress=progress)
    return Report(
        command="bench",
        source=source or str(folder),
        framework="onnx" if source is None else "pytorch",
        output=str(folder),
        decode_bench=result,
        timings={"bench_s": time.perf_counter() - t0},
        notes=result.notes,
        peak_rss_bytes=peaks.bytes,
    )
