"""Place an attention layer into a YOLO model YAML (YOLOv5, YOLOv8, YOLO11) and renumber every ``from`` index.

:func:`make_yaml` takes a base model YAML (Ultralytics' stock ``yolov5.yaml`` by default; ``yolov8.yaml``,
``yolo11.yaml``, P6 models, or one that already carries attention layers), a registered layer with its
YAML arguments and one or more *placements*, and returns the new model dict together with an
:class:`IndexMap` from every base layer index to its new index.

Placements
----------
A *block* is a CSP block of the base: YOLOv5's ``C3`` (and ``C3x``, ``C3TR``, ``C3Ghost``), YOLOv8's
``C2f``, YOLO11's ``C3k2`` and its ``C2PSA`` (Ultralytics' own attention block), each with the yolo_attn
variants (``C3Attn``/``C3FMM``, ``AttnC2f``/``FMMC2f``, ``AttnC3k2``/``FMMC3k2``), so the insert placements
work on already-modified YAMLs too. Insert placements add one row ``[from, 1, NAME, args]`` (a
channel-preserving layer):

``backbone-end``
    after the last backbone block before SPPF (layer 8 of the stock YOLOv5/v8/11 models).
``backbone``
    after every backbone block (P2..P5, P6 in P6 models, and YOLO11's C2PSA).
``sppf``
    after every SPPF/SPP row (on YOLO11: before C2PSA).
``neck``
    after every block of the head.
``psa``
    after every C2PSA (YOLO11).
``<int>``
    after each given layer index of the base YAML (``8``, ``17``...).

"After layer k" splices the layer into k's output: the new row reads k and every row that read k
(by ``-1``, by an absolute index, in a Concat or Detect list) reads the new row instead.

``head-in``
    on each input edge of the detection head: for every input ``k`` of Detect a new row reading
    ``k`` is placed directly before Detect, and Detect reads these rows. Only Detect sees the
    attention; the PAN path that also reads ``k`` keeps the unmodified features (this is what
    makes ``head-in`` differ from ``neck``).

Replace placements keep the row (same index, same ``from``) and change its module; they touch plain
blocks only, named by the base's block (``c3`` on YOLOv5, ``c2f`` on YOLOv8, ``c3k2`` on YOLO11):

``c3``, ``c3-backbone``, ``c3-neck``, ``c3-backbone-end``, ``c3:<int>`` (and the same for ``c2f``, ``c3k2``)
    C3 -> ``C3Attn`` (C2f -> ``AttnC2f``, C3k2 -> ``AttnC3k2``) whose bottlenecks carry the layer (all,
    backbone, head, the last backbone block, or the one at that base index):
    ``[-1, n, C3Attn, [c2, NAME, [args], *the block's own args]]``.
``fmm``, ``fmm-backbone``, ``fmm-neck``, ``fmm-backbone-end``, ``fmm:<int>``
    the base's block -> its feature-map multiplication variant (``C3FMM``, ``FMMC2f``, ``FMMC3k2``);
    these use no attention layer.

A removal placement deletes rows; readers of a removed row read its input instead:

``no-psa``
    removes every C2PSA (YOLO11), alone (no layer) or with other placements (``no-psa sppf`` puts the
    layer where C2PSA was). Removed base rows have no entry in the index map (they are listed in
    ``removed``).

A named placement that has nothing to act on in the base (``c3`` on YOLO11, ``psa`` on YOLOv8) fails
naming the base and the placements it has.

The task models (Ultralytics' ``-seg``, ``-pose``, ``-obb`` and ``-cls`` YAMLs) take the same placements: their
head (Segment, Pose, OBB, YOLO26's Segment26/Pose26/OBB26, Classify) is the last row like Detect, never a
placement target (``head-in`` puts the layers on its inputs). A classification model has no neck (Classify reads
the end of the backbone, and ``backbone-end`` is after its last backbone block: there is no SPPF); ``neck``,
``head-in`` and the ``-neck`` scopes are refused on it, naming the base and the placements it has. Several placements combine in
one call; the same anchor named twice (``backbone backbone-end``, ``8 backbone-end``) gets one layer.
Removals are resolved first (other placements skip removed rows), replacements are applied first, then
splices, then the ``head-in`` edges (so ``neck head-in`` puts one layer after each head block and a second
one on the Detect inputs). Replacing one row with both the attention and the FMM variant is an error.

Index map file
--------------
:meth:`IndexMap.dump` writes JSON (``OUT.map.json`` beside ``OUT.yaml``)::

    {
      "base": "yolov5.yaml",          # base YAML file name ("<model dict>" for a dict without yaml_file)
      "layer": "SE", "args": [16],    # the placed layer and its YAML args (null for fmm-only)
      "placements": ["neck"],
      "map": {"0": 0, "1": 1, ...},   # every base layer index -> its index in the new model (str keys)
      "inserted": [14, 19, ...],      # new indices of the inserted rows (ascending)
      "replaced": [2, 4, ...],        # new indices of rows whose module was replaced (C3 -> C3Attn/C3FMM)
      "removed": [10]                 # only when rows were removed (no-psa): base indices without a new index
    }

Layer indices are those of Ultralytics' ``model.model`` (backbone rows first, then head rows), the
same numbering that appears in the state-dict keys ``model.<index>.``. A replaced row keeps every
parameter name of the block it replaces (``C3Attn``/``C3FMM`` subclass ``C3``, ``AttnC2f``/``FMMC2f``
``C2f``, ``AttnC3k2``/``FMMC3k2`` ``C3k2``), plus new ones.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ._io import atomic_write, atomic_write_json
from .configs import DEFAULT_BASE, ShippedConfig, config_dir, shipped_configs
from .registry import LAYERS, UnknownLayerError, split_options

__all__ = [
    "BLOCK_KINDS",
    "INSERT_PLACEMENTS",
    "REMOVE_PLACEMENTS",
    "REPLACE_PLACEMENTS",
    "IndexMap",
    "PlacementError",
    "dump_yaml",
    "generate_configs",
    "load_yaml",
    "make_yaml",
    "map_path",
    "render_yaml",
]

SPP_LIKE = frozenset({"SPPF", "SPP"})
HEAD_NAMES = frozenset({"Detect", "Segment", "Pose", "OBB", "v10Detect", "WorldDetect", "YOLOEDetect", "Classify",
                        "Segment26", "Pose26", "OBB26"})  # the task heads: the last row, never a placement target
NECK_PLACEMENTS = frozenset({"neck", "head-in", "c2f-neck", "c3-neck", "c3k2-neck", "fmm-neck"})  # none on a classifier
PSA_LIKE = frozenset({"C2PSA"})  # YOLO11's and YOLO26's own attention block: a block for the insert placements, removable (no-psa)
AREA_LIKE = frozenset({"A2C2f", "AttnA2C2f"})  # YOLO12's area-attention block: a block for the insert placements
AREA_PLAIN, AREA_ATTN = "A2C2f", "AttnA2C2f"  # the a2c2f placements swap its area attention for a registered layer


@dataclass(frozen=True)
class BlockKind:
    """One family of CSP blocks: the placement prefix naming it, the Ultralytics block and its yolo_attn variants."""

    prefix: str  # placement prefix: c3, c2f, c3k2
    plain: str  # the Ultralytics block that replace placements change
    attn: str  # its variant whose bottlenecks carry an attention layer
    fmm: str  # its feature-map multiplication variant
    like: frozenset  # names that count as this block for the insert placements


BLOCK_KINDS = (
    BlockKind("c3", "C3", "C3Attn", "C3FMM", frozenset({"C3", "C3Attn", "C3FMM", "C3x", "C3TR", "C3Ghost"})),  # YOLOv5
    BlockKind("c2f", "C2f", "AttnC2f", "FMMC2f", frozenset({"C2f", "AttnC2f", "FMMC2f"})),  # YOLOv8
    BlockKind("c3k2", "C3k2", "AttnC3k2", "FMMC3k2", frozenset({"C3k2", "AttnC3k2", "FMMC3k2"})),  # YOLO11
)
C3_LIKE = BLOCK_KINDS[0].like
BLOCK_LIKE = frozenset().union(*(k.like for k in BLOCK_KINDS), PSA_LIKE, AREA_LIKE)
_PLAIN_KIND = {k.plain: k for k in BLOCK_KINDS}
FMM_BLOCKS = frozenset(k.fmm for k in BLOCK_KINDS)

INSERT_PLACEMENTS = {
    "backbone-end": "after the last backbone block before SPPF (C3, C2f, C3k2 or A2C2f; YOLO12: the end of the backbone)",
    "backbone": "after every backbone block (C3, C2f, C3k2, A2C2f; YOLO11's and YOLO26's C2PSA too)",
    "sppf": "after SPPF/SPP (before the C2PSA of YOLO11 and YOLO26)",
    "neck": "after every block of the head",
    "head-in": "on each input of Detect (a layer per input, read by Detect only)",
    "psa": "after every C2PSA (YOLO11, YOLO26)",
}
REMOVE_PLACEMENTS = {"no-psa": "remove every C2PSA (the own attention of YOLO11 and YOLO26); combines with the others"}
_SCOPES = {"": "every {b}", "-backbone": "every backbone {b}", "-neck": "every head {b}", "-backbone-end": "the last backbone {b}"}
REPLACE_PLACEMENTS = {
    **{f"{k.prefix}{s}": f"replace {d.format(b=k.plain)} with {k.attn} carrying the layer" for k in BLOCK_KINDS for s, d in _SCOPES.items()},
    **{f"fmm{s}": f"replace {d.format(b='C3/C2f/C3k2')} with its FMM variant (C3FMM, FMMC2f, FMMC3k2)" for s, d in _SCOPES.items()},
    "a2c2f": "replace the area attention of every A2C2f that has it (YOLO12) with the layer (AttnA2C2f)",
}
PLACEMENT_HELP = (
    "placements: "
    + "; ".join(f"{k} ({v})" for k, v in {**INSERT_PLACEMENTS, **REPLACE_PLACEMENTS, **REMOVE_PLACEMENTS}.items())
    + "; INT (after that base layer index); c3:INT / c2f:INT / c3k2:INT / fmm:INT / a2c2f:INT (replace the block at that index)"
)
_INDEXED = re.compile(r"(c3|c2f|c3k2|fmm|a2c2f):(-?\d+)")

class PlacementError(ValueError):
    """A placement cannot be applied to a base YAML; the message names the base file and placement."""


# --------------------------------------------------------------------------------------------
# Index map
# --------------------------------------------------------------------------------------------
@dataclass
class IndexMap:
    """Base layer index -> new layer index, plus the new indices of inserted and replaced rows."""

    base: str
    map: dict[int, int]
    inserted: list[int] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)
    layer: str | None = None
    args: list | None = None
    placements: list = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict, repr=False, compare=False)  # new index -> YAML comment
    removed: list[int] = field(default_factory=list)  # base indices with no new index (no-psa removes C2PSA)

    def __getitem__(self, base_index: int) -> int:
        return self.map[base_index]

    def __len__(self) -> int:
        return len(self.map)

    def as_json(self) -> dict:
        return {
            "base": self.base,
            "layer": self.layer,
            "args": self.args,
            "placements": [str(p) for p in self.placements],
            "map": {str(k): v for k, v in sorted(self.map.items())},
            "inserted": list(self.inserted),
            "replaced": list(self.replaced),
            **({"removed": list(self.removed)} if self.removed else {}),
        }

    def dump(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.as_json())

    @classmethod
    def load(cls, path: str | Path) -> IndexMap:
        d = json.loads(Path(path).read_text())
        return cls(
            base=d["base"],
            map={int(k): int(v) for k, v in d["map"].items()},
            inserted=[int(i) for i in d.get("inserted", [])],
            replaced=[int(i) for i in d.get("replaced", [])],
            layer=d.get("layer"),
            args=d.get("args"),
            placements=list(d.get("placements", [])),
            removed=[int(i) for i in d.get("removed", [])],
        )


def map_path(yaml_path: str | Path) -> Path:
    """``OUT.yaml`` -> ``OUT.map.json`` (the index map written beside a generated YAML)."""
    p = Path(yaml_path)
    return p.with_name(p.stem + ".map.json")


# --------------------------------------------------------------------------------------------
# Loading and writing YAML
# --------------------------------------------------------------------------------------------
def load_yaml(base: str | Path | dict | None = None) -> tuple[dict, str]:
    """Return ``(model dict, base name)`` for a YAML path, a name Ultralytics or yolo_attn resolves, or a dict.

    Names resolve like ``YOLO("...")``: a file in the cwd, Ultralytics' own configs (``yolov5-p6.yaml``), then
    yolo_attn's shipped configs; a scaled name (``yolov5s.yaml``) falls back to the scale-free file.
    """
    if base is None:
        base = DEFAULT_BASE
    if isinstance(base, dict):
        d = copy.deepcopy(base)
        name = Path(str(d.get("yaml_file", "<model dict>"))).name
    else:
        from ._ultralytics import load_model_yaml

        if Path(str(base)).suffix not in (".yaml", ".yml"):
            raise PlacementError(f"base {base}: expected a .yaml or .yml file")
        try:
            d = load_model_yaml(base)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"base model YAML {str(base)!r} not found (not a file, not one of Ultralytics' or yolo_attn's configs)"
            ) from None
        name = Path(str(base)).name
    for key in ("yaml_file", "scale"):  # set by Ultralytics' loader, not part of a YAML file
        d.pop(key, None)
    if not isinstance(d, dict) or not isinstance(d.get("backbone"), list) or not isinstance(d.get("head"), list):
        raise PlacementError(f"base {name}: not a YOLO model YAML (needs 'backbone' and 'head' lists)")
    return d, name


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def _flow(v) -> str:
    """One value in YAML flow style, as Ultralytics' YAMLs write them (``[-1, 1, Conv, [64, 6, 2, 2]]``)."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "True" if v else "False"  # as Ultralytics writes them (YAML 1.1 booleans)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return v if _PLAIN.match(v) and yaml.safe_load(v) == v else json.dumps(v)
    raise TypeError(f"cannot write {v!r} ({type(v).__name__}) into a model YAML")


