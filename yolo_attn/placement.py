"""Place an attention layer into a YOLOv5-style model YAML and renumber every ``from`` index.

:func:`make_yaml` takes a base model YAML (Ultralytics' stock ``yolov5.yaml`` by default, or any
YOLOv5-style YAML: P6, or one that already carries attention layers), a registered layer with its
YAML arguments and one or more *placements*, and returns the new model dict together with an
:class:`IndexMap` from every base layer index to its new index.

Placements
----------
Insert placements add one row ``[from, 1, NAME, args]`` (a channel-preserving layer):

``backbone-end``
    after the last backbone C3 (before SPPF in the stock models).
``backbone``
    after every backbone C3 (P2..P5, and P6 in P6 models).
``sppf``
    after every SPPF/SPP row.
``neck``
    after every C3 of the head.
``<int>``
    after each given layer index of the base YAML (``8``, ``17``...).

"After layer k" splices the layer into k's output: the new row reads k and every row that read k
(by ``-1``, by an absolute index, in a Concat or Detect list) reads the new row instead.

``head-in``
    on each input edge of the detection head: for every input ``k`` of Detect a new row reading
    ``k`` is placed directly before Detect, and Detect reads these rows. Only Detect sees the
    attention; the PAN path that also reads ``k`` keeps the unmodified features (this is what
    makes ``head-in`` differ from ``neck``).

Replace placements keep the row (same index, same ``from``) and change its module; they touch
plain ``C3`` rows only:

``c3``, ``c3-backbone``, ``c3-neck``, ``c3-backbone-end``, ``c3:<int>``
    C3 -> ``C3Attn`` whose bottlenecks carry the layer (all C3s, backbone C3s, head C3s, the last
    backbone C3, or the C3 at that base index): ``[-1, n, C3Attn, [c2, NAME, [args], shortcut]]``.
``fmm``, ``fmm-backbone``, ``fmm-neck``, ``fmm-backbone-end``, ``fmm:<int>``
    C3 -> ``C3FMM`` (feature-map multiplication bottlenecks); these use no attention layer.

"C3" for the insert placements means any C3-like block (``C3``, ``C3Attn``, ``C3FMM``, ``C3x``,
``C3TR``, ``C3Ghost``), so they work on already-modified YAMLs too. Several placements combine
in one call; the same anchor named twice (``backbone backbone-end``, ``8 backbone-end``) gets one
layer. Replacements are applied first, then splices, then the ``head-in`` edges (so ``neck head-in``
puts one layer after each head C3 and a second one on the Detect inputs). Replacing one row with
both ``C3Attn`` and ``C3FMM`` is an error.

Index map file
--------------
:meth:`IndexMap.dump` writes JSON (``OUT.map.json`` beside ``OUT.yaml``)::

    {
      "base": "yolov5.yaml",          # base YAML file name ("<model dict>" for a dict without yaml_file)
      "layer": "SE", "args": [16],    # the placed layer and its YAML args (null for fmm-only)
      "placements": ["neck"],
      "map": {"0": 0, "1": 1, ...},   # every base layer index -> its index in the new model (str keys)
      "inserted": [14, 19, ...],      # new indices of the inserted rows (ascending)
      "replaced": [2, 4, ...]         # new indices of rows whose module was replaced (C3 -> C3Attn/C3FMM)
    }

Layer indices are those of Ultralytics' ``model.model`` (backbone rows first, then head rows), the
same numbering that appears in the state-dict keys ``model.<index>.``. A replaced row keeps every
parameter name of the C3 it replaces (``C3Attn``/``C3FMM`` subclass ``C3``), plus new ones.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .registry import LAYERS, UnknownLayerError, split_options

__all__ = [
    "INSERT_PLACEMENTS",
    "REPLACE_PLACEMENTS",
    "IndexMap",
    "PlacementError",
    "ShippedConfig",
    "dump_yaml",
    "generate_configs",
    "load_yaml",
    "make_yaml",
    "map_path",
    "render_yaml",
    "shipped_configs",
]

DEFAULT_BASE = "yolov5.yaml"
C3_LIKE = frozenset({"C3", "C3Attn", "C3FMM", "C3x", "C3TR", "C3Ghost"})
SPP_LIKE = frozenset({"SPPF", "SPP"})
HEAD_NAMES = frozenset({"Detect", "Segment", "Pose", "OBB", "v10Detect", "WorldDetect", "YOLOEDetect"})

INSERT_PLACEMENTS = {
    "backbone-end": "after the last backbone C3 (before SPPF)",
    "backbone": "after every backbone C3",
    "sppf": "after SPPF/SPP",
    "neck": "after every C3 of the head",
    "head-in": "on each input of Detect (a layer per input, read by Detect only)",
}
_SCOPES = {"": "every C3", "-backbone": "every backbone C3", "-neck": "every head C3", "-backbone-end": "the last backbone C3"}
REPLACE_PLACEMENTS = {
    **{f"c3{s}": f"replace {d} with C3Attn carrying the layer" for s, d in _SCOPES.items()},
    **{f"fmm{s}": f"replace {d} with C3FMM (feature-map multiplication)" for s, d in _SCOPES.items()},
}
PLACEMENT_HELP = (
    "placements: "
    + "; ".join(f"{k} ({v})" for k, v in {**INSERT_PLACEMENTS, **REPLACE_PLACEMENTS}.items())
    + "; INT (after that base layer index); c3:INT / fmm:INT (replace the C3 at that index)"
)


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
        }

    def dump(self, path: str | Path) -> Path:
        from ._io import atomic_write_json

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
    from ._io import atomic_write

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
            m = re.fullmatch(r"(c3|fmm):(-?\d+)", p)
            if m:
                p = f"{m.group(1)}:{int(m.group(2))}"
            elif p not in INSERT_PLACEMENTS and p not in REPLACE_PLACEMENTS:
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


def make_yaml(
    base: str | Path | dict | None = None,
    layer: str | None = None,
    args=None,
    placements: Sequence | str | int = ("backbone-end",),
) -> tuple[dict, IndexMap]:
    """Place ``layer`` (YAML ``args``) into ``base`` at ``placements``; return ``(model dict, IndexMap)``.

    Args:
        base: model YAML path or name (default Ultralytics' ``yolov5.yaml``) or a model dict.
        layer: a registered channel-preserving layer name; may be None when every placement is ``fmm*``.
        args: the layer's YAML args without channels (``[16, {fuse: add}]``); a single value is wrapped.
        placements: placement names and/or base layer indices (see the module docstring).

    Returns:
        The new model dict (``backbone``/``head`` rows renumbered, other keys copied) and the index map.
        ``IndexMap.notes`` (new index -> comment, not written to JSON) feeds :func:`render_yaml`.

    Raises:
        PlacementError: unknown or impossible placement (no C3 there, index out of range, block layer
            used with an insert placement, conflicting replacements, bad layer arguments).
        UnknownLayerError: ``layer`` is not registered.
        FileNotFoundError: ``base`` does not resolve.
    """
    d, base_name = load_yaml(base)
    args = _normalise_args(args)
    where = f"base {base_name}"
    placements = _parse_placements(placements, where)
    where_p = lambda p: f"{where}, placement {p}"

    fmm_only = all(isinstance(p, str) and p.startswith("fmm") for p in placements)
    spec = None
    if layer is not None:
        try:
            spec = LAYERS.get(layer)
        except UnknownLayerError as exc:
            raise UnknownLayerError(f"{where}: {exc}") from None
    if spec is not None and spec.kind == "block":
        if spec.name == "C3FMM" and fmm_only:
            spec = None  # --layer C3FMM --placement fmm: the same thing
        else:
            p = next(p for p in placements if not (isinstance(p, str) and p.startswith("fmm")))
            kind = "replaces C3 with C3Attn carrying a channel-preserving layer" if str(p).startswith("c3") else "inserts a channel-preserving layer"
            raise PlacementError(
                f"{where_p(p)}: {spec.name} is a block layer (it takes c2 and replaces C3 blocks), but this placement {kind}."
                + (" For C3FMM use placement fmm." if spec.name == "C3FMM" else f" Preserve layers: {', '.join(LAYERS.names('preserve'))}")
            )
    if spec is None and not fmm_only:
        p = next(p for p in placements if not (isinstance(p, str) and p.startswith("fmm")))
        raise PlacementError(f"{where_p(p)}: this placement needs an attention layer (--layer NAME)")
    if spec is not None and fmm_only:
        raise PlacementError(f"{where_p(placements[0])}: uses no attention layer, but layer {spec.name} was given")
    if spec is not None:
        _check_layer_args(spec, args, where_p(placements[0]))

    # ---- base graph ------------------------------------------------------------------------
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
    n = len(rows)
    names = [str(r[2]) for r in rows]
    section = ["backbone" if i < nb else "head" for i in range(n)]

    def c3s(scope: str, plain: bool, p) -> list[int]:
        ok = {"C3"} if plain else C3_LIKE
        sec = {"": None, "-backbone": "backbone", "-neck": "head", "-backbone-end": "backbone"}[scope]
        found = [i for i in range(n) if names[i] in ok and (sec is None or section[i] == sec)]
        if scope == "-backbone-end":
            last = [i for i in range(n) if names[i] in C3_LIKE and section[i] == "backbone"][-1:]
            if last and names[last[0]] not in ok:
                raise PlacementError(f"{where_p(p)}: the last backbone C3-like layer {last[0]} is {names[last[0]]}, not a plain C3")
            found = last
        if not found:
            what = {"": "", "-backbone": " in the backbone", "-neck": " in the head", "-backbone-end": " in the backbone"}[scope]
            kind = "plain C3 layer" if plain else "C3 layer"
            other = sorted({names[i] for i in range(n) if names[i] in C3_LIKE})
            hint = f" (C3-like layers present: {', '.join(other)})" if other and plain else ""
            raise PlacementError(f"{where_p(p)}: no {kind}{what} to place at{hint}")
        return found

    detect = [i for i in range(n) if names[i] in HEAD_NAMES or (names[i].endswith("Detect") and nodes[i].listed)]

    def check_index(k: int, p) -> int:
        if not 0 <= k < n:
            raise PlacementError(f"{where_p(p)}: layer index {k} out of range (the base has layers 0..{n - 1})")
        return k

    # ---- resolve placements to anchors -------------------------------------------------------
    splice: dict[int, list[str]] = {}  # base index -> placements naming it
    edges: list[str] = []  # placements asking for head-in
    replace: dict[int, tuple[str, str]] = {}  # base index -> (new module, placement)
    for p in placements:
        if isinstance(p, int):
            k = check_index(p, p)
            if k in detect:
                raise PlacementError(f"{where_p(p)}: layer {k} is the detection head ({names[k]}); nothing can follow it")
            splice.setdefault(k, []).append(str(p))
        elif p in ("backbone-end", "backbone", "neck"):
            scope = {"backbone-end": "-backbone-end", "backbone": "-backbone", "neck": "-neck"}[p]
            for k in c3s(scope, False, p):
                splice.setdefault(k, []).append(p)
        elif p == "sppf":
            found = [i for i in range(n) if names[i] in SPP_LIKE]
            if not found:
                raise PlacementError(f"{where_p(p)}: no SPPF or SPP layer to place after")
            for k in found:
                splice.setdefault(k, []).append(p)
        elif p == "head-in":
            if not detect:
                raise PlacementError(f"{where_p(p)}: no detection head (Detect) in the base")
            edges.append(p)
        else:  # replacements
            kind, _, idx = p.partition(":")
            module = "C3Attn" if kind.startswith("c3") else "C3FMM"
            if idx:
                k = check_index(int(idx), p)
                if names[k] != "C3":
                    raise PlacementError(f"{where_p(p)}: layer {k} is {names[k]}, not a C3 that could be replaced")
                found = [k]
            else:
                found = c3s(kind[len("c3"):] if kind.startswith("c3") else kind[len("fmm"):], True, p)
            for k in found:
                if k in replace and replace[k][0] != module:
                    raise PlacementError(
                        f"{where_p(p)}: conflicts with placement {replace[k][1]}: layer {k} cannot become both C3Attn and C3FMM"
                    )
                replace.setdefault(k, (module, p))

    # ---- apply: replacements, splices, head-in edges -----------------------------------------
    layer_name = spec.name if spec is not None else None
    for k, (module, p) in replace.items():
        row = nodes[k].row
        rargs = list(row[3]) if isinstance(row[3], list) else []
        if not rargs:
            raise PlacementError(f"{where_p(p)}: layer {k} {rows[k]!r} has no output channels to keep")
        if module == "C3Attn":
            row[3] = [rargs[0], layer_name, copy.deepcopy(args), *rargs[1:]]
            nodes[k].note = f"C3 -> C3Attn({layer_name}) [{p}]"
        else:
            nodes[k].note = f"C3 -> C3FMM [{p}]"
        row[2] = module

    order: list = list(range(n))
    counter = 0

    def new_node(src, sec: str, note: str) -> tuple:
        nonlocal counter
        counter += 1
        key = ("ins", counter)
        nodes[key] = _Node(sec, [src], [False], False, note=note)
        return key

    for k in sorted(splice):
        key = new_node(k, section[k], f"{layer_name} [{', '.join(splice[k])}]")
        for other, node in nodes.items():
            if other != key:
                node.refs = [key if r == k else r for r in node.refs]
        order.insert(order.index(k) + 1, key)
    if edges:
        for h in detect:
            at = order.index(h)
            new_refs = []
            for r in nodes[h].refs:
                key = new_node(r, nodes[h].section, f"{layer_name} [head-in: input of {names[h]}]")
                order.insert(at, key)
                at += 1
                new_refs.append(key)
            nodes[h].refs = new_refs

    # ---- emit --------------------------------------------------------------------------------
    pos = {key: j for j, key in enumerate(order)}
    pos[INPUT] = INPUT
    out = {k: copy.deepcopy(v) for k, v in d.items() if k not in ("backbone", "head")}
    out["backbone"], out["head"] = [], []
    notes: dict[int, str] = {}
    for j, key in enumerate(order):
        node = nodes[key]
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
    imap = IndexMap(
        base=base_name,
        map={i: pos[i] for i in range(n)},
        inserted=sorted(pos[k] for k in order if nodes[k].row is None),
        replaced=sorted(pos[k] for k in replace),
        layer=layer_name,
        args=copy.deepcopy(args) if spec is not None else None,
        placements=placements,
        notes=notes,
    )
    return out, imap


def write_yaml(d: dict, imap: IndexMap, path: str | Path, header: str = "", write_map: bool = False) -> list[Path]:
    """Write a generated model YAML (and, with ``write_map``, its ``.map.json``); return the written paths."""
    written = [dump_yaml(d, path, header, imap.notes)]
    if write_map:
        written.append(imap.dump(map_path(path)))
    return written


# --------------------------------------------------------------------------------------------
# Shipped configs (models/yaml/, written by `yolo-attn make-configs`)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShippedConfig:
    filename: str
    layer: str | None
    args: tuple
    placements: tuple

    def __iter__(self):  # unpacks as (filename, layer, args, placements)
        return iter((self.filename, self.layer, list(self.args), list(self.placements)))


GENERATED_MARK = "Generated by `yolo-attn make-configs`"
# Convolutional attention layers shipped at every placement; the self-attention block (MHSA) only at P5
# (20x20 tokens at 640: backbone-end, after SPPF, inside the last backbone C3 as in BoTNet), because its cost
# grows with the square of the token count (P3 at 640 = 6400 tokens).
CONV_LAYERS = ("SE", "CBAM", "ECA", "CoordAtt", "SimAM", "GC", "EMA", "ShuffleAttention", "TripletAttention")
CONV_PLACEMENTS = ("backbone-end", "backbone", "sppf", "neck", "head-in", "c3", "c3-backbone", "c3-neck")
MHSA_PLACEMENTS = ("backbone-end", "sppf", "c3-backbone-end")
FMM_PLACEMENTS = ("fmm", "fmm-backbone", "fmm-neck")
# multiplication-vs-addition ablation (Ye et al., 2021): the gate added instead of multiplied
ABLATION_LAYERS = ("SE", "CBAM")
ABLATION_PLACEMENTS = ("backbone-end", "backbone", "sppf", "neck", "head-in", "c3")


def shipped_configs() -> list[ShippedConfig]:
    """Every config shipped in ``models/yaml/`` (scale-free names; ``yolov5s-X.yaml`` builds ``yolov5-X.yaml``).

    Each entry unpacks as ``(filename, layer, args, placements)``; all use Ultralytics' ``yolov5.yaml`` as base.
    """
    out = []
    for layer in CONV_LAYERS:
        for p in CONV_PLACEMENTS:
            out.append(ShippedConfig(f"yolov5-{layer.lower()}-{p}.yaml", layer, (), (p,)))
    for p in MHSA_PLACEMENTS:
        out.append(ShippedConfig(f"yolov5-mhsa-{p}.yaml", "MHSA", (), (p,)))
    for p in FMM_PLACEMENTS:
        out.append(ShippedConfig(f"yolov5-{p}.yaml", None, (), (p,)))
    for layer in ABLATION_LAYERS:
        for p in ABLATION_PLACEMENTS:
            out.append(ShippedConfig(f"yolov5-{layer.lower()}-add-{p}.yaml", layer, ({"fuse": "add"},), (p,)))
    return out


def config_dir() -> Path:
    """The one answer to "where are the shipped configs": ``yolo_attn/cfg`` inside an installed wheel
    (``pyproject.toml`` maps the package ``yolo_attn.cfg`` to the source tree's ``models/yaml``), the
    source tree's ``models/yaml`` for a checkout or an editable install."""
    here = Path(__file__).resolve().parent
    return here / "cfg" if (here / "cfg").is_dir() else here.parent / "models" / "yaml"


def render_shipped(cfg: ShippedConfig, base: dict | None = None) -> str:
    """The exact text of one shipped config as the generator writes it today (``base``: the loaded stock YAML)."""
    filename, layer, args, placements = cfg
    d, imap = make_yaml(DEFAULT_BASE if base is None else base, layer, args, placements)
    scaled = filename.replace("yolov5-", "yolov5{n,s,m,l,x}-", 1)
    what = f"Layer {layer} {_flow(args)}" if layer else "No attention layer"
    header = (
        f"{GENERATED_MARK} from Ultralytics' {DEFAULT_BASE}; do not edit by hand.\n"
        f"{what}; placement {' '.join(map(str, placements))}. Regenerate: yolo-attn make-configs\n"
        f"Build a scale by name: {scaled} (e.g. YOLO(\"{filename.replace('yolov5-', 'yolov5s-', 1)}\"))"
    )
    return render_yaml(d, header, imap.notes)


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
    base, _ = load_yaml(DEFAULT_BASE)  # loaded once (name resolution searches Ultralytics' tree)
    base["yaml_file"] = DEFAULT_BASE
    for cfg in configs:
        if cfg.layer is not None and cfg.layer not in LAYERS:
            report.skipped.setdefault(cfg.layer, []).append(cfg.filename)
            continue
        text = render_shipped(cfg, base)
        path = out_dir / cfg.filename
        current = path.read_text() if path.is_file() else None
        if current == text:
            report.unchanged.append(cfg.filename)
        elif check:
            report.drifted.append(cfg.filename)
        else:
            path.write_text(text)
            report.written.append(cfg.filename)
    if out_dir.is_dir():
        for path in sorted(out_dir.glob("*.yaml")):
            if path.name not in names and GENERATED_MARK in path.read_text().split("\n", 1)[0]:
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
