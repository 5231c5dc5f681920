"""The user's own data (DESIGN section 9): a `.npz`, a folder of images in class subfolders, or a CSV
of text and label, validated in memory, then copied into the datasets folder named by its content.

    data = read_user_dataset("faces.npz")      # every check; DatasetRefused says what is wrong; no writes
    name = save(data)                          # "user:3fa9c2d1e0b47a65", stored under datasets_dir()

What an import stores, in `datasets_dir()/<16 hex digits>/`: `dataset.json` (title, source file name,
shape, class names, split and preprocessing rules, sizes, the full SHA-256) and `.npy` arrays
(`train_x`, `train_y`, `test_x`, `test_y`; text keeps its rows in `texts.json` instead of `*_x`). Never
a pickle: arrays are written and read with allow_pickle=False. The dataset's name is `user:` and the
first 16 hex digits of a SHA-256 over the arrays, the texts and every field that decides a sample's
tensor, so the name in a run's config.json fixes its data: loading recomputes the hash and refuses
stored bytes that changed (`load`), and the same file imported twice is one dataset.

Exactness (section 6): a sample's tensor depends on that sample and fixed constants alone.
- uint8 pixels (image folders, uint8 `.npz`): scaled by 1/255, then standardised with the fixed
  constants mean 0.5, std 0.5 per channel (never the pool's statistics);
- float `.npz` inputs: taken as given (mean 0, std 1): the user's features are the features;
- CSV text: hashed token ids (text.py), no vocabulary learned from the rows.
The train/test split is a rule on each sample alone: one sample in five, by the CRC-32 of its own
bytes (its text for CSV rows), is a test sample, as text.py splits Rotten Tomatoes. Sample ids are
the train rows in file order (image folders: class folders by name, files by name).

No torch here: sources.DATASETS resolves `user:` names through `find_spec` and lists imported sets,
data.py turns `load`'s arrays into tensors.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from purge_engine.datasets import text
from purge_engine.datasets.specs import MODELS, TEXT_BUCKETS, TEXT_LENGTH, DatasetSpec, model_fits

PREFIX = "user:"
HASH_DIGITS = 16  # of the SHA-256, in the name and the folder
RULE = "user-data-v1"  # the rules above; it enters the hash, so a changed rule is a new dataset
DATASETS_DIR_ENV = "PURGE_DATASETS_DIR"  # where imports are stored (default: datasets/ in the runs folder)
RUNS_DIR_ENV = "PURGE_RUNS_DIR"  # the runs folder, as the dashboard reads it (dashboard/state.py)
SPEC_FILE = "dataset.json"
TEXTS_FILE = "texts.json"

# Every bound below is checked on what a header declares (an image's size and mode, an .npy header's shape and
# dtype, a CSV record's length) before the memory it implies is taken: an upload never runs the server out of it.
MAX_BYTES = 256 * 2**20  # a file (or a folder's images together), as uploaded
MAX_VALUES = 2**28  # input values in x, as stored (1 GiB as float32)
MAX_IMPORT_BYTES = 2**30  # memory an import takes: x as stored, as uint8 or float32, and its train/test copy
MAX_SAMPLES = 1_000_000  # samples: a CSV's rows (blank lines count), a folder's images, x's rows
MIN_CLASSES, MAX_CLASSES = 2, 1000
MIN_PER_CLASS = 2  # samples per class in the file: at least one can train and one can test
MAX_CHANNELS = 4
# Pixels, height or width of an image (an .npz's too): what the built-in models train on. resnet18, the
# default above 32x32, takes 2.5 GB at 128x128 and batch 32 on CPU (10 GB at 256x256).
MAX_SIDE = 128
MAX_INPUT_VALUES = MAX_CHANNELS * MAX_SIDE**2  # values per sample (65,536): the MLP's first layer is then 64 MiB
MAX_TEXT_CHARS = 100_000  # per CSV row
MAX_ROW_CHARS = 1_000_000  # a CSV record, all its columns: refused before the csv module splits it
MAX_NAME_CHARS = 1000  # a class name in an .npz's classes
MAX_NPY_HEADER = 10_000  # bytes of an .npy header (numpy's own bound for a safe load; np.save writes ~128)
MAX_ZIP_DIRECTORY = 2**16  # bytes of an .npz's zip directory (np.savez's three members take under 300)
PIXEL_MEAN, PIXEL_STD = 0.5, 0.5  # the fixed constants of uint8 inputs scaled to [0, 1]
FLOAT_DTYPES = ("float16", "float32", "float64")
NPZ_KEYS = ("x", "y", "classes")  # classes: optional, one name per class
IMAGE_MODELS = ("digits-cnn", "mnist-cnn", "rgb-cnn")  # the default when one fits the shape, else mlp
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
SPLIT_RULE = "one sample in five to test, by CRC-32 of its own bytes (text: of its text)"
_HEX = re.compile(rf"^[0-9a-f]{{{HASH_DIGITS}}}$")
_IDENTITY = ("rule", "modality", "shape", "class_names", "max_value", "norm_mean", "norm_std", "buckets")


class DatasetRefused(ValueError):
    """A user's dataset that cannot be imported; the message names what is wrong and what is allowed."""


