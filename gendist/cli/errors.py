r"""Which failures are the user's: :class:`UsageError` (one line, exit status 2); anything else is a bug.

The command raises :class:`UsageError` from its own checks of flags, files
and run folders, and turns a known user-facing error of the library into one
only at the boundary where the user's input enters it (:func:`user_input`):
reading a data file, building a model from flags, loading a run or a
checkpoint. An error from anywhere else (a ``ValueError`` deep inside
training included) is a bug in gendist and is reported with its traceback.
"""

from __future__ import annotations

import shlex
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["BUG_STATUS", "USAGE_STATUS", "UsageError", "first_line", "report_bug", "report_usage", "user_input"]

USAGE_STATUS = 2
r"""The exit status of a user error (as argparse's)."""

BUG_STATUS = 1
r"""The exit status of an internal error."""


class UsageError(Exception):
    r"""A problem with the user's input: reported in one line, exit status 2."""


def first_line(error: BaseException) -> str:
    r"""The first line of an error's message, or its type's name when it has none."""
    text = str(error)
    return text.splitlines()[0] if text.strip() else type(error).__name__


@contextmanager
def user_input(*errors: type[Exception], prefix: str = "") -> Iterator[None]:
    r"""Re-raise ``errors`` raised inside the block as a :class:`UsageError` (``prefix`` + their first line)."""
    try:
        yield
    except errors as e:
        raise UsageError(prefix + first_line(e)) from e


def report_usage(error: UsageError) -> int:
    r"""Print ``gendist: error: ...`` on one line; return the usage exit status."""
    print(f"gendist: error: {first_line(error)}", file=sys.stderr)
    return USAGE_STATUS


def report_bug(argv: Sequence[str]) -> int:
    r"""Print the current exception's traceback and how to report it; return the bug exit status."""
    traceback.print_exc()
    command = shlex.join(["gendist", *argv])
    print(f"gendist: internal error: this is a bug in gendist, not in your input; please report it with "
          f"the traceback above and the command line:\n  {command}", file=sys.stderr)
    return BUG_STATUS
