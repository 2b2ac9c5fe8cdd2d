"""What a Ray task of a sweep needs on a node that is not the driver's machine (the Ray backend, :mod:`.backends`).

* **The package, by Ray's own mechanism.** :func:`stage_package` copies the driver's ``yolo_attn`` (with its shipped
  configs, which an editable install keeps outside the package) into a folder that the job's runtime environment
  ships as its ``working_dir`` (:func:`.backends._ray_init`): a node imports the driver's code, whatever it has
  installed. :func:`version_problem`, run first in every task, compares the imported code's hash and Ultralytics'
  version with the driver's and fails the trial with a message naming the node and the versions when they differ (a
  node-local install shadowing the shipped one, another Ultralytics).
* **The sweep folder, shared or not.** The driver writes :data:`MARKER` (a token new for every run) into the sweep
  folder; a task that finds the same token there writes into the folder as the local backend does. A task that does
  not (the folder is not on a filesystem its node shares) runs the trial in a temporary folder of its node, from
  the input files the driver shipped with it (:func:`input_files`: the checked dataset YAML, the model YAML, a
  pretrained checkpoint), and returns every file of the trial folder: the driver writes them into the trial's folder
  (:func:`write_home`), so ``diagnose`` and ``export-check --sweep`` find the checkpoints. The dataset's images must
  then be at the same path on every node.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

from .._io import atomic_write
from .contract import TrialRecord, TrialSpec

MARKER = ".yolo_attn-driver"  # in the sweep folder: the driver's token of this run
SHIPPED = "_shipped.json"  # in the staged package: what the driver runs


def _package_files(pkg: Path) -> dict[str, Path]:
    """The files of package folder ``pkg`` by their path in it, the shipped configs as ``cfg/...`` wherever they are
    (an editable install keeps them in the source tree), caches and :data:`SHIPPED` left out."""
    from ..configs import config_dir

    def walk(root: Path, prefix: str) -> dict[str, Path]:
        return {prefix + str(f.relative_to(root)): f for f in root.rglob("*")
                if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc" and f.name != SHIPPED}

    files = walk(pkg, "")
    if not (pkg / "cfg").is_dir():
        files.update(walk(config_dir(), "cfg/"))
    return files


def package_hash(pkg: Path | None = None) -> str:
    """A hash of the yolo_attn code in ``pkg`` (default: the imported package): two nodes with one hash run one code."""
    import yolo_attn

    pkg = Path(pkg or Path(yolo_attn.__file__).resolve().parent)
    digest = hashlib.sha256()
    for rel, f in sorted(_package_files(pkg).items()):
        digest.update(rel.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def driver_versions(pkg: Path | None = None) -> dict[str, str]:
    """What every node must run: the yolo_attn code (version, and the hash of ``pkg``: default the imported package)
    and the Ultralytics version of the driver."""
    import ultralytics

    import yolo_attn

    return {"yolo_attn": f"{yolo_attn.__version__} (code {package_hash(pkg)})", "ultralytics": ultralytics.__version__}


def stage_package(dest: Path) -> dict[str, str]:
    """A copy of the imported ``yolo_attn`` package under ``dest`` (configs included, caches left out); returns (and
    writes into the copy's ``_shipped.json``) the versions every node must run: the copy's, not the checkout's, which
    may change while the sweep runs."""
    import yolo_attn

    pkg = Path(dest) / "yolo_attn"
    for rel, f in _package_files(Path(yolo_attn.__file__).resolve().parent).items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, pkg / rel)
    expected = driver_versions(pkg)
    (pkg / SHIPPED).write_text(json.dumps(expected))
    return expected


_RAY_OWN = ("CPU", "GPU", "memory", "object_store_memory", "node:", "accelerator_type:")


def node_name() -> str:
    """This node as a user finds it in ``ray status``: Ray's node id (short), address, host name and the custom
    resources it was started with (``ray start --resources``)."""
    try:
        from .backends import import_ray

        ray = import_ray()
        if not ray.is_initialized():  # not in a Ray worker (ray.nodes() would start Ray)
            raise RuntimeError
        node = ray.get_runtime_context().get_node_id()
        info = next((n for n in ray.nodes() if n.get("NodeID") == node), {})
        ip, res = info.get("NodeManagerAddress", "?"), info.get("Resources") or {}
    except Exception:  # not in a Ray worker
        node, ip, res = "?", "?", {}
    own = sorted(k for k in res if not k.startswith(_RAY_OWN))
    return f"node {node[:12]} ({ip}, host {socket.gethostname()}" + (f", resources {', '.join(own)})" if own else ")")


def version_problem(expected: dict[str, str], where: str) -> str | None:
    """Why this node cannot run the driver's trials (another yolo_attn code imported: a node-local install shadowing
    the shipped one; or another Ultralytics), or None. ``expected``: :func:`driver_versions` of the driver."""
    import ultralytics

    import yolo_attn

    mine = {"yolo_attn": f"{yolo_attn.__version__} (code {package_hash()})", "ultralytics": ultralytics.__version__}
    wrong = [k for k in ("yolo_attn", "ultralytics") if mine[k] != expected.get(k)]
    if "yolo_attn" in wrong:
        mine["yolo_attn"] += f" imported from {Path(yolo_attn.__file__).parent}"
    if not wrong:
        return None
    have = ", ".join(f"{k} {mine[k]}" for k in wrong)
    want = ", ".join(f"{k} {expected.get(k)}" for k in wrong)
    return (f"{where} cannot run this sweep's trials: it has {have}, the driver {want} (yolo_attn is shipped to every "
            "node with the task; Ultralytics must be installed at the driver's version on every node)")


def write_marker(root: Path) -> str:
    """Write a new token into the sweep folder's :data:`MARKER`; a task that reads it there shares the folder."""
    token = os.urandom(8).hex()
    atomic_write(Path(root) / MARKER, token)
    return token


