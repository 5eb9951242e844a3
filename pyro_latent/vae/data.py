"""FashionMNIST for the VAEs, through :class:`torchvision.datasets.FashionMNIST`.

The data are 28×28 grey-scale images ``x ∈ [0, 1]^784`` (pixel intensity / 255) with labels
``y ∈ {0, …, 9}``.  The VAEs model the intensities directly, as the post does with its binary
cross-entropy loss; nothing is binarised.

Where the files come from, in order:

1. ``root`` already in torchvision's layout (``root/FashionMNIST/raw/*-ubyte[.gz]``), for example
   given with ``--data-dir``;
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/*.gz``):
   torchvision's ``extract_archive`` decompresses the four archives into
   ``root/FashionMNIST/raw/`` and ``check_integrity`` verifies each file against the MD5 sum
   published with Fashion-MNIST (:data:`RAW_MD5`).  Debian recompresses the archives, so the
   ``.gz`` sums torchvision knows do not apply to them and its ``download()`` would try the
   network; the decompressed files are byte-identical to the originals;
3. ``download=True``: torchvision downloads (and MD5-checks) them.

Nothing here parses IDX files: torchvision does.  Whatever goes wrong (no files, a truncated or
tampered archive, no network) surfaces as one :class:`DataNotFoundError` that names all three
routes, never as a torchvision traceback.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST
from torchvision.datasets.utils import check_integrity, extract_archive

from pyro_latent.core.checks import check_positive_int

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four ``.gz`` archives."""

DEFAULT_ROOT = Path("data")
"""Writable data root used when none is given (gitignored)."""

SHOE_CLASSES = (5, 7, 9)
# FashionMNIST's ten classes in five natural groups, for purity "by group".
CLASS_GROUPS = {0: "tops", 2: "tops", 4: "tops", 6: "tops", 3: "dresses", 1: "trousers",
                5: "footwear", 7: "footwear", 9: "footwear", 8: "bags"}  # fmt: skip
"""Sandal, Sneaker and Ankle boot."""

IMAGE_SHAPE = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


class DataNotFoundError(RuntimeError):
    """FashionMNIST could not be found, verified or loaded.  The message names every route."""


def _routes(detail: str) -> str:
    return (
        f"FashionMNIST is not available: {detail}\n"
        "Get it by one of these routes:\n"
        "  1. Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist` (installs "
        f"{DEBIAN_DIR}/*.gz; `make study` and `make test` do this for you);\n"
        "  2. `--data-dir DIR` (or `root=DIR`): a folder already in torchvision's layout, "
        "DIR/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz];\n"
        "  3. `--download` (or `download=True`): let torchvision download it (needs internet)."
    )


