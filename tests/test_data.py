"""Tests of nas.data: built-in loaders, user arrays, standardisation and torchvision files."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import random
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import pytest
import torch

from nas.data import Dataset, available, builtin, describe, from_arrays, load
from nas.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _one_line_error(excinfo: pytest.ExceptionInfo[UserError], *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _raw(ds: Dataset, split: str) -> torch.Tensor:
    """Undo the standardisation of one split with the dataset's stored statistics."""
    return getattr(ds, f"x_{split}") * ds.std + ds.mean


def _assert_standardised(ds: Dataset) -> None:
    x = ds.x_train
    dims = (0,) if x.ndim == 2 else (0, *range(2, x.ndim))
    std, mean = torch.std_mean(x, dim=dims, correction=0)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
    # A constant channel keeps std 0 after centring; every channel here varies.
    assert torch.allclose(std, torch.ones_like(std), atol=1e-4)


def _rows(x: torch.Tensor, y: torch.Tensor) -> Counter[tuple[bytes, int]]:
    flat = x.reshape(len(x), -1).round().to(torch.int64).numpy()
    return Counter((row.tobytes(), int(label)) for row, label in zip(flat, y, strict=True))


# ---------------------------------------------------------------- registry and load()


def test_registry_lists_every_builtin_with_a_description() -> None:
    names = ["digits", "mnist1d", "synthetic", "wine", "breast-cancer", "shapes16", "shapes28",
             "templates16", "mnist1d-hard", "mnist", "fashion-mnist", "cifar10"]
    assert available() == names
    descriptions = describe()
    assert list(descriptions) == names
    assert all(text and "\n" not in text for text in descriptions.values())


def test_import_is_light() -> None:
    code = (
        "import sys, nas.data; "
        "print(sorted(m for m in ('torchvision', 'sklearn', 'mnist1d') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: load("imagenet"), ("imagenet", "digits", "cifar10")),
        (lambda: load("digits", n_samples=5), ("n_samples", "accepted: none")),
        (lambda: load("synthetic", n_sample=5), ("n_sample", "n_samples")),
        (lambda: load("digits", seed=-1), ("seed",)),
    ],
)
def test_load_rejects_bad_requests(call: Any, fragments: tuple[str, ...]) -> None:
    with pytest.raises(UserError) as excinfo:
        call()
    _one_line_error(excinfo, *fragments)


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load("digits")


def test_digits_shapes_and_split_sizes(digits: Dataset) -> None:
    assert digits.input_shape == (1, 8, 8)
    assert digits.num_classes == 10
    assert digits.sizes == {"train": 1146, "val": 202, "test": 449}
    assert digits.x_train.shape == (1146, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32
    assert digits.y_train.dtype == torch.int64
    assert digits.mean.shape == digits.std.shape == (1, 1, 1)
    assert "1146" in repr(digits) and "tensor" not in repr(digits)


def test_digits_splits_partition_the_original_data(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    raw = {split: _raw(digits, split) for split in ("train", "val", "test")}
    for values in raw.values():
        # Only the train statistics turn every split back into the integer pixels 0..16.
        assert torch.allclose(values, values.round(), atol=1e-3)
    combined = sum(
        (_rows(raw[s], getattr(digits, f"y_{s}")) for s in raw), Counter[tuple[bytes, int]]()
    )
    original = _rows(torch.as_tensor(x), torch.as_tensor(y))
    assert combined == original


def test_digits_statistics_come_from_train_only(digits: Dataset) -> None:
    _assert_standardised(digits)
    raw_train = _raw(digits, "train")
    assert torch.allclose(digits.mean, raw_train.mean(), atol=1e-4)
    assert torch.allclose(digits.std, raw_train.std(correction=0), atol=1e-4)
    # Val/test were scaled with train statistics, so their own mean is not exactly zero.
    assert digits.x_val.mean().abs() > 1e-4
    assert digits.x_test.mean().abs() > 1e-4


def test_digits_is_deterministic_and_stratified(digits: Dataset) -> None:
    again = load("digits")
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(digits, field), getattr(again, field))
    other = load("digits", seed=1)
    assert other.sizes == digits.sizes
    assert not torch.equal(other.y_test, digits.y_test)
    total = torch.bincount(torch.cat([digits.y_train, digits.y_val, digits.y_test]))
    test_counts = torch.bincount(digits.y_test, minlength=10)
    assert ((test_counts - total * 0.25).abs() <= 1).all()


# ---------------------------------------------------------------- mnist1d


@pytest.fixture(scope="module")
def mnist1d_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path, bool]:
    """Load mnist1d freshly inside an empty working directory; note global RNG side effects."""
    workdir = tmp_path_factory.mktemp("mnist1d_cwd")
    builtin._mnist1d_arrays.cache_clear()
    py_before, np_before = random.getstate(), np.random.get_state()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        # An empty cache: the generator itself runs (and must leave the global RNGs alone).
        mp.setenv("NAS_CACHE_DIR", str(tmp_path_factory.mktemp("mnist1d_cache")))
        ds = load("mnist1d")
    np_after = np.random.get_state()
    rng_untouched = random.getstate() == py_before and all(
        np.array_equal(a, b) for a, b in zip(np_before, np_after, strict=True)
    )
    return ds, workdir, rng_untouched


