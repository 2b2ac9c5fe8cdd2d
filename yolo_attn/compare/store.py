"""The results store of a sweep: one folder, ``config.json`` + ``trials.jsonl`` (+ per-trial folders).

* ``config.json`` — the sweep settings (dataset fingerprint, models with a hash of their YAML,
  seeds, training hyper-parameters). Written once; a rerun into the same folder with different
  settings raises :class:`ConfigMismatch` unless ``allow_changes=True`` (then the new config is
  stored and only records whose ``settings_hash`` matches the new settings count).
* ``trials.jsonl`` — one JSON object per line, one line per finished (``status: ok``) or failed
  (``status: failed``) trial. A line is appended with a single ``write`` of the whole line on a file
  opened in append mode, followed by ``fsync``, under a file lock (``fcntl.flock``) that serialises
  writers from several processes. A crash mid-write leaves a torn last line: readers skip it (with a
  warning naming the line), and the next append first moves it to ``trials.jsonl.torn`` (with a warning)
  so the new record starts on a line of its own. Records are :class:`~.contract.TrialRecord` objects;
  old lines are read too. Damaged lines, non-finite metrics and two different results of one trial are
  reported with file and line (:meth:`Store._read`, :meth:`Store.latest`).
* ``claims/<trial_id>.json`` — which process is training a trial now (host, pid, heartbeat). Two
  sweeps on one folder (two shells, or a local run beside a Ray run) split the trials instead of both
  training every one into the same folder. A claim whose process is gone (same host, pid not running)
  or whose heartbeat is older than :data:`STALE_S` is stale and is taken over. A heartbeat in the future
  of this machine's clock (clock skew between hosts, a copied folder) tells nothing about the holder:
  such a claim is stale once this process has seen it unchanged for :data:`STALE_S` on its own clock
  (a live holder rewrites it every :data:`HEARTBEAT_S`). Deleting a claim file releases the trial.
* ``trials/<trial_id>/`` — the Ultralytics run, validation predictions and evaluation arrays, and
  ``settings.json`` naming the settings hash whose trial trains there. A trial of other settings (a sweep
  continued with ``--allow-changes``) trains into ``trials/<trial_id>-<settings_hash>/`` instead, so it never
  overwrites a folder that records of other settings point to (:meth:`Store.trial_folder`); each record names its
  folder (``TrialRecord.trial_dir``). Folders of older versions carry no ``settings.json``: the records read them.
  A trial id is :func:`trial_id`: the model name made safe for a folder (:func:`trial_name`, one-to-one) and the seed.

Resume rule: a trial whose id has an ``ok`` record (for the current settings) is never trained again;
a ``failed`` one is retried only with ``retry_failed=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import socket
import threading
import time
import warnings
from pathlib import Path

from .contract import SweepConfig, TrialRecord
from .summary import SweepSummary

from .._io import atomic_write, atomic_write_json  # noqa: F401  (atomic_write re-exported: callers import it from here)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

CONFIG = "config.json"
SUMMARY = "summary.json"
TRIALS = "trials.jsonl"
CLAIMS = "claims"
TRIAL_SETTINGS = "settings.json"  # in a trial folder: the settings hash (and trial id) of the trial training there
TRIAL_NAME_MAX = 200  # characters of a model's name in trial folder names (file systems allow 255 per name)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
HEARTBEAT_S = 20.0  # a claiming process refreshes its claims this often
STALE_S = 300.0  # a claim not refreshed for this long belongs to a dead (or frozen) process
HOST = socket.gethostname()
_local_clock = time.monotonic  # how long this process has watched a claim (never set back, unlike the wall clock)


class ConfigMismatch(ValueError):
    """The results folder holds a sweep with different settings."""


class DuplicateRecord(ValueError):
    """``trials.jsonl`` holds two different ``ok`` results of one trial."""


def _non_finite_metrics(rec: TrialRecord) -> list[str]:
    """``ultra.map=nan``-style names of the record's metrics that are not finite numbers."""
    bad = []
    for group in ("ultra", "coco"):
        for key, value in (getattr(rec, group) or {}).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                bad.append(f"{group}.{key}={value!r}")
    return bad


def _result(rec: TrialRecord) -> tuple:
    return rec.ultra, rec.coco, rec.predictions_sha256


