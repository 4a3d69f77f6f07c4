r"""``gendist ...``: parse, run the subcommand, and report a failure as the user's (exit 2) or as a bug (exit 1)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gendist.cli.errors import USAGE_STATUS, UsageError, report_bug, report_usage
from gendist.cli.parser import build_parser
from gendist.inference.distributed import is_main

__all__ = ["main"]

INTERRUPTED = 130
r"""The exit status after Ctrl-C (128 + SIGINT)."""


def main(argv: Sequence[str] | None = None) -> int:
    r"""Run the ``gendist`` command line ``argv`` (default: ``sys.argv[1:]``); return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:  # every rank checks the same input: one line, from rank 0
        return report_usage(e) if is_main() else USAGE_STATUS
    except KeyboardInterrupt:
        print("gendist: interrupted; continue with --resume", file=sys.stderr)
        return INTERRUPTED
    except Exception:
        return report_bug(argv)