def test_mnist1d_shapes_and_splits(mnist1d_run: tuple[Dataset, Path, bool]) -> None:
    ds, _, _ = mnist1d_run
    assert ds.input_shape == (1, 40)
    assert ds.num_classes == 10
    assert ds.sizes == {"train": 3600, "val": 400, "test": 1000}
    assert ds.mean.shape == (1, 1)
    _assert_standardised(ds)
    val_counts = torch.bincount(ds.y_val, minlength=10)
    all_counts = torch.bincount(torch.cat([ds.y_train, ds.y_val]), minlength=10)
    assert ((val_counts - all_counts * 0.1).abs() <= 1).all()


def test_mnist1d_writes_nothing_and_keeps_global_rng(
    mnist1d_run: tuple[Dataset, Path, bool],
) -> None:
    _, workdir, rng_untouched = mnist1d_run
    assert list(workdir.iterdir()) == []
    assert rng_untouched


def test_mnist1d_seed_changes_only_the_validation_split(
    mnist1d_run: tuple[Dataset, Path, bool],
) -> None:
    ds, _, _ = mnist1d_run
    other = load("mnist1d", seed=5)
    assert torch.equal(other.y_test, ds.y_test)
    assert not torch.equal(other.y_val, ds.y_val)


def test_generated_mnist1d_is_read_back_from_the_cache_without_the_generator(
        mnist1d_run: tuple[Dataset, Path, bool], tmp_path: Path) -> None:
    # The arrays compared by their bytes' digest: a float sum depends on the reduction's order,
    # which follows torch's thread count (the subprocess may have more than this one).
    code = ("import hashlib, sys\n"
            "from nas.data import load\n"
            "d = load('mnist1d')\n"
            "digest = lambda t: hashlib.sha256(t.numpy().tobytes()).hexdigest()\n"
            "print(digest(d.x_train), digest(d.x_test), 'mnist1d' in sys.modules)\n")
    env = {**os.environ, "NAS_CACHE_DIR": str(tmp_path)}

    def run() -> list[str]:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    made = run()
    (cached,) = (tmp_path / "generated").glob("mnist1d-*.npz")
    again = run()
    assert made[2] == "True" and again[2] == "False"  # the second never imported mnist1d
    ds, _, _ = mnist1d_run
    assert made[:2] == again[:2] == [hashlib.sha256(t.numpy().tobytes()).hexdigest()
                                     for t in (ds.x_train, ds.x_test)]
    cached.write_bytes(b"not an npz")  # damaged: made again, and rewritten
    assert run() == made and cached.read_bytes()[:2] == b"PK"


def test_an_empty_cache_dir_setting_keeps_no_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", "")
    assert builtin.generated_cache() is None
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path))
    assert builtin.generated_cache() == tmp_path / "generated"


# ---------------------------------------------------------------- synthetic


