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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "LayerInfo",
    "Placeholder",
    "SafeUnpickler",
    "checkpoint_from_module",
    "checkpoint_from_object",
    "load_checkpoint",
    "module_state_dict",
    "model_checkpoint_dict",
    "save_model_checkpoint",
]

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


# --------------------------------------------------------------------------------------------
# Inert placeholders for classes and functions the safe reader will not import
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# The allow-list: reconstructors written here, never the originals
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------
def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and int.from_bytes(head[:8], "little") < (1 << 28) and head[8:9] == b"{"


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


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover
        raise CheckpointError(f"{path}: reading .safetensors needs the 'safetensors' package") from exc
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # safetensors raises its own SafetensorError for damaged files
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


# --------------------------------------------------------------------------------------------
# From loaded objects to state dicts and layer tables
# --------------------------------------------------------------------------------------------
def _attrs(obj: Any) -> dict:
    if isinstance(obj, Placeholder):
        return object.__getattribute__(obj, "__dict__")
    return getattr(obj, "__dict__", {}) if obj is not None else {}


def _is_module_like(obj: Any) -> bool:
    if isinstance(obj, torch.nn.Module):
        return True
    return isinstance(obj, Placeholder) and "_modules" in _attrs(obj) and "_parameters" in _attrs(obj)


def module_state_dict(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], set[str]]:
    """State dict (and the set of its buffer keys) of a real or placeholder ``nn.Module`` tree."""
    out: dict[str, torch.Tensor] = {}
    buffers: set[str] = set()
    if isinstance(obj, torch.nn.Module):
        names = {n for n, _ in obj.named_buffers()}
        for k, v in obj.state_dict().items():
            out[prefix + k] = v
            if k in names:
                buffers.add(prefix + k)
        return out, buffers
    stack = [(obj, prefix, 0)]
    budget = _Budget()
    while stack:
        node, pre, depth = stack.pop()
        budget.spend(depth)
        d = _attrs(node)
        for k, v in (d.get("_parameters") or {}).items():
            if isinstance(v, torch.Tensor):
                out[pre + k] = v
        skip = d.get("_non_persistent_buffers_set") or set()
        for k, v in (d.get("_buffers") or {}).items():
            if isinstance(v, torch.Tensor) and k not in skip:
                out[pre + k] = v
                buffers.add(pre + k)
        children = [(pre + k + ".", m) for k, m in (d.get("_modules") or {}).items() if m is not None]
        for child_prefix, m in reversed(children):
            if isinstance(m, torch.nn.Module):
                sd, bk = module_state_dict(m, child_prefix)
                out.update(sd)
                buffers |= bk
            else:
                stack.append((m, child_prefix, depth + 1))
    # keep the module's own ordering (parameters, buffers, then children depth-first)
    return out, buffers


@dataclass
class LayerInfo:
    """One top-level layer of a pickled YOLO model: index, class (``module.Name``) and inputs."""

    index: int
    type: str
    f: Any = -1


@dataclass
class Checkpoint:
    """What a source file holds, as far as weight transfer needs it.

    Attributes:
        path: the file.
        format: ``"ultralytics"``, ``"yolov5"`` (original repository), ``"state_dict"`` or ``"safetensors"``.
        state_dict: tensors keyed ``model.<layer>.<path>`` (as ``DetectionModel.state_dict()``).
        buffer_keys: keys that are buffers rather than parameters, where known.
        layers: the layer table of a pickled model, or None for bare state dicts.
        yaml: the model YAML dict a pickled model carries, if any.
        names: class names, if known.
        nc: number of classes, if known.
        placeholders: globals the safe reader replaced by placeholders.
        trusted: True when read by a full unpickle.
        meta: other top-level entries (``train_args``, ``date``, ``version``...) that are plain values.
    """

    path: Path
    format: str
    state_dict: dict[str, torch.Tensor]
    buffer_keys: set[str] = field(default_factory=set)
    layers: list[LayerInfo] | None = None
    yaml: dict | None = None
    names: dict | None = None
    nc: int | None = None
    placeholders: set[str] = field(default_factory=set)
    trusted: bool = False
    meta: dict = field(default_factory=dict)
    model: Any = None  # the real nn.Module (trusted or weights-only loads) or placeholder tree
    training_state: dict = field(default_factory=dict)  # every other top-level entry as plain data and tensors
    # (epoch, optimizer and scaler state...: what resuming a run needs beyond the weights); objects left out

    @property
    def half(self) -> bool:
        """True when the file stores its floating-point tensors as float16 (Ultralytics' default)."""
        return any(v.dtype == torch.float16 for v in self.state_dict.values())