def sees_driver_folder(spec: TrialSpec, token: str) -> bool:
    try:
        return (Path(spec.store_root or spec.trial_dir) / MARKER).read_text().strip() == token
    except OSError:
        return False


def input_files(spec: TrialSpec) -> dict[str, bytes]:
    """The files a trial reads besides the dataset's images, by the path the spec names them (dataset YAML, model
    YAML or checkpoint, pretrained checkpoint): shipped with the task for a node that does not share the folder."""
    return {p: Path(p).read_bytes() for p in (spec.data, spec.model_ref, spec.pretrained) if p and Path(p).is_file()}


def localize(spec: TrialSpec, local: Path, files: dict[str, bytes]) -> TrialSpec:
    """``spec`` re-rooted in ``local`` (a folder of this node), its input files written there."""
    def here(path: str) -> str:
        return str(local / "inputs" / hashlib.sha256(path.encode()).hexdigest()[:12] / Path(path).name)

    for path, data in files.items():
        Path(here(path)).parent.mkdir(parents=True, exist_ok=True)
        Path(here(path)).write_bytes(data)
    rel = os.path.relpath(spec.trial_dir, spec.store_root) if spec.store_root else Path(spec.trial_dir).name
    moved = {k: here(v) for k in ("data", "model_ref", "pretrained") if (v := getattr(spec, k)) in files}
    return replace(spec, store_root=str(local / "store"), trial_dir=str(local / "store" / rel), **moved)


def dataset_problem(data_yaml: str, where: str) -> str | None:
    """A dataset folder that is not on this node (it must be at the same path on every node), or None."""
    import yaml

    root = (yaml.safe_load(Path(data_yaml).read_text()) or {}).get("path")
    if root and not Path(root).is_dir():
        return (f"{where}: the dataset folder {root} is not on this node; put the dataset at the same path on every "
                "node (or the sweep folder and the dataset on a filesystem every node shares)")
    return None


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its path relative to it (the trial folder a node sends home)."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(Path(folder).rglob("*")) if f.is_file()}


def write_home(spec: TrialSpec, rec: TrialRecord, files: dict[str, bytes], came_home: bool) -> None:
    """Write a task's returned files into the trial's folder on the driver; a trial that ran in a node's own folder
    gets its run folder there."""
    tdir = Path(spec.trial_dir)
    for rel, data in files.items():
        atomic_write(tdir / rel, data)
    if came_home and rec.run_dir:
        rec.run_dir = str(tdir / Path(rec.run_dir).name)


def run_on_node(spec: TrialSpec, token: str, files: dict[str, bytes], expected: dict[str, str], run) -> tuple:
    """The body of a sweep's Ray task: (record, files for the driver, whether they are the whole trial folder).
    ``run(spec) -> TrialRecord`` trains; ordinary trial errors come back as a failed record (never an exception, so
    Ray retries a task only for a lost worker or node)."""
    where = node_name()
    print(f"[{spec.trial_id}] running on {where}", flush=True)
    problem = version_problem(expected, where)
    if sees_driver_folder(spec, token) or problem:
        rec = spec.record().fail(problem) if problem else run(spec)
        _mark_node(rec, where)
        eval_npz = Path(spec.trial_dir) / "eval.npz"
        return rec, ({"eval.npz": eval_npz.read_bytes()} if rec.ok and eval_npz.is_file() else {}), False
    with tempfile.TemporaryDirectory(prefix="yolo_attn-trial-") as tmp:
        local = localize(spec, Path(tmp), files)
        problem = dataset_problem(local.data, where)
        rec = spec.record().fail(problem) if problem else run(local)
        _mark_node(rec, where)
        return rec, folder_files(Path(local.trial_dir)), True


def _mark_node(rec: TrialRecord, where: str) -> None:
    try:
        from .backends import import_ray

        ray = import_ray()
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        node = None
    rec.hardware = {**(rec.hardware or {}), "ray_node": node, "node": where}