@dataclass(frozen=True, eq=False)
class UserData:
    """A user's dataset, validated, in memory: exactly what `save` writes and `load` returns.

    arrays: train_y, test_y int64 (N,), (M,); images also train_x, test_x (N, C, H, W) uint8 or float32.
    texts: text datasets' rows {"train": [...], "test": [...]}; images: None."""

    record: dict  # dataset.json
    arrays: dict[str, np.ndarray]
    texts: dict[str, list[str]] | None = None

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def spec(self) -> DatasetSpec:
        return spec_of(self.record)


def is_user_name(name) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def datasets_dir() -> Path:
    """Where imported datasets live: $PURGE_DATASETS_DIR, else datasets/ in the runs folder ($PURGE_RUNS_DIR,
    as the dashboard's, else runs/), so the CLI and the dashboard share them."""
    return Path(os.environ.get(DATASETS_DIR_ENV) or Path(os.environ.get(RUNS_DIR_ENV) or "runs") / "datasets")


def folder_of(name: str) -> Path:
    digits = name[len(PREFIX):] if is_user_name(name) else ""
    if not _HEX.match(digits):
        raise ValueError(f"dataset: got {name!r}, a user dataset is named {PREFIX} and {HASH_DIGITS} hex digits")
    return datasets_dir() / digits


def _refuse(source: str, problem: str) -> DatasetRefused:
    return DatasetRefused(f"dataset: {source}: {problem}; nothing was stored")


# -- reading and checking (no writes) ---------------------------------------------------------------
def read_user_dataset(path, max_bytes: int = MAX_BYTES, source_name: str | None = None) -> UserData:
    """The dataset at path (a .npz, a .csv, or a folder of class subfolders of images), every check
    passed; DatasetRefused naming the problem otherwise. Writes nothing. source_name: the name shown
    (an upload's own file name, when path is a temporary copy)."""
    path = Path(path)
    shown = source_name or path.name
    path = path.resolve()  # the path named itself may be a link; inside a folder, links are refused
    if not path.exists():
        raise _refuse(shown, "no such file or folder; give a .npz, a .csv or a folder of images in class "
                             "subfolders")
    kind = "folder" if path.is_dir() else path.suffix.lower().lstrip(".")
    if kind not in _READERS or (kind == "folder") != path.is_dir():
        raise _refuse(shown, f"a .{kind or '(no extension)'} file; must be a .npz (arrays x and y), a .csv "
                             "(columns text and label) or a folder of images in class subfolders")
    size = _size(path)
    if size > max_bytes:
        raise _refuse(shown, f"{size:,} bytes, must be at most {max_bytes:,} bytes")
    x, y, class_names, modality = _READERS[kind](path, shown)
    return _finish(shown, kind, x, y, class_names, modality)


def _size(path: Path) -> int:
    """Bytes of a file, or of the regular files under a folder (links are not followed)."""
    if path.is_dir():
        return sum(st.st_size for top, _, files in os.walk(path) for st in (os.lstat(Path(top, f)) for f in files)
                   if stat.S_ISREG(st.st_mode))
    return path.stat().st_size


