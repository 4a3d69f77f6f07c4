r"""Generative adversarial networks as implicit distributions: ``GAN``, image-to-image translation, text to image.

Calling a recipe returns a :class:`~gendist.Implicit` distribution (``rsample`` is one generator pass,
``log_prob_kind = "none"``); ``gendist.inference.fit(model, data)`` trains it by its critic and generator
objectives (:mod:`gendist.inference.gan`).
"""

from gendist.gan.core import DISCRIMINATORS, GAN, GENERATORS, OUTPUTS, Pushforward

__all__ = ["DISCRIMINATORS", "GAN", "GENERATORS", "OUTPUTS", "Pushforward"]

from gendist.gan.text import TextToImage  # noqa: E402
from gendist.gan.translation import CycleGAN, NoLatent, Pix2Pix  # noqa: E402

__all__ += ["CycleGAN", "NoLatent", "Pix2Pix", "TextToImage"]

from gendist.gan.progressive import ProgressiveGAN  # noqa: E402

__all__ += ["ProgressiveGAN"]
