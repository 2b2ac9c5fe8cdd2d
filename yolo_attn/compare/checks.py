"""The sweep's up-front checks of its flags, results folder and model names: each refusal names the flag or file,
and all of them run before ``config.json``, the first worker process and the first trial.

The settings the trials share (training arguments, ``--pretrained``, the optimizer) are checked in :mod:`.sweep`
(``check_sweep_settings``, ``require_one_optimizer``), the dataset by :func:`yolo_attn.datasets.checked_dataset`.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from .stats import check_n_boot
from .store import TRIAL_NAME_MAX, Store, trial_name

MAX_SEED = 2**32 - 1  # Ultralytics seeds numpy with the trial's seed, which takes 0 .. 2**32 - 1
MAX_SEEDS = 10_000  # --seeds N: trials per model (a count beyond any sweep; a typo must not plan 10**9 trials)
# --boot: the report holds replicates x validation images weights (8 bytes each: 800 MB for 5000 images); the
# variance it estimates is then within 1% (relative error sqrt(2 / B)), far past what the interval needs
MAX_BOOT = 20_000


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_seeds(seeds) -> list[int]:
    """The sweep's seeds from ``--seeds N`` (an int: 0..N-1) or ``--seed-list`` (distinct whole numbers from 0 to
    :data:`MAX_SEED`); ``ValueError`` naming the flag otherwise."""
    if _whole(seeds):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"--seeds must be from 1 to {MAX_SEEDS}, got {seeds}")
        return list(range(int(seeds)))
    seed_list = list(seeds)
    if not seed_list:
        raise ValueError("--seed-list: need at least one seed")
    bad = [s for s in seed_list if not (_whole(s) and 0 <= s <= MAX_SEED)]
    if bad:
        raise ValueError(f"--seed-list {bad[0]!r}: a seed is a whole number from 0 to {MAX_SEED}")
    twice = sorted({int(s) for s in seed_list if seed_list.count(s) > 1})
    if twice:
        raise ValueError(f"--seed-list: seed {', '.join(map(str, twice))} given more than once (a seed is one trial "
                         "per model; the same seed twice would train the same trial twice)")
    return [int(s) for s in seed_list]


def check_flags(seeds, n_boot: int, threads: int | None, workers: int | None, max_trials: int | None,
                tolerance: float) -> list[int]:
    """The sweep's numeric flags, before anything is written or started; returns the seed list."""
    check_n_boot(n_boot)  # the report needs it
    if n_boot > MAX_BOOT:
        raise ValueError(f"--boot {n_boot}: at most {MAX_BOOT} bootstrap replicates (their weights take replicates x "
                         "validation images x 8 bytes of memory; the default 1000 estimates the variance within 5%)")
    if threads is not None and not (_whole(threads) and threads >= 1):
        raise ValueError(f"--threads must be 1 or more (CPU threads per trial), got {threads!r}")
    from .workers import check_workers  # here: the package's import must not load the worker module that
    # `python -m yolo_attn.compare.workers` runs (runpy warns when it is in sys.modules already)

    check_workers(workers)
    if max_trials is not None and not (_whole(max_trials) and max_trials >= 0):
        raise ValueError(f"--max-trials must be 0 or more (0: train nothing now, report what is recorded), "
                         f"got {max_trials!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not (
            math.isfinite(tolerance) and 0 <= tolerance <= 1):
        raise ValueError(f"--tolerance must be a number from 0 to 1 (a difference of mAP), got {tolerance!r}")
    return check_seeds(seeds)


def check_batch(batch) -> None:
    """The trials' batch size: a number the sweep records and every trial trains with. Ultralytics' AutoBatch
    (``batch=-1``, or a fraction of GPU memory) picks it when each trial starts (16 on a CPU), so it is refused."""
    if isinstance(batch, (int, float)) and not isinstance(batch, bool) and (batch == -1 or 0 < batch < 1):
        raise ValueError(f"--batch {batch}: Ultralytics' AutoBatch would pick the batch size as each trial starts (16 on "
                         "a CPU, what fits the GPU's memory otherwise), so the sweep could not record what trained; "
                         "give a batch size, e.g. --batch 16")


