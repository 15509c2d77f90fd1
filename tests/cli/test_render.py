"""The terminal summary shows the report's text as it is: a bracket in a note, a name or a line of code
is not rich markup."""

from __future__ import annotations

from onnxbridge.cli.render import finish
from onnxbridge.results import Report


def test_brackets_in_report_text_are_shown_not_read_as_markup(capsys):
    """Before: ``h[mask]`` lost ``[mask]`` (read as a style) and ``[/encoder]`` raised MarkupError."""
    report = Report(command="convert", source="nets/[net].py:net", output="out/[v2]/m.onnx",
                    notes=("call site: h = h[mask] + x[i]", "node [/encoder] has no shape"))
    assert finish(report, (), as_json=False) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("h[mask] + x[i]", "[/encoder] has no shape", "out/[v2]/m.onnx", "nets/[net].py:net"):
        assert text in out


def test_the_coloured_rows_keep_their_colours_and_their_text():
    """The localisation rows (bold / red spans) around names and code that hold brackets."""
    from types import SimpleNamespace

    from rich.console import Console

    from onnxbridge.cli.render import summary_table

    first = SimpleNamespace(name="layers[/0]", class_name="linear", where="module", score=3.0, call_site=None,
                            source="net.py:7 x[i]", module="m[bold]", onnx_nodes=("/l[0]/MatMul",), also_suspect=())
    loc = SimpleNamespace(broken_stage="[/export]", first=first, compared=3, repro=None, command="onnxbridge debug",
                          notes=(), layers=(), nodes=())
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    table = summary_table(Report(command="debug", source="s", localization=loc))
    console.print(table)
    text = console.export_text(clear=False)
    for want in ("[/export] breaks parity", "layers[/0] [linear], module", "net.py:7 x[i]", "m[bold]", "/l[0]/MatMul"):
        assert want in text
    styled = console.export_text(styles=True)
    assert "\x1b[1mlayers[/0]" in styled and "\x1b[31m[/export]" in styled  # bold name, red stage
