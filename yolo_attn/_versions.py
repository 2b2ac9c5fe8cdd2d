"""The one record of installed versions written into result files (study provenance, export checks)."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform


def installed_versions(names, missing: str | None = None) -> dict[str, str]:
    """``{"python", "platform", name: version}`` for the distributions ``names``.

    A distribution that is not installed is left out, or recorded as ``missing`` when that is given (e.g.
    ``"unknown"``). The version is the installed distribution's; for a module imported from a checkout without
    an installed distribution, its ``__version__``.
    """
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in names:
        version = _version(name)
        if version is not None:
            out[name] = version
        elif missing is not None:
            out[name] = missing
    return out


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return str(importlib.import_module(name.replace("-", "_")).__version__)
    except Exception:  # not importable, or no __version__
        return None
