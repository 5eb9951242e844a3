"""FashionMNIST through torchvision, from Debian's package, and the one error when it is missing."""

from __future__ import annotations

import gzip
import shutil

import pytest
import torch

from pyro_latent.vae import (
    DEBIAN_DIR,
    SHOE_CLASSES,
    DataNotFoundError,
    ImageData,
    load_fashion_mnist,
)
from pyro_latent.vae.data import RAW_MD5


@pytest.mark.needs_fashion_mnist
def test_real_loader_from_debian_package(tmp_path):
    test = load_fashion_mnist(tmp_path, train=False)
    assert test.images.shape == (10000, 784) and test.images.dtype == torch.float32
    assert 0 <= test.images.min() and test.images.max() <= 1
    assert test.labels.shape == (10000,)
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert [test.classes[c] for c in SHOE_CLASSES] == ["Sandal", "Sneaker", "Ankle boot"]
    raw = tmp_path / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_MD5)
    train = load_fashion_mnist(tmp_path, train=True, limit=100)
    assert len(train) == 100
    shoes = test.select(SHOE_CLASSES)
    assert len(shoes) == 3000 and set(shoes.labels.tolist()) == set(SHOE_CLASSES)


def _assert_names_all_routes(message: str):
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message
    assert "--download" in message


def test_missing_data_names_all_routes(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(tmp_path / "empty", debian_dir=tmp_path / "no-debian")
    _assert_names_all_routes(str(info.value))
    assert info.value.__cause__ is None  # no torchvision traceback chained in


@pytest.fixture
def fake_debian(tmp_path):
    """A copy of the Debian package's archives that a test may damage."""
    fake = tmp_path / "debian"
    fake.mkdir()
    for name in RAW_MD5:
        shutil.copy(DEBIAN_DIR / f"{name}.gz", fake / f"{name}.gz")
    return fake


@pytest.mark.needs_fashion_mnist
def test_corrupt_debian_archive_is_the_same_error(tmp_path, fake_debian):
    fake = fake_debian
    with gzip.open(fake / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"not the labels")
    with pytest.raises(DataNotFoundError, match="MD5") as info:
        load_fashion_mnist(tmp_path / "root", train=False, debian_dir=fake)
    _assert_names_all_routes(str(info.value))


@pytest.mark.needs_fashion_mnist
def test_truncated_debian_archive_is_the_same_error(tmp_path, fake_debian):
    fake = fake_debian
    archive = fake / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(DataNotFoundError, match="cannot be decompressed") as info:
        load_fashion_mnist(tmp_path / "root", train=False, debian_dir=fake)
    _assert_names_all_routes(str(info.value))


@pytest.mark.needs_fashion_mnist
def test_corrupt_extracted_file_is_repaired_or_reported(tmp_path):
    load_fashion_mnist(tmp_path, train=False, limit=1)
    target = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    target.write_bytes(b"garbage")
    with pytest.raises(DataNotFoundError, match="corrupt"):
        load_fashion_mnist(tmp_path, train=False, debian_dir=tmp_path / "no-debian")
    # With the Debian package available, the file is restored from it.
    assert len(load_fashion_mnist(tmp_path, train=False)) == 10000


def test_data_root_that_is_a_file_names_all_routes(tmp_path):
    root = tmp_path / "data"
    root.write_text("not a folder")
    for bad in (root, root / "inside"):
        with pytest.raises(DataNotFoundError, match="is a file") as info:
            load_fashion_mnist(bad, train=False)
        _assert_names_all_routes(str(info.value))
        assert info.value.__cause__ is None


def test_read_only_data_root_names_all_routes(tmp_path, monkeypatch):
    from pyro_latent.vae import data

    root = tmp_path / "ro"
    root.mkdir()
    # Tests may run as root, for whom chmod does not bite: fake the permission check.
    monkeypatch.setattr(data.os, "access", lambda path, mode: False)
    with pytest.raises(DataNotFoundError, match="not writable") as info:
        load_fashion_mnist(root, train=False)
    _assert_names_all_routes(str(info.value))


@pytest.mark.parametrize("limit", [0, -5, 2.5, True])
def test_limit_must_be_positive(tmp_path, limit):
    with pytest.raises(ValueError, match="limit"):
        load_fashion_mnist(tmp_path, train=False, limit=limit)
    data = ImageData(torch.zeros(3, 784), torch.zeros(3, dtype=torch.int64), ("a",))
    with pytest.raises(ValueError, match="limit"):
        data.subset(limit)
