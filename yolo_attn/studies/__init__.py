"""Studies: each a question answered by one or more ``compare`` sweeps, as one command (``yolo-attn study NAME``).

* :mod:`.capacity` -- attention effect vs model width, with an interaction test;
* :mod:`.fuse` -- multiplied vs added gate (Ye et al. 2021's ablation);
* :mod:`.fmm` -- stock C3 vs C3FMM vs C3Attn;
* :mod:`.placement` -- one layer at every shipped placement, ranked with its cost;
* :mod:`.pretrained` -- fine-tuning from one stock checkpoint: Ultralytics' name load vs structure transfer,
  paper vs identity start, frozen backbone; seed SD fine-tuned vs from scratch.

The common runner (:mod:`.runner`) runs the sweeps, resumes them, and writes ``study.md``/``.json``/``.png``;
the budgeted placement search is :mod:`.search`. Statistics are read through :mod:`._verdicts` only.
"""

from __future__ import annotations

import importlib

from .runner import StudyOptions, run_study

STUDIES = ("capacity", "fuse", "fmm", "placement", "pretrained")


def get(name: str):
    """The study module called ``name``."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; studies: {', '.join(STUDIES)}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["STUDIES", "StudyOptions", "get", "run_study"]
