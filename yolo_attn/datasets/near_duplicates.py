"""Near-duplicate images across splits, found with a difference hash (dHash).

A photo's hash: the image in grey, shrunk to 17 x 16 pixels, and one bit per pair of horizontal neighbours
(is the left one brighter?), 256 bits in all. Re-encoded or resized copies of a photo differ in a few bits,
consecutive shots and neighbouring frames of one video in a quarter of them or fewer, unrelated photos in
about half. (On the aquarium export, every validation image within 70 bits of a training image was the
shot just before or after it, or a frame of the same video; a 64-bit hash, 9 x 8 pixels, did not separate
them from unrelated dark scenes.) A validation or test image within :data:`MAX_BITS` bits of a training
image is reported: the metrics on it partly measure memory of the training set. Exact copies are caught
by file path in ``check.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = 16  # the hash has GRID x GRID bits
MAX_BITS = 64  # at most this many differing bits of 256 count as a near-duplicate
FLAT_STD = 1.0  # thumbnails with less grey-level spread than this are featureless and not hashed
_PAIRS_PER_STEP = 2_000_000  # hash pairs compared per step (64 MB of XORs), whatever the split sizes
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def dhash(path: str) -> np.ndarray | None:
    """The difference hash of an image file (GRID * GRID bits, packed into bytes); None when OpenCV cannot read
    it, its name is not UTF-8 (OpenCV's imread crashes the process on one) or the picture is featureless (one
    flat colour)."""
    import cv2

    from .files import not_utf8

    if not_utf8(path):
        return None
    img = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)  # JPEGs decode at 1/8 size: fast, same hash
    if img is not None and min(img.shape) < 4 * GRID:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        return None
    small = cv2.resize(img, (GRID + 1, GRID), interpolation=cv2.INTER_AREA).astype(np.int16)
    if small.std() < FLAT_STD:  # a blank frame: every bit is noise, and every blank frame would match
        return None
    return np.packbits((small[:, :-1] > small[:, 1:]).flatten())


def _hashes(files: list[str]) -> tuple[list[str], np.ndarray]:
    kept, values = [], []
    for f in files:
        h = dhash(f)
        if h is not None:
            kept.append(f)
            values.append(h)
    return kept, np.array(values, dtype=np.uint8).reshape(len(values), GRID * GRID // 8)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Hamming distances between two arrays of packed hashes."""
    return _POPCOUNT[a[:, None, :] ^ b[None, :, :]].sum(axis=2, dtype=np.int32)


@dataclass
class NearDuplicates:
    """Evaluated images with a near-duplicate among the training images: (evaluated, training, bits) each."""

    split: str
    checked: int  # evaluated images hashed
    pairs: list[tuple[str, str, int]]


def near_duplicates(train: list[str], split: str, evaluated: list[str], max_bits: int = MAX_BITS,
                    train_hashes: tuple[list[str], np.ndarray] | None = None) -> NearDuplicates:
    """Every image of ``evaluated`` whose closest training image is within ``max_bits`` bits (the closest one)."""
    t_files, t_hash = train_hashes or _hashes(train)
    e_files, e_hash = _hashes(evaluated)
    pairs = []
    if len(t_hash) and len(e_hash):
        step = max(1, _PAIRS_PER_STEP // len(t_hash))
        for s in range(0, len(e_hash), step):
            d = _distances(e_hash[s:s + step], t_hash)
            best = d.argmin(axis=1)
            for i, j in enumerate(best):
                if d[i, j] <= max_bits:
                    pairs.append((e_files[s + i], t_files[j], int(d[i, j])))
    return NearDuplicates(split, len(e_files), pairs)


def train_hashes(train: list[str]) -> tuple[list[str], np.ndarray]:
    """The training images' hashes, computed once for every evaluated split."""
    return _hashes(train)
