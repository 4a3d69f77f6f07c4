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

from gendist.nn.gan import (  # noqa: E402
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    PatchDiscriminator,
    UNetTranslator,
)
from gendist.nn.gan_blocks import (  # noqa: E402
    ConditionalBatchNorm2d,
    ConditioningAugmentation,
    MinibatchStdDev,
    SelfAttention2d,
    TextEncoder,
    spectral_normed,
)

__all__ += ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "PatchDiscriminator",
            "UNetTranslator"]
__all__ += ["ConditionalBatchNorm2d", "ConditioningAugmentation", "MinibatchStdDev", "SelfAttention2d",
            "TextEncoder", "spectral_normed"]

from gendist.nn.progressive import ProgressiveDiscriminator, ProgressiveGenerator  # noqa: E402
from gendist.nn.style import (  # noqa: E402
    AdaIN,
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    StyleGenerator,
)

__all__ += ["AdaIN", "EqualConv2d", "EqualLinear", "MappingNetwork", "ModulatedConv2d", "NoiseInjection",
            "StyleGenerator"]
__all__ += ["ProgressiveDiscriminator", "ProgressiveGenerator"]