def test_synthetic_same_seed_same_tensors_other_seed_differs() -> None:
    a, b, c = load("synthetic", seed=3), load("synthetic", seed=3), load("synthetic", seed=4)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "mean", "std"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    # Compare the pooled raw samples, so a seed that only moved the split would not pass.
    pooled = [sum(_raw(d, s).sum(0) for s in ("train", "val", "test")) for d in (a, c)]
    assert not torch.allclose(pooled[0], pooled[1])
    assert a.sizes == {"train": 640, "val": 160, "test": 200}


def test_synthetic_options_are_respected() -> None:
    ds = load("synthetic", n_samples=250, n_features=12, n_classes=4, seed=1)
    assert ds.sizes == {"train": 160, "val": 40, "test": 50}
    assert ds.input_shape == (12,)
    assert ds.mean.shape == (12,)
    assert ds.num_classes == 4
    for labels in (ds.y_train, ds.y_val, ds.y_test):
        assert set(labels.tolist()) == {0, 1, 2, 3}
    _assert_standardised(ds)


@pytest.mark.parametrize(
    ("shape", "features", "expected", "stats"),
    [((1, 8, 8), 64, (1, 8, 8), (1, 1, 1)), ("2x4", 8, (2, 4), (2, 1))],
)
def test_synthetic_shape_option(
    shape: Any, features: int, expected: tuple[int, ...], stats: tuple[int, ...]
) -> None:
    ds = load("synthetic", n_features=features, shape=shape, n_samples=100)
    assert ds.input_shape == expected
    assert ds.x_train.shape[1:] == expected
    assert ds.mean.shape == stats


def test_synthetic_is_learnable() -> None:
    ds = load("synthetic", seed=2)
    # 5-nearest-neighbour accuracy: far above chance (1/3) means the labels follow the features.
    nearest = torch.cdist(ds.x_test, ds.x_train).topk(5, largest=False).indices
    predicted = torch.mode(ds.y_train[nearest], dim=1).values
    assert (predicted == ds.y_test).float().mean() > 0.7


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"shape": (1, 8, 8)}, "n_features"),
        ({"shape": "a,b"}, "shape"),
        ({"n_classes": 1}, "n_classes"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 3}, "too few samples"),
    ],
)
def test_synthetic_bad_options(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UserError) as excinfo:
        load("synthetic", **options)
    _one_line_error(excinfo, fragment)


# ---------------------------------------------------------------- from_arrays


def test_from_arrays_numpy_splits_test_then_val() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(100, 5)).astype(np.float64)
    y = np.arange(100) % 3
    ds = from_arrays(x, y, name="mine")
    assert ds.name == "mine"
    assert ds.sizes == {"train": 64, "val": 16, "test": 20}
    assert ds.input_shape == (5,) and ds.num_classes == 3
    assert ds.mean.shape == (5,)
    _assert_standardised(ds)
    raw = sum(
        (_rows(_raw(ds, s), getattr(ds, f"y_{s}")) for s in ("train", "val", "test")),
        Counter[tuple[bytes, int]](),
    )
    assert raw == _rows(torch.as_tensor(x), torch.as_tensor(y))
    again = from_arrays(x, y, name="mine")
    assert torch.equal(again.x_val, ds.x_val)
    assert not torch.equal(from_arrays(x, y, seed=1).y_val, ds.y_val)


def test_from_arrays_torch_with_test_arrays_uses_train_statistics() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(60, 3, 4, 4, generator=gen) * 10 + 5
    y = torch.arange(60) % 4
    x_test = torch.rand(10, 3, 4, 4, generator=gen) * 10
    y_test = torch.arange(10) % 4
    originals = (x.clone(), x_test.clone())
    ds = from_arrays(x, y.double(), x_test=x_test, y_test=y_test, val_fraction=0.2)
    assert ds.sizes == {"train": 48, "val": 12, "test": 10}
    assert ds.mean.shape == (3, 1, 1)
    assert ds.num_classes == 4
    _assert_standardised(ds)
    assert torch.allclose(ds.x_test, (x_test - ds.mean) / ds.std)
    assert torch.allclose(ds.standardise(x_test), ds.x_test)
    assert torch.equal(ds.y_test, y_test)
    # The caller's tensors are left alone.
    assert torch.equal(x, originals[0]) and torch.equal(x_test, originals[1])


