r"""``--model vae | iwae | hvae | vqvae``: latent-variable models, scored by importance sampling (VQ-VAE: a bound)."""

from __future__ import annotations

import argparse
from typing import Any

import torch.nn as nn

from gendist import latent
from gendist.autoregressive import Conditional, Normal
from gendist.cli.data import Data
from gendist.cli.errors import UsageError
from gendist.cli.family import Family, Group, conditional, recipe_default
from gendist.latent.vae import ENCODERS, PRIORS

__all__ = ["Latent", "LATENT", "PARTICLES"]

LATENT = 16
r"""The default latent dimension (hvae: of the lower layer; vqvae: of a code)."""

PRIOR_COMPONENTS = 50
r"""The default mixture components or pseudo-inputs of a mixture or VampPrior."""

PARTICLES = 1000
r"""The default importance samples of the reported log-likelihood estimate."""

DOWNSAMPLE = 1
r"""The default stride-2 steps from an image to a VQ-VAE's code grid (the 8x8 digits are small)."""

CHUNK = 500
r"""Importance samples scored at a time (memory)."""


class Latent(Family):
    r"""Latent-variable models: trained on their bound, NLL an importance-sampled estimate."""

    title = "latent-variable models (--model vae, iwae, hvae, vqvae)"
    models = {"vae": "VAE", "iwae": "IWAE", "hvae": "HierarchicalVAE", "vqvae": "VQVAE"}
    discrete = True
    own_loss = True
    examples = (
        "gendist fit --data digits --model vae --latent 16 --out runs/digits-vae   # NLL: importance-sampled estimate",
        "gendist fit --data digits --model vqvae --codes 32 --out runs/digits-vqvae   # NLL: a lower bound",
    )

    def add_arguments(self, group: Group) -> None:
        group.add_argument("--latent", type=int, default=LATENT,
                           help="latent dimension (hvae: the lower layer; vqvae: of a code)")
        group.add_argument("--prior", default=recipe_default(latent.VAE, "prior"), choices=PRIORS,
                           help="vae, iwae: the prior over the latent (mixture and vamp take --prior-components)")
        group.add_argument("--prior-components", type=int, default=PRIOR_COMPONENTS,
                           help="vae, iwae: mixture components or pseudo-inputs")
        group.add_argument("--encoder", default=recipe_default(latent.VAE, "encoder"), choices=ENCODERS,
                           help="vae, iwae: the guide")
        group.add_argument("--codes", type=int, default=recipe_default(latent.VQVAE, "codes"),
                           help="vqvae: codebook size (--latent: code dimension)")
        group.add_argument("--downsample", type=int, default=DOWNSAMPLE,
                           help="vqvae: stride-2 steps from the image to the code grid")
        group.add_argument("--k", type=int, default=recipe_default(latent.IWAE, "k"),
                           help="iwae: importance samples of the training bound")
        group.add_argument("--particles", type=int, default=PARTICLES,
                           help="importance samples of the reported log-likelihood estimate")

    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        family = conditional(data.levels) if data.levels else Normal()
        if args.model == "vqvae":
            return self._vqvae(args, data, family)
        if args.latent < 1 or args.k < 1 or args.particles < 1:
            raise UsageError(
                f"--latent, --k and --particles must be >= 1, got {args.latent}, {args.k}, {args.particles}")
        kwargs: dict[str, Any] = {"family": family, "hidden": tuple(args.hidden), "particles": args.particles,
                                  "chunk": CHUNK}
        if args.model in ("vae", "iwae"):
            kwargs.update(prior=args.prior, encoder=args.encoder, components=args.prior_components)
        elif (args.prior, args.encoder) != (recipe_default(latent.VAE, "prior"), recipe_default(latent.VAE, "encoder")):
            raise UsageError(f"--prior and --encoder apply to vae and iwae, not {args.model}")
        if args.model == "hvae":
            kwargs["latents"] = (args.latent, max(1, args.latent // 2))
        else:
            kwargs["latent"] = args.latent
        if args.model == "iwae":
            kwargs["k"] = args.k
        return getattr(latent, self.models[args.model])(data.features, **kwargs)

    def _vqvae(self, args: argparse.Namespace, data: Data, family: Conditional) -> nn.Module:
        image = data.image_shape
        if image is None or not data.levels:
            raise UsageError("--model vqvae needs image data with levels (digits or mnist)")
        if args.codes < 2 or args.downsample < 0:
            raise UsageError(f"--codes must be >= 2 and --downsample >= 0, got {args.codes} and {args.downsample}")
        f = 2**args.downsample
        if image[0] % f or image[1] % f:
            raise UsageError(
                f"--downsample {args.downsample}: the {image[0]}x{image[1]} images are not divisible by {f}")
        return latent.VQVAE((1, *image), family, codes=args.codes, dim=args.latent, channels=args.channels,
                            downsample=args.downsample, prior_channels=args.channels, prior_layers=args.layers)

    def log_prob_kind(self, model: nn.Module, config: dict[str, Any]) -> str:
        return "bound" if config["class"] == self.models["vqvae"] else "estimate"

    def note(self, kind: str, args: argparse.Namespace) -> str:
        if kind == "bound":
            return " (a lower bound: log p(x | codes) + log p(codes) at the encoder's codes)"
        return f" (importance-sampled estimate, {args.particles} particles: a bound in expectation)"
