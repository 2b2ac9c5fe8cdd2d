"""Attention modules, one file per family. Importing this package registers all of them."""

from importlib import import_module

FAMILIES = ("se", "c3", "fmm")

for _family in FAMILIES:
    import_module(f"{__name__}.{_family}")
