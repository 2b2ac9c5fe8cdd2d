"""Reading a checkpoint file: ``load_checkpoint``, the one reader every ``.pt`` that yolo_attn opens goes through.

A zip archive is read by the bounded placeholder unpickler (:mod:`.unpickle`), a legacy (pre-1.6) file by torch's
weights-only reader after a scan that bounds what it may allocate, a ``.safetensors`` file by safetensors; only
``trust=True`` unpickles fully (code in the file runs). A missing file raises ``FileNotFoundError``, anything else
wrong with it a :class:`~.unpickle.CheckpointError` naming the file.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import Checkpoint, _interpret_bounded, _normalise_keys, checkpoint_from_module, checkpoint_from_object
from .unpickle import CheckpointError, safe_unpickle_zip


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and int.from_bytes(head[:8], "little") < (1 << 28) and head[8:9] == b"{"


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover
        raise CheckpointError(f"{path}: reading .safetensors needs the 'safetensors' package") from exc
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # safetensors raises its own SafetensorError for damaged files
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def _load_legacy_weights_only(path: Path) -> Any:
    """A pre-1.6 (non-zip) file through torch's weights-only reader, after a scan that bounds what it can allocate.

    torch's weights-only reader allows ``bytearray`` and allocates each storage at its declared size before
    reading it, so a 2 KB file can ask for gigabytes. The scan refuses a ``bytearray`` global and any integer
    larger than the file (a storage size, a bytearray length) before torch sees the file.
    """
    import pickletools

    limit = max(path.stat().st_size, 1 << 20)
    found = None
    with open(path, "rb") as fh:
        try:
            for k in range(4):  # magic number, protocol, sys info, then the object itself
                for _op, arg, _pos in pickletools.genops(fh):
                    if isinstance(arg, str) and "bytearray" in arg:
                        found = "a bytearray"
                    elif k > 0 and isinstance(arg, int) and arg > limit:  # k == 0: the magic number
                        found = f"the size {arg} (larger than the file)"
                    if found:
                        break
                if found:
                    break
        except (ValueError, EOFError) as exc:
            raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    if found:
        raise CheckpointError(f"{path}: legacy-format file declares {found}; refusing to read it "
                              "(pass trust=True / --trust for a file you made)")
    return torch.load(path, map_location="cpu", weights_only=True)


_READ: dict[tuple, Checkpoint] = {}  # this process's last safe reads, by file (resolved path, size, mtime, inode)
_READ_KEEP = 2  # a sweep reads one checkpoint (--pretrained), train model=X.pt pretrained=Y.pt two


def load_checkpoint(path: str | Path, trust: bool = False) -> Checkpoint:
    """Read ``path`` as a :class:`Checkpoint` without running code from it (unless ``trust=True``).

    A file is read once per process: a second call for the same file, unchanged (size, modification time and inode
    as before), returns the first read's tensors again (callers copy them, none changes them), with ``path`` as given
    this time. ``trust=True`` reads the file again every time (its objects are real and may be changed).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt, a TorchScript archive or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():  # or one of Ultralytics' weight names (yolo11n.pt): found or downloaded as Ultralytics does
        from .._ultralytics import stock_weights

        path = stock_weights(path)
    if trust:
        return _read(path, trust=True)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _READ:
        _READ[key] = _read(path, trust=False)
        while len(_READ) > _READ_KEEP:
            del _READ[next(iter(_READ))]
    return replace(_READ[key], path=path)


def forget_reads() -> None:
    """Drop the checkpoints :func:`load_checkpoint` keeps: the next call reads its file again (timings of the reader)."""
    _READ.clear()


def _read(path: Path, trust: bool) -> Checkpoint:
    """One read of the file ``path`` (:func:`load_checkpoint`)."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if path.suffix == ".safetensors" or (not _is_zip(path) and _looks_like_safetensors(path)):
        sd = _read_safetensors(path)
        return Checkpoint(path=path, format="safetensors", state_dict=_normalise_keys(sd))
    if trust:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except ModuleNotFoundError as exc:
            raise CheckpointError(
                f"{path}: full unpickling needs module '{exc.name}', which is not installed "
                "(read it without --trust: the safe reader does not need the original code)"
            ) from exc
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
        if isinstance(obj, torch.jit.ScriptModule):
            raise CheckpointError(f"{path}: is a TorchScript archive, not a PyTorch checkpoint")
        return _interpret_bounded(path, obj, set(), True)
    if not _is_zip(path):
        # legacy (pre-1.6) serialisation or something else: only torch's weights-only reader is allowed
        try:
            obj = _load_legacy_weights_only(path)
        except CheckpointError:
            raise
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                f"{path}: not a zip checkpoint and not readable weights-only ({exc}). "
                "If it is a legacy-format file you trust, pass trust=True / --trust."
            ) from exc
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
        return _interpret_bounded(path, obj, set(), False)
    # a zip archive: always the placeholder reader (bounded), never torch.load, whose weights-only allow-list
    # includes bytearray and whose allocations follow the sizes the file declares
    obj, placeholders = safe_unpickle_zip(path)
    return _interpret_bounded(path, obj, placeholders, False)


def as_checkpoint(source: Any, trust: bool = False) -> Checkpoint:
    """``source`` as a :class:`Checkpoint`: one already, a file (:func:`load_checkpoint`), a model or a state dict."""
    if isinstance(source, Checkpoint):
        return source
    if isinstance(source, (str, Path)):
        return load_checkpoint(source, trust=trust)
    if isinstance(source, nn.Module):
        return checkpoint_from_module(source)
    if isinstance(source, dict):
        return checkpoint_from_object(source)
    raise TypeError(f"source must be a path, Checkpoint, nn.Module or state dict, got {type(source).__name__}")
