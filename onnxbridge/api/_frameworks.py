"""``frameworks``: the converter registry as a listing (built-ins and plugins alike)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .._util import first_line
from ..results import FrameworkListing

__all__ = ["frameworks"]


def _installed(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def frameworks() -> tuple[FrameworkListing, ...]:
    """Every registered framework with its SOURCE forms, routes and packages; each converter class is
    loaded (its module only: frameworks themselves are imported when a model is converted)."""
    from ..converters.registry import default_registry

    registry = default_registry()
    out = []
    for name in registry.names():
        error: str | None = None
        routes: tuple[str, ...] = ()
        try:
            info = registry.info(name)
            routes = tuple(registry.get(name).route_names)
        except Exception as e:  # a broken plugin is listed with its error, not fatal to the listing
            from ..converters.registry import FrameworkInfo

            info, error = FrameworkInfo(name), first_line(e)
        out.append(
            FrameworkListing(
                name=name,
                origin=registry.origin(name),
                suffixes=info.suffixes,
                dir_markers=info.dir_markers,
                type_modules=info.type_modules,
                routes=routes,
                packages={p: _installed(p) for p in info.packages},
                error=error,
            )
        )
    return tuple(out)
