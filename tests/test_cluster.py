"""A real two-node Ray cluster on this machine, started by the commands of docs/cluster.md (token authentication as Ray
2.60 does it, every address on the loopback): a 2-model x 2-seed sweep with ``--backend ray --ray-address``, the
second node's raylet killed while a trial trains there. The trial runs again on the head by itself, no finished trial
is lost, ``--pair-hardware`` keeps both arms of each seed on one node (the killed seed's group moves as a whole), the prediction hashes equal the local backend's on this machine (same threads), and ``yolo-attn diagnose``
of the sweep works from the driver. Where this machine allows a mount namespace (``unshare -m``, root), the second
node does not see the sweep folder (a tmpfs over it): its trials send their folders home.

Only the processes of this cluster are stopped at the end (by their ids: those whose command line names the
cluster's own temporary folder), never other Ray processes of the machine (``ray stop --force``, the last line of the
docs' block, stops every Ray process of a node: right for a user's node, not for a shared test machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import REPO, tiny_sweep_data

pytestmark = [pytest.mark.ray, pytest.mark.skipif(find_spec("ray") is None, reason="ray not installed: CI runs the "
                                                  "-m ray tests after installing the ray extra")]
DOC = REPO / "docs" / "cluster.md"
SWEEP_S = 300  # the sweep's wall time at most (it takes about 2 minutes on 2 cores)


def doc_commands() -> list[str]:
    """The command lines of docs/cluster.md's block, in order (comments and blank lines left out)."""
    text = DOC.read_text()
    block = text.split("<!-- cluster-commands -->", 1)[1].split("<!-- /cluster-commands -->", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith(("#", "```"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_hide_folders() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode == 0


def _pids_naming(text: str) -> list[int]:
    """Processes of this machine whose command line names ``text`` (this cluster's temporary folder)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _raylet_of(temp: str, resource: str) -> int:
    """The raylet of the node started with custom resource ``resource``."""
    for pid in _pids_naming(temp):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "raylet" in cmd.split("\0")[0] and resource in cmd:
            return pid
    raise AssertionError(f"no raylet with resource {resource}")


@pytest.fixture
def cluster(tmp_path):
    """The environment of the docs' commands, the head and the second node started by them; stopped at the end."""
    temp = tempfile.mkdtemp(prefix="ya-ray-")  # short: Ray's socket paths live under it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               HEAD_IP="127.0.0.1", NODE_IP="127.0.0.1", PORT=str(_free_port()), NODE_RESOURCES='{"node2": 1}',
               DATA=str(tiny_sweep_data(tmp_path / "data")), OUT=str(tmp_path / "sweep" / "out"), YOLO_OFFLINE="1")
    (tmp_path / "home").mkdir()
    (tmp_path / "sweep").mkdir()
    cmds = doc_commands()
    assert cmds[0] == "ray get-auth-token --generate" and cmds[1] == "export RAY_AUTH_MODE=token"
    hidden = _can_hide_folders()
    try:
        _sh(cmds[0], env)
        env["RAY_AUTH_MODE"] = "token"
        _sh(cmds[2] + f" --temp-dir {temp}", env)  # the head
        node = cmds[3]
        if hidden:  # the second node's own mount namespace: the sweep folder is an empty tmpfs there
            node = f"unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs \"{tmp_path / 'sweep'}\" && {node}'"
        _sh(node, env)
        yield env, cmds[4:], temp, hidden
    finally:
        for pid in _pids_naming(temp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _sh(line: str, env: dict, timeout: float = 120) -> str:
    p = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=timeout, cwd=env["HOME"])
    assert p.returncode == 0, f"{line}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


class _Sweep:
    """The sweep's command running in the background, its output read line by line."""

    def __init__(self, line: str, env: dict):
        self.lines: list[str] = []
        # RAY_DEDUP_LOGS=0: Ray's driver folds lines alike across workers into "[repeated Nx]"; the test reads each
        # (two nodes on one machine also print every worker line twice: each node's log monitor reads the same logs)
        self.proc = subprocess.Popen(["bash", "-c", line], env={**env, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0"},
                                     text=True, cwd=env["HOME"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first line matching ``pattern``."""
        end = time.time() + timeout
        while time.time() < end:
            for ln in list(self.lines):
                m = re.search(pattern, ln)
                if m:
                    return m
            assert self.proc.poll() is None, "the sweep ended:\n" + "".join(self.lines[-60:])
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in {SWEEP_S} s:\n" + "".join(self.lines[-60:]))


def test_two_node_cluster_loses_a_node_mid_trial(cluster, tmp_path):
    env, (compare_line, diagnose_line, stop_line), temp, hidden = cluster
    assert stop_line == "ray stop --force"
    t0 = time.time()
    sweep = _Sweep(compare_line, env)
    try:
        started = sweep.wait_for(r"\[(\S+)\] running on node (\w+) \(.*resources node2\)", SWEEP_S)
        tid, node2 = started.group(1), started.group(2)
        sweep.wait_for(rf"\[{re.escape(tid)}\] epoch 1/3", SWEEP_S)  # training there, 2 epochs to go
        os.kill(_raylet_of(temp, "node2"), signal.SIGKILL)
        killed_at = time.time() - t0
        rc = sweep.proc.wait(timeout=SWEEP_S)
    finally:
        if sweep.proc.poll() is None:
            sweep.proc.kill()
    log = "".join(sweep.lines)
    (tmp_path / "sweep.log").write_text(log)
    assert rc == 0, log[-4000:]
    again = [m.groups() for m in re.finditer(rf"\[{re.escape(tid)}\] running on node (\w+) \(([^)]*)\)", log)]
    assert len(again) >= 2 and again[0][0] == node2 and again[-1][0] != node2, again
    from yolo_attn.compare.store import Store

    out = Path(env["OUT"])
    recs = {r.trial_id: r for r in Store(out).trial_records()}
    assert len(recs) == 4 and all(r.ok for r in recs.values()), {t: r.error for t, r in recs.items()}
    assert recs[tid].hardware["ray_node"][:12] == again[-1][0]
    # --pair-hardware (the docs' line): a placement group per seed, so both arms of a seed ran on one node, the killed
    # seed's too (Ray moved its group to the head with the arms still to run)
    pairs, first = {}, {}
    for r in recs.values():
        pairs.setdefault(r.seed, {})[r.model] = r.hardware["ray_node"][:12]
    for m in re.finditer(r"\[(\S+)\] running on node (\w+)", log):
        first.setdefault(m.group(1), m.group(2))  # where each trial started, before the node was lost
    assert all(len(set(arms.values())) == 1 for arms in pairs.values()), pairs
    assert all(len({first[r.trial_id] for r in recs.values() if r.seed == seed}) == 1 for seed in pairs), first
    came_home = [t for t, r in recs.items() if r.hardware["ray_node"][:12] == node2]  # usually none: node 2's
    # first trial is the one killed (test_cluster_parts.py sends a trial folder home without a cluster)
    for r in recs.values():  # every checkpoint in the driver's folder, wherever the trial ran
        assert (out / r.trial_dir / "train" / "weights" / "last.pt").is_file() and Path(r.run_dir).is_dir()
    local = _local_hashes(env, tmp_path)
    assert {t: r.predictions_sha256 for t, r in recs.items()} == local
    _sh(diagnose_line, env, timeout=300)
    assert (out / "diagnose" / "diagnose.md").is_file()
    print(json.dumps({"trial": tid, "first": f"node {node2} (resources node2)", "killed_at_s": round(killed_at, 1),
                      "again": again[-1], "came_home_from_node2": came_home, "node2_saw_no_sweep_folder": hidden,
                      "hashes": {t: (r.predictions_sha256[:16], local[t][:16]) for t, r in sorted(recs.items())},
                      "arms_by_seed": pairs, "arms_started_on": first,
                      "wall_s": round(time.time() - t0, 1)}, indent=1))


def _local_hashes(env: dict, tmp_path: Path) -> dict[str, str]:
    """The same sweep with the local backend on this machine (1 thread per trial, as each Ray task has)."""
    line = re.sub(r"--backend ray --ray-address \S+", "--threads 1 --workers 2", doc_commands()[4])
    _sh(line.replace('"$OUT"', str(tmp_path / "local")), env, timeout=SWEEP_S)
    from yolo_attn.compare.store import Store

    return {r.trial_id: r.predictions_sha256 for r in Store(tmp_path / "local").trial_records()}
