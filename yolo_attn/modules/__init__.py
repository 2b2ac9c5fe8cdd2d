"""Attention modules, one file per family. Importing this package registers all of them."""

import pkgutil
from importlib import import_module

FAMILIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))

for _family in FAMILIES:
    import_module(f"{__name__}.{_family}")