def check_device(device) -> None:
    """``--device`` as Ultralytics reads it (``select_device``: cpu, mps, 0, 0,1, ...); ``ValueError`` naming the flag.
    Ultralytics' side effects on this process (the CUDA_VISIBLE_DEVICES of older versions, torch's thread count) are
    undone."""
    if device is None:
        return
    import torch
    from ultralytics.utils.torch_utils import select_device

    visible, threads = os.environ.get("CUDA_VISIBLE_DEVICES"), torch.get_num_threads()
    try:
        select_device(str(device), verbose=False)
    except Exception as exc:  # Ultralytics raises ValueError, older versions other types
        first = " ".join(str(exc).split(". ")[0].split())
        raise ValueError(f"--device {device}: not a device Ultralytics can train on here ({first})") from None
    finally:
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
        torch.set_num_threads(threads)


def check_ddp(device, workers: int | None, batch, backend: str = "local") -> int:
    """A ``--device`` naming several GPUs (``0,1``) trains each trial on all of them with Ultralytics' DDP; refused
    before anything trains where that cannot work: several local worker processes (each would train on the same
    GPUs at once), a batch size the GPUs cannot share evenly, a machine with fewer GPUs (the local backend; a Ray
    cluster's nodes are checked when the sweep connects). Returns the devices per trial (1: no DDP)."""
    from .._ultralytics.ddp import device_count

    n = device_count(device)
    if n < 2:
        return n
    if backend == "local" and workers is not None and workers > 1:
        raise ValueError(f"--device {device} trains each trial on {n} GPUs at once (DDP); --workers {workers} would run "
                         f"{workers} such trials on the same GPUs together. Use --workers 1 (or 0), or give each trial "
                         "one GPU (leave --device out: one worker per GPU)")
    if isinstance(batch, int) and not isinstance(batch, bool) and batch % n:
        raise ValueError(f"--batch {batch} with --device {device}: each of the {n} GPUs trains on batch/{n} images, so "
                         f"the batch must be a multiple of {n} (e.g. --batch {max(n, batch - batch % n)})")
    if backend == "local":
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < n:
            raise ValueError(f"--device {device}: DDP across {n} GPUs, and this machine has {have} CUDA GPU(s) "
                             "(Ultralytics trains with several devices on CUDA only)")
    return n


def open_results(out_dir: Path) -> Store:
    """The results folder's store, once the folder is known to take files; ``ValueError`` naming ``--out`` for a
    read-only folder, a file in the way or a path that cannot be made."""
    try:
        store = Store(out_dir)
        probe = Path(out_dir) / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {out_dir}: cannot write the results there ({exc.strerror or exc})") from None
    return store


def check_model_names(refs: list[str], labels: list[str]) -> None:
    """Every model (``refs``, named ``labels``) trains into folders of its own: names that share a folder-safe form
    (also when they differ only in case, as on case-insensitive file systems) and names too long for a file name are
    refused, naming the files."""
    seen: dict[str, int] = {}
    for i, (ref, label) in enumerate(zip(refs, labels)):
        safe = trial_name(label)
        if len(safe) > TRIAL_NAME_MAX:
            raise ValueError(f"model {ref}: its name is {len(label)} characters, too long for the trial folders "
                             f"(at most {TRIAL_NAME_MAX}: a file name holds 255); rename or copy the file to a shorter name")
        j = seen.setdefault(safe.casefold(), i)
        if j != i:
            what = "the same name" if labels[j] == label else "names that share a folder name"
            raise ValueError(f"models {refs[j]} and {ref} have {what} ({safe}): their trials would train into one "
                             "folder; rename one of the files")
