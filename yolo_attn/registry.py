"""The one registry of attention layers that yolo_attn makes available as YAML layer names.

A module file registers its classes with :func:`register`; everything else (the Ultralytics
bridge, the CLI, the config generator, the tests) reads :data:`LAYERS`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import import_module
from typing import Callable, Iterator

KINDS = ("preserve", "block")
# Every preserve layer's ``init`` option ("identity": the freshly built layer returns its input exactly).
INITS = ("paper", "identity")


class UnknownLayerError(KeyError):
    """A YAML or API call named a layer that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


@dataclass(frozen=True)
class LayerSpec:
    """What the registry knows about one YAML layer name.

    Attributes:
        name: the name written in a model YAML.
        cls: the ``nn.Module`` class built for it.
        family: the attention family (one module file per family).
        paper: short citation of the paper the module implements.
        year: publication year of that paper.
        kind: ``"preserve"`` (channel preserving, channels inferred, YAML args exclude channels)
            or ``"block"`` (takes ``c2`` and a repeat count and scales like Ultralytics' ``C3``).
        gating: True for modules whose output is ``x`` combined with a gate; they accept
            ``fuse`` and ``init`` options.
        nondeterministic: True when the backward pass uses ops without a deterministic CUDA
            kernel (adaptive pooling, for example).
        onnx: False when the module cannot be exported through Ultralytics' ONNX export.
        note: free text shown by ``yolo-attn list`` (export caveats, deviations from the paper).
        overrides: name of an Ultralytics layer this entry deliberately shadows, if any.
    """

    name: str
    cls: type
    family: str
    paper: str
    year: int
    kind: str = "preserve"
    gating: bool = False
    nondeterministic: bool = False
    onnx: bool = True
    note: str = ""
    overrides: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "paper": self.paper,
            "year": self.year,
            "kind": self.kind,
            "gating": self.gating,
            "nondeterministic": self.nondeterministic,
            "onnx": self.onnx,
            "note": self.note,
            "overrides": self.overrides,
            "class": f"{self.cls.__module__}.{self.cls.__qualname__}",
        }


@dataclass
class Registry:
    """Name -> :class:`LayerSpec` mapping with helpful errors.

    ``autoload``: a module whose import registers the layers, imported before the first lookup (so that
    ``yolo_attn`` itself can be imported without loading the families, which need torch).
    """

    _specs: dict[str, LayerSpec] = field(default_factory=dict)
    autoload: str = ""

    def _loaded(self) -> dict[str, LayerSpec]:
        if self.autoload:
            name, self.autoload = self.autoload, ""  # first: a lookup while the module loads sees what is there
            try:
                import_module(name)
            except BaseException:
                self.autoload = name  # the next lookup tries again (and fails loudly), never an empty registry
                raise
        return self._specs

    def register(self, name: str | None = None, **meta) -> Callable[[type], type]:
        """Class decorator: ``@register(family=..., paper=..., year=..., kind=...)``."""

        def deco(cls: type) -> type:
            key = name or cls.__name__
            kind = meta.get("kind", "preserve")
            if kind not in KINDS:
                raise ValueError(f"{cls.__qualname__}: kind must be one of {KINDS}, got {kind!r}")
            if key in self._specs and self._specs[key].cls is not cls:
                raise ValueError(f"layer name {key!r} is already registered by {self._specs[key].cls.__qualname__}")
            self._specs[key] = LayerSpec(name=key, cls=cls, **meta)
            return cls

        return deco

    def get(self, name: str) -> LayerSpec:
        """Return the spec for ``name`` or raise :class:`UnknownLayerError` naming the closest match."""
        try:
            return self._loaded()[name]
        except KeyError:
            raise UnknownLayerError(self.unknown_message(name)) from None

    def unknown_message(self, name: str, other_names=()) -> str:
        """Error text for an unknown ``name``: the closest match among ours and ``other_names``, and our names."""
        names = sorted(self._loaded())
        candidates = sorted(set(names) | set(other_names))
        close = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.5)
        lower = [n for n in candidates if n.lower() == str(name).lower()]
        hint = f" Did you mean {(lower or close)[0]!r}?" if (lower or close) else ""
        return f"unknown attention layer {name!r}.{hint} Registered layers: {', '.join(names)}"

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(sorted(self._loaded().values(), key=lambda s: (s.family, s.name)))

    def __len__(self) -> int:
        return len(self._loaded())

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(s.name for s in self._loaded().values() if kind is None or s.kind == kind)


LAYERS = Registry(autoload="yolo_attn.modules")
register = LAYERS.register


def split_options(args) -> tuple[list, dict]:
    """Split a YAML row's layer args into positional values and the trailing mapping of keyword options.

    ``[16, 7, {fuse: add}]`` -> ``([16, 7], {"fuse": "add"})``; ``[16]`` -> ``([16], {})``. Returns new
    objects: neither ``args`` nor its mapping is changed.
    """
    pos = list(args or [])
    return (pos[:-1], dict(pos[-1])) if pos and isinstance(pos[-1], dict) else (pos, {})


def build(name: str, c1: int, *args, **kwargs):
    """Build registered layer ``name`` for ``c1`` input channels (Python API, no YAML needed)."""
    return LAYERS.get(name).cls(c1, *args, **kwargs)