def render_yaml(d: dict, header: str = "", notes: dict[int, str] | None = None) -> str:
    """Text of a model YAML: ``header`` as comments, top-level keys, then backbone and head rows.

    Each row is written in flow style with a comment giving its layer index and, from ``notes``
    (new index -> text), what the generator changed there.
    """
    notes = notes or {}
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    if out:
        out.append("")
    rest = {k: v for k, v in d.items() if k not in ("backbone", "head") and not str(k).startswith("_")}
    if rest:
        out.append(yaml.safe_dump(rest, sort_keys=False, default_flow_style=None, width=10**6).rstrip())
        out.append("")
    i = 0
    for section in ("backbone", "head"):
        out.append(f"{section}:")
        out.append("  # [from, number, module, args]")
        for row in d[section]:
            note = f" {notes[i]}" if i in notes else ""
            out.append(f"  - {_flow(row)} # {i}{note}")
            i += 1
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def dump_yaml(d: dict, path: str | Path, header: str = "", notes: dict[int, str] | None = None) -> Path:
    """Write :func:`render_yaml` to ``path``."""
    return atomic_write(path, render_yaml(d, header, notes))


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------
INPUT = -1  # node id of the image input (row 0 reads it as from = -1)


@dataclass
class _Node:
    section: str
    refs: list  # node ids read, in 'from' order
    relative: list  # per ref: written relative (negative) in the base
    listed: bool  # 'from' is a list
    row: list | None = None  # base row (n, module, args are taken from it); None for inserted
    base_index: int | None = None
    note: str = ""


