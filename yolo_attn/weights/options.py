"""Per-model training options: the ``yolo_attn:`` top-level key of a model YAML.

A sweep (``yolo-attn compare``) trains every model with one set of training arguments; the few
arguments that say how a model *starts* from ``--pretrained`` weights can instead be written into
the model YAML itself, so that models started differently are compared in one sweep, paired by seed::

    yolo_attn: {attn_init: paper, load: names, freeze: backbone}

* ``attn_init`` -- ``paper`` or ``identity``: initialisation of every attention layer of this model
  (as ``--attn-init`` / ``attn_init=``);
* ``load`` -- how ``pretrained=`` weights arrive: ``structure`` (default; yolo_attn's structure-aware
  transfer, :func:`yolo_attn.weights.transfer_weights`) or ``names`` (Ultralytics' own name-and-shape
  matching, as ``YOLO(yaml).load(pt)`` does: :func:`yolo_attn.weights.load_by_name`);
* ``freeze`` -- ``backbone``, a layer count or a list of base-model layer indices (as ``--freeze``).

A value given here overrides the sweep-level (or ``yolo-attn train``) value for this model only;
keys left out take the sweep-level value. Ultralytics' ``parse_model`` reads only the keys it knows,
so the extra key changes nothing in how Ultralytics builds the model. The YAML's text is hashed into
the sweep's settings, and the options themselves are part of its settings hash.

:func:`read_model_options` is the one reader: unknown keys and bad values are refused with an error
naming the file and the key. How the options combine with the run's values is decided in :mod:`.start`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KEY = "yolo_attn"
LOADS = ("structure", "names")


class ModelOptionsError(ValueError):
    """A ``yolo_attn:`` key of a model YAML that cannot be used."""


@dataclass(frozen=True)
class ModelOptions:
    """The ``yolo_attn:`` options of one model YAML; None: not given (the sweep-level value applies)."""

    attn_init: str | None = None
    load: str | None = None  # structure (default) | names
    freeze: Any = None  # "backbone", an int N (base layers 0..N-1), or a list of base indices

    @property
    def empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    @property
    def load_mode(self) -> str:
        return self.load or "structure"

    def as_dict(self) -> dict:
        """The options given (None values left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.as_dict().items()) or "none"


def _source(model) -> str:
    if isinstance(model, dict):
        return str(model.get("yaml_file") or "<model dict>")
    return str(model)


def _check_freeze(value, where: str):
    if isinstance(value, str) and value.strip().lower() == "backbone":
        return "backbone"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, list) and value and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in value):
        return list(value)
    raise ModelOptionsError(f"{where}.freeze: expected 'backbone', a layer count or a list of base-model layer "
                            f"indices, got {value!r}")


def parse_model_options(raw: Any, source: str = "<model dict>") -> ModelOptions:
    """:class:`ModelOptions` of the value of a YAML's ``yolo_attn:`` key (None or missing: no options)."""
    from ..registry import INITS

    where = f"{source}: {KEY}"
    if raw is None:
        return ModelOptions()
    if not isinstance(raw, dict):
        raise ModelOptionsError(f"{where}: expected a mapping such as {{attn_init: paper, load: names, freeze: backbone}}, "
                                f"got {raw!r}")
    known = ("attn_init", "load", "freeze")
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ModelOptionsError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    init, load, freeze = raw.get("attn_init"), raw.get("load"), raw.get("freeze")
    if init is not None and init not in INITS:
        raise ModelOptionsError(f"{where}.attn_init: expected one of {', '.join(INITS)}, got {init!r}")
    if load is not None and load not in LOADS:
        raise ModelOptionsError(f"{where}.load: expected one of {', '.join(LOADS)} (structure: yolo_attn's "
                                f"structure-aware transfer; names: Ultralytics' name-and-shape matching), got {load!r}")
    if freeze is not None:
        freeze = _check_freeze(freeze, where)
    from .start import check_load_freeze

    check_load_freeze(load, freeze, source)
    return ModelOptions(init, load, freeze)


def read_model_options(model) -> ModelOptions:
    """The :class:`ModelOptions` of a model YAML (path, shipped or Ultralytics name, or model dict).

    A checkpoint (``.pt``) has none: its attention layers were initialised when it was made.
    """
    if isinstance(model, dict):
        return parse_model_options(model.get(KEY), _source(model))
    if model is None or str(model).lower().endswith(".pt") or Path(str(model)).suffix not in (".yaml", ".yml"):
        return ModelOptions()
    path = Path(str(model))
    if path.is_file():
        import yaml

        try:
            d = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            return ModelOptions()  # not YAML: the model build reports it, naming the file
        return parse_model_options(d.get(KEY) if isinstance(d, dict) else None, str(path))
    from .._ultralytics import load_model_yaml

    try:
        d = load_model_yaml(str(model))  # a shipped or Ultralytics config by name
    except Exception:
        return ModelOptions()  # the build reports a missing model
    return parse_model_options(d.get(KEY), _source(d))


__all__ = ["KEY", "LOADS", "ModelOptions", "ModelOptionsError", "parse_model_options", "read_model_options"]
