"""The docs say what the code does: every flag a page shows exists on that command, every option is documented,
every exit code and error class is listed where users look, and every run report carries ``peak_rss_bytes``."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import click
import pytest

from onnxbridge.errors import EXIT_CODES, OnnxBridgeError

ROOT = Path(__file__).resolve().parent.parent
# the user-facing contract lives beside the repository in the project's workspace; checked where it is there
CONTRACT = Path("/work/shared/CONTRACT.md")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
HELP = {"--help", "-h"}


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)} | HELP


@pytest.fixture(scope="module")
def cli_flags() -> dict[str, set[str]]:
    """Command name -> its flags, read from the click commands themselves; ``""`` holds the global ones."""
    from onnxbridge.cli import COMMANDS, cli

    flags = {
        name: _options(getattr(importlib.import_module(module), attr)) for name, (module, attr, _) in COMMANDS.items()
    }
    flags[""] = _options(cli)
    return flags


def _code_spans(text: str) -> list[str]:
    """Every inline code span and every line of every fenced block (comments after `` # `` dropped)."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return [re.split(r"\s#\s", line)[0] for b in blocks for line in b.splitlines()] + inline


def _command(span: str, commands) -> tuple[str, list[str]] | None:
    """(the command, the flags written after it) when ``span`` runs one: ``onnxbridge CMD ...``, or ``CMD ...``
    with CMD a command's name (``convert --variant``); ``COMMAND`` and the like are placeholders."""
    words = span.strip().removeprefix("$ ").split()
    if words[:1] == ["onnxbridge"]:
        words = [w for w in words[1:] if w != "--debug"]
    elif not (words and words[0] in commands):
        return None
    if not words or not re.fullmatch(r"[a-z]+", words[0]):
        return None
    return words[0], FLAG.findall(" ".join(words[1:]))


def _command_lines(text: str, commands) -> list[tuple[str, list[str]]]:
    """(the onnxbridge command, the flags written after it) for each code line that runs one."""
    return [c for span in _code_spans(text) if (c := _command(span, commands)) is not None]


def _sections(text: str) -> list[tuple[str, str]]:
    parts = re.split(r"^## (.*)$", text, flags=re.M)
    return [("", parts[0])] + list(zip(parts[1::2], parts[2::2]))


def _docs() -> dict[str, str]:
    pages = {
        p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
        for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    }
    if CONTRACT.is_file():
        # the contract's proposals for work under way name commands not built yet
        pages["CONTRACT.md"] = CONTRACT.read_text(encoding="utf-8").split("## Additions under way")[0]
    return pages


@pytest.mark.parametrize("page", sorted(_docs()))
def test_every_command_line_in_the_docs_uses_flags_that_command_has(page, cli_flags):
    lines = _command_lines(_docs()[page], cli_flags)
    wrong = [
        (cmd, flag)
        for cmd, flags in lines
        for flag in flags
        if cmd in cli_flags and flag not in cli_flags[cmd] | cli_flags[""]
    ]
    unknown = {cmd for cmd, _ in lines if cmd not in cli_flags}
    assert not wrong and not unknown, (page, wrong, unknown)


def test_each_flag_cli_md_lists_is_on_the_commands_its_section_names(cli_flags):
    """A section titled for some commands ("Options of convert and validate") documents flags of those
    commands; the others (SOURCE, exit codes, global options) flags that some command has."""
    every = set().union(*cli_flags.values())
    missing = []
    for title, body in _sections((ROOT / "docs" / "cli.md").read_text(encoding="utf-8")):
        named = [c for c in re.findall(r"[a-z]+", title) if c in cli_flags]
        allowed = set().union(*(cli_flags[c] for c in named)) | cli_flags[""] if named else every
        flags = {f for span in _code_spans(body) if _command(span, cli_flags) is None for f in FLAG.findall(span)}
        missing += [(title, f) for f in sorted(flags - allowed)]
    assert not missing, missing


def test_the_contracts_common_options_are_on_convert_or_validate(cli_flags):
    if not CONTRACT.is_file():
        pytest.skip(f"{CONTRACT} is not in this checkout")
    text = CONTRACT.read_text(encoding="utf-8")
    table = text.split("## Common options", 1)[1].split("\n## ", 1)[0]
    flags = {f for span in _code_spans(table) for f in FLAG.findall(span)}
    both = cli_flags["convert"] | cli_flags["validate"]
    assert len(flags) > 10 and flags <= both, flags - both


def test_every_option_of_every_command_is_documented(cli_flags):
    shown = {f for text in _docs().values() for span in _code_spans(text) for f in FLAG.findall(span)}
    undocumented = {(cmd or "onnxbridge", f) for cmd, flags in cli_flags.items() for f in flags - HELP - shown}
    assert not undocumented, sorted(undocumented)


def test_the_exit_codes_the_cli_uses_are_listed_in_cli_md_readme_and_help(run_cli):
    documented = {
        int(row.split("|")[1])
        for row in (ROOT / "docs" / "cli.md")
        .read_text(encoding="utf-8")
        .split("## Exit codes", 1)[1]
        .split("\n## ", 1)[0]
        .splitlines()
        if re.match(r"\| \d+ \|", row)
    }
    assert documented == set(EXIT_CODES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = readme.split("Exit codes:", 1)[1].split("The full contract", 1)[0]
    assert {int(c) for c in re.findall(r"`(\d+)`", sentence)} == set(EXIT_CODES)
    r = run_cli("--help")
    assert r.code == 0
    line = " ".join(r.out.split()).split("Exit codes:", 1)[1].split(".", 1)[0]
    assert {int(c) for c in re.findall(r"\b(\d+) [a-z]", line)} == set(EXIT_CODES), line
    if CONTRACT.is_file():
        table = CONTRACT.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
        assert {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)} <= set(EXIT_CODES)


def _subclasses(cls: type) -> set[type]:
    return {s for c in cls.__subclasses__() for s in {c} | _subclasses(c)}


def test_every_public_error_class_is_in_api_md_with_its_exit_code():
    import onnxbridge

    public = {c for c in _subclasses(OnnxBridgeError) if c.__name__ in onnxbridge.__all__}
    assert {c.exit_code for c in _subclasses(OnnxBridgeError)} <= set(EXIT_CODES)
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    found: dict[str, int] = {}
    pending: list[str] = []
    for name, code in re.findall(r"`(\w+Error)`|\((\d)\)", text):
        if name:
            pending.append(name)
        else:
            found.update((n, int(code)) for n in pending)
            pending = []
    assert found == {c.__name__: c.exit_code for c in public}


@pytest.mark.parametrize(
    ("name", "raised", "code"), [("internal", RuntimeError("boom"), 4), ("interrupted", KeyboardInterrupt(), 130)]
)
def test_a_bug_exits_4_and_ctrl_c_130(name, raised, code, run_cli, monkeypatch, tmp_path, tiny_onnx):
    import onnx

    from onnxbridge import api

    def fail(*args, **kwargs):
        raise raised

    onnx.save(tiny_onnx, tmp_path / "m.onnx")
    monkeypatch.setattr(api, "inspect", fail)
    r = run_cli("inspect", tmp_path / "m.onnx")
    assert r.code == code and EXIT_CODES[code] and "Traceback" not in r.err
    if name == "internal":
        assert "internal error: RuntimeError: boom" in r.err and "hint: rerun with --debug" in r.err
    else:
        assert r.err.strip() in ("aborted", "interrupted")  # click turns Ctrl-C into Abort; both exit 130


def test_every_run_report_records_peak_rss_of_the_stages_it_ran(run_cli, tmp_path, tiny_onnx):
    """simplify, validate, upgrade and variant: each JSON report has peak_rss_bytes, per stage it ran, and matches
    the schema, which requires it (tests/test_report_schema.py validates convert's and bench's against it)."""
    import jsonschema
    import onnx

    from onnxbridge._memory import STAGES

    schema = json.loads((ROOT / "docs" / "schema" / "report.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["peak_rss_bytes"]["propertyNames"]["enum"] == list(STAGES)
    assert "peak_rss_bytes" in schema["required"]
    model = tmp_path / "m.onnx"
    onnx.save(tiny_onnx, model)
    runs = {
        ("simplify", model, "-o", tmp_path / "s.onnx"): {"load", "simplify"},
        ("validate", model, model): {"load", "validate"},
        ("upgrade", model, "-o", tmp_path / "u.onnx", "--opset", "18"): {"load", "upgrade", "simplify", "validate"},
        ("variant", model, "--to", "ort", "--out-dir", tmp_path, "--runs", "1", "--rounds", "1", "--warmup", "0"): {
            "load",
            "variants",
        },
    }
    for args, stages in runs.items():
        r = run_cli(*args, "--json")
        assert r.code == 0, (args[0], r.err)
        d = json.loads(r.out)
        jsonschema.validate(d, schema)
        assert set(d["peak_rss_bytes"]) == stages, (args[0], d["peak_rss_bytes"])
        assert all(v > 10 * 2**20 for v in d["peak_rss_bytes"].values())  # a Python process with onnx: > 10 MiB