@dataclass
class _Graph:
    """The base YAML as a graph: one node per row (keyed by base index), with names and sections."""

    where: str  # "base NAME" for error messages
    rows: list
    nodes: dict
    names: list[str]
    section: list[str]
    detect: list[int]

    @property
    def n(self) -> int:
        return len(self.rows)

    def where_p(self, p) -> str:
        return f"{self.where}, placement {p}"


@dataclass
class _Plan:
    """Placements resolved to base indices."""

    splice: dict = field(default_factory=dict)  # base index -> placements inserting after it
    edges: list = field(default_factory=list)  # placements asking for head-in
    replace: dict = field(default_factory=dict)  # base index -> (new module, placement)
    remove: dict = field(default_factory=dict)  # base index -> placement removing it


def _is_layer_free(p) -> bool:
    """Placements that need no attention layer: FMM replacements and the removal of C2PSA."""
    return isinstance(p, str) and (p.startswith("fmm") or p in REMOVE_PLACEMENTS)


def _parse_placements(placements, where: str) -> list:
    if isinstance(placements, (str, int)):
        placements = [placements]
    out = []
    for p in placements:
        if isinstance(p, bool):
            raise PlacementError(f"{where}: unknown placement {p!r}. {PLACEMENT_HELP}")
        if isinstance(p, int) or (isinstance(p, str) and re.fullmatch(r"-?\d+", p.strip())):
            p = int(p)
        elif isinstance(p, str):
            p = p.strip()
            m = _INDEXED.fullmatch(p)
            if m:
                p = f"{m.group(1)}:{int(m.group(2))}"
            elif p not in INSERT_PLACEMENTS and p not in REPLACE_PLACEMENTS and p not in REMOVE_PLACEMENTS:
                raise PlacementError(f"{where}: unknown placement {p!r}. {PLACEMENT_HELP}")
        else:
            raise PlacementError(f"{where}: unknown placement {p!r}. {PLACEMENT_HELP}")
        if p not in out:
            out.append(p)
    if not out:
        raise PlacementError(f"{where}: no placement given. {PLACEMENT_HELP}")
    return out