def test_from_arrays_constant_feature_gets_unit_std() -> None:
    x = np.stack([np.arange(40.0), np.full(40, 7.0)], axis=1)
    ds = from_arrays(x, np.arange(40) % 2)
    assert ds.std[1] == 1.0
    assert torch.isfinite(ds.x_train).all()
    assert torch.equal(ds.x_train[:, 1], torch.zeros(len(ds.x_train)))


def test_having_a_test_split_is_a_field_not_tensor_identity() -> None:
    ds = from_arrays(np.arange(80.0).reshape(40, 2), np.arange(40) % 2)
    assert ds.has_test_split
    # The validation tensors standing in as test data, as AutoClassifier passes them.
    stand_in = dataclasses.replace(ds, x_test=ds.x_val, y_test=ds.y_val, has_test_split=False)
    assert not stand_in.has_test_split
    # The same tensors given as a real test split (a user's choice) still count as one.
    assert dataclasses.replace(ds, x_test=ds.x_val, y_test=ds.y_val).has_test_split
    assert not pickle.loads(pickle.dumps(stand_in)).has_test_split  # as sent to workers
    with pytest.raises(UserError, match="has_test_split must be True or False"):
        dataclasses.replace(ds, has_test_split="no")


def _bad_cases() -> list[tuple[dict[str, Any], str]]:
    x = np.zeros((30, 4))
    y = np.arange(30) % 3
    return [
        ({"x": x, "y": y[:-1]}, "30 samples but y has 29"),
        ({"x": x, "y": y + 0.5}, "integer"),
        ({"x": x, "y": y - 1}, "found -1"),
        ({"x": x, "y": np.zeros(30, dtype=int)}, "at least 2"),
        ({"x": x[:3], "y": np.array([0, 1, 1])}, "too few samples"),
        ({"x": x, "y": y, "x_test": x}, "both"),
        ({"x": x, "y": y, "x_test": np.zeros((5, 3)), "y_test": y[:5]}, "shape"),
        ({"x": np.full((30, 4), np.nan), "y": y}, "NaN"),
        ({"x": x, "y": np.eye(3)[y]}, "one-hot"),
        ({"x": np.full((30, 4), "a"), "y": y}, "numeric"),
        ({"x": np.zeros(30), "y": y}, "reshape"),
        ({"x": x, "y": y, "num_classes": 2}, "num_classes"),
        ({"x": x, "y": y, "val_fraction": 1.5}, "val_fraction"),
        ({"x": torch.zeros(30, 4), "y": torch.arange(30) % 3, "seed": -2}, "seed"),
    ]


@pytest.mark.parametrize(("kwargs", "fragment"), _bad_cases())
def test_from_arrays_bad_input_is_a_one_line_user_error(
    kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(UserError) as excinfo:
        from_arrays(**kwargs)
    _one_line_error(excinfo, fragment)


# ---------------------------------------------------------------- torchvision: failures


@pytest.mark.parametrize(
    ("name", "folder"),
    [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw"),
     ("cifar10", "cifar-10-batches-py")],
)
def test_torchvision_missing_files_name_the_folder(
    tmp_path: Path, name: str, folder: str
) -> None:
    with pytest.raises(UserError) as excinfo:
        load(name, root=tmp_path)
    _one_line_error(excinfo, name, str(tmp_path / folder), "download")


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST/raw"), ("cifar10", "cifar")])
def test_torchvision_download_offline_is_one_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, folder: str
) -> None:
    import torchvision.datasets.cifar
    import torchvision.datasets.mnist

    def offline(*args: Any, **kwargs: Any) -> None:
        raise URLError("simulated: no internet")

    # Simulated so the test neither touches the network nor waits on a slow resolver.
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(UserError) as excinfo:
        load(name, root=tmp_path, download=True)
    _one_line_error(excinfo, name, "download", "no internet", str(tmp_path / folder))


def test_torchvision_root_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(UserError) as excinfo:
        load("mnist", root=not_a_folder)
    _one_line_error(excinfo, str(not_a_folder), "not a folder")


# ---------------------------------------------------------------- torchvision: on-disk files


