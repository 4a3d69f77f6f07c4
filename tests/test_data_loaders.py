r"""Tests of the data loaders: 8x8 digits, binarized MNIST and user tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gendist.data.digits import DIGITS_LEVELS, dequantize, load_digits
from gendist.data.files import load_table
from gendist.data.mnist import binarized_mnist_path, load_binarized_mnist
from gendist.metrics import bits_per_dim

# ---------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> dict[str, torch.Tensor]:
    pytest.importorskip("sklearn", reason="load_digits needs scikit-learn (pip install gendist[data])")
    return {split: load_digits(split) for split in ("train", "valid", "test", "all")}


def test_digits_splits(digits: dict[str, torch.Tensor]) -> None:
    assert [digits[s].shape for s in ("train", "valid", "test", "all")] == [
        (1200, 64),
        (297, 64),
        (300, 64),
        (1797, 64),
    ]
    x = digits["all"]
    assert torch.equal(x, x.round()) and x.min() == 0 and x.max() == DIGITS_LEVELS - 1
    perm = np.random.default_rng(0).permutation(1797)
    assert torch.equal(torch.cat([digits[s] for s in ("train", "valid", "test")]), x[torch.as_tensor(perm)])
    assert sorted(perm.tolist()) == list(range(1797))  # disjoint splits whose union is everything
    assert torch.equal(load_digits("test"), digits["test"])  # deterministic


def test_digits_bad_split() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        load_digits("training")  # type: ignore[arg-type]


def test_digits_diagonal_gaussian_bits_per_dim(digits: dict[str, torch.Tensor]) -> None:
    # anchors.md: a diagonal Gaussian scores 3.376 test bits/dim on this protocol
    gen = torch.Generator().manual_seed(0)
    train, test = digits["train"].double(), digits["test"].double()
    scores = []
    for _ in range(10):
        y = dequantize(train, generator=gen)
        gauss = torch.distributions.Normal(y.mean(0), y.std(0, unbiased=False))
        nll = -gauss.log_prob(dequantize(test, generator=gen)).sum(-1).mean()
        scores.append(bits_per_dim(nll, 64))
    assert abs(sum(scores) / len(scores) - 3.376) < 0.05


def test_dequantize() -> None:
    x = torch.arange(17).repeat(100)
    y = dequantize(x, generator=torch.Generator().manual_seed(1))
    assert y.dtype == torch.get_default_dtype()
    assert torch.equal(y.floor().long(), x)
    assert abs((y - x).mean().item() - 0.5) < 0.05
    z = dequantize(x.double(), generator=torch.Generator().manual_seed(1))
    assert z.dtype == torch.float64


def test_digits_without_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits("train")


# ---------------------------------------------------------------------------- binarized MNIST


def _mnist_or_skip() -> Path:
    try:
        return binarized_mnist_path()
    except FileNotFoundError as error:
        pytest.skip(f"binarized MNIST file absent: {error}")


def test_binarized_mnist() -> None:
    file = _mnist_or_skip()
    for split, n, mean in (("train", 50000, 0.1306), ("valid", 10000, 0.1311), ("test", 10000, 0.1325)):
        x = load_binarized_mnist(split, path=file)
        assert x.shape == (n, 784)
        assert torch.equal(x, (x > 0.5).to(x.dtype))
        assert abs(x.mean().item() - mean) < 1e-3


def test_binarized_mnist_env_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packed = np.packbits(np.eye(3, 784, dtype=np.uint8), axis=1)
    np.savez(tmp_path / "binarized_mnist.npz", train=packed, valid=packed, test=packed)
    monkeypatch.setenv("GENDIST_DATA", str(tmp_path))
    x = load_binarized_mnist("valid")
    assert torch.equal(x, torch.eye(3, 784))
    with pytest.raises(ValueError, match="unknown split"):
        load_binarized_mnist("dev")  # type: ignore[arg-type]
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_binarized_mnist("train", path=missing)
    monkeypatch.setenv("GENDIST_DATA", str(missing))
    with pytest.raises(FileNotFoundError, match="GENDIST_DATA"):
        load_binarized_mnist("train")


# ---------------------------------------------------------------------------- tables


def _write(tmp_path: Path, name: str, text: str) -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


def test_table_csv_header(tmp_path: Path) -> None:
    file = _write(tmp_path, "t.csv", "a, b,c\n1,2,3\n4,5.5,6\n\n")
    x, names = load_table(file)
    assert names == ["a", "b", "c"]
    assert torch.equal(x, torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.5, 6.0]]))
    x, names = load_table(str(file), columns=["c", 0])
    assert names == ["c", "a"] and torch.equal(x, torch.tensor([[3.0, 1.0], [6.0, 4.0]]))


def test_table_csv_no_header(tmp_path: Path) -> None:
    x, names = load_table(_write(tmp_path, "t.csv", "1,2\n3,4e0\n-1,0\n"))
    assert names == ["x0", "x1"] and x.shape == (3, 2) and x.dtype == torch.get_default_dtype()


def test_table_npy_npz(tmp_path: Path) -> None:
    a = np.arange(12.0).reshape(6, 2)
    np.save(tmp_path / "a.npy", a)
    x, names = load_table(tmp_path / "a.npy")
    assert names == ["x0", "x1"] and torch.equal(x, torch.as_tensor(a, dtype=x.dtype))
    np.save(tmp_path / "v.npy", np.arange(5))
    assert load_table(tmp_path / "v.npy")[0].shape == (5, 1)
    np.savez(tmp_path / "one.npz", data=a)
    assert load_table(tmp_path / "one.npz", columns=[1])[0].shape == (6, 1)
    np.savez(tmp_path / "two.npz", train=a, test=a[:3])
    with pytest.raises(ValueError, match="holds 2 arrays.*train.*test"):
        load_table(tmp_path / "two.npz")
    assert load_table(f"{tmp_path / 'two.npz'}:test")[0].shape == (3, 2)
    with pytest.raises(ValueError, match="no array 'valid'"):
        load_table(f"{tmp_path / 'two.npz'}:valid")


@pytest.mark.parametrize(
    "name, text, pattern",
    [
        ("text.csv", "a,b\n1,2\n3,x\n", r"line 3, column 'b' \(index 1\) is 'x', not a number"),
        ("empty_cell.csv", "a,b\n1,2\n,4\n", r"line 3, column 'a' \(index 0\) is empty"),
        ("nan.csv", "a,b\n1,2\n3,nan\n", r"line 3, column 'b' \(index 1\) is 'nan'"),
        ("ragged.csv", "a,b\n1,2\n3,4,5\n", r"line 3 has 3 cells, expected 2"),
        ("constant.csv", "a,b,c\n1,2,0\n3,2,0\n", r"constant column\(s\) 'b', 'c'.*degenerate"),
        ("one_row.csv", "a,b\n1,2\n", r"1 data rows; a density needs at least 2"),
        ("empty.csv", "", r"empty"),
        ("table.xlsx", "a,b\n1,2\n", r"unsupported extension '.xlsx'"),
    ],
)
def test_table_errors(tmp_path: Path, name: str, text: str, pattern: str) -> None:
    file = _write(tmp_path, name, text)
    with pytest.raises(ValueError, match=pattern) as info:
        load_table(file)
    message = str(info.value)
    assert name in message and "\n" not in message


def test_table_column_errors(tmp_path: Path) -> None:
    file = _write(tmp_path, "t.csv", "a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"no column 'z'; the columns are 'a', 'b'"):
        load_table(file, columns=["a", "z"])
    with pytest.raises(ValueError, match="column index 5 out of range"):
        load_table(file, columns=[5])


def test_table_array_errors(tmp_path: Path) -> None:
    a = np.arange(8.0).reshape(4, 2)
    a[2, 1] = math.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(ValueError, match="NaN or infinite values, the first at row 2, column 1"):
        load_table(tmp_path / "nan.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2\)"):
        load_table(tmp_path / "cube.npy")


def test_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_table(tmp_path / "missing.csv")
