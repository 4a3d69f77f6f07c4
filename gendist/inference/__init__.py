r"""Training: objectives and one loop, :func:`fit`, shared by every family with an objective."""

from gendist.inference.fit import History, fit, load_checkpoint, nll_objective

__all__ = ["History", "fit", "load_checkpoint", "nll_objective"]