def _normalise_args(args) -> list:
    if args is None:
        return []
    if isinstance(args, (list, tuple)):
        return copy.deepcopy(list(args))
    return [copy.deepcopy(args)]  # a single value or a mapping of options


def _check_layer_args(spec, args: list, where: str) -> None:
    """Build the layer once at 512 channels so that a wrong option fails here, with the base named."""
    pos, kw = split_options(args)
    try:
        spec.cls(512, *pos, **kw)
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        raise PlacementError(f"{where}: bad arguments {args} for layer {spec.name}: {exc}") from exc


def _resolve_layer(layer, args: list, placements: list, g_where: str):
    """The registered spec of ``layer`` (None for layer-free placements), checked against the placements."""
    where_p = lambda p: f"{g_where}, placement {p}"
    layer_free = all(_is_layer_free(p) for p in placements)
    spec = None
    if layer is not None:
        try:
            spec = LAYERS.get(layer)
        except UnknownLayerError as exc:
            raise UnknownLayerError(f"{g_where}: {exc}") from None
    if spec is not None and spec.kind == "block":
        if spec.name in FMM_BLOCKS and layer_free:
            spec = None  # --layer C3FMM --placement fmm: the same thing
        else:
            p = next(p for p in placements if not _is_layer_free(p))
            kind = "replaces a block with its variant carrying a channel-preserving layer" if str(p).startswith(("c", "a2c2f")) else "inserts a channel-preserving layer"
            raise PlacementError(
                f"{where_p(p)}: {spec.name} is a block layer (it takes c2 and replaces C3/C2f/C3k2 blocks), but this placement {kind}."
                + (f" For {spec.name} use placement fmm." if spec.name in FMM_BLOCKS else f" Preserve layers: {', '.join(LAYERS.names('preserve'))}")
            )
    if spec is None and not layer_free:
        p = next(p for p in placements if not _is_layer_free(p))
        raise PlacementError(f"{where_p(p)}: this placement needs an attention layer (--layer NAME)")
    if spec is not None and layer_free:
        raise PlacementError(f"{where_p(placements[0])}: uses no attention layer, but layer {spec.name} was given")
    if spec is not None:
        _check_layer_args(spec, args, where_p(placements[0]))
    return spec