def open_regular(path, follow_links: bool = False):
    """path opened to read bytes, only when it is a regular file: a FIFO would block the read for ever, a
    device (/dev/zero) never ends, a link may lead anywhere (followed only when follow_links). OSError
    otherwise, its strerror saying what the path is."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP and not follow_links:
            raise OSError(errno.ELOOP, "a symbolic link, not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "a FIFO, device, socket or folder, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _open_file(shown: str, where: str, path: Path):
    try:
        return open_regular(path)
    except OSError as err:
        raise _refuse(shown, f"{where} cannot be read ({err.strerror or err}); a dataset is read from regular "
                             "files only, never a link, a FIFO or a device") from None


def _read_npz(path: Path, shown: str):
    """x (N, C, H, W), (N, H, W) or (N, D); y (N,) integers; optional classes (K,) strings. The zip
    directory and the headers are checked before any array is read (a bad shape or a huge array is
    refused unread)."""
    with _open_file(shown, shown, path) as handle:
        if handle.read(6) == b"\x93NUMPY":
            raise _refuse(shown, "a single .npy array, not a .npz archive; write one with np.savez(path, x=x, y=y)")
        if not zipfile.is_zipfile(handle):
            raise _refuse(shown, "not a .npz archive (no zip structure); write one with np.savez(path, x=x, y=y)")
        _check_zip_directory(shown, handle)
        handle.seek(0)
        try:
            archive = np.load(handle, allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - not a zip, truncated, ...: a refusal, never a traceback
            raise _refuse(shown, f"not a .npz archive ({err}); write one with np.savez(path, x=x, y=y)") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _refuse(shown, "not a .npz archive; write one with np.savez(path, x=x, y=y)")
        with archive:
            x, y, names = _npz_arrays(shown, archive)
    return (_image_inputs(shown, x), _labels(shown, y), _npz_class_names(shown, names, y), "image")


def _check_zip_directory(shown: str, handle) -> None:
    """The size of the zip's directory, from its end record, before zipfile reads the directory whole
    (millions of entries would take gigabytes). The record is found as zipfile finds it."""
    end = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, end - 22 - 0xFFFF))  # the end record (22 bytes) and a comment of up to 64 KiB
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    zip64 = at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07"  # a zip64 record would override the sizes
    size = struct.unpack("<L", tail[at + 12:at + 16])[0] if 0 <= at <= len(tail) - 22 else -1
    if zip64 or not 0 <= size <= MAX_ZIP_DIRECTORY:
        shown_size = "a zip64 directory" if zip64 else f"a zip directory of {size:,} bytes"
        raise _refuse(shown, f"{shown_size}; an .npz's directory must be a plain one of at most "
                             f"{MAX_ZIP_DIRECTORY:,} bytes (x, y and classes); write it with np.savez(path, x=x, y=y)")


def _npz_arrays(shown: str, archive) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """x, y and classes (or None), each read only after every header passed."""
    keys = list(archive.files)
    unknown = [k for k in keys if k not in NPZ_KEYS]
    if unknown or "x" not in keys or "y" not in keys:
        raise _refuse(shown, f"holds arrays {', '.join(keys) or 'none'}; must hold x and y (and optionally "
                             "classes), nothing else")
    _check_npz_headers(shown, {k: _npy_header(archive, k, shown) for k in keys})
    try:
        return archive["x"], archive["y"], (archive["classes"] if "classes" in keys else None)
    except Exception as err:  # noqa: BLE001 - a damaged member (CRC, truncated): a refusal
        raise _refuse(shown, f"an array cannot be read ({err}); write the file again with np.savez") from None


def _npy_header(archive, key: str, shown: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of one array of the archive, from its .npy header alone. The header's length is
    checked before the header is read: numpy reads it whole, and a header may declare 4 GiB."""
    try:
        with archive.zip.open(key + ".npy") as handle:
            version = np.lib.format.read_magic(handle)
            length = handle.read(2 if version == (1, 0) else 4)
            size = int.from_bytes(length, "little")
            if size > MAX_NPY_HEADER:
                raise ValueError(f"a header of {size:,} bytes; at most {MAX_NPY_HEADER:,}")
            header = io.BytesIO(length + handle.read(size))
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(header)
    except Exception as err:  # noqa: BLE001
        raise _refuse(shown, f"array {key} is not a readable .npy array ({err})") from None
    return shape, dtype


def _check_npz_headers(shown: str, headers: dict) -> None:
    pickled = [k for k, (_, dtype) in headers.items() if dtype.hasobject]
    if pickled:
        raise _refuse(shown, f"array {pickled[0]} has dtype object, which only a pickle holds, and a pickle is "
                             "never loaded here; save numbers (x: uint8 or float, y: integers)")
    (x_shape, x_dtype), (y_shape, y_dtype) = headers["x"], headers["y"]
    _check_x_header(shown, x_shape, x_dtype)
    _check_y_header(shown, y_shape, y_dtype, x_shape[0])
    if not 1 <= x_shape[0] <= MAX_SAMPLES:
        raise _refuse(shown, f"x holds {x_shape[0]} samples; must hold 1 to {MAX_SAMPLES:,}")
    if min(x_shape[1:]) < 1:
        raise _refuse(shown, f"x has shape {x_shape}; every sample needs at least one value on each axis")
    if len(x_shape) == 4 and not 1 <= x_shape[1] <= MAX_CHANNELS:
        hint = " (it looks channels-last: use x.transpose(0, 3, 1, 2))" if x_shape[3] <= MAX_CHANNELS else ""
        raise _refuse(shown, f"x has shape {x_shape}: {x_shape[1]} channels; must be (N, C, H, W) with C in "
                             f"[1, {MAX_CHANNELS}]{hint}")
    _check_sizes(shown, "x", _as_nchw(x_shape), x_dtype)
    if "classes" in headers:
        _check_classes_header(shown, *headers["classes"])


def _check_x_header(shown: str, shape: tuple, dtype: np.dtype) -> None:
    if len(shape) not in (2, 3, 4):
        raise _refuse(shown, f"x has shape {shape}; must be (N, C, H, W) images, (N, H, W) one-channel images "
                             "or (N, D) feature vectors")
    if dtype.name != "uint8" and dtype.name not in FLOAT_DTYPES:
        raise _refuse(shown, f"x has dtype {dtype}; must be uint8 (pixels 0..255) or one of "
                             f"{', '.join(FLOAT_DTYPES)} (used as given); convert with x.astype(np.float32)")


