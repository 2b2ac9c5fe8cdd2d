"""The configs shipped in ``models/yaml/``: which layer at which placement on which base, and where they live.

:func:`shipped_configs` is the catalogue (``yolo-attn make-configs`` writes each entry with the generator in
:mod:`yolo_attn.placement`); :func:`config_dir` is the one answer to where the files are. This module imports
nothing of yolo_attn, so the generator and the bridge's config lookup can both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE = "yolov5.yaml"
SCALE_LETTERS = "nslmx"  # Ultralytics reads a model's scale from the letter after the version digits: yolov5n, yolo11s
_SCALE_RE = re.compile(rf"(\d+)([{SCALE_LETTERS}])(.+)?$")


def scale_free_name(name: str) -> str:
    """The file name without its scale letter, as Ultralytics looks it up: ``yolov5n-se.yaml`` -> ``yolov5-se.yaml``."""
    p = Path(name)
    return _SCALE_RE.sub(r"\1\3", p.stem) + p.suffix


@dataclass(frozen=True)
class ShippedConfig:
    filename: str
    layer: str | None
    args: tuple
    placements: tuple
    base: str = DEFAULT_BASE  # Ultralytics' scale-free base YAML the config is generated from

    def __iter__(self):  # unpacks as (filename, layer, args, placements)
        return iter((self.filename, self.layer, list(self.args), list(self.placements)))

    @property
    def stem(self) -> str:
        """The base's name stem (``yolov5``, ``yolov8``, ``yolo11``, ``yolo11-seg``)."""
        return Path(self.base).stem

    @property
    def task(self) -> str:
        """The task suffix of the base (``seg``, ``pose``, ``obb``, ``cls``); "" for a detection base."""
        return self.stem.partition("-")[2]

    def scaled(self, scale: str) -> str:
        """The file name at ``scale``, the letter after the version digits as Ultralytics reads it:
        ``yolo11-seg-cbam-neck.yaml`` -> ``yolo11n-seg-cbam-neck.yaml``."""
        version = self.stem.partition("-")[0]
        return self.filename.replace(f"{version}-", f"{version}{scale}-", 1)


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
@dataclass(frozen=True)
class NewBase:
    """A newer Ultralytics base and the placements its shipped configs use."""

    block: str  # the base's block replacement prefix (c2f, c3k2)
    extra: tuple = ()  # placements beyond the common ones (psa, a2c2f)
    sppf: bool = True  # the base has SPPF (YOLO12 has none)
    psa: bool = False  # the base has C2PSA: no-psa configs, alone and with a gate after SPPF in its place


# The newer Ultralytics bases: the light gates at the main placements, the block replacement named by the base's
# block (c2f, c3k2), FMM; where there is C2PSA (YOLO11, YOLO26) also C2PSA removed, alone and with a gate in its
# place; on YOLO26 a gate after C2PSA; on YOLO12 the swap of A2C2f's area attention for each gate.
NEW_BASES = {
    "yolov8.yaml": NewBase("c2f"),
    "yolo11.yaml": NewBase("c3k2", psa=True),
    "yolo26.yaml": NewBase("c3k2", extra=("psa",), psa=True),
    "yolo12.yaml": NewBase("c3k2", extra=("a2c2f",), sppf=False),
}
LIGHT_GATES = ("SE", "ECA", "CBAM", "CoordAtt", "SimAM", "EMA")
NEW_BASE_PLACEMENTS = ("backbone-end", "backbone", "sppf", "neck", "head-in", "{b}", "{b}-backbone", "{b}-neck")


def _new_base_configs(base: str, nb: NewBase) -> list[ShippedConfig]:
    stem = Path(base).stem
    out = []
    placements = [q.format(b=nb.block) for q in NEW_BASE_PLACEMENTS if nb.sppf or q != "sppf"] + list(nb.extra)
    for layer in LIGHT_GATES:
        for p in placements:
            out.append(ShippedConfig(f"{stem}-{layer.lower()}-{p}.yaml", layer, (), (p,), base))
    for p in FMM_PLACEMENTS:
        out.append(ShippedConfig(f"{stem}-{p}.yaml", None, (), (p,), base))
    if nb.psa:  # Ultralytics' own attention (C2PSA) removed, and replaced by each gate
        out.append(ShippedConfig(f"{stem}-no-psa.yaml", None, (), ("no-psa",), base))
        for layer in LIGHT_GATES:
            out.append(ShippedConfig(f"{stem}-{layer.lower()}-no-psa.yaml", layer, (), ("no-psa", "sppf"), base))
    return out


# Ultralytics' task models (segment, pose, obb, classify: the -seg, -pose, -obb, -cls YAMLs of each newer base): the
# light gates at the end of the backbone and after every neck block; a classifier has no neck, so after every
# backbone block instead. The task's head stays the last row.
TASKS = ("seg", "pose", "obb", "cls")
TASK_PLACEMENTS = {"seg": ("backbone-end", "neck"), "pose": ("backbone-end", "neck"), "obb": ("backbone-end", "neck"),
                   "cls": ("backbone-end", "backbone")}  # fmt: skip


def task_bases() -> list[str]:
    """Ultralytics' task YAMLs of the newer bases that configs are shipped for (``yolov8-seg.yaml``...)."""
    return [f"{Path(base).stem}-{task}.yaml" for base in NEW_BASES for task in TASKS]


def _task_configs(base: str) -> list[ShippedConfig]:
    stem = Path(base).stem
    task = stem.partition("-")[2]
    return [ShippedConfig(f"{stem}-{layer.lower()}-{p}.yaml", layer, (), (p,), base)
            for layer in LIGHT_GATES for p in TASK_PLACEMENTS[task]]  # fmt: skip


def shipped_configs() -> list[ShippedConfig]:
    """Every config shipped in ``models/yaml/`` (scale-free names; ``yolov5s-X.yaml`` builds ``yolov5-X.yaml``).

    Each entry unpacks as ``(filename, layer, args, placements)``; ``.base`` is Ultralytics' ``yolov5.yaml``,
    ``yolov8.yaml``, ``yolo11.yaml``, ``yolo26.yaml`` or ``yolo12.yaml``, or a task YAML of the last four
    (``yolo11-seg.yaml``, ``yolov8-cls.yaml``: :func:`task_bases`); the file name starts with its stem.
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
    for base, nb in NEW_BASES.items():
        out.extend(_new_base_configs(base, nb))
    for base in task_bases():
        out.extend(_task_configs(base))
    return out


def config_dir() -> Path:
    """The one answer to "where are the shipped configs": ``yolo_attn/cfg`` inside an installed wheel
    (``pyproject.toml`` maps the package ``yolo_attn.cfg`` to the source tree's ``models/yaml``), the
    source tree's ``models/yaml`` for a checkout or an editable install."""
    here = Path(__file__).resolve().parent
    return here / "cfg" if (here / "cfg").is_dir() else here.parent / "models" / "yaml"