def _base_graph(d: dict, where: str) -> _Graph:
    """Parse the base rows into nodes (absolute references), failing on rows that are not ``[from, n, module, args]``."""
    nb = len(d["backbone"])
    rows = [list(r) if isinstance(r, (list, tuple)) else r for r in d["backbone"] + d["head"]]
    nodes: dict = {}
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 4:
            raise PlacementError(f"{where}: layer {i} {row!r}: a row must be [from, number, module, args]")
        f = row[0]
        listed = isinstance(f, (list, tuple))
        refs, rel = [], []
        for x in f if listed else [f]:
            if isinstance(x, bool) or not isinstance(x, int):
                raise PlacementError(f"{where}: layer {i} {row!r}: 'from' must be an int or a list of ints")
            a = i + x if x < 0 else x
            if not (0 <= a < i or (a == INPUT and i == 0)):
                raise PlacementError(f"{where}: layer {i} {row!r}: 'from' {x} does not name an earlier layer")
            refs.append(a)
            rel.append(x < 0)
        nodes[i] = _Node("backbone" if i < nb else "head", refs, rel, listed, row=copy.deepcopy(row), base_index=i)
    names = [str(r[2]) for r in rows]
    section = ["backbone" if i < nb else "head" for i in range(len(rows))]
    detect = [i for i in range(len(rows)) if names[i] in HEAD_NAMES or (names[i].endswith("Detect") and nodes[i].listed)]
    return _Graph(where, rows, nodes, names, section, detect)


# ---- resolving placements to base indices ---------------------------------------------------
class _NotOnBase(PlacementError):
    """A named placement that has nothing to act on in this base (the message then lists those that do)."""


def _last_backbone_block(g: _Graph, removed=()) -> list[int]:
    """The last backbone block before the first SPP-like row (the last backbone block if there is none)."""
    spp = [i for i in range(g.n) if g.names[i] in SPP_LIKE and g.section[i] == "backbone"]
    stop = spp[0] if spp else g.n
    found = [i for i in range(stop) if g.names[i] in BLOCK_LIKE and g.section[i] == "backbone" and i not in removed]
    return found[-1:]


def _blocks(g: _Graph, scope: str, p, removed=()) -> list[int]:
    """Blocks of any kind (insert placements): scope "-backbone", "-neck" or "-backbone-end"."""
    if scope == "-backbone-end":
        found = _last_backbone_block(g, removed)
    else:
        sec = {"-backbone": "backbone", "-neck": "head"}[scope]
        found = [i for i in range(g.n) if g.names[i] in BLOCK_LIKE and g.section[i] == sec and i not in removed]
    if not found:
        what = " in the head" if scope == "-neck" else " in the backbone"
        raise _NotOnBase(f"{g.where_p(p)}: no C3, C2f, C3k2 or A2C2f block{what} to place at")
    return found


def _plain_blocks(g: _Graph, kind: BlockKind | None, scope: str, p) -> list[int]:
    """Plain blocks of ``kind`` (all kinds for None, the fmm placements) in ``scope`` (replace placements)."""
    plains = {kind.plain} if kind else set(_PLAIN_KIND)
    what = kind.plain if kind else "C3, C2f or C3k2"
    if scope == "-backbone-end":
        found = _last_backbone_block(g)
        if found and g.names[found[0]] not in plains:
            k = found[0]
            raise PlacementError(f"{g.where_p(p)}: the last backbone block layer {k} is {g.names[k]}, not a plain {what}")
    else:
        sec = {"": None, "-backbone": "backbone", "-neck": "head"}[scope]
        found = [i for i in range(g.n) if g.names[i] in plains and (sec is None or g.section[i] == sec)]
    if not found:
        where = {"": "", "-backbone": " in the backbone", "-neck": " in the head", "-backbone-end": " in the backbone"}[scope]
        other = sorted({g.names[i] for i in range(g.n) if g.names[i] in BLOCK_LIKE})
        hint = f" (block layers present: {', '.join(other)})" if other else ""
        raise _NotOnBase(f"{g.where_p(p)}: no plain {what} layer{where} to place at{hint}")
    return found


def _check_index(g: _Graph, k: int, p) -> int:
    if not 0 <= k < g.n:
        raise PlacementError(f"{g.where_p(p)}: layer index {k} out of range (the base has layers 0..{g.n - 1})")
    return k


def _has_area_attention(row: list) -> bool:
    """An ``A2C2f`` row built with area attention (its ``a2`` argument, True when not written)."""
    args = row[3] if isinstance(row[3], list) else []
    return row[2] == AREA_PLAIN and (len(args) < 2 or bool(args[1]))


def _resolve_area(g: _Graph, plan: _Plan, p: str, idx: str) -> None:
    """``a2c2f`` / ``a2c2f:INT``: A2C2f rows with area attention -> AttnA2C2f carrying the layer."""
    if idx:
        k = _check_index(g, int(idx), p)
        if not _has_area_attention(g.rows[k]):
            raise PlacementError(f"{g.where_p(p)}: layer {k} is {g.names[k]} {g.rows[k][3]!r}, not an A2C2f with area attention (a2=True)")
        found = [k]
    else:
        found = [i for i in range(g.n) if _has_area_attention(g.rows[i])]
        if not found:
            raise _NotOnBase(f"{g.where_p(p)}: no A2C2f layer with area attention (YOLO12's) to replace")
    for k in found:
        if k in plan.replace and plan.replace[k][0] != AREA_ATTN:
            raise PlacementError(f"{g.where_p(p)}: conflicts with placement {plan.replace[k][1]} on layer {k}")
        plan.replace.setdefault(k, (AREA_ATTN, p))