def _check_y_header(shown: str, shape: tuple, dtype: np.dtype, samples: int) -> None:
    if len(shape) != 1 or dtype.kind not in "iu":
        raise _refuse(shown, f"y has shape {shape} and dtype {dtype}; must be (N,) integers, one class index "
                             "per sample")
    if samples != shape[0]:
        raise _refuse(shown, f"x holds {samples} samples but y {shape[0]} labels; they must be the same "
                             "length, one label per sample")


def _check_classes_header(shown: str, shape: tuple, dtype: np.dtype) -> None:
    if len(shape) != 1 or dtype.kind != "U":
        raise _refuse(shown, f"classes has shape {shape} and dtype {dtype}; must be (K,) strings, one name per class")
    if shape[0] > MAX_CLASSES or dtype.itemsize // 4 > MAX_NAME_CHARS:
        raise _refuse(shown, f"classes has shape {shape} and dtype {dtype}; must name at most {MAX_CLASSES} classes "
                             f"in at most {MAX_NAME_CHARS} characters each")


def _as_nchw(shape: tuple) -> tuple[int, int, int, int]:
    """(N, C, H, W) of x's shape, as _image_inputs reshapes it."""
    return {2: lambda s: (s[0], 1, 1, s[1]), 3: lambda s: (s[0], 1, s[1], s[2]), 4: tuple}[len(shape)](shape)


def _check_sizes(shown: str, what: str, shape: tuple[int, int, int, int], dtype: np.dtype) -> None:
    """What a dataset of this (N, C, H, W) shape and dtype takes, refused before any of it is allocated: per
    sample (sides, values: what a model trains on), and in all (values, memory to import)."""
    n, channels, height, width = shape
    per_sample, values = channels * height * width, math.prod(shape)  # Python ints: a header's shape never wraps
    if min(height, width) > 1 and max(height, width) > MAX_SIDE:
        raise _refuse(shown, f"{what}: images of {height}x{width} pixels; at most {MAX_SIDE} on a side, what the "
                             "built-in models train on (nothing is resized here: resize them, or give (N, D) "
                             "feature vectors)")
    if per_sample > MAX_INPUT_VALUES:
        raise _refuse(shown, f"{what}: {per_sample:,} values per sample ({channels}x{height}x{width}); at most "
                             f"{MAX_INPUT_VALUES:,}, what the built-in models train on")
    if values > MAX_VALUES:
        raise _refuse(shown, f"{what}: {n:,} samples of {channels}x{height}x{width} are {values:,} values; at "
                             f"most {MAX_VALUES:,}")
    kept = 1 if dtype == np.uint8 else 4  # bytes of a value once read: uint8 kept, floats as float32
    need = values * (dtype.itemsize + 2 * kept)  # as stored, as kept, and the train/test copy
    if need > MAX_IMPORT_BYTES:
        raise _refuse(shown, f"{what}: {n:,} samples of {channels}x{height}x{width} ({dtype}) take {need:,} bytes "
                             f"of memory to import (as stored, as {'uint8' if kept == 1 else 'float32'} and split); "
                             f"at most {MAX_IMPORT_BYTES:,}: give fewer samples, or uint8 / float32 values")


