"""Google's Model Explorer on an ONNX model with our overlays, served on loopback only.

Needs the ``view`` extra (``ai-edge-model-explorer`` and its ONNX adapter ``model-explorer-onnx``).
The viewer's web app is inside the package, so it works offline; its check for a newer release
(a call to PyPI) is switched off.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import UsageError

__all__ = ["HOST", "PIP_COMMAND", "ViewerPlan", "plan_view", "require_viewer", "serve"]

HOST = "127.0.0.1"
PIP_COMMAND = "pip install 'onnxbridge[view]'"
ADAPTER = "onnx_adapter"  # model-explorer-onnx's adapter id
EXTENSION = "model_explorer_onnx"


@dataclass(frozen=True)
class ViewerPlan:
    """What the viewer opens: the model, the node-data files, the node to select, the address."""

    model: Path
    overlays: tuple[Path, ...]
    port: int
    select: str | None = None
    graph: str | None = None

    @property
    def url(self) -> str:
        data: dict = {"models": [{"url": str(self.model), "adapterId": ADAPTER}]}
        if self.overlays:
            data["nodeData"] = [str(p) for p in self.overlays]
            data["nodeDataTargets"] = [self.model.name for _ in self.overlays]
        if self.select and self.graph:
            data["uiState"] = {
                "paneStates": [
                    {
                        "deepestExpandedGroupNodeIds": [],
                        "selectedNodeId": self.select,
                        "selectedGraphId": self.graph,
                        "selectedCollectionLabel": self.model.name,
                        "widthFraction": 1,
                        "selected": True,
                        "flattenLayers": True,
                    }
                ]
            }
        return f"http://{HOST}:{self.port}/?data={quote(json.dumps(data))}"


def require_viewer() -> None:
    """Exit 2 with the pip command when the ``view`` extra is missing."""
    try:
        import model_explorer  # noqa: F401
        import model_explorer_onnx  # noqa: F401
    except ImportError as e:
        raise UsageError(
            f"onnxbridge view needs Google's Model Explorer and its ONNX adapter ({e})", f"install them: {PIP_COMMAND}"
        ) from e


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def plan_view(
    model: str | Path, overlays: Sequence[Path] = (), port: int | None = None, select: str | None = None
) -> ViewerPlan:
    """Check ``model`` and the overlay files; pick a free loopback port unless ``port`` is given."""
    path = Path(model)
    if not path.is_file() or path.suffix.lower() != ".onnx":
        raise UsageError(f"{model}: not an ONNX file", "pass MODEL.onnx")
    graph = None
    if select:
        import onnx

        from .nodedata import graph_id

        graph = graph_id(onnx.load(str(path), load_external_data=False))
    if port is not None and not _port_free(port):
        raise UsageError(f"--port {port}: 127.0.0.1:{port} is in use", "pick another port, or leave out --port")
    return ViewerPlan(path.resolve(), tuple(p.resolve() for p in overlays), port or free_port(), select, graph)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def serve(plan: ViewerPlan, open_browser: bool) -> None:
    """Serve the viewer on ``plan``'s loopback port until interrupted (Ctrl+C)."""
    require_viewer()
    import model_explorer
    from model_explorer import server

    def _no_release_check(print_msg: bool = True) -> dict:  # offline: no call to PyPI / GitHub
        return {"version": "", "runningVersion": "", "releaseUrl": "", "desktopAppUrl": ""}

    server._check_new_version = _no_release_check
    cfg = model_explorer.config()  # a new ModelExplorerConfig
    cfg.add_model_from_path(str(plan.model), adapterId=ADAPTER)
    for p in plan.overlays:
        cfg.add_node_data_from_path(str(p), model_name=plan.model.name)
    if open_browser:  # our URL, not start()'s: it also selects the node
        threading.Thread(target=_open_when_up, args=(plan,), daemon=True).start()
    server.start(host=HOST, port=plan.port, config=cfg, no_open_in_browser=True, extensions=[EXTENSION])


def _open_when_up(plan: ViewerPlan, wait_s: float = 60.0) -> None:
    import urllib.request
    import webbrowser

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            with opener.open(f"http://{HOST}:{plan.port}/check_health", timeout=2) as r:
                if r.status == 200:
                    webbrowser.open_new_tab(plan.url)
                    return
        except OSError:
            time.sleep(0.3)