def _resolve_replace(g: _Graph, plan: _Plan, p: str) -> None:
    prefix, _, idx = p.partition(":")
    if prefix == "a2c2f":
        return _resolve_area(g, plan, p, idx)
    kind = next((k for k in BLOCK_KINDS if prefix == k.prefix or (not idx and prefix.startswith(k.prefix + "-"))), None)
    fmm = prefix.startswith("fmm")
    if idx:
        k = _check_index(g, int(idx), p)
        want = set(_PLAIN_KIND) if fmm else {kind.plain}
        if g.names[k] not in want:
            raise PlacementError(f"{g.where_p(p)}: layer {k} is {g.names[k]}, not a {'/'.join(sorted(want))} that could be replaced")
        found = [k]
    else:
        scope = prefix[len("fmm") :] if fmm else prefix[len(kind.prefix) :]
        found = _plain_blocks(g, None if fmm else kind, scope, p)
    for k in found:
        kk = _PLAIN_KIND[g.names[k]]
        module = kk.fmm if fmm else kk.attn
        if k in plan.replace and plan.replace[k][0] != module:
            raise PlacementError(
                f"{g.where_p(p)}: conflicts with placement {plan.replace[k][1]}: layer {k} cannot become both {plan.replace[k][0]} and {module}"
            )
        plan.replace.setdefault(k, (module, p))


def _classifier(g: _Graph) -> bool:
    """A classification model: its head is Classify (reading the end of the backbone; there is no neck)."""
    return any(g.names[i] == "Classify" for i in g.detect)


def _resolve_one(g: _Graph, plan: _Plan, p) -> None:
    """Add placement ``p`` to ``plan`` (removals already in it)."""
    removed = set(plan.remove)
    if p in NECK_PLACEMENTS and _classifier(g):
        raise _NotOnBase(f"{g.where_p(p)}: a classification model has no neck (Classify reads the end of the backbone)")
    if isinstance(p, int):
        k = _check_index(g, p, p)
        if k in g.detect:
            raise PlacementError(f"{g.where_p(p)}: layer {k} is the detection head ({g.names[k]}); nothing can follow it")
        if k in removed:
            raise PlacementError(f"{g.where_p(p)}: layer {k} ({g.names[k]}) is removed by placement {plan.remove[k]}")
        plan.splice.setdefault(k, []).append(str(p))
    elif p in ("backbone-end", "backbone", "neck"):
        for k in _blocks(g, {"backbone-end": "-backbone-end", "backbone": "-backbone", "neck": "-neck"}[p], p, removed):
            plan.splice.setdefault(k, []).append(p)
    elif p in ("sppf", "psa"):
        names = SPP_LIKE if p == "sppf" else PSA_LIKE
        found = [i for i in range(g.n) if g.names[i] in names]
        if not found:
            raise _NotOnBase(f"{g.where_p(p)}: no {'SPPF or SPP' if p == 'sppf' else 'C2PSA'} layer to place after")
        if p == "psa" and removed:
            raise PlacementError(f"{g.where_p(p)}: conflicts with placement no-psa (C2PSA is removed)")
        for k in found:
            plan.splice.setdefault(k, []).append(p)
    elif p == "head-in":
        if not g.detect:
            raise PlacementError(f"{g.where_p(p)}: no detection head (Detect) in the base")
        plan.edges.append(p)
    else:
        _resolve_replace(g, plan, p)


def _resolve_placements(g: _Graph, placements: list) -> _Plan:
    """Removals first (so that the insert placements skip removed rows), then every other placement in order."""
    plan = _Plan()
    try:
        for p in placements:
            if p in REMOVE_PLACEMENTS:
                found = [i for i in range(g.n) if g.names[i] in PSA_LIKE]
                if not found:
                    raise _NotOnBase(f"{g.where_p(p)}: no C2PSA layer to remove")
                for k in found:
                    plan.remove.setdefault(k, p)
        for p in placements:
            if p not in REMOVE_PLACEMENTS:
                _resolve_one(g, plan, p)
    except _NotOnBase as exc:
        raise PlacementError(f"{exc}. {_available_hint(g)}") from None
    return plan


def _available_hint(g: _Graph) -> str:
    return f"Placements on {g.where}: {', '.join(_available(g))} (and INT, the index of a layer to place after)"


def _available(g: _Graph) -> list[str]:
    """The named placements that resolve on this base."""
    out = []
    for p in [*INSERT_PLACEMENTS, *REPLACE_PLACEMENTS, *REMOVE_PLACEMENTS]:
        try:
            if p in REMOVE_PLACEMENTS:
                ok = any(name in PSA_LIKE for name in g.names)
            elif p in ("sppf", "psa"):
                ok = any(name in (SPP_LIKE if p == "sppf" else PSA_LIKE) for name in g.names)
            else:
                _resolve_one(g, _Plan(), p)
                ok = True
        except PlacementError:
            ok = False
        if ok:
            out.append(p)
    return out


