"""The ``bench --profile`` table: the most expensive nodes, and the nodes' sum against the profiled total."""

from __future__ import annotations

from ..overlays.profile import NodeProfile


def profile_table(profile: NodeProfile, top: int = 10):
    """Top nodes by mean time per run; the caption adds the nodes up against the profiled total."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(
        title=f"per-node time (ONNX Runtime profiler, {profile.runs} runs, {profile.provider})",
        caption=escape(
            f"all {len(profile.nodes)} nodes: {profile.nodes_ms:.4g} ms of {profile.total_ms:.4g} ms "
            f"profiled per run ({profile.coverage:.1%})"
        ),
    )
    for col in ("#", "node", "op", "provider", "ms", "share"):
        t.add_column(col, justify="left" if col in ("node", "op", "provider") else "right")
    for i, n in enumerate(profile.top(top), 1):
        share = n.ms / profile.total_ms if profile.total_ms > 0 else 0.0
        t.add_row(
            str(i),
            escape(n.name),
            n.op_type,
            n.provider.replace("ExecutionProvider", ""),
            f"{n.ms:.4g}",
            f"{share:.1%}",
        )
    return t
