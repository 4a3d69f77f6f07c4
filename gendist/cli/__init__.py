r"""The ``gendist`` command: ``fit``, ``sample`` and ``evaluate`` density models from the shell.

Every failure the user can cause (a missing or malformed file, a bad flag, an
existing output folder, an unknown name, a corrupt checkpoint) prints one line
starting with ``gendist: error:`` and exits with status 2; nothing is written
or overwritten unless asked (``--force``, ``--resume``). Any other failure is
a bug in gendist: its traceback is shown, with how to report it, and the
status is 1.

The parts: :mod:`~gendist.cli.main` (the entry point) and
:mod:`~gendist.cli.parser`; :mod:`~gendist.cli.fit` and :mod:`~gendist.cli.use`
(the subcommands); :mod:`~gendist.cli.data` (``--data``),
:mod:`~gendist.cli.runs` (run folders and output files),
:mod:`~gendist.cli.errors` (what is the user's); and one module per family
(:mod:`~gendist.cli.flows`, :mod:`~gendist.cli.autoregressive`,
:mod:`~gendist.cli.latent`, :mod:`~gendist.cli.diffusion`), each a
:class:`~gendist.cli.family.Family` with its own flags and model builder,
listed in :mod:`~gendist.cli.registry`.
"""

from gendist.cli.data import load_data
from gendist.cli.errors import UsageError
from gendist.cli.main import main
from gendist.cli.runs import build_model, load_run

__all__ = ["UsageError", "build_model", "load_data", "load_run", "main"]