# ---- applying the plan and writing the rows -------------------------------------------------
def _apply(g: _Graph, plan: _Plan, layer_name, args: list) -> list:
    """Replace, remove, splice and add head-in edges on ``g.nodes``; return the new row order (node ids)."""
    nodes = g.nodes
    for k, (module, p) in plan.replace.items():
        row = nodes[k].row
        rargs = list(row[3]) if isinstance(row[3], list) else []
        if not rargs:
            raise PlacementError(f"{g.where_p(p)}: layer {k} {g.rows[k]!r} has no output channels to keep")
        if module in FMM_BLOCKS:
            nodes[k].note = f"{row[2]} -> {module} [{p}]"
        else:
            row[3] = [rargs[0], layer_name, copy.deepcopy(args), *rargs[1:]]
            nodes[k].note = f"{row[2]} -> {module}({layer_name}) [{p}]"
        row[2] = module
    order: list = [i for i in range(g.n) if i not in plan.remove]
    for k in sorted(plan.remove):  # readers of a removed row read its input instead
        (src,) = nodes[k].refs
        for node in nodes.values():
            node.refs = [src if r == k else r for r in node.refs]
    counter = 0

    def new_node(src, sec: str, note: str) -> tuple:
        nonlocal counter
        counter += 1
        key = ("ins", counter)
        nodes[key] = _Node(sec, [src], [False], False, note=note)
        return key

    for k in sorted(plan.splice):
        key = new_node(k, g.section[k], f"{layer_name} [{', '.join(plan.splice[k])}]")
        for other, node in nodes.items():
            if other != key:
                node.refs = [key if r == k else r for r in node.refs]
        order.insert(order.index(k) + 1, key)
    if plan.edges:
        for h in g.detect:
            at = order.index(h)
            new_refs = []
            for r in nodes[h].refs:
                key = new_node(r, nodes[h].section, f"{layer_name} [head-in: input of {g.names[h]}]")
                order.insert(at, key)
                at += 1
                new_refs.append(key)
            nodes[h].refs = new_refs
    return order


def _emit(d: dict, g: _Graph, order: list, layer_name, args: list) -> tuple[dict, dict, dict[int, str]]:
    """The new model dict, the position of every node id, and the YAML notes (new index -> comment)."""
    pos = {key: j for j, key in enumerate(order)}
    pos[INPUT] = INPUT
    out = {k: copy.deepcopy(v) for k, v in d.items() if k not in ("backbone", "head")}
    out["backbone"], out["head"] = [], []
    notes: dict[int, str] = {}
    for j, key in enumerate(order):
        node = g.nodes[key]
        if node.row is None:  # inserted
            src = pos[node.refs[0]]
            f = -1 if src == j - 1 else src
            row = [f, 1, layer_name, copy.deepcopy(args)]
        else:
            fs = [pos[r] - j if rel else pos[r] for r, rel in zip(node.refs, node.relative)]
            row = [fs if node.listed else fs[0], *node.row[1:]]
        if node.note:
            notes[j] = node.note
        out[node.section].append(row)
    return out, pos, notes


def make_yaml(
    base: str | Path | dict | None = None,
    layer: str | None = None,
    args=None,
    placements: Sequence | str | int = ("backbone-end",),
) -> tuple[dict, IndexMap]:
    """Place ``layer`` (YAML ``args``) into ``base`` at ``placements``; return ``(model dict, IndexMap)``.

    Args:
        base: model YAML path or name (default Ultralytics' ``yolov5.yaml``; ``yolov8.yaml``, ``yolo11.yaml``...)
            or a model dict.
        layer: a registered channel-preserving layer name; may be None when every placement is ``fmm*``/``no-psa``.
        args: the layer's YAML args without channels (``[16, {fuse: add}]``); a single value is wrapped.
        placements: placement names and/or base layer indices (see the module docstring).

    Returns:
        The new model dict (``backbone``/``head`` rows renumbered, other keys copied) and the index map.
        ``IndexMap.notes`` (new index -> comment, not written to JSON) feeds :func:`render_yaml`.

    Raises:
        PlacementError: unknown or impossible placement (no such block on this base, index out of range, block
            layer used with an insert placement, conflicting replacements, bad layer arguments).
        UnknownLayerError: ``layer`` is not registered.
        FileNotFoundError: ``base`` does not resolve.
    """
    d, base_name = load_yaml(base)
    args = _normalise_args(args)
    where = f"base {base_name}"
    placements = _parse_placements(placements, where)
    spec = _resolve_layer(layer, args, placements, where)
    g = _base_graph(d, where)
    plan = _resolve_placements(g, placements)
    layer_name = spec.name if spec is not None else None
    order = _apply(g, plan, layer_name, args)
    out, pos, notes = _emit(d, g, order, layer_name, args)
    imap = IndexMap(
        base=base_name,
        map={i: pos[i] for i in range(g.n) if i in pos},
        inserted=sorted(pos[k] for k in order if g.nodes[k].row is None),
        replaced=sorted(pos[k] for k in plan.replace),
        layer=layer_name,
        args=copy.deepcopy(args) if spec is not None else None,
        placements=placements,
        notes=notes,
        removed=sorted(plan.remove),
    )
    return out, imap



def write_yaml(d: dict, imap: IndexMap, path: str | Path, header: str = "", write_map: bool = False) -> list[Path]:
    """Write a generated model YAML (and, with ``write_map``, its ``.map.json``); return the written paths."""
    written = [dump_yaml(d, path, header, imap.notes)]
    if write_map:
        written.append(imap.dump(map_path(path)))
    return written


