"""Render a bench/run_all.py JSON file as a short Markdown table: ``python bench/summarize.py RESULT.json``."""

from __future__ import annotations

import json
import sys


def _ok(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "MISSED")


def summarize(d: dict) -> str:
    m = d["machine"]
    lines = [
        f"# Bench: {m['cores']} cores, torch {m['torch']}, onnxruntime {m['onnxruntime']}",
        "",
        f"command: `{d['command']}`; load average at start {m['load_at_start']}, at end {m.get('load_at_end')}",
        "",
        "| figure | value | target | |",
        "| --- | --- | --- | --- |",
    ]
    s = d.get("startup")
    if s:
        lines.append(
            f"| `import onnxbridge` | {s['import_onnxbridge_s']:.3f} s (python alone {s['python_startup_s']:.3f} s) "
            f"| < 0.5 s | {_ok(s['import_onnxbridge_s'] < 0.5)} |"
        )
        lines.append(
            f"| `onnxbridge --help` | {s['help_s']:.3f} s; heavy modules imported: {s['heavy_modules_imported']} "
            f"| < 0.5 s | {_ok(s['met'])} |"
        )
    for name, h in (d.get("harness") or {}).items():
        lines.append(
            f"| harness overhead ({name}) | {h['overhead']:+.1%} (p50 {h['onnxbridge_p50_ms']:.4g} vs "
            f"{h['bare_session_run_p50_ms']:.4g} ms) | ≤ +2 % | {_ok(h['met'])} |"
        )
    p = d.get("pipeline")
    if p:
        st = ", ".join(f"{k} {v:.2f}" for k, v in p["onnxbridge_stages_s"].items())
        lines.append(
            f"| pipeline: convert vs by hand, same checks | {p['onnxbridge_convert_s']:.2f} s vs "
            f"{p['by_hand_same_cases_s']:.2f} s ({p['overhead_vs_same_checks']:+.1%}) | ≤ +10 % | {_ok(p['met'])} |"
        )
        lines.append(
            f"| pipeline: convert vs by hand, 1 check | {p['by_hand_1_check_s']:.2f} s "
            f"({p['overhead_vs_minimal']:+.1%}); onnxbridge stages: {st} | | |"
        )
    models = d.get("models") or {}
    target = models.get("target")
    if target:
        lines.append(f"| {target['what']} | {target['speedup']:.2f}x | ≥ 1.5x | {_ok(target['met'])} |")
    if models:
        lines += [
            "",
            "| model | export | batch | ORT p50 ms | torch p50 ms | speed-up |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, e in models.items():
            if name == "target":
                continue
            for r in e["rows"]:
                lines.append(
                    f"| {name} | {r['export']} | {r['batch']} | {r['ort_p50_ms']:.1f} | {r['torch_p50_ms']:.1f} "
                    f"| {r['speedup']:.2f}x |"
                )
        lines += [
            "",
            "fused ops per optimised export: "
            + "; ".join(
                f"{n}: {(e.get('optimize') or {}).get('fused_ops')}" for n, e in models.items() if n != "target"
            ),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarize(json.loads(open(sys.argv[1]).read())), end="")
