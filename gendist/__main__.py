r"""``python -m gendist ...`` runs the ``gendist`` command (also as ``torchrun ... -m gendist fit ...``)."""

from gendist.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