# --------------------------------------------------------------------------------------------
# Shipped configs (models/yaml/, written by `yolo-attn make-configs`; the catalogue is yolo_attn/configs.py)
# --------------------------------------------------------------------------------------------
GENERATED_MARK = "Generated by `yolo-attn make-configs`"
# The first line of every Ultralytics model YAML, kept at the top of each config derived from one
# (tests/test_placement.py checks it against the installed Ultralytics' base files).
ULTRALYTICS_LICENSE_LINE = "Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license"


def render_shipped(cfg: ShippedConfig, base: dict | None = None) -> str:
    """The exact text of one shipped config as the generator writes it today (``base``: the loaded stock YAML)."""
    filename, layer, args, placements = cfg
    d, imap = make_yaml(cfg.base if base is None else base, layer, args, placements)
    scaled = cfg.scaled("{n,s,m,l,x}")
    what = f"Layer {layer} {_flow(args)}" if layer else "No attention layer"
    from ._ultralytics import ultralytics_config_file

    header = (
        f"{ULTRALYTICS_LICENSE_LINE}\n"
        f"Derived by yolo_attn from Ultralytics' {ultralytics_config_file(cfg.base)}; AGPL-3.0 like it.\n"
        f"{GENERATED_MARK} from Ultralytics' {cfg.base}; do not edit by hand.\n"
        f"{what}; placement {' '.join(map(str, placements))}. Regenerate: yolo-attn make-configs\n"
        f"Build a scale by name: {scaled} (e.g. YOLO(\"{cfg.scaled('s')}\"))"
    )
    return render_yaml(d, header, imap.notes)


def is_generated(text: str) -> bool:
    """Whether a YAML's text is a config written by ``make-configs`` (its mark in the leading comment lines)."""
    header = itertools.takewhile(lambda line: line.startswith("#"), text.splitlines())
    return any(GENERATED_MARK in line for line in header)


@dataclass
class ConfigReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)  # --check: differs from the generator (or missing)
    stale: list[str] = field(default_factory=list)  # generated files no longer in shipped_configs()
    removed: list[str] = field(default_factory=list)  # stale generated files deleted (not with check)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # unregistered layer -> configs not generated

    @property
    def ok(self) -> bool:
        return not self.drifted and not self.stale


def generate_configs(out_dir: str | Path | None = None, check: bool = False, configs: Iterable | None = None) -> ConfigReport:
    """(Re)write the shipped configs into ``out_dir`` (default :func:`config_dir`), or with ``check`` compare only.

    Configs whose layer is not registered are skipped (listed in ``report.skipped``). Files carrying the
    generated-by header that the generator no longer produces are removed (or, with ``check``, reported).
    """
    out_dir = Path(out_dir) if out_dir is not None else config_dir()
    configs = list(shipped_configs() if configs is None else configs)
    report = ConfigReport()
    if not check:
        out_dir.mkdir(parents=True, exist_ok=True)
    names = {c.filename for c in configs}
    bases: dict[str, dict] = {}  # each base loaded once (name resolution searches Ultralytics' tree)
    for cfg in configs:
        if cfg.layer is not None and cfg.layer not in LAYERS:
            report.skipped.setdefault(cfg.layer, []).append(cfg.filename)
            continue
        if cfg.base not in bases:
            bases[cfg.base] = {**load_yaml(cfg.base)[0], "yaml_file": cfg.base}
        text = render_shipped(cfg, bases[cfg.base])
        path = out_dir / cfg.filename
        current = path.read_text() if path.is_file() else None
        if current == text:
            report.unchanged.append(cfg.filename)
        elif check:
            report.drifted.append(cfg.filename)
        else:
            atomic_write(path, text)
            report.written.append(cfg.filename)
    if out_dir.is_dir():
        for path in sorted(out_dir.glob("*.yaml")):
            if path.name not in names and is_generated(path.read_text()):
                if check:
                    report.stale.append(path.name)
                else:
                    path.unlink()
                    report.removed.append(path.name)
    return report


def set_layer_options(d: dict, **options) -> dict:
    """Copy of model dict ``d`` in which every registered attention layer gets keyword ``options``.

    Applies to channel-preserving rows (``[-1, 1, SE, [16]]`` -> ``[-1, 1, SE, [16, {init: identity}]]``)
    and to the attention carried inside block rows (``C3Attn``'s attention arguments); options already
    written in the YAML are overridden. Layers that do not accept an option fail when the model is built,
    naming the row. Typical use: ``set_layer_options(d, init="identity")`` so that a stock checkpoint
    transferred into a shipped config predicts exactly what the stock model predicts.
    """
    out = copy.deepcopy(d)
    for row in list(out.get("backbone") or []) + list(out.get("head") or []):
        name = row[2] if isinstance(row, list) and len(row) == 4 else None
        if name not in LAYERS:
            continue
        spec = LAYERS.get(name)
        if spec.kind == "preserve":
            row[3] = _with_options(row[3], options)
            continue
        at = getattr(spec.cls, "yaml_attention_args", None)  # position of the attention's own args in the row
        if at is not None:
            args = row[3]
            args.extend([[]] * (at + 1 - len(args)))
            args[at] = _with_options(args[at], options)
    return out


def _with_options(args, options: dict) -> list:
    args, kw = split_options(_normalise_args(args))
    return [*args, {**kw, **options}]
