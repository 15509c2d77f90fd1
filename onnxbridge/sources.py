"""SOURCE strings: parse them, find the framework, import Python sources.

``file.py:NAME`` and ``package.module:NAME`` run the user's own code (that is what they ask for);
model *files* are never unpickled here: each converter loads its files safely.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._util import first_line
from .errors import InputError, UsageError

if TYPE_CHECKING:
    from .converters.registry import ConverterRegistry

__all__ = [
    "SourceRef",
    "parse_source",
    "load_python_object",
    "detect_framework",
    "resolve_factory",
    "on_sys_path",
    "fresh_names",
    "ONNX",
]

ONNX = "onnx"  # not a framework to convert from: the form of an already exported model

_MODULE_SOURCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w.]*$")


def _registry(registry: ConverterRegistry | None) -> ConverterRegistry:
    from .converters.registry import default_registry

    return registry or default_registry()


def _framework_of_suffix(suffix: str, registry: ConverterRegistry) -> str | None:
    return ONNX if suffix.lower() == ".onnx" else registry.for_suffix(suffix)


@dataclass(frozen=True)
class SourceRef:
    """A parsed SOURCE: a Python object to import, or a model file / folder."""

    text: str
    kind: str  # "python-file", "python-module", "file", "dir"
    path: Path | None = None
    module: str | None = None
    attr: str | None = None
    framework: str | None = None

    @property
    def is_python(self) -> bool:
        return self.kind.startswith("python")


def parse_source(text: str, framework: str | None = None, registry: ConverterRegistry | None = None) -> SourceRef:
    """Parse SOURCE; raise ``InputError`` / ``UsageError`` for a missing path or unknown form.

    File and folder forms, and ``--framework``'s names, come from the converter registry.
    """
    registry = _registry(registry)
    if framework is not None and framework != ONNX:
        registry.check_name(framework)
    hint_forms = f"SOURCE is file.py:NAME, package.module:NAME, or a model file or folder ({registry.source_forms()})"
    file_part, sep, attr = text.rpartition(":")
    if sep and file_part.endswith(".py") and attr and not Path(text).exists():
        path = Path(file_part)
        if not path.is_file():
            raise InputError(f"Python source file {path} does not exist", "check the path before the ':'")
        if not re.fullmatch(r"[A-Za-z_][\w.]*", attr):
            raise UsageError(f"{attr!r} in SOURCE {text!r} is not a Python name", hint_forms)
        return SourceRef(text, "python-file", path=path, attr=attr, framework=framework)
    path = Path(text)
    if path.exists():
        if path.is_dir():
            fw = framework or registry.for_folder(path)
            if fw is None:
                raise InputError(f"{path} is a folder no converter recognises", hint_forms)
            return SourceRef(text, "dir", path=path, framework=fw)
        fw = framework or _framework_of_suffix(path.suffix, registry)
        if fw is None:
            if path.suffix == ".py":
                raise UsageError(f"SOURCE {text!r} names a Python file but no object", "write file.py:NAME")
            raise UsageError(f"cannot tell the framework of {path} from its suffix {path.suffix!r}", hint_forms)
        return SourceRef(text, "file", path=path, framework=fw)
    if _MODULE_SOURCE.match(text) and not text.endswith(".py"):
        module, _, attr = text.partition(":")
        return SourceRef(text, "python-module", module=module, attr=attr, framework=framework)
    if _framework_of_suffix(Path(text).suffix, registry) or text.endswith(".py"):
        raise InputError(f"SOURCE file {text} does not exist", "check the path")
    raise InputError(f"SOURCE {text!r} is neither an existing file or folder nor a module:NAME reference", hint_forms)


@contextlib.contextmanager
def on_sys_path(folder: Path):
    """Put ``folder`` first on ``sys.path`` for the duration (unless it is there already)."""
    folder_s = str(folder.resolve())
    added = folder_s not in sys.path
    if added:
        sys.path.insert(0, folder_s)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder_s)


@contextlib.contextmanager
def fresh_names():
    """Objects named inside count as in a fresh process, whatever this process built before.

    Keras 3 names unnamed layers and inputs by a per-process counter (``input_layer_3``, ``dense_7``), so
    a model's ONNX input names, and the fixtures keyed by them, would depend on what ran before it (a
    second model in one ``check``, a reused worker). Inside, the counter starts from zero; the process's
    own count comes back afterwards. Names a user gave are never touched. Nothing is imported here.
    """
    naming = sys.modules.get("keras.src.utils.naming")
    if naming is None:  # Keras not imported yet: its counter starts from zero anyway
        yield
        return
    from keras.src.backend.common import global_state

    saved = global_state.get_global_attribute("object_name_uids")
    naming.reset_uids()
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


def load_python_object(ref: SourceRef) -> Any:
    """Import the file or module of ``ref`` and return its attribute (dotted names allowed)."""
    try:
        if ref.kind == "python-file":
            assert ref.path is not None
            name = f"_onnxbridge_src_{ref.path.stem}_{uuid.uuid4().hex[:8]}"
            spec = importlib.util.spec_from_file_location(name, ref.path)
            if spec is None or spec.loader is None:
                raise InputError(f"cannot import {ref.path}", "is it a Python file?")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            with on_sys_path(ref.path.parent):
                spec.loader.exec_module(module)
        else:
            with on_sys_path(Path.cwd()):
                module = importlib.import_module(ref.module or "")
    except (InputError, UsageError):
        raise
    except ModuleNotFoundError as e:
        if ref.kind == "python-module" and e.name and ref.module and ref.module.startswith(e.name):
            raise InputError(f"module {ref.module!r} not found", "check the SOURCE, or pip install the package") from e
        raise InputError(
            f"importing {ref.path or ref.module} failed: {type(e).__name__}: {e}",
            f"install the missing module ({e.name}) in this environment",
        ) from e
    except SyntaxError as e:
        raise InputError(
            f"{ref.path or ref.module} has a syntax error at line {e.lineno}: {e.msg}", "fix the file"
        ) from e
    except Exception as e:
        raise InputError(
            f"importing {ref.path or ref.module} failed: {first_line(e)}",
            "the module raised while being imported; run it with python to see the traceback",
        ) from e
    obj: Any = module
    for part in (ref.attr or "").split("."):
        if not hasattr(obj, part):
            candidates = [n for n in dir(module) if not n.startswith("_")]
            raise UsageError(
                f"{ref.path or ref.module} has no name {ref.attr!r}",
                f"names defined there: {', '.join(candidates[:20]) or 'none'}",
            )
        obj = getattr(obj, part)
    return obj


def detect_framework(obj: Any, registry: ConverterRegistry | None = None) -> str | None:
    """The framework an object's class hierarchy comes from (``torch.nn.Module`` -> pytorch), without
    importing anything; None when no registered converter claims it."""
    return _registry(registry).for_object(obj)


def resolve_factory(obj: Any, where: str, registry: ConverterRegistry | None = None) -> tuple[Any, Any]:
    """A model object as is; a zero-argument callable (function or class) is called.

    Returns ``(model, example_inputs or None)``.
    """
    if detect_framework(obj, registry) is not None and not inspect.isclass(obj):
        return obj, None
    if callable(obj) and (
        inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj) or hasattr(obj, "func")
    ):
        try:
            inspect.signature(obj).bind()
        except TypeError as e:  # a TypeError from inside the call is the factory's own, reported below
            raise UsageError(
                f"{where} could not be called without arguments: {e}",
                "NAME must be a model, or a zero-argument callable returning a model or (model, example_inputs)",
            ) from e
        except ValueError:  # no signature to read: the call tells
            pass
        try:
            produced = obj()
        except Exception as e:
            raise InputError(
                f"calling {where}() raised {first_line(e)}",
                "run it in Python to see the traceback",
            ) from e
        if isinstance(produced, tuple) and len(produced) == 2:
            return produced[0], produced[1]
        return produced, None
    return obj, None
