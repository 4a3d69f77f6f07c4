r"""Recipes record the arguments they are built with, and register themselves by name when defined.

The ground floor of the config machinery: it imports nothing of gendist.
:func:`gendist.config.config` reads what a model recorded, and
:func:`gendist.config.from_config` finds its class in :data:`RECIPES` by name
(no scanning of namespaces: defining the class is what registers it).
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["RECIPES", "Recorded"]

RECIPES: dict[str, type] = {}
r"""Every recipe class by name (and by the older names in its ``_aliases``), filled as classes are defined."""


class Recorded:
    r"""Mixin: every subclass records the arguments it is built with (read by :func:`~gendist.config.config`)
    and registers itself in :data:`RECIPES` under its class name.

    A base class that is not a recipe itself says ``_records = False`` in its body; a recipe that was
    renamed lists its old names in ``_aliases`` so configs saved under them still load.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_records", True):
            return
        for name in (cls.__name__, *cls.__dict__.get("_aliases", ())):
            RECIPES[name] = cls  # a later definition of the same name wins, as in a namespace
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self, *args, **kwargs) -> None:
            if "_config" not in self.__dict__:  # the outermost recipe records
                bound = signature.bind(self, *args, **kwargs)
                arguments = dict(bound.arguments)
                arguments.pop("self")
                arguments.update(arguments.pop("kwargs", {}))
                object.__setattr__(self, "_config", (cls.__name__, arguments))
            init(self, *args, **kwargs)

        cls.__init__ = __init__
