r"""A flow's JSON config (see :mod:`gendist.config`, which every family's recipes share)."""

from gendist.config import config, from_config

__all__ = ["config", "from_config"]
