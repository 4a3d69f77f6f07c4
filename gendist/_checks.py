r"""Argument checks shared by every part of gendist, written once: errors that name the argument.

The ground floor: it imports nothing of gendist.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import Size, Tensor

__all__ = [
    "check_context", "check_finite", "check_integer", "check_number", "check_shape", "check_sizes", "check_value",
]


def check_integer(name: str, value: object, low: int = 1, odd: bool = False, even: bool = False) -> int:
    r"""``value`` as an ``int`` of at least ``low`` (and odd or even, if asked), or a ``ValueError`` naming ``name``."""
    try:
        out = operator.index(value)  # ints and integer scalars (numpy, 0-d integer tensors); not 2.5 or "3"
    except TypeError:
        out = None
    if out is None or isinstance(value, bool) or out < low or (odd and out % 2 == 0) or (even and out % 2):
        kind = "an odd" if odd else "an even" if even else "an"
        raise ValueError(f"{name} must be {kind} integer >= {low}, got {value!r}")
    return out


def check_number(name: str, value: object, zero: bool = False) -> float:
    r"""``value`` as a finite float, positive (or non-negative with ``zero``), or a ``ValueError`` naming ``name``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} finite number, got {value!r}")
    return float(value)


def check_shape(shape: int | Sequence[int], name: str = "shape") -> Size:
    r"""``shape`` (a size, or a sequence of sizes) as a :class:`torch.Size` of positive sizes, or a clear error."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = Size(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of positive integers, got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {tuple(shape)}")
    return out


def check_sizes(features: int, context: int) -> None:
    r"""Raise a clear error unless ``features >= 1`` and ``context >= 0``."""
    if features < 1:
        raise ValueError(f"features must be >= 1, got {features}")
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")


def check_context(c: Tensor | None, context: int, where: str, dtype: torch.dtype | None = None) -> None:
    r"""Raise a clear error unless ``c`` is a finite float tensor (of ``dtype``) of shape ``(..., context)``."""
    if torch.compiler.is_compiling():
        return
    if context == 0:
        if c is not None:
            raise ValueError(f"{where} is unconditional: it takes no context (context=0), got a context `c`")
        return
    if c is None:
        raise ValueError(
            f"{where} is conditional on a context of size {context}: it needs a context `c` of shape "
            f"(..., {context}), got None"
        )
    if not isinstance(c, Tensor) or not c.dtype.is_floating_point:
        got = c.dtype if isinstance(c, Tensor) else type(c).__name__
        raise TypeError(f"{where}: context `c` must be a floating-point tensor, got {got}")
    if dtype is not None and c.dtype != dtype:
        raise TypeError(
            f"{where}: context `c` has dtype {c.dtype} but the model is {dtype}; use `c.to({dtype})`"
        )
    if c.dim() < 1 or c.shape[-1] != context:
        raise ValueError(
            f"{where}: context `c` must have shape (..., {context}), got shape {tuple(c.shape)}"
        )
    if not bool(torch.isfinite(c).all()):
        raise ValueError(f"{where}: context `c` has NaN or infinite entries; expected finite values")


def check_value(
    name: str, value: Tensor, event_shape: torch.Size, where: str, dtype: torch.dtype | None = None,
    finite: bool = True,
) -> None:
    r"""Raise a clear error if ``value`` is not a finite float tensor (of ``dtype``) ending in ``event_shape``
    (``finite=False``: any float values, for a support whose own check handles NaN).

    Skipped while ``torch.compile`` traces, so compiled graphs stay free of checks.
    """
    if torch.compiler.is_compiling():
        return
    if not isinstance(value, Tensor):
        raise TypeError(f"{where}: `{name}` must be a torch.Tensor, got {type(value).__name__}")
    if not value.dtype.is_floating_point:
        raise TypeError(
            f"{where}: `{name}` must be a floating-point tensor, got dtype {value.dtype}; "
            f"convert it with `{name}.to(torch.get_default_dtype())`"
        )
    if dtype is not None and value.dtype != dtype:
        raise TypeError(
            f"{where}: `{name}` has dtype {value.dtype} but the model is {dtype}; convert one of them, "
            f"e.g. `{name}.to({dtype})` or `model.to({value.dtype})`"
        )
    n = len(event_shape)
    if value.dim() < n or value.shape[value.dim() - n :] != event_shape:
        raise ValueError(
            f"{where}: `{name}` must have shape (..., {', '.join(map(str, event_shape))}) "
            f"ending in the event shape {tuple(event_shape)}, got shape {tuple(value.shape)}"
        )
    if finite:
        check_finite(name, value, where)


def check_finite(name: str, value: Tensor, where: str) -> None:
    r"""Raise a ``ValueError`` naming ``name`` (in ``where``) if the tensor ``value`` has NaN or infinite entries.

    Skipped while ``torch.compile`` traces, so compiled graphs stay free of checks.
    """
    if torch.compiler.is_compiling():
        return
    # a finite sum proves every entry finite (cheap); only otherwise count the bad entries
    if not bool(value.sum().isfinite()) and not bool(torch.isfinite(value).all()):
        counts = ((int(torch.isnan(value).sum()), "NaN"), (int(torch.isinf(value).sum()), "infinite"))
        bad = " and ".join(f"{n} {kind}" for n, kind in counts if n)
        raise ValueError(f"{where}: `{name}` has {bad} entries; expected finite values")
