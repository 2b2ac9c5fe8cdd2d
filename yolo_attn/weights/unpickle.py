"""Reading checkpoints safely: Ultralytics, plain state dicts, safetensors and original-YOLOv5 files.

By default nothing in a checkpoint can run code:

1. ``torch.load(weights_only=True)`` is tried first; it accepts files that hold only tensors,
   containers and plain values (plain state dicts, ``{"model": state_dict}`` wrappers, ...).
2. A file that pickles model objects (Ultralytics ``{"model": DetectionModel, "ema": ...}``
   checkpoints, or checkpoints of the original YOLOv5 repository whose classes live in
   ``models.yolo`` / ``models.common``, which are not installed) is then read by
   :class:`SafeUnpickler`, a :class:`pickle.Unpickler` over the archive's ``data.pkl``. Its
   ``find_class`` returns only objects from a short allow-list (tensor and parameter rebuilders
   written here, ``OrderedDict``, containers, torch dtypes and storage types); every other global,
   whether a class or a function such as ``os.system``, becomes an inert :class:`Placeholder`
   subclass that records the arguments and the state it is given and does nothing else. Tensor
   storages are read straight from the zip records by ``persistent_load``. Parameters and buffers
   of the placeholder tree are then collected into a state dict with the original attribute paths
   (``model.0.conv.weight``), and the layer table (``i``, ``f``, ``type`` attributes that YOLOv5 and
   Ultralytics set on every layer) is recovered for structural matching.
3. ``trust=True`` does a full ``torch.load(weights_only=False)``: arbitrary code in the file runs.
   Use it only for files you made yourself.

Errors: a missing file raises ``FileNotFoundError``; everything else that is wrong with a file
(truncated, corrupt, not a checkpoint, TorchScript archive) raises :class:`CheckpointError`, a
``ValueError`` whose message starts with the file name.

Bounds: a small file must not be able to exhaust memory or loop forever. The pickle and every storage
record are size-checked against the archive before anything is allocated (:data:`MAX_PICKLE_BYTES`,
storages at most :data:`MAX_EXPANSION` times the file size), ``bytearray`` is capped
(:data:`MAX_BYTEARRAY`), tensor views may not claim more elements than their storage holds, and the
walks over the unpickled object graph (module tree, metadata) are bounded in depth
(:data:`MAX_DEPTH`) and in the number of nodes visited (:data:`MAX_NODES`), so self-referencing or
exponentially shared graphs end in a :class:`CheckpointError` instead of running until memory is gone.

The torch zip format as read here (documented behaviour of ``torch.save`` since torch 1.6): a
zip archive with one top-level folder holding ``data.pkl`` (a pickle whose persistent ids are
``("storage", storage_type, key, location, numel)``), one record ``data/<key>`` per storage with
its raw little-endian bytes, and ``byteorder``/``version`` records.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch


MAX_PICKLE_BYTES = 64 << 20  # data.pkl of a large detection model is a few MB


MAX_EXPANSION = 4  # storages may unpack to at most this many times the file size (+ MAX_PICKLE_BYTES)


MAX_BYTEARRAY = 16 << 20  # bytearray(n) from a pickle


MAX_DEPTH = 64  # nesting of modules / metadata containers


MAX_NODES = 200_000  # objects visited when walking the unpickled graph (a YOLO model has a few thousand)


class CheckpointError(ValueError):
    """A file cannot be read as a checkpoint; the message names the file and says why."""


class _GraphTooLarge(ValueError):
    """The unpickled object graph is nested too deeply or is too large to walk (turned into a CheckpointError)."""


class _Budget:
    """Counts the nodes a walk over the unpickled graph visits; raises beyond :data:`MAX_NODES`."""

    def __init__(self, limit: int = MAX_NODES):
        self.left = limit

    def spend(self, depth: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise _GraphTooLarge(f"the object graph has more than {MAX_NODES} nodes to visit (self-referencing?)")
        if depth > MAX_DEPTH:
            raise _GraphTooLarge(f"objects are nested more than {MAX_DEPTH} levels deep")


class Placeholder:
    """Stands in for a pickled global that is not on the allow-list.

    Calling the class (pickle's REDUCE/NEWOBJ/INST/OBJ), setting its state (BUILD), and filling
    it like a dict or list (SETITEMS/APPENDS) only records what it was given; no code of the
    original class or function ever runs. ``ph_module``/``ph_name`` say what it stands for.
    """

    ph_module = "?"
    ph_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        object.__setattr__(obj, "_ph_args", args)
        object.__setattr__(obj, "_ph_kwargs", kwargs)
        object.__setattr__(obj, "_ph_items", {})
        object.__setattr__(obj, "_ph_list", [])
        object.__setattr__(obj, "_ph_state", None)
        return obj

    def __init__(self, *args, **kwargs):  # REDUCE calls cls(*args): nothing to do beyond __new__
        pass

    def __call__(self, *args, **kwargs):  # REDUCE on an instance (e.g. a pickled methodcaller): still inert
        return type(self)(*args, **kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state, slots = state  # (dict state, slot state)
            if isinstance(slots, dict):
                self._ph_update(slots)
        if isinstance(state, dict):
            self._ph_update(state)
        else:
            object.__setattr__(self, "_ph_state", state)

    def _ph_update(self, mapping: dict) -> None:
        d = object.__getattribute__(self, "__dict__")
        for k, v in mapping.items():
            if isinstance(k, str) and not k.startswith("_ph_"):
                d[k] = v

    # dict/list subclasses are filled through these by SETITEMS / APPENDS
    def __setitem__(self, key, value):
        self._ph_items[key] = value

    def append(self, value):
        self._ph_list.append(value)

    def extend(self, values):
        self._ph_list.extend(values)

    def __repr__(self) -> str:
        return f"<placeholder {self.ph_module}.{self.ph_name}>"


_PLACEHOLDERS: dict[tuple[str, str], type] = {}


def placeholder_class(module: str, name: str) -> type:
    """The (cached) placeholder class standing for global ``module.name``."""
    key = (module, name)
    cls = _PLACEHOLDERS.get(key)
    if cls is None:
        safe = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "Global"
        cls = type(safe, (Placeholder,), {"ph_module": module, "ph_name": name, "__module__": __name__})
        _PLACEHOLDERS[key] = cls
    return cls


def qualified_type(obj: Any) -> str:
    """``module.Name`` of what ``obj`` is (or stands for, for a placeholder)."""
    if isinstance(obj, Placeholder):
        return f"{obj.ph_module}.{obj.ph_name}"
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


class _StorageType:
    """What a pickled storage class (``torch.FloatStorage``...) resolves to: just its dtype."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """A tensor viewing ``storage`` (a flat tensor read from the archive)."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("tensor data does not refer to a storage record")
    size, stride = tuple(size), tuple(stride)
    if len(size) > MAX_DEPTH or any(not isinstance(x, int) or x < 0 for x in size):
        raise pickle.UnpicklingError(f"bad tensor size {size!r:.80}")
    numel = 1
    for x in size:
        numel *= x
    if numel > max(storage.numel(), 1 << 16):  # a stride-0 view claiming far more elements than it stores
        raise pickle.UnpicklingError(f"a tensor of {numel} elements views a storage of {storage.numel()}")
    return storage.as_strided(size, stride, int(storage_offset))


def _rebuild_parameter(data, requires_grad=False, *_ignored):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter data is not a tensor")
    return data  # state dicts hold plain tensors; the Parameter wrapper is not needed


_SAFE_REBUILDERS = {_rebuild_tensor, _rebuild_parameter}


def _rebuild_from_type(func, new_type, args, state):
    if func not in _SAFE_REBUILDERS:
        raise pickle.UnpicklingError("tensor subclass rebuilt by a function outside the allow-list")
    return func(*args)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    """``bytes`` values in protocol-2 pickles are written as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return obj.encode(encoding, errors)


def _bytearray(source=b"", *args):
    """``bytearray`` with a size cap: ``bytearray(8 << 30)`` in a 1.7 KB pickle would allocate 8 GiB."""
    if isinstance(source, int) and not 0 <= source <= MAX_BYTEARRAY:
        raise pickle.UnpicklingError(f"bytearray({source}) exceeds the {MAX_BYTEARRAY}-byte limit")
    if not isinstance(source, (int, bytes, bytearray, str)):
        raise pickle.UnpicklingError("bytearray from an unexpected object")
    return bytearray(source, *args)


def _copyreg_reconstructor(cls, base, state=None):
    """Protocol 0/1 object creation; only placeholder classes may be created."""
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        obj = cls()
        if state is not None:
            obj._ph_update(state) if isinstance(state, dict) else object.__setattr__(obj, "_ph_state", state)
        return obj
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")


def _path(*parts):
    return str(PurePosixPath(*[str(p) for p in parts]))


def _windows_path(*parts):
    return str(PureWindowsPath(*[str(p) for p in parts]))


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): placeholder_class("collections", "defaultdict"),
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): _bytearray,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "tuple"): tuple,
    ("_codecs", "encode"): _codecs_encode,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Size"): torch.Size,
    ("pathlib", "PosixPath"): _path,
    ("pathlib", "PurePosixPath"): _path,
    ("pathlib", "WindowsPath"): _windows_path,
    ("pathlib", "PureWindowsPath"): _windows_path,
}


_BUILTIN_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler of a torch zip archive's ``data.pkl`` that never imports or calls outside its allow-list.

    Args:
        file: the pickle stream.
        read_storage: ``read_storage(key, dtype, numel) -> 1-D tensor`` for persistent storage ids.
    """

    def __init__(self, file, read_storage):
        super().__init__(file)
        self._read_storage = read_storage
        self.placeholders: set[str] = set()  # every global that became a placeholder

    def find_class(self, module: str, name: str):
        module = _BUILTIN_ALIASES.get(module, module)
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch":
            value = getattr(torch, name, None)
            if isinstance(value, torch.dtype):
                return value
            if name in _STORAGE_DTYPES:
                return _StorageType(_STORAGE_DTYPES[name])
            if name == "device":
                return _device
        if module in ("torch.storage", "torch") and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        self.placeholders.add(f"{module}.{name}")
        return placeholder_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else None
        if dtype is None:
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r:.80}")
        return self._read_storage(str(key), dtype, int(numel))


