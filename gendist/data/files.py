r"""Loading a user's numeric table (``.csv``, ``.npy``, ``.npz``) as an ``(N, D)`` tensor, with clear errors.

A density model needs a finite float matrix with at least two rows and no
constant column (a density over a constant column is degenerate: its
log-likelihood grows without bound as the model's width there shrinks).
:func:`load_table` checks all of this and names the file, the place and the
fix in a one-line ``ValueError`` when the input is wrong.

CSV files are comma-separated; the first row is a header when any of its
cells is not a number, and columns are otherwise named ``x0``, ``x1``, ...
(as are the columns of ``.npy``/``.npz`` arrays). An ``.npz`` file must hold a
single array, or the array is named after a colon: ``"data.npz:train"``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["load_table"]

_EXTENSIONS = (".csv", ".npy", ".npz")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _split_npz_key(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    text = os.fspath(path)
    head, sep, key = text.rpartition(":")
    if sep and head.lower().endswith(".npz") and key and "/" not in key and "\\" not in key:
        return Path(head), key
    return Path(text), None


def _read_csv(file: Path) -> tuple[np.ndarray, list[str]]:
    with open(file, newline="") as handle:
        rows = [
            (line, [cell.strip() for cell in row])
            for line, row in enumerate(csv.reader(handle), start=1)
            if any(cell.strip() for cell in row)
        ]
    if not rows:
        raise ValueError(f"{file}: the file is empty; a table needs at least 2 rows of numbers")
    first_line, first = rows[0]
    if any(cell and not _is_number(cell) for cell in first):
        names = [cell or f"x{j}" for j, cell in enumerate(first)]
        rows = rows[1:]
    else:
        names = [f"x{j}" for j in range(len(first))]
    width = len(names)
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"{file}: line {line} has {len(row)} cells, expected {width} (as in line {first_line}); "
                f"make every row the same length"
            )
        for j, cell in enumerate(row):
            if not cell:
                raise ValueError(
                    f"{file}: line {line}, column {names[j]!r} (index {j}) is empty; "
                    f"fill or drop rows with missing values"
                )
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise ValueError(
                    f"{file}: line {line}, column {names[j]!r} (index {j}) is {cell!r}, not a number; "
                    f"encode text columns as numbers or drop them with columns="
                ) from None
            if not math.isfinite(values[i, j]):
                raise ValueError(
                    f"{file}: line {line}, column {names[j]!r} (index {j}) is {cell!r}; "
                    f"fill or drop rows with missing or infinite values"
                )
    return values, names


def _read_array(file: Path, key: str | None) -> np.ndarray:
    if file.suffix.lower() == ".npy":
        if key is not None:
            raise ValueError(f"{file}: a .npy file holds one array; drop ':{key}'")
        return np.load(file, allow_pickle=False)
    with np.load(file, allow_pickle=False) as archive:
        keys = list(archive.files)
        if key is None:
            if len(keys) != 1:
                raise ValueError(
                    f"{file}: holds {len(keys)} arrays ({', '.join(keys) or 'none'}); name one as '{file}:<key>'"
                )
            key = keys[0]
        elif key not in keys:
            raise ValueError(f"{file}: no array {key!r}; it holds {', '.join(keys) or 'none'}")
        return archive[key]


def _check_array(file: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{file}: the array has shape {array.shape}; expected (N, D) or (N,), reshape it first")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{file}: the array has dtype {array.dtype}; expected numbers")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{file}: the array is complex; expected real numbers")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(
            f"{file}: {int(bad.sum())} NaN or infinite values, the first at row {i}, column {j}; "
            f"fill or drop rows with missing or infinite values"
        )
    return array


def _select(
    file: Path, values: np.ndarray, names: list[str], columns: Sequence[str | int]
) -> tuple[np.ndarray, list[str]]:
    if isinstance(columns, (str, int)):
        columns = [columns]
    indices = []
    for column in columns:
        if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
            if not -len(names) <= column < len(names):
                raise ValueError(f"{file}: column index {column} out of range; the table has {len(names)} columns")
            indices.append(int(column) % len(names))
        elif isinstance(column, str) and column in names:
            indices.append(names.index(column))
        else:
            raise ValueError(f"{file}: no column {column!r}; the columns are {', '.join(map(repr, names))}")
    if not indices:
        raise ValueError(f"{file}: columns= selects no column; name at least one of {', '.join(map(repr, names))}")
    return values[:, indices], [names[k] for k in indices]


def load_table(
    path: str | os.PathLike[str],
    columns: Sequence[str | int] | None = None,
) -> tuple[Tensor, list[str]]:
    r"""Loads a numeric table from a ``.csv``, ``.npy`` or ``.npz`` file as a float tensor.

    Arguments:
        path: The file. For an ``.npz`` file holding several arrays, name one after a
            colon: ``"data.npz:train"``.
        columns: The columns to keep, by name (a CSV header, else ``"x0"``, ``"x1"``, ...)
            or by index, in the order given; ``None`` keeps them all.

    Returns:
        A tensor of shape ``(N, D)`` and torch's default dtype, and the ``D`` column names.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: With one line naming the file, the place and the fix, if the extension is
            not supported, a cell is not a number or is empty, NaN or infinite, rows have
            different lengths, a column name or index is unknown, there are fewer than 2 rows,
            or a column is constant.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> file = os.path.join(folder, "t.csv")
        >>> with open(file, "w") as f:
        ...     _ = f.write("a,b,c\n1,2,3\n4,5,7\n")
        >>> x, names = load_table(file, columns=["c", "a"])
        >>> x
        tensor([[3., 1.],
                [7., 4.]])
        >>> names
        ['c', 'a']
    """
    file, key = _split_npz_key(path)
    suffix = file.suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ValueError(
            f"{file}: unsupported extension {suffix or '(none)'!r}; use .csv, .npy or .npz "
            f"(or load it yourself and pass a tensor)"
        )
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    if suffix == ".csv":
        values, names = _read_csv(file)
    else:
        values = _check_array(file, _read_array(file, key))
        names = [f"x{j}" for j in range(values.shape[1])]
    if columns is not None:
        values, names = _select(file, values, names, columns)
    if values.shape[0] < 2:
        raise ValueError(f"{file}: {values.shape[0]} data rows; a density needs at least 2 rows")
    if values.shape[1] == 0:
        raise ValueError(f"{file}: the table has no columns")
    constant = [name for name, column in zip(names, values.T) if np.all(column == column[0])]
    if constant:
        raise ValueError(
            f"{file}: constant column(s) {', '.join(map(repr, constant))}; a density over a constant "
            f"column is degenerate, drop it with columns="
        )
    return torch.as_tensor(values, dtype=torch.get_default_dtype()), names
