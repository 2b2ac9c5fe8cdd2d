"""Offline-safe plot fonts."""

from __future__ import annotations

# Ultralytics' ``check_font`` looks for Arial in its settings folder and in matplotlib's font list, and
# otherwise downloads it from the Ultralytics assets server. It runs when a dataset is checked and when
# training/validation plots draw labels; offline, each call costs a failed HTTP request and the labels
# fall back to PIL's tiny bitmap font. ``ultralytics.utils.plotting`` and ``ultralytics.data.utils``
# import it by name, so the wrapper replaces the name in those modules (and in ``checks``).
_FONT_MODULES = ("ultralytics.utils.checks", "ultralytics.utils.plotting", "ultralytics.data.utils")


def _original_check_font():
    from ultralytics.utils import checks

    return getattr(checks.check_font, "__wrapped__", checks.check_font)


def fallback_font():
    """matplotlib's DejaVuSans.ttf (always installed with matplotlib, an Ultralytics dependency)."""
    from pathlib import Path

    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def offline_check_font(font: str = "Arial.ttf"):
    """``check_font`` that downloads only when Ultralytics is online and falls back to DejaVuSans.

    Order: the font in Ultralytics' settings folder; a font file of that name known to matplotlib; when
    ``ultralytics.utils.ONLINE`` (false under ``YOLO_OFFLINE=1`` or without DNS) Ultralytics' own lookup,
    which may download; otherwise, or if that finds nothing, matplotlib's DejaVuSans. Non-Latin labels
    (Ultralytics asks for Arial.Unicode.ttf) then lack CJK glyphs but still render.
    """
    from pathlib import Path

    from matplotlib import font_manager
    from ultralytics import utils

    name = Path(str(font)).name
    local = Path(utils.USER_CONFIG_DIR) / name
    if local.exists():
        return local
    known = [f.fname for f in font_manager.fontManager.ttflist if Path(f.fname).name == name]
    if known:
        return known[0]
    if utils.ONLINE:
        found = _original_check_font()(font)
        if found:
            return found
    fallback = fallback_font()
    return fallback if fallback.exists() else None


def install_offline_font() -> None:
    """Route Ultralytics' ``check_font`` (in every module that imported it) through :func:`offline_check_font`."""
    import importlib

    def check_font(font: str = "Arial.ttf"):
        return offline_check_font(font)

    check_font.__doc__ = offline_check_font.__doc__
    check_font.__wrapped__ = _original_check_font()  # lets a second install find Ultralytics' function
    for module_name in _FONT_MODULES:
        module = importlib.import_module(module_name)
        if getattr(module, "check_font", None) is not None:
            module.check_font = check_font
