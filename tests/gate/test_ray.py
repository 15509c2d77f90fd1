"""``check --executor ray`` on a local Ray cluster (2 CPUs) started by the test, over a zoo of 8 tiny PyTorch and Keras models.

The zoo is updated with Ray and with the local executor and the results compared field by field; a
worker is killed mid-task and the model is retried; a run is interrupted with a real SIGINT and
nothing partial is left (with Ray, and with local processes); a project is shipped to the cluster
by address. The Ray scenarios are skipped where Ray is not installed (the dev extra has it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from onnxbridge.gate import check
from onnxbridge.parity.fixtures import read_fixtures

TORCH_MODELS = '''\
import os
import time
from pathlib import Path

import torch
from torch import nn

import stalls

HERE = Path(__file__).resolve().parent


def _mlp(seed, width):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, width), nn.Tanh(), nn.Linear(width, 3))


def _conv(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def mlp0(): return _mlp(0, 8)
def mlp1(): return _mlp(1, 16)
def mlp2(): return _mlp(2, 8)
def mlp3(): return _mlp(3, 5)
def conv0(): return _conv(0)
def conv1(): return _conv(1)


def _mark(name):
    (HERE / "marks").mkdir(exist_ok=True)
    (HERE / "marks" / name).write_text(str(os.getpid()))


def victim():
    """Waits to be killed on its first attempt (the test kills its worker), loads on the next."""
    first = not (HERE / "marks").exists() or not any((HERE / "marks").glob("victim-*"))
    _mark(f"victim-{os.getpid()}")
    if first:
        time.sleep(120)
    return _mlp(7, 8)


def slow():
    return stalls.slow()
'''

STALLS = '''\
"""Models that never load: no framework imported, so a worker starts them in an instant."""
import os
import time
from pathlib import Path

MARKS = Path(__file__).resolve().parent / "marks"


def _mark(name):
    MARKS.mkdir(exist_ok=True)
    (MARKS / name).write_text(str(os.getpid()))


def doomed():
    """Kills its own worker, every time."""
    _mark(f"doomed-{os.getpid()}")
    os.kill(os.getpid(), 9)


def slow(name="slow"):
    """Takes long enough to be interrupted; says whether it was."""
    try:
        _mark(f"{name}-started")  # inside the try: a Ctrl-C right after the mark is seen is still caught
        for _ in range(600):
            time.sleep(0.1)
    except KeyboardInterrupt:
        _mark(f"interrupted-{name}")
        raise
    _mark(f"{name}-finished")


def slow2():
    slow("slow2")
'''

KERAS_MODELS = """\
import keras


def _dense(seed, width):
    keras.utils.set_random_seed(seed)
    # an explicit input name: Keras numbers unnamed inputs per process, so it would differ by worker
    return keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(width, activation="tanh"),
                             keras.layers.Dense(2)])


def dense0(): return _dense(0, 6)
def dense1(): return _dense(1, 3)
"""

ZOO = {
    "mlp0": ("models.py", "x:batch,4"),
    "mlp1": ("models.py", "x:batch,4"),
    "mlp2": ("models.py", "x:batch,4"),
    "mlp3": ("models.py", "x:batch,4"),
    "conv0": ("models.py", "x:batch,3,8,8"),
    "conv1": ("models.py", "x:batch,3,8,8"),
    "dense0": ("kmodels.py", None),
    "dense1": ("kmodels.py", None),
}


def write_zoo(root: Path, names: dict[str, tuple[str, str | None]] = ZOO) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "models.py").write_text(TORCH_MODELS)
    (root / "kmodels.py").write_text(KERAS_MODELS)
    (root / "stalls.py").write_text(STALLS)
    entries = []
    for name, (file, spec) in names.items():
        entries.append(
            f'[[models]]\nname = "{name}"\nsource = "{file}:{name}"\nonnx = "artifacts/{name}.onnx"\n'
            + (f'inputs = ["{spec}"]\n' if spec else "")
        )
    (root / "onnxbridge.toml").write_text("\n".join(entries))
    return root


def comparable(report) -> dict:
    """The report's JSON without what may differ between two runs: timings."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("seconds", "passed_at", "source_s", "onnx_s")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    d = report.to_dict()
    for key in ("jobs", "executor", "config", "root"):
        d.pop(key)
    return json.loads(json.dumps(strip(d)).replace(report.root, "<root>"))


