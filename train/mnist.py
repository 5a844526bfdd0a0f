"""MNIST: find it, download it if needed, verify it, decode it.

Resolution order (first that applies wins; an explicit place that is wrong is an error,
it never silently falls through to the next):

1. ``data_dir`` (the CLI's ``--data``): a directory with the four IDX gz files or
   Keras' ``mnist.npz``, or the path of an ``mnist.npz`` itself;
2. ``$LENET_EDGE_DATA``, same forms;
3. the user cache directory (``$LENET_EDGE_CACHE``, else ``$XDG_CACHE_HOME/lenet-edge/mnist``,
   else ``~/.cache/lenet-edge/mnist``);
4. a download of the IDX gz files into that cache from the standard mirrors, each file
   checked against the md5 of the original distribution before it is kept.

Whatever the source, the decoded content is checked against the sha256 of the original
files (the same value for IDX and npz: the hash of the raw IDX bytes), so a damaged or
different data set never passes as MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError

SPLITS = ("train", "test")
ENV_DATA = "LENET_EDGE_DATA"
ENV_CACHE = "LENET_EDGE_CACHE"
NPZ_NAME = "mnist.npz"

# Mirrors of the original gz files (yann.lecun.com itself now mostly refuses downloads).
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
DOWNLOAD_TIMEOUT_S = 20

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension


@dataclass(frozen=True)
class IdxFile:
    name: str  # gz file name
    count: int
    gz_md5: str  # md5 of the original .gz (what the mirrors serve)
    raw_sha256: str  # sha256 of the decompressed IDX bytes (header + data)


FILES = {
    ("train", "images"): IdxFile(
        "train-images-idx3-ubyte.gz", 60000, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train", "labels"): IdxFile(
        "train-labels-idx1-ubyte.gz", 60000, "d53e105ee54ea40749a09fcbcd1e9432",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("test", "images"): IdxFile(
        "t10k-images-idx3-ubyte.gz", 10000, "9fb629c4189551a2d022fa330f9573f3",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("test", "labels"): IdxFile(
        "t10k-labels-idx1-ubyte.gz", 10000, "ec29112dd5afa0611ce80d1b7f02629c",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
# Keras' mnist.npz keys per split and kind.
NPZ_KEYS = {("train", "images"): "x_train", ("train", "labels"): "y_train",
            ("test", "images"): "x_test", ("test", "labels"): "y_test"}

HOW_TO_POINT = (
    "point lenet-edge at a local copy with --data DIR or LENET_EDGE_DATA=DIR "
    "(DIR holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, or Keras' mnist.npz)"
)


def load_mnist(split: str, data_dir: str | os.PathLike | None = None):
    """Return (images uint8 (N, 28, 28), labels uint8 (N,)) of the 'train' or 'test' split."""
    if split not in SPLITS:
        raise LenetEdgeError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    source = resolve_source(data_dir)
    if source.suffix == ".npz":
        images, labels = _read_npz(source, split)
    else:
        images = _read_idx_gz(source / FILES[split, "images"].name, IMAGE_MAGIC)
        labels = _read_idx_gz(source / FILES[split, "labels"].name, LABEL_MAGIC)
    return _checked(split, images, labels, source)


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lenet-edge" / "mnist"


def resolve_source(data_dir=None) -> Path:
    """The directory of IDX gz files, or the mnist.npz file, that MNIST is read from."""
    if data_dir is not None:
        return _source_in(Path(data_dir).expanduser(), "--data")
    if os.environ.get(ENV_DATA):
        return _source_in(Path(os.environ[ENV_DATA]).expanduser(), f"${ENV_DATA}")
    cache = cache_dir()
    if _has_idx(cache) or (cache / NPZ_NAME).is_file():
        return _source_in(cache, "the cache directory")
    download(cache)
    return cache


def _has_idx(directory: Path) -> bool:
    return all((directory / f.name).is_file() for f in FILES.values())


def _source_in(path: Path, origin: str) -> Path:
    if path.is_file() and path.suffix == ".npz":
        return path
    if not path.exists():
        raise LenetEdgeError(f"MNIST directory {path} (from {origin}) does not exist; {HOW_TO_POINT}")
    if not path.is_dir():
        raise LenetEdgeError(f"{path} (from {origin}) is neither a directory nor an .npz file; "
                             f"{HOW_TO_POINT}")
    if (path / NPZ_NAME).is_file() and not _has_idx(path):
        return path / NPZ_NAME
    missing = [f.name for f in FILES.values() if not (path / f.name).is_file()]
    if missing:
        raise LenetEdgeError(f"MNIST file(s) missing in {path} (from {origin}): "
                             f"{', '.join(missing)}; {HOW_TO_POINT}")
    return path


def _read_idx_gz(path: Path, magic: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise LenetEdgeError(f"MNIST file missing: {path}; {HOW_TO_POINT}") from None
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises BadGzipFile (an OSError) for a wrong header, EOFError when truncated.
        raise LenetEdgeError(f"{path} is not a valid gzip file ({_why(exc)}); it is truncated "
                             "or corrupt: download it again") from None
    return parse_idx(raw, magic, str(path))


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def parse_idx(raw: bytes, magic: int, where: str) -> np.ndarray:
    """Decode IDX bytes (big-endian header: magic, then one uint32 per dimension)."""
    if len(raw) < 4:
        raise LenetEdgeError(f"{where}: too short for an IDX file ({len(raw)} bytes)")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        kind = "image" if magic == IMAGE_MAGIC else "label"
        raise LenetEdgeError(f"{where}: wrong IDX magic 0x{found:08x}, expected 0x{magic:08x} "
                             f"for an MNIST {kind} file; is this the right file?")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise LenetEdgeError(f"{where}: IDX header cut short ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise LenetEdgeError(f"{where}: header promises {'x'.join(map(str, shape))} = {expected} "
                             f"bytes of data but the file holds {len(raw) - header}; "
                             "the file is truncated or corrupt")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return data


def _read_npz(path: Path, split: str):
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = npz[NPZ_KEYS[split, "images"]]
            labels = npz[NPZ_KEYS[split, "labels"]]
    except KeyError as exc:
        raise LenetEdgeError(f"{path} is not Keras' mnist.npz: no array {exc}") from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise LenetEdgeError(f"{path} is not a readable .npz file ({_why(exc)}); "
                             "it is truncated or corrupt") from None
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise LenetEdgeError(f"{path}: expected uint8 arrays, found {images.dtype}/{labels.dtype}")
    return images, labels


def _checked(split: str, images: np.ndarray, labels: np.ndarray, source: Path):
    spec_images, spec_labels = FILES[split, "images"], FILES[split, "labels"]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise LenetEdgeError(f"{source}: {split} images have shape {images.shape}, "
                             "expected (N, 28, 28)")
    if labels.ndim != 1:
        raise LenetEdgeError(f"{source}: {split} labels have shape {labels.shape}, expected (N,)")
    if len(images) != len(labels):
        raise LenetEdgeError(f"{source}: {len(images)} {split} images but {len(labels)} labels; "
                             "the files do not belong together")
    if len(images) != spec_images.count:
        raise LenetEdgeError(f"{source}: {len(images)} {split} images, MNIST has "
                             f"{spec_images.count}; the files are not the MNIST {split} set")
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise LenetEdgeError(f"{source}: {split} label {int(labels[bad])} at index {bad} is "
                             "out of range 0..9; the label file is corrupt")
    for spec, array in ((spec_images, images), (spec_labels, labels)):
        magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
        digest = content_sha256(array, magic)
        if digest != spec.raw_sha256:
            raise LenetEdgeError(
                f"{source}: checksum mismatch for the {split} "
                f"{'images' if array.ndim == 3 else 'labels'} (sha256 of the decoded "
                f"{spec.name[:-3]} is {digest[:16]}..., expected {spec.raw_sha256[:16]}...); "
                "the data is corrupt or not the original MNIST: download it again")
    return np.ascontiguousarray(images), np.ascontiguousarray(labels)


def content_sha256(array: np.ndarray, magic: int) -> str:
    """sha256 of the array as raw IDX bytes, so IDX and npz copies hash alike."""
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    h = hashlib.sha256(header)
    h.update(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    return h.hexdigest()


def download(target: Path, mirrors: list[str] | None = None) -> None:
    """Fetch the four gz files into ``target``, md5-checked; one clear error if impossible."""
    mirrors = MIRRORS if mirrors is None else mirrors
    target.mkdir(parents=True, exist_ok=True)
    for spec in FILES.values():
        dest = target / spec.name
        if dest.is_file() and _md5(dest.read_bytes()) == spec.gz_md5:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror + spec.name
            try:
                data = _fetch(url)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                failures.append(f"{url}: {_why(getattr(exc, 'reason', exc))}")
                continue
            if _md5(data) != spec.gz_md5:
                failures.append(f"{url}: checksum mismatch (md5 {_md5(data)}, "
                                f"expected {spec.gz_md5})")
                continue
            _write_atomic(dest, data)
            break
        else:
            all_bad_checksums = failures and all("checksum mismatch" in f for f in failures)
            what = ("every mirror served a file with the wrong checksum"
                    if all_bad_checksums else "no network or no mirror reachable")
            raise LenetEdgeError(
                f"could not download MNIST {spec.name} ({what}):\n  " + "\n  ".join(failures)
                + f"\n{HOW_TO_POINT}")


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "lenet-edge"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _write_atomic(dest: Path, data: bytes) -> None:
    # Write then rename, so an interrupted download never leaves a half file in the cache.
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        tmp.write(data)
    shutil.move(tmp.name, dest)
