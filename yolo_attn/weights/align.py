"""Which source layer goes into which target layer: a global sequence alignment, or an explicit index map.

Two layers may be paired only when they are of the same family (:func:`.layers._family`); a pair scores 2 plus
the fraction of the source layer's tensors whose relative key and shape agree; leaving a target layer unpaired
costs 0.5 for an inserted yolo_attn layer and 1.5 for anything else, leaving a source layer unpaired 1.5 (1 for a
layer without tensors). :func:`_graph_problem` then checks a pair against the from-graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .layers import _Layer


def _compatible(s: _Layer, t: _Layer) -> bool:
    if s.family is not None and t.family is not None:
        return s.family == t.family
    if not s.shapes and not t.shapes:
        return not (t.preserve and t.family is not None)  # a parameterless unknown layer is not an inserted one
    if not s.shapes or not t.shapes:
        return False
    # without classes, the layers must have the same tensor names (attention sub-layers of the target aside)
    return {k for k in s.shapes if not k.startswith(t.dropped)} == set(t.shapes) - t.attn_keys


def _pair_score(s: _Layer, t: _Layer) -> float:
    if not s.shapes:
        return 2.5 if not t.shapes else 2.0
    same = sum(1 for k, shp in s.shapes.items() if t.shapes.get(k) == shp)
    return 2.0 + same / len(s.shapes)


def _target_gap(t: _Layer) -> float:
    return 0.5 if t.preserve else (1.0 if not t.shapes else 1.5)


def _source_gap(s: _Layer) -> float:
    return 1.5 if s.shapes else 1.0


def align_layers(source: list[_Layer], target: list[_Layer]) -> dict[int, int]:
    """Global alignment of two layer sequences; returns {source index: target index} for paired layers."""
    n, m = len(source), len(target)
    neg = float("-inf")
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 1 = pair, 2 = source gap, 3 = target gap
    for i in range(1, n + 1):
        score[i][0], move[i][0] = score[i - 1][0] - _source_gap(source[i - 1]), 2
    for j in range(1, m + 1):
        score[0][j], move[0][j] = score[0][j - 1] - _target_gap(target[j - 1]), 3
    for i in range(1, n + 1):
        s = source[i - 1]
        for j in range(1, m + 1):
            t = target[j - 1]
            best, how = neg, 0
            if _compatible(s, t):
                best, how = score[i - 1][j - 1] + _pair_score(s, t), 1
            v = score[i - 1][j] - _source_gap(s)
            if v > best:
                best, how = v, 2
            v = score[i][j - 1] - _target_gap(t)
            if v > best:
                best, how = v, 3
            score[i][j], move[i][j] = best, how
    pairs: dict[int, int] = {}
    i, j = n, m
    while i > 0 or j > 0:
        how = move[i][j]
        if how == 1:
            pairs[source[i - 1].index] = target[j - 1].index
            i, j = i - 1, j - 1
        elif how == 2:
            i -= 1
        else:
            j -= 1
    return dict(sorted(pairs.items()))


def load_index_map(index_map: Any) -> dict[int, int]:
    """``{base index: target index}`` from a dict (``{"map": {...}}`` or a bare mapping) or a JSON file."""
    if isinstance(index_map, (str, Path)):
        path = Path(index_map)
        try:
            index_map = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable index map JSON ({exc})") from exc
    if isinstance(index_map, dict) and isinstance(index_map.get("map"), dict):
        index_map = index_map["map"]
    if not isinstance(index_map, dict):
        raise ValueError(f"index map must be a mapping of base index -> target index, got {type(index_map).__name__}")
    out = {}
    for k, v in index_map.items():
        if v is None:
            continue
        try:
            out[int(k)] = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"index map entry {k!r}: {v!r} is not an integer pair") from None
    return out


def _alignment(source: list[_Layer], target: list[_Layer], index_map: Any) -> dict[int, int]:
    """{source index: target index}: the explicit index map (checked for range) or the sequence alignment."""
    if index_map is None:
        return align_layers(source, target)
    s2t = load_index_map(index_map)
    bad = {k: v for k, v in s2t.items() if not (0 <= k < max(len(source), 1) and 0 <= v < len(target))}
    if bad:
        raise ValueError(f"index map entries out of range (source has {len(source)} layers, target {len(target)}): {bad}")
    return s2t


def _graph_problem(s: _Layer, t: _Layer, s2t: dict[int, int], target: list[_Layer], paired_t: set[int]) -> str:
    if s.inputs is None or t.inputs is None:
        return ""

    def resolve(ti: int) -> int:
        seen = 0
        while 0 <= ti < len(target) and ti not in paired_t and target[ti].preserve and target[ti].inputs and seen < 64:
            ti, seen = target[ti].inputs[0], seen + 1
        return ti

    want = [s2t.get(x, None) if x >= 0 else -1 for x in s.inputs]
    got = [resolve(x) if x >= 0 else -1 for x in t.inputs]
    if want != got:
        return f"inputs differ: source layer {s.index} reads {s.inputs} (-> target {want}), target reads {t.inputs}"
    return ""
