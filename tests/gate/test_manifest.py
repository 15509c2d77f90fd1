"""Manifest parsing: onnxbridge.toml and [tool.onnxbridge], defaults, and errors that point to the line."""

from __future__ import annotations

import textwrap

import pytest

from onnxbridge.gate.manifest import ManifestError, find_manifest, load_manifest

GOOD = """\
atol = 1e-4

[[models]]
name = "net"
source = "models.py:net"
onnx = "artifacts/net.onnx"
inputs = ["x:batch,4", "mask:batch,4:int64"]

[[models]]
name = "b"
source = "models.py:net"
onnx = "b.onnx"
fixtures = "golden/b.npz"
rtol = 0.01
provider = "CPU"
reexport = false
"""


@pytest.fixture
def proj(tmp_path):
    (tmp_path / "models.py").write_text("net = None\n")
    return tmp_path


def write(folder, text, name="onnxbridge.toml"):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_parses_entries_defaults_and_paths(proj):
    m = load_manifest(write(proj, GOOD))
    assert m.root == proj.resolve()
    a, b = m.models
    assert (a.name, a.source, a.onnx, a.fixtures, a.line) == (
        "net",
        "models.py:net",
        "artifacts/net.onnx",
        "artifacts/net.npz",
        3,
    )
    assert a.inputs == ("x:batch,4", "mask:batch,4:int64")
    assert a.atol == 1e-4 and a.rtol is None and a.provider == "auto" and a.reexport is True
    assert (b.fixtures, b.line, b.rtol, b.atol, b.provider, b.reexport) == ("golden/b.npz", 9, 0.01, 1e-4, "cpu", False)
    assert m.source_for_load(a) == f"{proj.resolve() / 'models.py'}:net"
    assert m.where(a).endswith("onnxbridge.toml:3")
    assert a.digest != b.digest and len(a.digest) == 64


def test_digest_follows_settings_not_formatting(proj):
    first = load_manifest(write(proj, GOOD)).models[0].digest
    assert load_manifest(write(proj, "# comment\n\n" + GOOD)).models[0].digest == first
    assert load_manifest(write(proj, GOOD.replace("atol = 1e-4", "atol = 1e-3"))).models[0].digest != first


def test_pyproject_tool_table_is_found_from_a_subfolder(proj):
    write(
        proj,
        "[project]\nname = 'x'\n\n[tool.onnxbridge]\nprovider = 'cpu'\n\n[[tool.onnxbridge.models]]\n"
        "name = 'net'\nsource = 'models.py:net'\nonnx = 'net.onnx'\n",
        name="pyproject.toml",
    )
    (proj / ".git").mkdir()
    sub = proj / "src" / "deep"
    sub.mkdir(parents=True)
    assert find_manifest(sub) == (proj / "pyproject.toml").resolve()
    m = load_manifest(cwd=sub)
    assert [(e.name, e.line, e.provider) for e in m.models] == [("net", 7, "cpu")]


def test_onnxbridge_toml_wins_over_pyproject(proj):
    write(
        proj,
        "[tool.onnxbridge]\n[[tool.onnxbridge.models]]\nname='p'\nsource='models.py:net'\nonnx='p.onnx'\n",
        name="pyproject.toml",
    )
    write(proj, GOOD)
    assert [e.name for e in load_manifest(cwd=proj).models] == ["net", "b"]


def test_no_manifest_is_a_usage_error(tmp_path):
    (tmp_path / ".git").mkdir()
    with pytest.raises(Exception) as e:
        load_manifest(cwd=tmp_path)
    assert e.value.exit_code == 2 and "onnxbridge.toml" in e.value.message and "--config" in e.value.hint


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[[models]]\nname = "net"\nsource = "models.py:net"\ninputs = ["x:4"\n', 4, "invalid TOML"),
        (
            '[[models]]\nname = "net"\nsource = "models.py:net"\nonnx = "n.onnx"\ntolerance = 3\n',
            5,
            "unknown key 'tolerance'",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\n\n[[models]]\nname = "b"\n'
            'source = "models.py:net"\n',
            6,
            "missing required key 'onnx'",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\n\n[[models]]\nname = "b"\n'
            'source = "missing.py:net"\nonnx = "b.onnx"\n',
            8,
            "source file missing.py does not exist",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\ninputs = ["x:batch,-4"]\n',
            5,
            "input 'x:batch,-4'",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\n[[models]]\nname = "a"\n'
            'source = "models.py:net"\nonnx = "b.onnx"\n',
            5,
            "declared twice",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "m/a.onnx"\n[[models]]\nname = "b"\n'
            'source = "models.py:net"\nonnx = "./m/a.onnx"\n',
            8,
            "onnx m/a.onnx is also the onnx file of model 'a'",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\n[[models]]\nname = "b"\n'
            'source = "models.py:net"\nonnx = "b.onnx"\nfixtures = "a.npz"\n',
            9,
            "is also the fixtures file of model 'a'",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\natol = "small"\n',
            5,
            "atol must be a number",
        ),
        (
            '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\nprovider = "gpu"\n',
            5,
            "unknown provider",
        ),
        ('[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.pt"\n', 4, "does not end in .onnx"),
        ('[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "../a.onnx"\n', 4, "leaves the project"),
        ('[[models]]\nname = "a"\nsource = "a.onnx"\nonnx = "b.onnx"\n', 3, "is an ONNX file"),
        ('[[models]]\nname = "a"\nsource = "nothing/here.keras"\nonnx = "b.onnx"\n', 3, "does not exist"),
        (
            'atol = "x"\n[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\n',
            1,
            "default atol must be a number",
        ),
        ('title = "x"\n', 1, "no models declared"),
        ("models = 3\n", 1, "non-empty array of tables"),
        (
            'seed = 1\nfoo = 2\n[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\n',
            2,
            "unknown top-level key 'foo'",
        ),
    ],
)
def test_bad_manifest_points_to_the_line(proj, text, line, words):
    path = write(proj, text)
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert e.value.exit_code == 2
    assert e.value.line == line, e.value.message
    assert f"onnxbridge.toml:{line}:" in e.value.message and words in e.value.message, e.value.message
    assert e.value.hint


def test_cli_bad_manifest_exits_2_with_the_line(proj, run_cli):
    path = write(proj, '[[models]]\nname = "a"\nsource = "models.py:net"\nonnx = "a.onnx"\nrtol = -1\n')
    res = run_cli("check", "--config", path)
    assert res.code == 2
    assert "onnxbridge.toml:5:" in res.err and "rtol must be >= 0" in res.err and "hint:" in res.err
    assert "Traceback" not in res.err


def test_cli_bad_manifest_json_carries_an_annotation(proj, run_cli):
    import json

    path = write(proj, '[[models]]\nname = "a"\nsource = "nope.py:net"\nonnx = "a.onnx"\n')
    res = run_cli("check", "--config", path, "--json")
    assert res.code == 2
    data = json.loads(res.out)
    assert data["exit_code"] == 2 and data["passed"] is False
    assert data["annotations"][0]["line"] == 3 and data["annotations"][0]["file"].endswith("onnxbridge.toml")


def test_missing_config_file(run_cli, tmp_path):
    res = run_cli("check", "--config", tmp_path / "nope.toml")
    assert res.code == 2 and "does not exist" in res.err


def test_unknown_model_name(proj, run_cli):
    path = write(proj, GOOD)
    res = run_cli("check", "--config", path, "--model", "nope")
    assert res.code == 2 and "no such model" in res.err and "net, b" in res.err
