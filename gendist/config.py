r"""A model's JSON config: ``state_dict`` plus :func:`config` recreates a model with :func:`from_config`.

Recipes (:class:`~gendist.flows.MAF`, :class:`~gendist.autoregressive.MADE`, ...) record
the arguments they were built with. Arguments that JSON cannot hold as they are
are encoded by name: activation classes of ``torch.nn`` (``"ReLU"``), the
usual support constraints (``positive``, ``interval(a, b)``, ...), dictionaries
of options, and recipes inside a recipe (by their own config). A model
built from anything else (a custom base distribution, a hand-made layer list)
has no config: :func:`config` says which argument stands in the way.

Example:
    >>> from gendist.flows import NSF
    >>> flow = NSF(3, context=2, bins=4)
    >>> clone = from_config(json.loads(json.dumps(config(flow))))
    >>> _ = clone.load_state_dict(flow.state_dict())
    >>> x, c = torch.randn(5, 3), torch.randn(5, 2)
    >>> bool(torch.equal(clone(c).log_prob(x), flow(c).log_prob(x)))
    True
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import torch
import torch.nn as nn
from torch.distributions import constraints

from gendist._recipes import RECIPES, Recorded
from gendist.distributions.conditionals import Conditional, as_family

__all__ = ["Recorded", "config", "from_config"]


_CONSTRAINTS = {"real": constraints.real, "positive": constraints.positive, "unit_interval": constraints.unit_interval}


def _encode(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Conditional):
        return value.config()
    if isinstance(value, (tuple, list)):
        return [_encode(name, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(f"{name}[{k!r}]", v) for k, v in value.items()}}
    if isinstance(value, nn.Module) and getattr(value, "_config", None) is not None:
        return {"recipe": config(value)}  # a recipe inside a recipe (the experts of a product)
    if isinstance(value, torch.Tensor) and value.dim() <= 2 and not value.dtype.is_floating_point:
        return {"tensor": value.tolist()}
    if isinstance(value, type) and issubclass(value, nn.Module) and getattr(nn, value.__name__, None) is value:
        return {"activation": value.__name__}
    for key, c in _CONSTRAINTS.items():
        if value is c:
            return {"constraint": key}
    if isinstance(value, constraints.interval):
        return {"constraint": "interval", "args": [float(value.lower_bound), float(value.upper_bound)]}
    if isinstance(value, constraints.greater_than):
        return {"constraint": "greater_than", "args": [float(value.lower_bound)]}
    raise ValueError(
        f"the argument `{name}` ({type(value).__name__}) has no JSON form; rebuild the model in code and "
        "load its state_dict instead"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "dict" in value:
            return {k: _decode(v) for k, v in value["dict"].items()}
        if "recipe" in value:
            return from_config(value["recipe"])
        if "tensor" in value:
            return torch.tensor(value["tensor"])
        if "activation" in value:
            return getattr(nn, value["activation"])
        if "family" in value:
            return as_family(value)
        if "constraint" in value:
            kind = value["constraint"]
            return getattr(constraints, kind)(*value["args"]) if "args" in value else _CONSTRAINTS[kind]
    return value


def config(model: nn.Module) -> dict[str, Any]:
    r"""The JSON-ready config of a recipe-built model: ``{"class": name, "args": {...}}``."""
    recorded = getattr(model, "_config", None)
    if recorded is None:
        raise ValueError(
            f"{type(model).__name__} was not built by a gendist recipe, so it has no config; save its "
            "state_dict and rebuild it in code"
        )
    name, arguments = recorded
    out = {"class": name, "args": {k: _encode(k, v) for k, v in arguments.items()}}
    json.dumps(out)  # fail here, not when writing a file
    return out


def from_config(cfg: dict[str, Any]) -> nn.Module:
    r"""Build a fresh model from :func:`config`'s output (load its ``state_dict`` next)."""
    name = cfg.get("class") if isinstance(cfg, dict) else None
    cls = RECIPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown model class {name!r} in config; expected one of gendist's recipes {sorted(RECIPES)}")
    args = {k: _decode(v) for k, v in cfg.get("args", {}).items()}
    params = list(inspect.signature(cls).parameters.values())
    star = next((i for i, q in enumerate(params) if q.kind is q.VAR_POSITIONAL), None)
    if star is None or params[star].name not in args:
        return cls(**args)
    # a recipe of `*args` (a product of experts): what comes before them and they themselves go by position
    positional = [args.pop(q.name) for q in params[:star] if q.name in args]
    return cls(*positional, *args.pop(params[star].name), **args)
