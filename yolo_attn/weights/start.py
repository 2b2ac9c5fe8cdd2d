"""How a model starts: from scratch, or from a checkpoint's weights (``pretrained=``), loaded by structure or by name,
some of its base-model layers frozen. The one place that decides it, for ``yolo-attn train`` (:func:`yolo_attn.train.train`
before the run, the trainer's ``setup_model`` in it) and for the sweep's checks before any trial:

* ``pretrained`` names a checkpoint (a path), or nothing (``None``, ``True``/``False``: Ultralytics' own flags, ``""``);
* the model YAML's own ``yolo_attn:`` key (:mod:`.options`) overrides the run's ``attn_init`` and ``freeze`` and says
  how the weights load (``structure`` or ``names``); its ``freeze`` and ``load`` need ``pretrained``;
* a name-matched load takes no freeze: ``freeze`` is read in the base model's layer indices, which only the
  structure transfer maps to the model (:func:`check_load_freeze`, the one error);
* a checkpoint model (``.pt``) starts from its own weights: nothing is transferred into it here (the sweep transfers
  ``--pretrained`` into a copy of it before its trials, :func:`yolo_attn.compare.trial._make_pretrained`).

:func:`load_start` then brings the weights in and translates the freeze; the checkpoint itself is read once per
process (:func:`.read.load_checkpoint` keeps the last files it read safely).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import KEY, ModelOptions, ModelOptionsError, read_model_options

NO_FREEZE = (None, [], (), 0, False)  # freeze values that freeze nothing


def pretrained_path(value: Any) -> str | None:
    """The checkpoint ``pretrained=`` names, or None when it names none (not given, ``True``/``False``, empty)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    return None if text.strip().lower() in ("", "true", "false") else text


def is_checkpoint(model: Any) -> bool:
    """Whether a model reference is a checkpoint file (``.pt``) rather than a model YAML."""
    return isinstance(model, (str, Path)) and str(model).lower().endswith(".pt")


def check_load_freeze(load: str | None, freeze: Any, where: str) -> None:
    """The rule: a name-matched load (``load: names``) cannot take a freeze; :class:`ModelOptionsError` naming ``where``."""
    if load == "names" and freeze not in NO_FREEZE:
        raise ModelOptionsError(f"{where}: {KEY}.load: names with freeze={freeze} is not supported (freeze is read in the "
                                "base model's layer indices, which only the structure transfer maps to the model)")


def _check_options_need_pretrained(options: ModelOptions, source: str | None, where: str) -> None:
    """Refuse the model's own options that need ``pretrained=`` weights when there are none."""
    if source is not None:
        return
    if options.freeze is not None:
        raise ModelOptionsError(f"{where}: {KEY}.freeze={options.freeze}: freezes pretrained layers; give pretrained= "
                                "(--pretrained)")
    if options.load is not None and options.load != "structure":
        raise ModelOptionsError(f"{where}: {KEY}.load={options.load}: says how pretrained weights are loaded; give "
                                "pretrained= (--pretrained)")


@dataclass(frozen=True)
class ModelStart:
    """How one model starts (:func:`decide_start`).

    ``source``: the checkpoint whose weights it starts from, None from scratch; ``load``: ``structure`` (yolo_attn's
    transfer) or ``names`` (Ultralytics' name-and-shape matching); ``freeze``: the effective ``freeze=`` (with a
    ``source``: in the base model's layer indices); ``attn_init``: the effective attention initialisation;
    ``options``: the model YAML's own ``yolo_attn:`` key."""

    source: str | None = None
    load: str = "structure"
    freeze: Any = None
    attn_init: str | None = None
    options: ModelOptions = field(default_factory=ModelOptions)

    @property
    def by_name(self) -> bool:
        return self.load == "names"

    @property
    def frozen(self) -> bool:
        """Whether layers are frozen in base-model indices (only from a ``source``)."""
        return self.source is not None and self.freeze not in NO_FREEZE


def decide_start(model: Any, pretrained: Any = None, *, freeze: Any = None, attn_init: str | None = None,
                 options: ModelOptions | None = None, where: str | None = None) -> ModelStart:
    """How ``model`` (a model YAML path, name or dict, or a checkpoint) starts, from the run's ``pretrained``,
    ``freeze`` and ``attn_init`` and the model's own ``yolo_attn:`` key (``options``: already read; else read here).

    Raises :class:`ModelOptionsError` (a ``ValueError``) naming ``where`` (default: the model) for options that need
    ``pretrained`` without one and for a name-matched load with a freeze."""
    options = read_model_options(model) if options is None else options
    where = where or str(model.get("yaml_file", "<model dict>") if isinstance(model, dict) else model)
    source = None if is_checkpoint(model) else pretrained_path(pretrained)  # a checkpoint starts from its own weights
    _check_options_need_pretrained(options, source, where)
    attn_init = options.attn_init if options.attn_init is not None else attn_init
    freeze = options.freeze if options.freeze is not None else freeze
    check_load_freeze(options.load_mode, freeze, where)
    return ModelStart(source, options.load_mode, freeze, attn_init, options)


def load_start(start: ModelStart, ckpt, model) -> tuple[Any, list[str]]:
    """Bring the weights of ``ckpt`` (the :class:`~.checkpoint.Checkpoint` of ``start.source``) into ``model`` as
    ``start`` says; return the :class:`~.report.TransferReport` and the parameter-name prefixes to freeze (the base-index
    ``freeze`` translated to ``model``, checked by :func:`.freeze.check_freeze`; empty when nothing is frozen)."""
    from .by_name import load_by_name
    from .freeze import backbone_length, base_layer_count, check_freeze, freeze_prefixes
    from .transfer import transfer_weights

    report = load_by_name(ckpt, model) if start.by_name else transfer_weights(ckpt, model, verbose=False)
    if not start.frozen:
        return report, []
    prefixes = freeze_prefixes(model, start.freeze, report.mapping, backbone_length(ckpt))
    check_freeze(start.freeze, prefixes, report, base_layer_count(ckpt), backbone_length(ckpt))
    return report, prefixes
