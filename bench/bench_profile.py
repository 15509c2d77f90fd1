"""``onnxbridge bench --profile`` on a BERT-base-sized BertModel with random weights (built locally with
transformers, no hub): its five most expensive nodes, and the nodes' times added up against the profiled
total (they should agree within 10%).

    .venv/bin/python bench/bench_profile.py [--seq 128] [--batch 1] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def export_bert(path: Path, seq: int) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig()).eval()  # BERT-base: 12 layers, hidden 768, 12 heads, random weights

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    model = Wrapped().eval()
    ids = torch.randint(0, 30000, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.int64)
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state", "pooler_output"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        onnx_path = Path(d) / "bert-base.onnx"
        export_bert(onnx_path, args.seq)
        report = Path(d) / "bench.json"
        cmd = [
            sys.executable,
            "-m",
            "onnxbridge",
            "bench",
            str(onnx_path),
            "--provider",
            "cpu",
            "--runs",
            "20",
            "--warmup",
            "3",
            "--batch",
            str(args.batch),
            "--axis",
            f"seq={args.seq}",
            "--profile",
            "--report",
            str(report),
        ]
        subprocess.run(cmd, check=True)
        prof = json.loads(report.read_text())["bench"]["profile"]
    print(f"\nfive most expensive nodes of {prof['nodes']} (mean per run over {prof['runs']} profiled runs):")
    for t in prof["top"][:5]:
        print(f"  {t['name']:<60} {t['op_type']:<24} {t['ms']:8.3f} ms  {t['share']:6.1%}")
    within = abs(prof["nodes_ms"] - prof["total_ms"]) <= 0.10 * prof["total_ms"]
    print(
        f"all nodes: {prof['nodes_ms']:.2f} ms; profiled total (model_run): {prof['total_ms']:.2f} ms; "
        f"coverage {prof['coverage']:.1%} ({'within' if within else 'NOT within'} 10%)"
    )
    if args.json:
        args.json.write_text(json.dumps(prof, indent=1) + "\n")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
