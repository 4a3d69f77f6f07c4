r"""Networks the families use: perceptrons, masked autoregressive networks, vector quantization."""

from gendist.nn.causal import CausalConv1d, HorizontalConv2d, MaskedConv2d, VerticalConv2d
from gendist.nn.mlp import MLP, MaskedLinear, MaskedMLP
from gendist.nn.nade import TiedMLP
from gendist.nn.pixelcnn import GatedPixelCNN
from gendist.nn.transformer import CausalTransformer, KVCache
from gendist.nn.vq import VectorQuantizer
from gendist.nn.wavenet import DilatedCausalCache, DilatedCausalNet

__all__ = ["MLP", "MaskedLinear", "MaskedMLP"]
__all__ += ["TiedMLP"]
__all__ += ["CausalTransformer", "KVCache"]
__all__ += ["VectorQuantizer"]
__all__ += ["CausalConv1d", "GatedPixelCNN", "HorizontalConv2d", "MaskedConv2d", "VerticalConv2d"]
__all__ += ["DilatedCausalCache", "DilatedCausalNet"]

from gendist.nn.energy import ConvNet, EnergyConvNet, EnergyMLP  # noqa: E402

__all__ += ["ConvNet", "EnergyConvNet", "EnergyMLP"]
