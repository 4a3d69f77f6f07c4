r"""Training: objectives and one loop, :func:`fit`, shared by every family with an objective."""

from gendist.inference import distributed
from gendist.inference.ema import EMA
from gendist.inference.fit import History, fit, load_checkpoint
from gendist.inference.objective import Objective, Stage, Stateful, nll_objective
from gendist.inference.score_matching import WEIGHTINGS, TimeSampler, dsm_loss, weight

__all__ = [
    "EMA", "History", "Objective", "Stage", "Stateful", "TimeSampler", "WEIGHTINGS", "distributed", "dsm_loss",
    "fit", "load_checkpoint", "nll_objective", "weight",
]
from gendist.inference.variational import OBJECTIVES, kl_weight, variational_loss  # noqa: E402

__all__ += ["OBJECTIVES", "kl_weight", "variational_loss"]
from gendist.inference.energy import (  # noqa: E402
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseContrastiveEstimation,
    SlicedScoreMatching,
    flow_contrastive_objectives,
)

__all__ += ["ContrastiveDivergence", "DenoisingScoreMatching", "NoiseContrastiveEstimation", "SlicedScoreMatching",
            "flow_contrastive_objectives"]
from gendist.inference.gan import (  # noqa: E402
    GAN_LOSSES,
    CriticLoss,
    GeneratorLoss,
    discriminator_loss,
    feature_matching,
    gan_objectives,
    generator_loss,
    gradient_penalty,
    r1_penalty,
    r2_penalty,
)

__all__ += ["CriticLoss", "GAN_LOSSES", "GeneratorLoss", "discriminator_loss", "feature_matching", "gan_objectives",
            "generator_loss", "gradient_penalty", "r1_penalty", "r2_penalty"]
