"""The results store of a sweep: one folder, ``config.json`` + ``trials.jsonl`` (+ per-trial folders).

* ``config.json`` — the sweep settings (dataset fingerprint, models with a hash of their YAML,
  seeds, training hyper-parameters). Written once; a rerun into the same folder with different
  settings raises :class:`ConfigMismatch` unless ``allow_changes=True`` (then the new config is
  stored and only records whose ``settings_hash`` matches the new settings count).
* ``trials.jsonl`` — one JSON object per line, one line per finished (``status: ok``) or failed
  (``status: failed``) trial. A line is appended with a single ``write`` of the whole line on a file
  opened in append mode, followed by ``fsync`` (POSIX appends of one write are not interleaved, and a
  crash leaves at most a partial last line, which :meth:`Store.records` skips). A file lock
  (``fcntl.flock``) serialises writers from several processes (Ray workers on one machine).
* ``trials/<trial_id>/`` — the Ultralytics run, validation predictions and evaluation arrays.

Resume rule: a trial whose id has an ``ok`` record (for the current settings) is never trained again;
a ``failed`` one is retried only with ``retry_failed=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

from .._io import atomic_write  # noqa: F401  (re-exported: the store's callers import it from here)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

CONFIG = "config.json"
TRIALS = "trials.jsonl"


class ConfigMismatch(ValueError):
    """The results folder holds a sweep with different settings."""


def stable_hash(obj, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- config
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    def read_config(self) -> dict | None:
        return json.loads(self.config_path.read_text()) if self.config_path.is_file() else None

    def init_config(self, config: dict, allow_changes: bool = False) -> dict:
        """Store ``config`` or check it against the stored one (keys starting with '_' are informative only)."""
        old = self.read_config()
        new = json.loads(json.dumps(config, default=str))
        if old is not None:
            diff = sorted(k for k in set(old) | set(new) if not k.startswith("_") and old.get(k) != new.get(k))
            if diff and not allow_changes:
                details = "; ".join(f"{k}: stored {old.get(k)!r}, now {new.get(k)!r}" for k in diff)
                raise ConfigMismatch(
                    f"{self.root} holds a sweep with different settings ({details}). Use another --out, or "
                    "--allow-changes to continue it with the new settings (trials of other settings are then ignored)."
                )
            if not diff:
                return old
        atomic_write(self.config_path, json.dumps(new, indent=2, sort_keys=True))
        return new

    # ---------------------------------------------------------------- trials
    @property
    def trials_path(self) -> Path:
        return self.root / TRIALS

    @contextlib.contextmanager
    def _lock(self):
        with open(self.root / ".lock", "a") as fh:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def append(self, record: dict) -> dict:
        """Append one trial record as one line (single write + fsync, under a lock)."""
        record = {**record, "recorded_at": time.time(), "pid": os.getpid()}
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        if "\n" in line[:-1]:
            raise ValueError("a trial record must serialise to one line")
        with self._lock():
            fd = os.open(self.trials_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def records(self, settings_hash: str | None = None) -> list[dict]:
        """Every complete record (a torn last line is skipped), optionally only those of ``settings_hash``."""
        if not self.trials_path.is_file():
            return []
        out = []
        for line in self.trials_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if settings_hash is None or rec.get("settings_hash") == settings_hash:
                out.append(rec)
        return out

    def latest(self, settings_hash: str | None = None) -> dict[str, dict]:
        """trial_id -> its last record (an ``ok`` record wins over later failures, which cannot happen normally)."""
        best: dict[str, dict] = {}
        for rec in self.records(settings_hash):
            tid = rec["trial_id"]
            if tid in best and best[tid].get("status") == "ok" and rec.get("status") != "ok":
                continue
            best[tid] = rec
        return best

    def trial_dir(self, trial_id: str) -> Path:
        d = self.root / "trials" / trial_id
        d.mkdir(parents=True, exist_ok=True)
        return d