def _write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST idx format: big-endian magic 0x0000 08 <ndim> (8 = ubyte), then each dim."""
    header = struct.pack(">I", 0x0800 | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(raw_dir: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    raw_dir.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(50, 28, 28)),
        "train-labels-idx1-ubyte": rng.permutation(np.arange(50) % 10),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(20, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(20) % 10,
    }
    for file_name, array in arrays.items():
        _write_idx(raw_dir / file_name, array)
    return arrays


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")]
)
def test_mnist_format_files_load(tmp_path: Path, name: str, folder: str) -> None:
    # torchvision reads the uncompressed idx files from <root>/<Class>/raw and checks no md5.
    arrays = _write_mnist(tmp_path / folder / "raw", np.random.default_rng(0))
    ds = load(name, root=tmp_path)
    assert ds.input_shape == (1, 28, 28)
    assert ds.num_classes == 10
    assert ds.sizes == {"train": 45, "val": 5, "test": 20}
    assert ds.mean.shape == (1, 1, 1)
    _assert_standardised(ds)
    assert torch.equal(ds.y_test, torch.as_tensor(arrays["t10k-labels-idx1-ubyte"]))
    raw_test = _raw(ds, "test")
    expected = torch.as_tensor(arrays["t10k-images-idx3-ubyte"], dtype=torch.float32)
    assert torch.allclose(raw_test[:, 0], expected, atol=1e-3)
    labels = sorted(torch.cat([ds.y_train, ds.y_val]).tolist())
    assert labels == sorted(arrays["train-labels-idx1-ubyte"].tolist())


def test_mnist_corrupt_file_is_reported(tmp_path: Path) -> None:
    _write_mnist(tmp_path / "MNIST" / "raw", np.random.default_rng(0))
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\xff" * 16)
    with pytest.raises(UserError) as excinfo:
        load("mnist", root=tmp_path)
    _one_line_error(excinfo, "corrupted", str(tmp_path / "MNIST" / "raw"))


def _write_cifar(folder: Path, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """CIFAR-10 python batches: pickled dicts with str keys, data rows = R, G, B planes."""
    folder.mkdir(parents=True)

    def batch(n: int, offset: int) -> tuple[np.ndarray, list[int]]:
        images = rng.integers(0, 256, size=(n, 3, 32, 32))
        # Distinct channel levels, so a wrong channel order shows up in the statistics.
        images = (images // 4 + np.array([0, 64, 128])[None, :, None, None]).astype(np.uint8)
        return images, [(offset + i) % 10 for i in range(n)]

    for i in range(1, 6):
        images, labels = batch(10, i)
        entry = {"data": images.reshape(10, -1), "labels": labels}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(entry))
    test_images, test_labels = batch(20, 0)
    entry = {"data": test_images.reshape(20, -1), "labels": test_labels}
    (folder / "test_batch").write_bytes(pickle.dumps(entry))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return test_images, test_labels


def test_cifar10_format_files_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.cifar

    test_images, test_labels = _write_cifar(tmp_path / "cifar-10-batches-py",
                                            np.random.default_rng(0))

    def exists_only(fpath: str | os.PathLike[str], md5: str | None = None) -> bool:
        return os.path.isfile(fpath)

    # torchvision checks the md5 of every CIFAR file against the real release; tiny stand-ins
    # can only pass with that check reduced to "the file exists", in this test only.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists_only)
    ds = load("cifar10", root=tmp_path)
    assert ds.input_shape == (3, 32, 32)
    assert ds.num_classes == 10
    assert ds.sizes == {"train": 45, "val": 5, "test": 20}
    assert ds.mean.shape == (3, 1, 1)
    _assert_standardised(ds)
    assert (ds.mean[1] - ds.mean[0]).item() == pytest.approx(64, abs=4)
    assert torch.equal(ds.y_test, torch.as_tensor(test_labels))
    expected = torch.as_tensor(test_images, dtype=torch.float32)
    assert torch.allclose(_raw(ds, "test"), expected, atol=1e-3)


def test_cifar10_checksum_mismatch_is_reported(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    with pytest.raises(UserError) as excinfo:
        load("cifar10", root=tmp_path)
    _one_line_error(excinfo, "corrupted", str(tmp_path / "cifar-10-batches-py"))