def stable_hash(obj, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def trial_name(model: str) -> str:
    """A model name as it names trial folders: the name itself when it uses only ``A-Z a-z 0-9 _ . -``, else those
    characters kept, every run of others replaced by ``_`` and a hash of the whole name added, so that two names
    never share a folder (``yolov5n-att-é`` and ``yolov5n-att-ü`` differ by their hash)."""
    safe = _UNSAFE.sub("_", model)
    if safe == model:
        return model
    return f"{safe}-{hashlib.sha256(model.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def trial_id(model: str, seed: int) -> str:
    """The id (and folder name) of ``model``'s trial with ``seed``."""
    return f"{trial_name(model)}__seed{seed}"


def legacy_trial_id(model: str, seed: int) -> str:
    """The id earlier versions gave the trial (unsafe characters replaced, no hash): how their records name it."""
    return f"{_UNSAFE.sub('_', model)}__seed{seed}"


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._held: set[str] = set()  # trial ids claimed by this object
        self._beat: threading.Thread | None = None
        self._told: set[str] = set()  # warnings given about trials.jsonl lines
        self._watched: dict[str, tuple[str, float]] = {}  # trial id -> (claim as read, local clock when first read so)

    # ---------------------------------------------------------------- config
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    def _read_object(self, path: Path, what: str) -> dict | None:
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not readable as JSON ({exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: not a sweep's {what} (a JSON object is expected)")
        return d

    def read_config(self) -> SweepConfig | None:
        """The sweep's settings (None for a folder without ``config.json``); a damaged file names itself."""
        d = self._read_object(self.config_path, CONFIG)
        return None if d is None else SweepConfig.from_json(d, str(self.config_path))

    # ---------------------------------------------------------------- summary
    def write_summary(self, summary: SweepSummary) -> Path:
        return atomic_write(self.root / SUMMARY, json.dumps(summary.to_json(), indent=2, default=str))

    def init_config(self, config: SweepConfig, allow_changes: bool = False) -> SweepConfig:
        """Store ``config`` or check it against the stored one (informative keys, '_' prefixed, may differ)."""
        prior = self.read_config()
        new = json.loads(json.dumps(config.to_json(), default=str))
        if prior is not None:
            old = prior.to_json()
            diff = sorted(k for k in set(old) | set(new) if not k.startswith("_") and old.get(k) != new.get(k))
            if diff and not allow_changes:
                details = "; ".join(f"{k}: stored {old.get(k)!r}, now {new.get(k)!r}" for k in diff)
                raise ConfigMismatch(
                    f"{self.root} holds a sweep with different settings ({details}). Use another --out, or "
                    "--allow-changes to continue it with the new settings (trials of other settings are then ignored)."
                )
            if not diff:
                return prior
        atomic_write(self.config_path, json.dumps(new, indent=2, sort_keys=True))
        return SweepConfig.from_json(new, str(self.config_path))

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
        """Every complete record, optionally only those of ``settings_hash`` (see :meth:`_read` for bad lines)."""
        return [rec for _, rec in self._read(settings_hash)]

    def _read(self, settings_hash: str | None = None) -> list[tuple[int, TrialRecord]]:
        """(line number, record) of every readable record line.

        A line that is not a whole JSON object (cut short by a crash, or damaged) is skipped with a warning naming
        the file and line: its trial has no record, so the sweep trains it again. An ``ok`` record with a metric that
        is not a finite number (NaN, inf) is read as ``failed`` with a warning: it is no measurement, and
        ``--retry-failed`` trains it again. Lines of JSON that are not trial records (another tool's) are skipped.
        """
        if not self.trials_path.is_file():
            return []
        lines = self.trials_path.read_text(encoding="utf-8").split("\n")
        last = len(lines) - (lines[-1] == "")  # a file ending in a newline has no line after it
        out = []
        for no, line in enumerate(lines[:last], 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                where = "its last line (a crash mid-write?)" if no == last else f"line {no}"
                self._tell(f"{self.trials_path}: {where} is not a complete record ({exc.msg}, column {exc.colno}); "
                           "ignored, so its trial counts as not run and is trained again")
                continue
            try:
                rec = TrialRecord.from_dict(obj) if isinstance(obj, dict) else None
            except (ValueError, TypeError):
                rec = None
            if rec is None or (settings_hash is not None and rec.settings_hash != settings_hash):
                continue
            bad = _non_finite_metrics(rec)
            if rec.ok and bad:
                self._tell(f"{self.trials_path}: line {no} ({rec.trial_id}): {', '.join(bad)} not a finite number; "
                           "read as a failed trial (--retry-failed trains it again)")
                rec.fail(f"non-finite metric in {TRIALS} line {no}: {', '.join(bad)}")
            out.append((no, rec))
        return out

    def _tell(self, message: str) -> None:
        """Warn once per store object (the file is read many times in one sweep)."""
        if message not in self._told:
            self._told.add(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def latest(self, settings_hash: str | None = None) -> dict[str, TrialRecord]:
        """trial_id -> the record that counts: its ``ok`` record, else its last (failed) one.

        The sweep never writes a second ``ok`` record of one trial (settings hash and id); two of them mean a line
        came from elsewhere (appended by hand, another folder). Two with the same result count once (the first);
        two with different results raise :class:`DuplicateRecord` naming both lines.
        """
        best: dict[str, tuple[int, TrialRecord]] = {}
        for no, rec in self._read(settings_hash):
            prev = best.get(rec.trial_id)
            if prev is not None and prev[1].ok:
                if rec.ok and _result(rec) != _result(prev[1]):
                    raise DuplicateRecord(
                        f"{self.trials_path}: lines {prev[0]} and {no} are two different results of trial "
                        f"{rec.trial_id} (settings {rec.settings_hash}); a sweep records one per trial. Delete the "
                        "line that does not belong to this sweep and rerun")
                continue
            best[rec.trial_id] = (no, rec)
        return {tid: rec for tid, (_, rec) in best.items()}

    def trial_dir(self, trial_id: str) -> Path:
        d = self.root / "trials" / trial_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def trial_folder(self, trial_id: str, settings_hash: str, records: list[TrialRecord]) -> Path:
        """Where the trial of ``settings_hash`` trains: ``trials/<trial_id>`` unless that folder belongs to other
        settings (its ``settings.json``; for a folder of an older version, ``records`` -- all of them, any settings
        -- that trained there), then ``trials/<trial_id>-<settings_hash>``."""
        plain = self.root / "trials" / trial_id
        owner = folder_settings(plain)
        if owner is None:  # no settings.json: free, or written by an older version (its records name it)
            rel = str(plain.relative_to(self.root))
            used = {r.settings_hash for r in records if r.trial_id == trial_id and r.trial_dir in (None, rel)}
            owner = settings_hash if used <= {settings_hash} else next(iter(used - {settings_hash}))
        return plain if owner == settings_hash else plain.with_name(f"{trial_id}-{settings_hash}")

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
        beat = self._heartbeat(claim, trial_id)
        if beat is None:
            return True
        if beat <= time.time():
            self._watched.pop(trial_id, None)
            return time.time() - beat > STALE_S
        return self._unchanged_for(trial_id, claim, beat) > STALE_S  # a future heartbeat is no heartbeat

    def _heartbeat(self, claim: dict, trial_id: str) -> float | None:
        beat = claim.get("heartbeat")
        if isinstance(beat, (int, float)) and not isinstance(beat, bool):
            return float(beat)
        try:  # unreadable or without a heartbeat: judged by the file's age
            return self._claim_path(trial_id).stat().st_mtime
        except FileNotFoundError:
            return None

    def _unchanged_for(self, trial_id: str, claim: dict, beat: float) -> float:
        """Seconds (this process's clock) since the claim was first read with exactly this content."""
        seen = json.dumps(claim, sort_keys=True, default=str) + f"@{beat}"
        old = self._watched.get(trial_id)
        if old is None or old[0] != seen:
            self._watched[trial_id] = old = (seen, _local_clock())
        return _local_clock() - old[1]

    def describe_claim(self, trial_id: str, claim: dict | None) -> str:
        """Who holds ``trial_id`` and how to release it, for messages."""
        claim = claim or {}
        who = f"pid {claim.get('pid', '?')} on {claim.get('host', '?')}"
        beat = claim.get("heartbeat")
        if isinstance(beat, (int, float)) and beat > time.time():
            who += (f", heartbeat {beat - time.time():.0f} s in the future of this machine's clock (clock skew or a "
                    f"copied folder): taken over after {STALE_S:.0f} s unchanged")
        return f"{who}; if that process is gone, delete {self._claim_path(trial_id)} to release it"

    def claim(self, trial_id: str, settings_hash: str, retry_failed: bool = False) -> bool:
        """Claim ``trial_id`` for this process; False when it is recorded already or a live process holds it."""
        with self._lock():
            prev = self.latest(settings_hash).get(trial_id)
            if prev is not None and (prev.ok or not retry_failed):
                return False
            if trial_id in self._held:
                return True
            old = self.read_claim(trial_id)
            if not self.claim_is_stale(old, trial_id):
                return False
            if old is not None:
                warnings.warn(f"{self.root}: taking over the stale claim on {trial_id} ({self._claim_path(trial_id)}: "
                              f"pid {old.get('pid')} on {old.get('host')}, no heartbeat for {STALE_S:.0f} s or "
                              "process gone)", RuntimeWarning, stacklevel=2)
            self._watched.pop(trial_id, None)
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


def folder_settings(folder: Path) -> str | None:
    """The settings hash a trial folder's ``settings.json`` names (None: no such file)."""
    try:
        d = json.loads((Path(folder) / TRIAL_SETTINGS).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "unreadable"  # not this sweep's: nothing is written into it
    return str(d.get("settings_hash")) if isinstance(d, dict) else "unreadable"


def mark_trial_folder(folder: Path, trial_id: str, settings_hash: str) -> None:
    """Make ``folder`` the trial folder of ``trial_id`` under ``settings_hash``: refuse (``ValueError``) when its
    ``settings.json`` names other settings (their files are never overwritten), else write it."""
    owner = folder_settings(folder)
    if owner not in (None, settings_hash):
        raise ValueError(f"{folder} holds a trial of other settings ({Path(folder) / TRIAL_SETTINGS}: {owner}, this "
                         f"trial: {settings_hash}); not overwritten")
    Path(folder).mkdir(parents=True, exist_ok=True)
    if owner is None:
        atomic_write_json(Path(folder) / TRIAL_SETTINGS, {"trial_id": trial_id, "settings_hash": settings_hash})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