def differences(a, b, path: str = "") -> list[tuple[str, object, object]]:
    """Every leaf where two JSON values differ, with its path (a readable field-by-field diff)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


def same_graph(a: Path, b: Path) -> bool:
    """Same inputs, outputs, ops and weights (Keras names layers by what ran before in the process)."""
    import onnx
    from onnx import numpy_helper

    if a.read_bytes() == b.read_bytes():
        return True
    ga, gb = onnx.load(str(a)).graph, onnx.load(str(b)).graph
    return (
        [i.name for i in ga.input] == [i.name for i in gb.input]
        and [o.name for o in ga.output] == [o.name for o in gb.output]
        and [n.op_type for n in ga.node] == [n.op_type for n in gb.node]
        and len(ga.initializer) == len(gb.initializer)
        and all(
            np.array_equal(numpy_helper.to_array(x), numpy_helper.to_array(y))
            for x, y in zip(ga.initializer, gb.initializer)
        )
    )


def _same_results_and_files(tmp_path: Path) -> Path:
    """The zoo updated as Ray tasks and by the local executor: results field by field, files, numbers."""
    on_ray, local = write_zoo(tmp_path / "ray"), write_zoo(tmp_path / "local")
    ray_report = check(on_ray / "onnxbridge.toml", update=True, executor="ray")
    local_report = check(local / "onnxbridge.toml", update=True)
    assert ray_report.executor == "ray" and local_report.executor == "local"
    assert [r.status for r in ray_report.results] == ["updated"] * 8, [(r.name, r.message) for r in ray_report.results]
    assert {r.framework for r in ray_report.results} == {"pytorch", "keras"}
    assert differences(comparable(ray_report), comparable(local_report)) == []
    assert ray_report.exit_code == local_report.exit_code == 0
    assert ray_report.annotations() == local_report.annotations() == []
    for name in ZOO:
        a, b = on_ray / "artifacts" / f"{name}.onnx", local / "artifacts" / f"{name}.onnx"
        assert same_graph(a, b), name
        fa, fb = read_fixtures(on_ray / "artifacts" / f"{name}.npz"), read_fixtures(local / "artifacts" / f"{name}.npz")
        assert fa.meta["onnx_sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
        assert [label for label, _ in fa.outputs] == [label for label, _ in fb.outputs]
        for (_, x), (_, y) in zip(fa.outputs, fb.outputs):
            assert all(np.array_equal(x[k], y[k]) for k in x)
    assert sorted(p.name for p in (on_ray / "artifacts").iterdir()) == sorted(
        [f"{n}.onnx" for n in ZOO] + [f"{n}.npz" for n in ZOO]
    )  # no temp file left behind
    # what Ray recorded holds here: a local check finds every model unchanged
    assert [r.status for r in check(on_ray / "onnxbridge.toml").results] == ["unchanged"] * 8
    # independently of the validator: the written file at a batch size no case used, against the source
    sys.path.insert(0, str(on_ray))
    try:
        import torch
        from models import conv1  # noqa: PLC0415 (the zoo's own module)

        x = np.random.default_rng(5).standard_normal((7, 3, 8, 8)).astype(np.float32)
        got = ort.InferenceSession(str(on_ray / "artifacts" / "conv1.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )[0]
        with torch.no_grad():
            want = conv1().eval()(torch.from_numpy(x)).numpy()
        assert np.abs(got - want).max() < 1e-5 and np.abs(want).max() > 0
        from kmodels import dense0  # noqa: PLC0415

        x = np.random.default_rng(6).standard_normal((7, 4)).astype(np.float32)
        got = ort.InferenceSession(str(on_ray / "artifacts" / "dense0.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )[0]
        want = np.asarray(dense0()(x))
        assert np.abs(got - want).max() < 1e-5 and np.abs(want).max() > 0
    finally:
        sys.path.remove(str(on_ray))
        for name in ("models", "kmodels", "stalls"):
            sys.modules.pop(name, None)
    return on_ray


def _killed_worker_is_retried_and_one_that_keeps_dying_is_an_error(tmp_path: Path) -> None:
    root = write_zoo(tmp_path / "p", {"victim": ("models.py", "x:batch,4"), "doomed": ("stalls.py", "x:batch,4")})
    marks = root / "marks"
    killed: list[int] = []

    def kill_the_victim_mid_task() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for mark in marks.glob("victim-*") if marks.exists() else ():
                pid = int(mark.name.split("-")[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_victim_mid_task, daemon=True)
    killer.start()
    said: list[str] = []
    report = check(root / "onnxbridge.toml", update=True, executor="ray", retries=1, progress=said.append)
    killer.join(5)
    victim, doomed = report.results
    assert killed and len(list(marks.glob("victim-*"))) == 2  # killed once, loaded in a new worker
    assert victim.status == "updated" and any("attempt 2 of 2" in n for n in victim.notes), victim
    assert any("victim: its worker died (WorkerCrashedError); trying again (2 of 2)" in s for s in said), said
    assert doomed.status == "error" and doomed.exit_code == 4 and len(list(marks.glob("doomed-*"))) == 2
    assert "died 2 time(s)" in doomed.message and "memory_gb" in doomed.hint
    assert report.exit_code == 4 and (root / "artifacts" / "victim.onnx").is_file()
    assert not (root / "artifacts" / "doomed.onnx").exists() and not (root / "artifacts" / "doomed.npz").exists()
    cached = json.loads((root / ".onnxbridge" / "cache.json").read_text())["models"]
    assert sorted(cached) == ["victim"]  # never a pass that was not


def _a_request_the_local_instance_cannot_meet_is_an_error_not_a_hang(tmp_path: Path) -> None:
    root = write_zoo(tmp_path / "p", {"mlp0": ("models.py", "x:batch,4"), "mlp1": ("models.py", "x:batch,4")})
    manifest = (root / "onnxbridge.toml").read_text().split("\n\n")
    (root / "onnxbridge.toml").write_text(f'{manifest[0]}\nprovider = "cuda"\n\n{manifest[1]}cpus = 4\n')
    t0 = time.monotonic()
    gpu, big = check(root / "onnxbridge.toml", update=True, executor="ray").results
    assert time.monotonic() - t0 < 10
    assert gpu.status == "error" and "cannot give it GPUs 1" in gpu.message and "provider" in gpu.hint
    assert gpu.exit_code == big.exit_code == 2  # a set-up problem, not a crash
    assert big.status == "error" and "cannot give it CPUs 4" in big.message
    assert not (root / "artifacts").exists()


def _ctrl_c_cancels_the_rest_and_leaves_nothing_partial(tmp_path: Path, executor: str) -> None:
    """Ray: one model done and written, one running, two waiting. Local (2 processes): two running."""
    if executor == "ray":
        names = {"mlp0": "models.py", "slow": "stalls.py", "mlp1": "models.py", "mlp2": "models.py"}
    else:  # models that import no framework: the pool starts in a moment
        names = {"slow": "stalls.py", "slow2": "stalls.py"}
    root = write_zoo(tmp_path / "p", {n: (f, "x:batch,4") for n, f in names.items()})
    marks = root / "marks"
    said: list[str] = []
    sent: list[bool] = []

    def ctrl_c_once_they_run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            all((marks / f"{n}-started").exists() for n in names if n.startswith("slow"))
            and (executor == "local" or any("1/4 done" in s for s in said))
        ):
            time.sleep(0.1)
        sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to the submitting process's main thread

    threading.Thread(target=ctrl_c_once_they_run, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        check(root / "onnxbridge.toml", update=True, executor=executor, jobs=2, progress=said.append)
    assert sent and not list(marks.glob("*-finished"))  # the slow ones sleep 60 s: cancelled, not waited for
    artifacts = sorted(p.name for p in (root / "artifacts").iterdir()) if (root / "artifacts").exists() else []
    models = {n.rsplit(".", 1)[0] for n in artifacts}
    assert artifacts == sorted([f"{m}.onnx" for m in models] + [f"{m}.npz" for m in models])  # pairs, no temp file
    assert models == ({"mlp0"} if executor == "ray" else set())
    for m in models:
        meta = read_fixtures(root / "artifacts" / f"{m}.npz").meta
        assert meta["onnx_sha256"] == hashlib.sha256((root / "artifacts" / f"{m}.onnx").read_bytes()).hexdigest()
    cache = root / ".onnxbridge" / "cache.json"
    assert set(json.loads(cache.read_text())["models"] if cache.exists() else ()) == models  # nothing else recorded
    running = [n for n in names if n.startswith("slow")]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(list(marks.glob("interrupted-*"))) < len(running):
        time.sleep(0.2)
    assert sorted(p.name for p in marks.glob("interrupted-*")) == [f"interrupted-{n}" for n in running]


def _shipped_by_address(tmp_path: Path, address: str, zoo: Path) -> None:
    """The CLI on ``ray:ADDRESS``: the project travels to the workers, the replay runs on the copy."""
    import onnx

    root = tmp_path / "shipped"
    shutil.copytree(zoo, root)  # with its cache: only the touched model is replayed
    model = onnx.load(str(root / "artifacts" / "mlp1.onnx"))
    model.producer_name = "touched"  # new bytes, same numbers
    onnx.save(model, str(root / "artifacts" / "mlp1.onnx"))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "onnxbridge"), "check", "--executor", f"ray:{address}", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["executor"] == f"ray:{address}" and report["counts"] == {
        "passed": 1,
        "updated": 0,
        "unchanged": 7,
        "failed": 0,
        "error": 0,
    }
    (mlp1,) = [m for m in report["models"] if m["status"] == "passed"]
    assert (mlp1["name"], mlp1["checks"], mlp1["reasons"]) == ("mlp1", ["replay"], ["ONNX file changed"])
    text = json.dumps(report["models"])  # the workers ran from the shipped copy; the report names this one
    assert "runtime_resources" not in text and "session_" not in text


@pytest.mark.first
def test_ray_executor_end_to_end(tmp_path):
    """Every Ray scenario in turn on one local cluster (2 CPUs), started here.

    One test rather than several sharing a module fixture: pytest-xdist hands a module's tests to both
    of its workers, and each would start a cluster and warm its workers (torch, TensorFlow) again
    (``xdist_group`` does not group under pytest 9.2). The zoo comes first and warms the workers.
    """
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        zoo = _same_results_and_files(tmp_path / "zoo")
        _killed_worker_is_retried_and_one_that_keeps_dying_is_an_error(tmp_path / "kill")
        _ctrl_c_cancels_the_rest_and_leaves_nothing_partial(tmp_path / "ctrl_c", "ray")
        _a_request_the_local_instance_cannot_meet_is_an_error_not_a_hang(tmp_path / "unfit")
        _shipped_by_address(tmp_path, ray.get_runtime_context().gcs_address, zoo)
    finally:
        ray.shutdown()


def test_ctrl_c_with_local_processes_cancels_the_rest_and_leaves_nothing_partial(tmp_path):
    _ctrl_c_cancels_the_rest_and_leaves_nothing_partial(tmp_path, "local")


def test_a_local_worker_that_dies_breaks_no_other_model(tmp_path):
    """A model that kills its worker process every time: the models beside it in the pool are run again
    (alone, if they were running), the doomed one `--retries` times, then it alone is an error."""
    root = write_zoo(
        tmp_path / "p",
        {"doomed": ("stalls.py", "x:batch,4"), "mlp0": ("models.py", "x:batch,4"), "mlp1": ("models.py", "x:batch,4")},
    )
    said: list[str] = []
    report = check(root / "onnxbridge.toml", update=True, jobs=2, retries=1, progress=said.append)
    doomed, mlp0, mlp1 = report.results
    assert doomed.status == "error" and doomed.exit_code == 4 and "died 2 time(s)" in doomed.message, doomed
    assert len(list((root / "marks").glob("doomed-*"))) == 2  # once in the pool, once alone
    assert any("doomed: its worker process died; trying again alone (2 of 2)" in s for s in said), said
    assert mlp0.status == mlp1.status == "updated", [(r.name, r.message) for r in report.results]
    assert report.exit_code == 4
    cached = json.loads((root / ".onnxbridge" / "cache.json").read_text())["models"]
    assert sorted(cached) == ["mlp0", "mlp1"]
    assert sorted(p.name for p in (root / "artifacts").iterdir()) == ["mlp0.npz", "mlp0.onnx", "mlp1.npz", "mlp1.onnx"]
    # independently of the validator: the written file at a batch size no case used, against the source
    sys.path.insert(0, str(root))
    try:
        import torch
        from models import mlp0 as source  # noqa: PLC0415 (the zoo's own module)

        x = np.random.default_rng(3).standard_normal((7, 4)).astype(np.float32)
        got = ort.InferenceSession(str(root / "artifacts" / "mlp0.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )[0]
        with torch.no_grad():
            want = source().eval()(torch.from_numpy(x)).numpy()
        assert np.abs(got - want).max() < 1e-5 and np.abs(want).max() > 0
    finally:
        sys.path.remove(str(root))
        for name in ("models", "stalls"):
            sys.modules.pop(name, None)
