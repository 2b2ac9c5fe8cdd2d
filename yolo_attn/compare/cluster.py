"""What a Ray task of a sweep needs on a node that is not the driver's machine (the Ray backend, :mod:`.backends`).

* **The package, by Ray's own mechanism.** :func:`stage_package` copies the driver's ``yolo_attn`` (with its shipped
  configs, which an editable install keeps outside the package) into a folder that the task's runtime environment
  ships as ``py_modules``: every node imports the driver's code, whatever it has installed. The copy carries
  ``_shipped.json`` (the driver's version and Ultralytics'); :func:`version_problem`, run first in every task,
  fails the trial with a message naming the node and the versions when the node imported another ``yolo_attn``
  (a node-local install shadowing the shipped one) or has another Ultralytics.
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


def driver_versions() -> dict[str, str]:
    import ultralytics

    import yolo_attn

    return {"yolo_attn": yolo_attn.__version__, "ultralytics": ultralytics.__version__}


def stage_package(dest: Path) -> str:
    """A copy of the imported ``yolo_attn`` package under ``dest`` (configs included, caches left out) with the
    driver's versions and the copy's hash in ``_shipped.json``; returns the package folder for ``py_modules``."""
    import yolo_attn

    from ..configs import config_dir

    src = Path(yolo_attn.__file__).resolve().parent
    pkg = Path(dest) / "yolo_attn"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if not (pkg / "cfg").is_dir():  # an editable install: the shipped configs live in the source tree
        shutil.copytree(config_dir(), pkg / "cfg", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for f in sorted(p for p in pkg.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes())
    (pkg / SHIPPED).write_text(json.dumps({**driver_versions(), "sha256": digest.hexdigest()[:16]}))
    return str(pkg)


def node_name() -> str:
    """This node as a user finds it in ``ray status``: Ray's node id (short), address and host name."""
    try:
        import ray

        node, ip = ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
    except Exception:  # not in a Ray worker
        node, ip = "?", "?"
    return f"node {node[:12]} ({ip}, host {socket.gethostname()})"


def version_problem(expected: dict[str, str], where: str) -> str | None:
    """Why this node cannot run the driver's trials (another yolo_attn imported, or another Ultralytics), or None."""
    import ultralytics

    import yolo_attn

    shipped_file = Path(yolo_attn.__file__).resolve().parent / SHIPPED
    shipped = json.loads(shipped_file.read_text()) if shipped_file.is_file() else None
    mine = {"yolo_attn": (shipped or {}).get("yolo_attn", f"{yolo_attn.__version__} at {Path(yolo_attn.__file__).parent}"),
            "ultralytics": ultralytics.__version__}
    wrong = [k for k in ("yolo_attn", "ultralytics") if mine[k] != expected.get(k)]
    if shipped is None and "yolo_attn" not in wrong:
        wrong.insert(0, "yolo_attn")  # the version agrees but the code is the node's own install, not the driver's
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
        import ray

        node = ray.get_runtime_context().get_node_id()
    except Exception:
        node = None
    rec.hardware = {**(rec.hardware or {}), "ray_node": node, "node": where}