_WRAPPER_KEYS = ("ema", "model", "state_dict", "model_state_dict", "model_state", "weights", "net")


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, Placeholder) and obj.ph_name == "OrderedDict":
        obj = dict(obj._ph_items)
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= 0.9 * len(obj):
            return tensors
    return None


def _normalise_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``module.`` (DDP) prefixes stripped; ``0.conv.weight`` (a bare Sequential) becomes ``model.0.conv.weight``."""
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    if sd and all(k.split(".", 1)[0].isdigit() for k in sd):
        sd = {f"model.{k}": v for k, v in sd.items()}
    return sd


def _plain(value: Any, budget: _Budget | None = None, depth: int = 0, tensors: bool = False) -> Any:
    """Plain data (no placeholders; tensors only with ``tensors``) for metadata, or None. Bounded: see :class:`_Budget`."""
    budget = budget or _Budget()
    budget.spend(depth)
    if isinstance(value, (str, int, float, bool)) or value is None or (tensors and isinstance(value, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v, budget, depth + 1, tensors) for v in value]
        return items if all(v is not None or o is None for v, o in zip(items, value)) else None
    if isinstance(value, dict):
        out = {k: _plain(v, budget, depth + 1, tensors) for k, v in value.items() if isinstance(k, (str, int))}
        return {k: v for k, v in out.items() if v is not None or value[k] is None}
    return None


def _layer_index(value: Any, name: Any, pos: int) -> int:
    """The ``i`` a layer carries, else its name in the Sequential, else its position; must be an integer."""
    if value is None:
        value = int(name) if str(name).isdigit() else pos
    if isinstance(value, bool) or not isinstance(value, int):
        raise _GraphTooLarge(f"layer {name!r} has a non-integer layer index i={value!r:.40}")
    return value


def _layer_table(model: Any) -> list[LayerInfo] | None:
    seq = _attrs(model).get("_modules", {}).get("model") if not isinstance(model, torch.nn.Module) else getattr(model, "model", None)
    if seq is None:
        return None
    children = _attrs(seq).get("_modules") if not isinstance(seq, torch.nn.Module) else dict(seq.named_children())
    if not children:
        return None
    table = []
    for pos, (name, layer) in enumerate(children.items()):
        a = _attrs(layer)
        t = a.get("type") if isinstance(a.get("type"), str) else qualified_type(layer)
        table.append(LayerInfo(index=_layer_index(a.get("i"), name, pos), type=t, f=_plain(a.get("f", -1))))
    return table


def _from_model(path: Path, model: Any, top: dict, placeholders: set[str], trusted: bool) -> Checkpoint:
    sd, buffers = module_state_dict(model)
    sd = _normalise_keys(sd)
    a = _attrs(model)
    yaml = _plain(a.get("yaml")) if isinstance(a.get("yaml"), dict) else None
    names = a.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    names = _plain(names) if isinstance(names, dict) else None
    nc = a.get("nc") if isinstance(a.get("nc"), int) else (yaml or {}).get("nc")
    kind = qualified_type(model)
    fmt = "yolov5" if kind.startswith("models.") else "ultralytics"
    meta = {k: _plain(v) for k, v in top.items() if k not in ("model", "ema", "optimizer") and _plain(v) is not None}
    state = {k: _plain(v, tensors=True) for k, v in top.items() if k not in ("model", "ema")}
    return Checkpoint(
        path=path,
        format=fmt,
        state_dict=sd,
        buffer_keys=buffers,
        layers=_layer_table(model),
        yaml=yaml,
        names=names,
        nc=nc if isinstance(nc, int) else None,
        placeholders=placeholders,
        trusted=trusted,
        meta=meta,
        model=model,
        training_state={k: v for k, v in state.items() if v is not None},
    )


def _interpret(path: Path, obj: Any, placeholders: set[str], trusted: bool) -> Checkpoint:
    if _is_module_like(obj):  # torch.save(model)
        return _from_model(path, obj, {}, placeholders, trusted)
    if isinstance(obj, dict):
        for key in ("ema", "model"):
            if _is_module_like(obj.get(key)):
                return _from_model(path, obj[key], obj, placeholders, trusted)
        sd = _tensor_dict(obj)
        if sd is None:
            for key in _WRAPPER_KEYS:
                sd = _tensor_dict(obj.get(key))
                if sd is not None:
                    break
        if sd is not None:
            return Checkpoint(path=path, format="state_dict", state_dict=_normalise_keys(sd), placeholders=placeholders,
                              trusted=trusted)  # fmt: skip
    what = qualified_type(obj)
    if isinstance(obj, dict):
        what = f"a dict with keys {sorted(map(str, obj))[:8]}"
    raise CheckpointError(f"{path}: not a model checkpoint (it holds {what}; expected a model or a state dict)")


def checkpoint_from_module(module: torch.nn.Module, path: str | Path = "<module>") -> Checkpoint:
    """A :class:`Checkpoint` view of a model already in memory (``trusted``: nothing is unpickled)."""
    return _from_model(Path(path), module, {}, set(), True)


def checkpoint_from_object(obj: Any, path: str | Path = "<dict>") -> Checkpoint:
    """A :class:`Checkpoint` view of an in-memory checkpoint object (a state dict or ``{"model": ...}`` dict)."""
    return _interpret(Path(path), obj, set(), True)


def _interpret_bounded(path: Path, obj: Any, placeholders: set[str], trusted: bool) -> Checkpoint:
    """:func:`_interpret`, with a hostile object graph (cycles, deep nesting, odd attribute types) as CheckpointError."""
    try:
        return _interpret(path, obj, placeholders, trusted)
    except CheckpointError:
        raise
    except _GraphTooLarge as exc:
        raise CheckpointError(f"{path}: not a usable checkpoint: {exc}") from None
    except (RecursionError, MemoryError, AttributeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a usable checkpoint ({type(exc).__name__}: {exc})") from None


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


def load_checkpoint(path: str | Path, trust: bool = False) -> Checkpoint:
    """Read ``path`` as a :class:`Checkpoint` without running code from it (unless ``trust=True``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt, a TorchScript archive or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():  # or one of Ultralytics' weight names (yolo11n.pt): found or downloaded as Ultralytics does
        from .._ultralytics import stock_weights

        path = stock_weights(path)
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


# --------------------------------------------------------------------------------------------
# Writing checkpoints (the one writer: `yolo-attn transfer`, compare's pretrained start points)
# --------------------------------------------------------------------------------------------
def model_checkpoint_dict(model: torch.nn.Module, half: bool = True, train_args: dict | None = None,
                          yolo_attn: dict | None = None) -> dict:  # fmt: skip
    """An Ultralytics-format checkpoint dict for ``model`` (as Ultralytics' ``Model.save`` writes one).

    The model is copied (float16 if ``half``, gradients off); ``train_args`` extend ``{"model": yaml_file,
    "task": the model's task}`` (``detect``, ``segment``...); ``yolo_attn`` is stored under the ``"yolo_attn"`` key next to the version.
    """
    from copy import deepcopy
    from datetime import datetime

    from ultralytics import __version__ as ul_version

    from .. import __version__
    from .._ultralytics.head import model_task

    m = deepcopy(model).float()
    m = (m.half() if half else m).to(memory_format=torch.contiguous_format)
    for p in m.parameters():
        p.requires_grad_(False)
    yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file", "")
    return {
        "date": datetime.now().astimezone().isoformat(),
        "version": ul_version,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "model": m,
        "ema": None,
        "train_args": {"model": str(yaml_file), "task": model_task(model), **(train_args or {})},
        "yolo_attn": {"version": __version__, **(yolo_attn or {})},
    }


def save_model_checkpoint(model: torch.nn.Module, path: str | Path, half: bool = True, train_args: dict | None = None,
                          yolo_attn: dict | None = None) -> Path:  # fmt: skip
    """Write ``model`` as an Ultralytics checkpoint that ``YOLO(path)`` loads, atomically (no half-written file)."""
    from .._io import atomic_save

    ckpt = model_checkpoint_dict(model, half=half, train_args=train_args, yolo_attn=yolo_attn)
    return atomic_save(path, lambda tmp: torch.save(ckpt, tmp))
