r"""``python -m gendist.cli ...`` runs the ``gendist`` command."""

from gendist.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
