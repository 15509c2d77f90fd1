"""The executor registry: a throwaway executor is one class plus one registration line, and runs a real
check (a right model passes, a changed one fails) with its options checked before any work."""

from __future__ import annotations

import pytest

from onnxbridge.errors import UsageError
from onnxbridge.gate import check
from onnxbridge.gate.executors import local
from onnxbridge.gate.executors.kind import ExecutorKind, ExecutorKinds
from onnxbridge.gate.executors.registry import EXECUTORS
from onnxbridge.gate.results import GateStatus
from onnxbridge.gate.runner import run_task


class Reversed:
    """A throwaway executor: runs every task here, last first, and says which it ran."""

    def __init__(self, options, seen: list[str]) -> None:
        self.seen = seen

    def run(self, tasks, say):
        for task in reversed(tasks):
            self.seen.append(task.entry.name)
            yield run_task(task)


def _kinds(seen: list[str]) -> ExecutorKinds:
    kinds = ExecutorKinds([local.KIND])
    kinds.register(ExecutorKind("reversed", lambda options: Reversed(options, seen), "last first, here"))
    return kinds


def test_a_throwaway_executor_runs_a_real_check(project):
    seen: list[str] = []
    report = check(project / "onnxbridge.toml", force=True, executor="reversed", executors=_kinds(seen))
    assert seen == ["other", "net"] and report.executor == "reversed" and report.jobs == 1
    assert [r.status for r in report.results] == [GateStatus.PASSED, GateStatus.PASSED], [
        r.message for r in report.results
    ]
    assert all(r.status is GateStatus.PASSED and r.checks for r in report.results)
    # the same executor fails a model whose source no longer matches its committed ONNX file
    (project / "layers.py").write_text((project / "layers.py").read_text().replace("x * self.k", "x * self.k + 0.5"))
    seen.clear()
    report = check(project / "onnxbridge.toml", executor="reversed", executors=_kinds(seen))
    by_name = {r.name: r for r in report.results}
    assert "net" in seen and by_name["net"].status is GateStatus.FAILED and by_name["net"].exit_code == 1


def test_an_executor_name_or_option_it_does_not_take_is_refused_before_any_work(project):
    kinds = _kinds([])
    with pytest.raises(UsageError, match="no executor here takes an address"):
        check(project / "onnxbridge.toml", executor="reversed:host:1", executors=kinds)
    with pytest.raises(UsageError, match="use one of local, reversed"):
        check(project / "onnxbridge.toml", executor="ray", executors=kinds)
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(local.KIND)
    assert EXECUTORS.names() == ("local", "ray")


def test_gate_statuses_are_an_enum_written_as_their_values(project):
    import json

    from onnxbridge.gate.results import ModelResult

    report = check(project / "onnxbridge.toml")
    assert {r.status for r in report.results} == {GateStatus.UNCHANGED}
    d = report.to_dict()
    assert json.loads(json.dumps(d))["models"][0]["status"] == "unchanged" and report.counts["unchanged"] == 2
    with pytest.raises(ValueError):
        ModelResult(name="n", status="fine", location=report.results[0].location, onnx="a", source="b")
