"""The training arguments that make Ultralytics read a file, and the one gate each of them passes.

Ultralytics reads a file for ``model=``, ``data=``, ``pretrained=``, ``resume=``, ``distill_model=`` and ``cfg=``,
and it unpickles ``.pt`` files with its full reader, which runs any code the file's pickle names. In yolo_attn:

- ``model=X.pt`` and ``pretrained=X.pt`` are read by yolo_attn's safe reader (the trainer's set-up, the transfer);
- ``data=`` is checked and handed over as a copy without its ``download:`` entry (``datasets.require_dataset``);
- ``resume=`` and ``distill_model=`` are read by the safe reader and handed to Ultralytics as a clean copy
  (:func:`yolo_attn.weights.write_clean_checkpoint`: the same weights and training state, nothing else), so the
  run resumes, or the teacher loads, exactly as from the original, without running code from it;
- ``cfg=`` is read as plain YAML, and its entries pass the same gate as arguments typed on the command line
  (a ``cfg:`` inside it is refused).

``trust=True`` (files you made yourself) hands ``resume=`` and ``distill_model=`` to Ultralytics unchanged.
``resume=True`` must come with the checkpoint (``resume=path/to/last.pt``, or ``model=path/to/last.pt``):
Ultralytics would otherwise resume the newest ``last*.pt`` anywhere below the current folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_CFG_BYTES = 1 << 20  # a cfg= file of training arguments is a few hundred bytes; a larger one is refused


def expand_cfg(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` with the entries of its ``cfg=`` YAML merged in (explicit arguments win); ``ValueError`` naming it."""
    import yaml

    args = dict(args)
    cfg = args.pop("cfg", None)
    if not cfg:
        return args
    path = Path(str(cfg))
    try:
        if path.stat().st_size > MAX_CFG_BYTES:
            raise ValueError(f"cfg={cfg}: larger than {MAX_CFG_BYTES >> 10} KiB; expected a YAML of training arguments")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cfg={cfg}: cannot be read as a YAML of training arguments ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"cfg={cfg}: expected a mapping of training arguments")
    if "cfg" in loaded:
        raise ValueError(f"cfg={cfg}: holds a cfg: entry of its own; give the arguments in one file")
    return {**loaded, **args}


def resume_checkpoint(args: dict[str, Any]) -> Path | None:
    """The checkpoint ``resume=`` names (``None`` when not resuming); ``ValueError`` when it names none."""
    resume = args.get("resume")
    if resume in (None, False, "", "False", "false"):
        return None
    if resume is True or str(resume) in ("True", "true"):
        model = str(args.get("model") or "")
        if not model.lower().endswith(".pt"):
            raise ValueError("resume=True: name the run's checkpoint, resume=path/to/weights/last.pt (or "
                             "model=path/to/last.pt resume=True); yolo_attn does not resume the newest last*.pt "
                             "found below the current folder, which may be a file you did not make")
        resume = model
    path = Path(str(resume))
    if not path.is_file():
        raise ValueError(f"resume={resume}: no such checkpoint file")
    return path


def gate_checkpoints(args: dict[str, Any], trust: bool, scratch: Path) -> dict[str, Any]:
    """``args`` with ``resume=`` and ``distill_model=`` pointing at clean copies in ``scratch`` (unless ``trust``).

    A resumed run takes its arguments from its checkpoint: their ``distill_model`` passes the same gate, their
    ``save_dir`` becomes the run folder the checkpoint lies in, and their ``data`` is used when ``data=`` is not given.
    """
    args = dict(args)
    teacher = args.get("distill_model")
    if teacher not in (None, ""):
        args["distill_model"] = _teacher(teacher, trust, scratch)
    source = resume_checkpoint(args)
    if source is None or trust:
        if source is not None:
            args["resume"] = str(source)  # never Ultralytics' search for the newest last*.pt
        return args
    from .weights import load_checkpoint, write_clean_checkpoint

    ckpt = load_checkpoint(source)
    run_args = dict(ckpt.meta.get("train_args") or {})
    run_args.pop("cfg", None)
    if run_args.get("distill_model") not in (None, ""):
        run_args["distill_model"] = _teacher(run_args["distill_model"], trust, scratch)
    run_args["save_dir"] = str(source.parent.parent if source.parent.name == "weights" else source.parent)
    if not args.get("data") and run_args.get("data"):
        args["data"] = str(run_args["data"])
    clean = write_clean_checkpoint(ckpt, _unique(scratch, "resume", source.name), training=True, train_args=run_args)
    args["resume"] = args["model"] = str(clean)
    return args


def _teacher(teacher, trust: bool, scratch: Path) -> str:
    path = Path(str(teacher))
    if not path.is_file():
        raise ValueError(f"distill_model={teacher}: no such checkpoint file")
    if trust or path.suffix.lower() != ".pt":
        return str(path)  # a model YAML holds no pickle; Ultralytics refuses anything but .pt and YAML
    from .weights import load_checkpoint, write_clean_checkpoint

    return str(write_clean_checkpoint(load_checkpoint(path), _unique(scratch, "teacher", path.name)))


def _unique(scratch: Path, role: str, name: str) -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch / f"{role}-{len(list(scratch.iterdir()))}-{name}"


def check_sweep_file_args(train_args: dict[str, Any]) -> None:
    """A sweep's ``--train-arg`` file arguments, checked before any trial: ``cfg`` is refused (its entries would
    skip the sweep's checks); ``distill_model`` must be a checkpoint the safe reader reads (nothing in it runs)."""
    if "cfg" in train_args:
        raise ValueError(f"--train-arg cfg={train_args['cfg']}: give each training argument as --train-arg KEY=VALUE "
                         "(the entries of a cfg file would reach the trials without the sweep's checks)")
    teacher = train_args.get("distill_model")
    if teacher in (None, ""):
        return
    path = Path(str(teacher))
    if not path.is_file():
        raise ValueError(f"--train-arg distill_model={teacher}: no such checkpoint file")
    if path.suffix.lower() == ".pt":
        from .weights import load_checkpoint, model_from_checkpoint

        model_from_checkpoint(load_checkpoint(path))  # CheckpointError naming the file when it is not a usable model