def _image_inputs(shown: str, x: np.ndarray) -> np.ndarray:
    """x as (N, C, H, W): uint8 kept, floats as float32 (float32 not copied), refused when any value is not
    finite (checked a block of rows at a time: no array of x's size is made for it)."""
    if x.dtype != np.uint8:
        with np.errstate(over="ignore"):
            x = x.astype(np.float32, copy=False)
        step, axes = max(1, 2**20 // max(1, x[0].size)), tuple(range(1, x.ndim))
        bad = np.concatenate([~np.isfinite(x[i:i + step]).all(axis=axes) for i in range(0, len(x), step)])
        if bad.any():
            raise _refuse(shown, f"x holds NaN or infinite values (or values beyond float32) in {int(bad.sum())} "
                                 f"sample(s), the first at row {int(np.argmax(bad))}; every value must be finite")
    return np.ascontiguousarray(x.reshape(_as_nchw(x.shape)))


def _labels(shown: str, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= MAX_CLASSES):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise _refuse(shown, f"label {bad} (sample {int(np.argmax(y == bad))}, counting from 0) is out of range; "
                             f"labels must be class indices in [0, {MAX_CLASSES - 1}], every class 0..K-1 present")
    return y.astype(np.int64)


def _npz_class_names(shown: str, names, y: np.ndarray) -> tuple[str, ...]:
    n_classes = int(y.max()) + 1 if len(y) else 0
    if names is None:
        return tuple(str(k) for k in range(n_classes))
    if len(names) != n_classes or len(set(names.tolist())) != len(names):
        raise _refuse(shown, f"classes names {len(names)} classes ({len(set(names.tolist()))} distinct) but the "
                             f"labels run 0..{n_classes - 1}; give one distinct name per class")
    return tuple(str(n) for n in names.tolist())


def _read_folder(path: Path, shown: str):
    """folder/<class>/<image>: classes are the subfolders by name; hidden entries (.DS_Store) are skipped."""
    entries = _class_folders(path, shown)
    items = []
    for label, folder in enumerate(entries):
        files = _visible(folder)
        nested = [p.name for p in files if p.is_dir()]
        if nested:
            raise _refuse(shown, f"{folder.name}/{nested[0]} is a folder inside a class folder; a class folder "
                                 "holds images only")
        items += [(f"{folder.name}/{p.name}", p, label) for p in files]
    if len(entries) < MIN_CLASSES:
        raise _refuse(shown, f"{len(entries)} class subfolder(s); must have at least {MIN_CLASSES} (one per class)")
    labels = np.array([label for _, _, label in items], dtype=np.int64)
    return (_decode_images(shown, items), labels, tuple(p.name for p in entries), "image")


def _class_folders(path: Path, shown: str) -> list[Path]:
    entries = _visible(path)
    linked = [p.name for p in entries if p.is_symlink()]
    if linked:
        raise _refuse(shown, f"{linked[0]!r} is a symbolic link; a class folder must be a real folder (links are "
                             "never followed)")
    loose = [p.name for p in entries if not p.is_dir()]
    if loose:
        raise _refuse(shown, f"{loose[0]!r} is a file at the top of the folder; images must sit in one subfolder "
                             "per class (folder/<class>/<image>)")
    return entries


def _visible(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def _decode_images(shown: str, items: list) -> np.ndarray:
    """uint8 (N, C, H, W) of every image: one channel when all are grey, else RGB (alpha dropped). Sizes
    and modes come from the headers first (Pillow reads them without decoding), so a file that differs,
    or a set too big for memory, is refused before anything is decoded or allocated."""
    if len(items) > MAX_SAMPLES:
        raise _refuse(shown, f"{len(items):,} images; must have at most {MAX_SAMPLES:,}")
    sizes, modes = [], set()
    for where, path, _ in items:
        size, mode = _image_header(shown, where, path)
        sizes.append(size)
        modes.add(mode)
        if max(size) > MAX_SIDE:
            raise _refuse(shown, f"{where} is {size[0]}x{size[1]} pixels; images must be at most {MAX_SIDE} on a "
                                 "side, what the built-in models train on (nothing is resized here)")
        if size != sizes[0]:
            raise _refuse(shown, f"{where} is {size[0]}x{size[1]} pixels but {items[0][0]} is {sizes[0][0]}x"
                                 f"{sizes[0][1]}; every image must be the same size (nothing is resized here)")
    mode = "L" if modes <= GRAY_MODES else "RGB"
    width, height = sizes[0] if sizes else (0, 0)
    shape = (len(items), 1 if mode == "L" else 3, height, width)
    _check_sizes(shown, f"the images ({mode})", shape, np.dtype(np.uint8))
    x = np.empty(shape, dtype=np.uint8)
    for i, (where, path, _) in enumerate(items):
        pixels = _pixels(shown, where, path, mode)
        x[i] = pixels[None] if mode == "L" else pixels.transpose(2, 0, 1)
    return x


def _image_header(shown: str, where: str, path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and mode of an image, read from its header (nothing decoded)."""
    with _open_file(shown, where, path) as handle, _opened(shown, where, handle) as image:
        return image.size, image.mode


def _pixels(shown: str, where: str, path: Path, mode: str) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) of one image, converted to mode."""
    with _open_file(shown, where, path) as handle, _opened(shown, where, handle) as image:
        try:
            return np.asarray(image.convert(mode), dtype=np.uint8)
        except Exception as err:  # noqa: BLE001
            raise _refuse(shown, f"{where} cannot be decoded ({err}); is it a whole image?") from None


def _opened(shown: str, where: str, handle):
    from PIL import Image

    try:
        return Image.open(handle)
    except Image.DecompressionBombError as err:  # a header declaring billions of pixels
        raise _refuse(shown, f"{where} is far larger than allowed ({err}); images must be at most {MAX_SIDE} on "
                             "a side") from None
    except Exception:  # noqa: BLE001 - unidentified, truncated: a refusal, never a traceback
        raise _refuse(shown, f"{where} is not an image (PNG, JPEG, BMP, GIF, ... that Pillow reads); a class "
                             "folder holds images only") from None


def _read_csv(path: Path, shown: str):
    """A header row with a `text` and a `label` column (any case; other columns ignored), one row per sample.
    Read record by record: a record over MAX_ROW_CHARS, or a row past MAX_SAMPLES, is refused where it is
    met, before the rest of the file is read."""
    with _open_file(shown, shown, path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        try:
            texts, labels = _csv_rows(shown, handle)
        except UnicodeDecodeError as err:
            raise _refuse(shown, f"not UTF-8 text ({err.reason}); save the CSV as UTF-8") from None
        except csv.Error as err:  # a NUL byte, a field over the csv module's limit
            raise _refuse(shown, f"not a CSV file the csv module reads ({err})") from None
    y, class_names = _text_classes(shown, labels)
    return texts, y, class_names, "text"


def _csv_rows(shown: str, handle) -> tuple[list[str], list[str]]:
    """The texts and labels of every row, in file order."""
    spent = [0, 0]  # characters of the record being read (reset at each record), lines read
    reader = csv.reader(_bounded_lines(shown, handle, spent))
    header = [h.strip().lower() for h in next(reader, [])]
    spent[0] = 0
    if "text" not in header or "label" not in header:
        raise _refuse(shown, f"columns {', '.join(repr(h) for h in header) or 'none'}; a CSV needs a header row "
                             "with a 'text' column and a 'label' column")
    texts, labels = [], []
    for number, row in enumerate(reader, start=2):
        spent[0] = 0
        if number > MAX_SAMPLES + 1:
            raise _refuse(shown, f"more than {MAX_SAMPLES:,} rows; must have at most {MAX_SAMPLES:,} (blank lines "
                                 "count)")
        if row:
            texts.append(_row_text(shown, number, _field(shown, number, row, header, "text")))
            labels.append(_field(shown, number, row, header, "label").strip())
            if not labels[-1]:
                raise _refuse(shown, f"line {number} has an empty label; every row needs a label")
    return texts, labels


def _bounded_lines(shown: str, handle, spent: list[int]):
    """handle's lines for csv.reader, never more than MAX_ROW_CHARS characters of one record (spent[0],
    which the reader's caller resets at each record): a record is refused before csv splits it."""
    while line := handle.readline(MAX_ROW_CHARS + 1 - spent[0]):
        spent[0] += len(line)
        spent[1] += 1
        if spent[0] > MAX_ROW_CHARS:
            raise _refuse(shown, f"line {spent[1]}: a record of more than {MAX_ROW_CHARS:,} characters; a row "
                                 f"(all its columns) may have at most {MAX_ROW_CHARS:,}")
        yield line


def _field(shown: str, number: int, row: list[str], header: list[str], column: str) -> str:
    if len(row) != len(header):
        raise _refuse(shown, f"line {number} has {len(row)} fields but the header {len(header)}; every row needs "
                             "one value per column")
    return row[header.index(column)]


def _row_text(shown: str, number: int, value: str) -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise _refuse(shown, f"line {number}: text of {len(value):,} characters; at most {MAX_TEXT_CHARS:,}")
    if not text.words(value):
        raise _refuse(shown, f"line {number}: the text has no words; every row needs some text")
    return value


def _text_classes(shown: str, labels: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels that are all whole numbers are class indices (0..K-1, range checked); others are class names,
    in sorted order."""
    if labels and all(re.fullmatch(r"-?\d+", v) for v in labels):
        y = _labels(shown, np.array([int(v) for v in labels], dtype=np.int64))
        return y, tuple(str(k) for k in range(int(y.max()) + 1))
    names = tuple(sorted(set(labels)))
    if len(names) > MAX_CLASSES:
        raise _refuse(shown, f"{len(names)} distinct labels; at most {MAX_CLASSES} classes")
    index = {name: k for k, name in enumerate(names)}
    return np.array([index[v] for v in labels], dtype=np.int64), names


_READERS = {"npz": _read_npz, "folder": _read_folder, "csv": _read_csv}


# -- classes, split, record -------------------------------------------------------------------------
def _finish(shown: str, kind: str, x, y: np.ndarray, class_names: tuple[str, ...], modality: str) -> UserData:
    _check_classes(shown, y, class_names)
    test = np.array([_is_test(x, i, modality) for i in range(len(y))], dtype=bool)
    missing = [class_names[k] for k in range(len(class_names)) if not ((y == k) & ~test).any()]
    if missing:
        raise _refuse(shown, f"class {missing[0]!r} has no train sample (the per-sample split rule sends all its "
                             "samples to test); add samples to it")
    if test.all() or not test.any():
        raise _refuse(shown, f"the split rule ({SPLIT_RULE}) leaves {int((~test).sum())} train and {int(test.sum())} "
                             "test samples; both need at least one: add samples")
    train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
    arrays = {"train_y": y[train_rows], "test_y": y[test_rows]}
    texts = None
    if modality == "text":
        texts = {"train": [x[i] for i in train_rows], "test": [x[i] for i in test_rows]}
    else:
        arrays |= {"train_x": x[train_rows], "test_x": x[test_rows]}
    record = _record(shown, kind, x, class_names, modality, arrays)
    record["hash"] = content_hash(record, arrays, texts)
    record["name"] = PREFIX + record["hash"][:HASH_DIGITS]
    return UserData(record, arrays, texts)


def _check_classes(shown: str, y: np.ndarray, class_names: tuple[str, ...]) -> None:
    counts = np.bincount(y, minlength=len(class_names)) if len(y) else np.zeros(0, dtype=np.int64)
    if len(counts) < MIN_CLASSES:
        raise _refuse(shown, f"{len(counts)} class(es); must have at least {MIN_CLASSES}")
    few = [k for k in range(len(counts)) if counts[k] < MIN_PER_CLASS]
    if few:
        k = few[0]
        raise _refuse(shown, f"class {class_names[k]!r} (label {k}) has {int(counts[k])} sample(s); every class "
                             f"0..{len(counts) - 1} needs at least {MIN_PER_CLASS} (labels must not skip a class)")


def _is_test(x, i: int, modality: str) -> bool:
    """The split rule shared with the built-ins (text.is_test_bytes): a row's text, or its array's own bytes."""
    return text.is_test(x[i]) if modality == "text" else text.is_test_bytes(x[i].tobytes())


def _record(shown: str, kind: str, x, class_names, modality: str, arrays: dict) -> dict:
    if modality == "text":
        shape, max_value, mean, std, buckets = [TEXT_LENGTH], 0.0, [0.0], [1.0], TEXT_BUCKETS
        preprocessing = f"hashed token ids ({text.TOKEN_RULE}), {TEXT_LENGTH} per row"
    else:
        pixels = x.dtype == np.uint8
        shape, buckets = list(x.shape[1:]), 0
        max_value = 255.0 if pixels else 1.0
        mean, std = [PIXEL_MEAN if pixels else 0.0] * shape[0], [PIXEL_STD if pixels else 1.0] * shape[0]
        preprocessing = ("uint8 pixels / 255, then (v - 0.5) / 0.5 per channel (fixed constants)" if pixels
                         else "float inputs as given (mean 0, std 1: fixed constants)")
    described = "x".join(str(s) for s in shape) if modality == "image" else f"{TEXT_LENGTH} hashed tokens"
    return {"rule": RULE, "modality": modality, "shape": shape, "class_names": list(class_names),
            "max_value": max_value, "norm_mean": mean, "norm_std": std, "buckets": buckets,
            "title": f"{shown} (your data, {kind}, {described}, {len(class_names)} classes)",
            "source_file": shown, "kind": kind, "split_rule": SPLIT_RULE, "preprocessing": preprocessing,
            "n_train": len(arrays["train_y"]), "n_test": len(arrays["test_y"])}


def content_hash(record: dict, arrays: dict[str, np.ndarray], texts: dict | None) -> str:
    """SHA-256 of everything that decides a sample's tensor: the rules and shape fields of the record,
    each array's dtype, shape and bytes, and the texts."""
    digest = hashlib.sha256(json.dumps({k: record[k] for k in _IDENTITY}, sort_keys=True).encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.reshape(-1).view(np.uint8))  # the bytes as they lie: no copy of a large array
    if texts is not None:
        digest.update(json.dumps(texts, ensure_ascii=False, sort_keys=True).encode())
    return digest.hexdigest()


def spec_of(record: dict) -> DatasetSpec:
    """The DatasetSpec of an imported dataset's record (the models default to the first that fits)."""
    shape = record["shape"]
    channels, height, width = (1, 1, shape[0]) if record["modality"] == "text" else shape
    spec = DatasetSpec(record["name"], record["title"], channels, height, width, len(record["class_names"]),
                       record["n_train"], record["n_test"], False, "mlp", "mlp", tuple(record["norm_mean"]),
                       tuple(record["norm_std"]), modality=record["modality"], buckets=record["buckets"])
    fitting = [m for m in (*IMAGE_MODELS, *MODELS) if model_fits(m, spec)]
    model = fitting[0] if fitting else "mlp"
    return dataclasses.replace(spec, teacher_model=model, student_model=model)


# -- the datasets folder ------------------------------------------------------------------------------
_pending: dict[str, UserData] = {}  # read and checked in this process, not (yet) stored: `plan` needs no copy
_specs: dict[str, DatasetSpec] = {}  # by name: content-addressed, so a name's spec never changes
_records: dict[str, dict] = {}  # the records read from disk, by name


def register(data: UserData) -> str:
    """Make a checked dataset known to this process by name (DATASETS[name]) without storing it."""
    _pending[data.name] = data
    return data.name


def find_record(name: str) -> dict | None:
    """The record (dataset.json) of a user dataset, registered here or stored in datasets_dir(); None
    when neither."""
    if not is_user_name(name) or not _HEX.match(name[len(PREFIX):]):
        return None
    if name in _pending:
        return _pending[name].record
    try:
        record = json.loads((folder_of(name) / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return _records.get(name)  # seen earlier in this process (its folder since removed: say how to get it)
    if not isinstance(record, dict) or record.get("name") != name:
        return None
    _records.setdefault(name, record)
    return record


def find_spec(name: str) -> DatasetSpec | None:
    """The spec of a user dataset (find_record), or None."""
    if name not in _specs:
        record = find_record(name)
        if record is None:
            return None
        _specs[name] = spec_of(record)
    return _specs[name]


def save(data: UserData) -> str:
    """Store a checked dataset in datasets_dir()/<hash>/ (written to a temporary folder, then renamed into
    place); an identical dataset already stored is kept. Returns its name."""
    final = folder_of(data.name)
    if final.is_dir():
        try:
            load(data.name)
            return data.name
        except ValueError:
            shutil.rmtree(final)  # a damaged copy of the same content: replaced by this one
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".partial-{final.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for key, array in data.arrays.items():
        np.save(partial / f"{key}.npy", array, allow_pickle=False)
    if data.texts is not None:
        (partial / TEXTS_FILE).write_text(json.dumps(data.texts, ensure_ascii=False))
    (partial / SPEC_FILE).write_text(json.dumps(data.record, indent=2, sort_keys=True) + "\n")
    try:
        os.replace(partial, final)
    except OSError:  # another process stored the same content first: keep its copy
        shutil.rmtree(partial, ignore_errors=True)
        load(data.name)
    _pending.pop(data.name, None)
    return data.name


def import_dataset(path, max_bytes: int = MAX_BYTES, source_name: str | None = None) -> str:
    """Check the dataset at path and store it (read_user_dataset, then save); its name."""
    return save(read_user_dataset(path, max_bytes, source_name))


def import_uploads(files: list[tuple[str, bytes]], max_bytes: int = MAX_BYTES) -> str:
    """Check and store what a browser uploaded: one .npz or .csv file, or a folder's files (each named
    by its path inside the folder, "pets/cat/01.png", as Streamlit's directory upload names them).
    They are written to a temporary folder outside the runs directory and imported from there; a
    refusal (DatasetRefused) leaves nothing behind. Returns the dataset's name."""
    import tempfile

    if not files:
        raise _refuse("upload", "no file; upload a .npz, a .csv or a folder of images in class subfolders")
    total = sum(len(data) for _, data in files)
    shown = files[0][0] if len(files) == 1 else _upload_parts(files[0][0])[0]
    if total > max_bytes:
        raise _refuse(shown, f"{total:,} bytes, must be at most {max_bytes:,} bytes")
    with tempfile.TemporaryDirectory(prefix="purge-upload-") as scratch:
        if len(files) == 1 and "/" not in files[0][0].replace("\\", "/"):  # one file, not a folder's
            target = Path(scratch) / ("upload" + Path(files[0][0]).suffix.lower())
            target.write_bytes(files[0][1])
        else:
            target = Path(scratch) / "folder"
            for name, data in files:
                top, *inside = _upload_parts(name)
                place = target.joinpath(*inside)
                place.parent.mkdir(parents=True, exist_ok=True)
                place.write_bytes(data)
        return import_dataset(target, max_bytes, source_name=shown)


def _upload_parts(name: str) -> list[str]:
    """An uploaded file's path as safe parts (no "..", no absolute path): what the browser sent is
    never used as a path as it stands."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or len(parts) < 2:
        raise _refuse(name, "an uploaded file outside a folder; upload one .npz or .csv file, or a whole folder "
                            "of class subfolders")
    return parts


def store_registered(name: str) -> None:
    """Store a dataset checked earlier in this process (CLI: checked with the config, stored before training)."""
    if name in _pending:
        save(_pending[name])


def stored_files(name: str) -> list[Path]:
    """The files a stored dataset is made of (spec first)."""
    folder = folder_of(name)
    return [folder / SPEC_FILE] + sorted(p for p in folder.glob("*") if p.name != SPEC_FILE)


def stamp(name: str) -> tuple:
    """(file, size, mtime, inode) of each stored file: changes when the stored bytes are rewritten, so a
    cached load is never reused over changed data."""
    out = []
    for p in stored_files(name) if folder_of(name).is_dir() else []:
        st = p.stat()
        out.append((p.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def load(name: str) -> UserData:
    """A stored dataset, its hash recomputed and checked against its name: ValueError when the stored
    bytes changed since it was imported (a run trained on it must not open on other data)."""
    folder = folder_of(name)
    try:
        record = json.loads((folder / SPEC_FILE).read_text())
        keys = ("train_y", "test_y") if record["modality"] == "text" else ("train_x", "train_y", "test_x", "test_y")
        arrays = {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in keys}
        texts = json.loads((folder / TEXTS_FILE).read_text()) if record["modality"] == "text" else None
        digest = content_hash(record, arrays, texts)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"dataset {name}: the stored copy in {folder} cannot be read ({err}); import the "
                         "original file again") from None
    sizes = (len(arrays["train_y"]), len(arrays["test_y"]))
    if digest[:HASH_DIGITS] != name[len(PREFIX):] or digest != record.get("hash") or \
            sizes != (record.get("n_train"), record.get("n_test")):
        raise ValueError(f"dataset {name}: the stored data in {folder} hash to {digest[:HASH_DIGITS]}, not the "
                         f"{name[len(PREFIX):]} its name (and the run's config) records: it changed since it was "
                         "imported, and a run never opens on other data. Import the original file again")
    return UserData(record, arrays, texts)


def imported() -> list[dict]:
    """The records (dataset.json) of every dataset stored in datasets_dir(), by name."""
    root = datasets_dir()
    records = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            record = json.loads((folder / SPEC_FILE).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("name") == PREFIX + folder.name:
            records.append(record)
    return records