def _device(spec="cpu", index=None):
    if not isinstance(spec, str):
        raise pickle.UnpicklingError("bad torch.device argument")
    return "cpu"  # everything is read onto the CPU


def safe_unpickle_zip(path: Path) -> tuple[Any, set[str]]:
    """Unpickle a torch zip archive with :class:`SafeUnpickler`; returns (object, placeholder names)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint, the zip archive is truncated or corrupt ({exc})") from exc
    with archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            if any(n.endswith("/constants.pkl") for n in names):
                raise CheckpointError(f"{path}: is a TorchScript archive, not a PyTorch checkpoint")
            raise CheckpointError(f"{path}: zip archive without data.pkl, not a PyTorch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() not in (b"little", b""):
            raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
        cache: dict[str, torch.Tensor] = {}
        budget = [MAX_EXPANSION * path.stat().st_size + MAX_PICKLE_BYTES]  # bytes storages may still allocate

        def read_storage(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
            if key not in cache:
                itemsize = torch.empty((), dtype=dtype).element_size()
                name = f"{prefix}data/{key}"
                try:
                    record = archive.getinfo(name)
                except KeyError:
                    raise pickle.UnpicklingError(f"storage record data/{key} is missing") from None
                if numel < 0 or record.file_size < numel * itemsize:  # checked before allocating anything
                    raise pickle.UnpicklingError(f"storage record data/{key} is shorter than its tensor")
                budget[0] -= numel * itemsize
                if budget[0] < 0:  # a compressed record (torch.save stores them uncompressed) unpacking to GBs
                    raise pickle.UnpicklingError(f"storages unpack to more than {MAX_EXPANSION}x the file size")
                buf = bytearray(numel * itemsize)
                try:
                    with archive.open(record) as fh:
                        got = fh.readinto(buf)
                except KeyError:
                    raise pickle.UnpicklingError(f"storage record data/{key} is missing") from None
                if got != len(buf):
                    raise pickle.UnpicklingError(f"storage record data/{key} is shorter than its tensor")
                cache[key] = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
            return cache[key]

        if archive.getinfo(pkl[0]).file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: data.pkl declares more than {MAX_PICKLE_BYTES >> 20} MiB; refusing to unpack it")
        try:
            data = archive.read(pkl[0])
            unpickler = SafeUnpickler(io.BytesIO(data), read_storage)
            obj = unpickler.load()
        except CheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, KeyError,
                IndexError, AttributeError, RuntimeError, OSError, MemoryError, RecursionError) as exc:  # fmt: skip
            raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    return obj, unpickler.placeholders
