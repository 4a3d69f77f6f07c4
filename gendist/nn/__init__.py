r"""Networks the families use: perceptrons, masked autoregressive networks, vector quantization."""

from gendist.nn.causal import CausalConv1d, HorizontalConv2d, MaskedConv2d, VerticalConv2d
from gendist.nn.mlp import MADE, MLP, MaskedLinear
from gendist.nn.nade import NADE
from gendist.nn.pixelcnn import GatedPixelCNN
from gendist.nn.transformer import CausalTransformer, KVCache
from gendist.nn.vq import VectorQuantizer
from gendist.nn.wavenet import WaveNet

__all__ = ["MADE", "MLP", "MaskedLinear"]
__all__ += ["NADE"]
__all__ += ["CausalTransformer", "KVCache"]
__all__ += ["VectorQuantizer"]
__all__ += ["CausalConv1d", "GatedPixelCNN", "HorizontalConv2d", "MaskedConv2d", "VerticalConv2d", "WaveNet"]