@dataclass(frozen=True)
class ImageData:
    """Images as a float tensor ``(N, 784)`` in ``[0, 1]``, their labels and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self):
        if self.images.ndim != 2 or self.images.shape[1] != N_PIXELS:
            raise ValueError(
                f"images must have shape (N, {N_PIXELS}); got {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},); got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int | None) -> ImageData:
        """The first ``n ≥ 1`` images (all when ``n`` is None): deterministic, no shuffling."""
        check_limit(n)
        if n is None or n >= len(self):
            return self
        return self._take(slice(None, n))

    def select(self, classes: Sequence[int]) -> ImageData:
        """Only the images whose label is in ``classes`` (e.g. :data:`SHOE_CLASSES`)."""
        mask = torch.isin(self.labels, torch.as_tensor(list(classes)))
        return self._take(mask)

    def _take(self, index) -> ImageData:
        """The images at ``index`` (a slice or a boolean mask), as the same class.  A subclass
        with per-image fields of its own overrides this to index them too; one that does not
        fails its own validation here rather than silently misaligning them."""
        return replace(self, images=self.images[index], labels=self.labels[index])

    def fingerprint(self) -> str:
        """See :func:`image_fingerprint` (labels do not enter VAE training)."""
        return image_fingerprint(self.images)


def check_limit(limit) -> None:
    """``limit`` is None or an int ≥ 1, else a :class:`ValueError`."""
    if limit is not None:
        check_positive_int(limit, "limit (a number of images)")


def image_fingerprint(images: torch.Tensor) -> str:
    """SHA-1 of the shape and float32 bytes of ``images``: names the training data of a run."""
    digest = hashlib.sha1(str(tuple(images.shape)).encode())
    digest.update(images.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# MD5 sums of the four *decompressed* IDX files, as published with Fashion-MNIST.  Debian
# recompresses the archives, so their ``.gz`` sums differ from torchvision's
# ``FashionMNIST.resources``, while the decompressed files are byte-identical to the originals.
RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def _raw_dir(root: Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def _verified(root: Path) -> dict[str, bool]:
    """For each IDX file: present in ``root/FashionMNIST/raw`` with its published MD5 sum."""
    raw = _raw_dir(root)
    return {name: check_integrity(str(raw / name), md5) for name, md5 in RAW_MD5.items()}


def _extract_debian(root: Path, debian_dir: Path) -> bool:
    """Extract Debian's archives into ``root/FashionMNIST/raw`` with torchvision's
    ``extract_archive``; False when the package files are not there.  Each file is extracted to
    a temporary folder, checked against :data:`RAW_MD5`, then moved into place atomically."""
    sources = {name: Path(debian_dir) / f"{name}.gz" for name in RAW_MD5}
    if not all(src.is_file() for src in sources.values()):
        return False
    raw = _raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw, prefix=".extract-") as tmp:
        for name, src in sources.items():
            if check_integrity(str(raw / name), RAW_MD5[name]):
                continue
            try:
                extracted = Path(extract_archive(str(src), tmp))
            except (OSError, EOFError, RuntimeError) as err:  # truncated or not gzip
                raise DataNotFoundError(_routes(f"{src} cannot be decompressed ({err}).")) from None
            if extracted.is_dir():
                extracted = extracted / name
            if not check_integrity(str(extracted), RAW_MD5[name]):
                raise DataNotFoundError(
                    _routes(f"{src} does not decompress to the published {name} (MD5 mismatch).")
                )
            os.replace(extracted, raw / name)
    return True


def _check_writable_root(root: Path) -> None:
    """The data root (or its nearest existing parent) must be a writable folder."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "data root" if existing == root else f"data root {root}: its parent"
        raise DataNotFoundError(
            _routes(f"the {what} {existing} is a file, not a folder; give a folder.")
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataNotFoundError(
            _routes(f"the data root {root} is not writable ({existing} is read-only).")
        )


def prepare_fashion_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    debian_dir: str | os.PathLike = DEBIAN_DIR,
) -> Path:
    """Make sure ``root/FashionMNIST/raw`` holds the four verified IDX files; return ``root``.

    Tries the routes of the module docstring in order: files already in ``root``, Debian's
    package, torchvision's download.  Every file ends checked against its published MD5 sum.
    """
    root = Path(DEFAULT_ROOT if root is None else root)
    raw = _raw_dir(root)
    if all(_verified(root).values()):
        return root
    _check_writable_root(root)
    try:
        _extract_debian(root, Path(debian_dir))  # fills in what is missing or wrong, if installed
    except OSError as err:
        raise DataNotFoundError(
            _routes(f"cannot write into the data root {root} ({err}); give a writable one.")
        ) from None
    if not all(_verified(root).values()) and (
        download or all((raw / name).is_file() for name, _ in FashionMNIST.resources)
    ):
        try:
            # Checks the .gz MD5 sums, downloads what is missing or wrong, and extracts.
            FashionMNIST(str(root), train=True, download=True)
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError, ...
            raise DataNotFoundError(
                _routes(f"torchvision could not fetch or extract into {raw} ({err}).")
            ) from None
    bad = [name for name, ok in _verified(root).items() if not ok]
    if bad:
        state = "corrupt" if any((raw / name).exists() for name in bad) else "missing"
        raise DataNotFoundError(
            _routes(
                f"{', '.join(bad)} {state} under {raw}, and no Debian package files under "
                f"{debian_dir}."
            )
        )
    return root


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
    *,
    train: bool = True,
    download: bool = False,
    debian_dir: str | os.PathLike = DEBIAN_DIR,
    limit: int | None = None,
) -> ImageData:
    """The FashionMNIST training (``train=True``, 60 000 images) or test split (10 000).

    Args:
        root: writable data root (default ``data/``) or a folder already in torchvision's layout.
        train: which split.
        download: allow torchvision to download missing files.
        debian_dir: where to look for Debian's ``dataset-fashion-mnist`` archives.
        limit: keep only the first ``limit`` images (tests, quick profiles).
    """
    check_limit(limit)
    root = prepare_fashion_mnist(root, download=download, debian_dir=debian_dir)
    try:
        dataset = FashionMNIST(str(root), train=train, download=False)
    except Exception as err:
        raise DataNotFoundError(
            _routes(f"torchvision could not read {_raw_dir(root)} ({err}).")
        ) from None
    images = dataset.data.reshape(-1, N_PIXELS).to(torch.float32) / 255.0
    data = ImageData(images, dataset.targets.to(torch.int64), tuple(dataset.classes))
    return data.subset(limit)
