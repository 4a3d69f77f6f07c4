r"""Networks the families use: perceptrons and masked autoregressive networks."""

from gendist.nn.mlp import MADE, MLP, MaskedLinear

__all__ = ["MADE", "MLP", "MaskedLinear"]
