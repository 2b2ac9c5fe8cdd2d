"""The results store of a sweep: one folder, ``config.json`` + ``trials.jsonl`` (+ per-trial folders).

* ``config.json`` — the sweep settings (dataset fingerprint, models with a hash of their YAML,
  seeds, training hyper-parameters). Written once; a rerun into the same folder with different
  settings raises :class:`ConfigMismatch` unless ``allow_changes=True`` (then the new config is
  stored and only records whose ``settings_hash`` matches the new settings count).
* ``trials.jsonl`` — one JSON object per line, one line per finished (``status: ok``) or failed
  (``status: failed``) trial. A line is appended with a single ``write`` of the whole line on a file
  opened in append mode, followed by ``fsync``, under a file lock (``fcntl.flock``) that serialises
  writers from several processes. A crash mid-write leaves a torn last line: readers skip it, and the
  next append first moves it to ``trials.jsonl.torn`` (with a warning) so the new record starts on a
  line of its own. Records are :class:`~.contract.TrialRecord` objects; old lines are read too.
* ``claims/<trial_id>.json`` — which process is training a trial now (host, pid, heartbeat). Two
  sweeps on one folder (two shells, or a local run beside a Ray run) split the trials instead of both
  training every one into the same folder. A claim whose process is gone (same host, pid not running)
  or whose heartbeat is older than :data:`STALE_S` is stale and is taken over.
* ``trials/<trial_id>/`` — the Ultralytics run, validation predictions and evaluation arrays.

Resume rule: a trial whose id has an ``ok`` record (for the current settings) is never trained again;
a ``failed`` one is retried only with ``retry_failed=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
import warnings
from pathlib import Path

from .contract import TrialRecord

from .._io import atomic_write  # noqa: F401  (re-exported: the store's callers import it from here)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

CONFIG = "config.json"
TRIALS = "trials.jsonl"
CLAIMS = "claims"
HEARTBEAT_S = 20.0  # a claiming process refreshes its claims this often
STALE_S = 300.0  # a claim not refreshed for this long belongs to a dead (or frozen) process
HOST = socket.gethostname()


class ConfigMismatch(ValueError):
    """The results folder holds a sweep with different settings."""


def stable_hash(obj, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._held: set[str] = set()  # trial ids claimed by this object
        self._beat: threading.Thread | None = None

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

    def _repair_torn_tail(self) -> None:
        """Move a last line without its newline (a crash mid-write) to ``trials.jsonl.torn``; warn. Under the lock."""
        p = self.trials_path
        if not p.is_file() or p.stat().st_size == 0:
            return
        with open(p, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            data = p.read_bytes()
            cut = data.rfind(b"\n") + 1
            torn = data[cut:]
            try:
                json.loads(torn)
            except ValueError:
                pass
            else:  # a whole record that only lacks its newline (written by hand or another tool)
                f.write(b"\n")
                return
            with open(p.with_name(TRIALS + ".torn"), "ab") as side:
                side.write(torn + b"\n")
            f.truncate(cut)
            os.fsync(f.fileno())
        warnings.warn(f"{p}: removed a torn last line ({len(torn)} bytes, a crash mid-write) before appending; "
                      f"kept in {p.name}.torn", RuntimeWarning, stacklevel=3)

    def append(self, record: TrialRecord | dict) -> dict:
        """Append one trial record as one line (single write + fsync, under a lock); return it as a dict."""
        rec = record if isinstance(record, TrialRecord) else TrialRecord.from_dict(record)
        rec.recorded_at, rec.pid, rec.host = time.time(), os.getpid(), HOST
        line = json.dumps(rec.as_dict(), sort_keys=True, default=str) + "\n"
        if "\n" in line[:-1]:
            raise ValueError("a trial record must serialise to one line")
        with self._lock():
            self._repair_torn_tail()
            fd = os.open(self.trials_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        return rec.as_dict()

    def trial_records(self, settings_hash: str | None = None) -> list[TrialRecord]:
        """Every complete record (torn or foreign lines are skipped), optionally only those of ``settings_hash``."""
        if not self.trials_path.is_file():
            return []
        out = []
        for line in self.trials_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = TrialRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, ValueError, TypeError):
                continue
            if settings_hash is None or rec.settings_hash == settings_hash:
                out.append(rec)
        return out

    def records(self, settings_hash: str | None = None) -> list[dict]:
        """:meth:`trial_records` as JSON objects (what the report reads)."""
        return [r.as_dict() for r in self.trial_records(settings_hash)]

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

    # ---------------------------------------------------------------- claims
    def _claim_path(self, trial_id: str) -> Path:
        return self.root / CLAIMS / f"{trial_id}.json"

    def read_claim(self, trial_id: str) -> dict | None:
        try:
            return json.loads(self._claim_path(trial_id).read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):
            return {}  # unreadable: judged by its age alone

    def claim_is_stale(self, claim: dict | None, trial_id: str) -> bool:
        """True when nobody holds ``trial_id``: no claim, its process is gone, or its heartbeat stopped."""
        if claim is None:
            return True
        if claim.get("host") == HOST and isinstance(claim.get("pid"), int) and not _pid_alive(claim["pid"]):
            return True
        beat = claim.get("heartbeat")
        if not isinstance(beat, (int, float)):
            try:
                beat = self._claim_path(trial_id).stat().st_mtime
            except FileNotFoundError:
                return True
        return time.time() - beat > STALE_S

    def claim(self, trial_id: str, settings_hash: str, retry_failed: bool = False) -> bool:
        """Claim ``trial_id`` for this process; False when it is recorded already or a live process holds it."""
        with self._lock():
            prev = self.latest(settings_hash).get(trial_id)
            if prev and (prev.get("status") == "ok" or not retry_failed):
                return False
            if trial_id in self._held:
                return True
            old = self.read_claim(trial_id)
            if not self.claim_is_stale(old, trial_id):
                return False
            if old is not None:
                warnings.warn(f"{self.root}: taking over the stale claim on {trial_id} (pid {old.get('pid')} on "
                              f"{old.get('host')}, no heartbeat for {STALE_S:.0f} s or process gone)",
                              RuntimeWarning, stacklevel=2)
            now = time.time()
            atomic_write(self._claim_path(trial_id), json.dumps(
                {"trial_id": trial_id, "host": HOST, "pid": os.getpid(), "claimed_at": now, "heartbeat": now}))
            self._held.add(trial_id)
        self._start_heartbeat()
        return True

    def release(self, trial_id: str) -> None:
        with self._lock():
            claim = self.read_claim(trial_id)
            if claim and claim.get("pid") == os.getpid() and claim.get("host") == HOST:
                self._claim_path(trial_id).unlink(missing_ok=True)
            self._held.discard(trial_id)

    def release_all(self) -> None:
        """Release every claim this object holds (a sweep that stops early, e.g. Ctrl-C)."""
        for tid in list(self._held):
            self.release(tid)

    def claimed_by_others(self, trial_ids) -> dict[str, dict]:
        """trial_id -> claim, for the given trials that another live process holds now."""
        out = {}
        for tid in trial_ids:
            c = self.read_claim(tid)
            if tid not in self._held and not self.claim_is_stale(c, tid):
                out[tid] = c or {}
        return out

    def heartbeat(self) -> None:
        """Refresh the heartbeat of every claim this object holds."""
        with self._lock():
            for tid in list(self._held):
                claim = self.read_claim(tid)
                if claim and claim.get("pid") == os.getpid() and claim.get("host") == HOST:
                    claim["heartbeat"] = time.time()
                    atomic_write(self._claim_path(tid), json.dumps(claim))

    def _start_heartbeat(self) -> None:
        if self._beat is not None and self._beat.is_alive():
            return

        def beat():  # for the life of the process (a daemon thread): claims come and go
            while True:
                time.sleep(HEARTBEAT_S)
                if self._held:
                    try:
                        self.heartbeat()
                    except OSError:  # the folder went away; the next claim check will tell
                        pass

        self._beat = threading.Thread(target=beat, name="yolo-attn-claims", daemon=True)
        self._beat.start()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
