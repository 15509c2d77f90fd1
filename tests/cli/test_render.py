"""The terminal summary shows the report's text as it is: a bracket in a note, a name or a line of code
is not rich markup."""

from __future__ import annotations

from onnxbridge.cli.render import finish
from onnxbridge.results import Report


def test_brackets_in_report_text_are_shown_not_read_as_markup(capsys):
    """Before: ``h[mask]`` lost ``[mask]`` (read as a style) and ``[/encoder]`` raised MarkupError."""
    report = Report(
        command="convert",
        source="nets/[net].py:net",
        output="out/[v2]/m.onnx",
        notes=("call site: h = h[mask] + x[i]", "node [/encoder] has no shape"),
    )
    assert finish(report, (), as_json=False) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("h[mask] + x[i]", "[/encoder] has no shape", "out/[v2]/m.onnx", "nets/[net].py:net"):
        assert text in out


def test_the_coloured_rows_keep_their_colours_and_their_text():
    """The localisation rows (bold / red spans) around names and code that hold brackets."""
    from types import SimpleNamespace

    from rich.console import Console

    from onnxbridge.cli.render import summary_table

    first = SimpleNamespace(
        name="layers[/0]",
        class_name="linear",
        where="module",
        score=3.0,
        call_site=None,
        source="net.py:7 x[i]",
        module="m[bold]",
        onnx_nodes=("/l[0]/MatMul",),
        also_suspect=(),
    )
    loc = SimpleNamespace(
        broken_stage="[/export]",
        first=first,
        compared=3,
        repro=None,
        command="onnxbridge debug",
        notes=(),
        layers=(),
        nodes=(),
    )
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    table = summary_table(Report(command="debug", source="s", localization=loc))
    console.print(table)
    text = console.export_text(clear=False)
    for want in ("[/export] breaks parity", "layers[/0] [linear], module", "net.py:7 x[i]", "m[bold]", "/l[0]/MatMul"):
        assert want in text
    styled = console.export_text(styles=True)
    assert "\x1b[1mlayers[/0]" in styled and "\x1b[31m[/export]" in styled  # bold name, red stage


def test_inspect_shows_names_and_paths_with_brackets(tmp_path, run_cli):
    """Before: an input named ``x[/0]`` raised MarkupError in ``inspect`` (exit 4, no table), and a folder
    named ``[v2]`` vanished from the path shown."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x[/0]", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y[mask]", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x[/0]"], ["y[mask]"])], "g", [x], [y])
    path = tmp_path / "[v2]" / "m.onnx"
    path.parent.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    r = run_cli("inspect", path)
    assert r.code == 0, r.err
    out = " ".join(r.out.split())
    for text in ("x[/0]", "y[mask]", "[v2]"):
        assert text in out


def test_debug_output_says_where_the_time_and_memory_went(run_cli, tmp_path, tiny_onnx):
    """``--debug``: each stage's wall time and peak memory, and each case's run on both sides; not without it."""
    import re

    import onnx

    model = tmp_path / "m.onnx"
    onnx.save(tiny_onnx, model)
    r = run_cli("--debug", "validate", model, model)
    assert r.code == 0, r.err
    assert re.search(r"^time validate: \d+\.\d\d s$", r.out, re.M)
    assert re.search(r"^time validate\.onnx: \d+\.\d\d s$", r.out, re.M)
    assert re.search(r"^peak memory validate: \d+ MiB$", r.out, re.M)
    cases = re.findall(r"^case (.+): source (\d+\.\d) ms, onnx (\d+\.\d) ms$", r.out, re.M)
    assert cases and cases[0][0] == "seed=0"
    quiet = run_cli("validate", model, model)
    assert quiet.code == 0 and "time validate" not in quiet.out and "peak memory" not in quiet.out
