"""Attention modules, one file per family. Importing this package registers all of them, in
:data:`yolo_attn.LAYERS` and with Ultralytics (which the families import anyway)."""

import pkgutil
from importlib import import_module

FAMILIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))

for _family in FAMILIES:
    import_module(f"{__name__}.{_family}")

# Put the layers into Ultralytics' namespace (yolo_attn/_ultralytics/). When that package is the one
# importing this package, it is not finished yet (no install()) and calls install() itself when it is.
from .. import _ultralytics  # noqa: E402

if hasattr(_ultralytics, "install"):
    _ultralytics.install()
