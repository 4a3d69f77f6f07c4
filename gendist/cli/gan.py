r"""``--model gan``: a generative adversarial network, an implicit distribution scored on its samples.

A GAN has no density (``log_prob_kind = "none"``), so a run reports no NLL: ``metrics.json`` holds
sample-based scores of the test split instead — the classifier two-sample test (C2ST, 0.5 when the samples
cannot be told from data), precision/recall/density/coverage (k-NN, on the rows), and, on the ring and grid
densities, the modes covered and the share of high-quality samples (the VEEGAN/PacGAN protocol).

Tables and 2-D densities are modelled standardized. Images of integer levels (digits, mnist) are modelled in
:math:`[0, 1)` (a level :math:`k` is dequantized uniformly to :math:`[k, k+1)` and divided by the number of
levels), and the samples are quantized back, so ``gendist sample`` writes integer levels like the data's.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import constraints

from gendist.cli.data import Data
from gendist.cli.errors import UsageError
from gendist.cli.family import Family, Group, recipe_default
from gendist.data import densities
from gendist.distributions import Implicit, LazyDistribution
from gendist.distributions.implicit import takes_truncation
from gendist.flows import FlowModule, Standardize
from gendist.gan import GAN
from gendist.inference import Objective
from gendist.inference.gan import GAN_LOSSES, gan_objectives
from gendist.metrics import classifier_two_sample_test, mode_coverage, prdc

__all__ = ["GANs", "Quantized", "SCORED_SAMPLES"]

SCORED_SAMPLES = 1000
r"""The samples (and test rows, at most) the scores of a run compare."""

GENERATORS = {"mlp": "mlp", "dcgan": "dcgan", "style": "style"}
CRITICS = ("mlp", "dcgan")


def _default(argument: str) -> Any:
    return recipe_default(GAN, argument)


class Quantized(LazyDistribution):
    r"""A GAN of images of ``levels`` integer levels, modelled in :math:`[0, 1)`: its samples are
    :math:`\lfloor \text{levels} \cdot G(z) \rfloor`, integer levels in :math:`\{0, \dots, \text{levels} - 1\}`.
    Training sees the data as :math:`(x + u) / \text{levels}`, :math:`u \sim \mathcal{U}[0, 1)` (:meth:`inward`).
    """

    def __init__(self, recipe: GAN, levels: int) -> None:
        super().__init__()
        self.recipe, self.levels = recipe, int(levels)

    def inward(self, x: Tensor) -> Tensor:
        r"""The data's levels as the recipe models them: dequantized in training, mid-bin otherwise."""
        u = torch.rand_like(x) if self.training else torch.full_like(x, 0.5)
        return (x + u) / self.levels

    def forward(self, c: Tensor | None = None) -> Implicit:
        d = self.recipe(c)
        levels = self.levels

        def generator(z: Tensor, c: Tensor | None = None, **options: Any) -> Tensor:
            return torch.floor(d.generator(z, c, **options) * levels).clamp(0, levels - 1)

        generator.takes_truncation = takes_truncation(d.generator)  # a style generator truncates in W, as d's

        return Implicit(generator, d.latent, d.event_shape, d.context, support=constraints.integer_interval(
            0, levels - 1), truncation=d.truncation)


def _recipe(model: nn.Module) -> GAN:
    return model.base if isinstance(model, FlowModule) else model.recipe


def _inward(model: nn.Module, x: Tensor) -> Tensor:
    r"""The rows as the recipe sees them: standardized, or dequantized to :math:`[0, 1)`."""
    if isinstance(model, FlowModule):
        return model.transforms[-1]().inv(x)
    return model.inward(x)


class RunObjective:
    r"""A GAN objective's loss on a run's model: the batch taken to the recipe's space, then the recipe's loss.
    Its ``state_dict`` is the inner loss's (a lazy regularizer's counter), which ``fit`` checkpoints."""

    def __init__(self, loss: Any, generator: bool = False) -> None:
        self.loss, self.generator = loss, generator

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        recipe = _recipe(model)
        if self.generator and model.training:
            recipe.generator_stepped()
        return self.loss(recipe, (_inward(model, batch[0]), *batch[1:]))

    def state_dict(self) -> dict[str, Any]:
        return self.loss.state_dict() if callable(getattr(self.loss, "state_dict", None)) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if callable(getattr(self.loss, "load_state_dict", None)):
            self.loss.load_state_dict(state)


def _run_objective(o: Objective) -> Objective:
    inner = o.parameters

    def parameters(m: nn.Module) -> Any:
        return inner(_recipe(m)) if inner is not None else _recipe(m).parameters()

    return Objective(o.name, RunObjective(o.loss, o.name == "generator"), parameters=parameters,
                     optimizer=o.optimizer, lr=o.lr, every=o.every, steps=o.steps, clip_grad=o.clip_grad,
                     validate=False)


class GANs(Family):
    r"""Generative adversarial networks: critic and generator objectives; scored on samples (no density)."""

    title = "generative adversarial networks (--model gan)"
    models = {"gan": "GAN"}
    density = False
    plot_samples = 1000
    examples = (
        "gendist fit --data ring --model gan --loss hinge --r1 0.1 --ema 0.999 --epochs 60 --out runs/ring-gan",
        "gendist fit --data digits --model gan --generator dcgan --critic dcgan --out runs/digits-gan",
    )

    def add_arguments(self, group: Group) -> None:
        group.description = textwrap.fill(  # printed as it is
            "A GAN has no density: a run reports sample-based scores of the test split (C2ST, precision/recall, "
            "and on ring and grid the modes covered) instead of an NLL. --hidden sizes the mlp networks, "
            "--channels the conv ones, --latent the latent size, --dropout the critic's dropout (mlp).", width=78)
        group.add_argument("--generator", default="auto", choices=["auto", *GENERATORS],
                           help="the generator: mlp, dcgan (conv) or style (StyleGAN2-like); auto: dcgan on images, "
                           "else mlp")
        group.add_argument("--critic", default="auto", choices=["auto", *CRITICS],
                           help="the critic (discriminator): mlp or dcgan (conv); auto: dcgan on images, else mlp")
        group.add_argument("--loss", default=_default("loss"), choices=GAN_LOSSES, help="the adversarial loss")
        group.add_argument("--n-critic", type=int, default=_default("n_critic"),
                           help="critic steps per generator step")
        group.add_argument("--gp", type=float, default=_default("gp"),
                           help="weight of the WGAN-GP gradient penalty (typical with --loss wasserstein: 10)")
        group.add_argument("--r1", type=float, default=_default("r1"), help="weight of the R1 penalty on data")
        group.add_argument("--lazy", type=int, default=_default("lazy"),
                           help="compute R1 every this many critic steps (scaled up to match)")
        group.add_argument("--ema", type=float, help="decay of the generator's weight average that samples "
                           "(default: none)")
        group.add_argument("--spectral-norm", action="store_true", help="spectral normalization of the critic")
        group.add_argument("--minibatch-std", action="store_true", help="minibatch standard deviation in the critic")
        group.add_argument("--attention", action="store_true", help="self-attention blocks (dcgan networks)")

    # --- the data and the recipe -----------------------------------------------------------------------
    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        image = (1, *data.image_shape) if data.image_shape is not None else None
        gen = args.generator if args.generator != "auto" else "dcgan" if image else "mlp"
        critic = args.critic if args.critic != "auto" else "dcgan" if image else "mlp"
        if image is None and ("dcgan" in (gen, critic) or gen == "style"):
            raise UsageError(f"--generator {gen} --critic {critic}: conv networks need image data (digits, mnist)")
        for flag, value, low in (("--n-critic", args.n_critic, 1), ("--lazy", args.lazy, 1),
                                 ("--latent", args.latent, 1)):
            if value < low:
                raise UsageError(f"{flag} must be >= {low}, got {value}")
        for flag, value in (("--gp", args.gp), ("--r1", args.r1)):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{flag} must be >= 0 and finite, got {value:g}")
        if args.ema is not None and not 0 <= args.ema < 1:
            raise UsageError(f"--ema must be in [0, 1), got {args.ema:g}")
        return GAN(data.features, latent=args.latent, generator=gen, discriminator=critic, image=image,
                   hidden=tuple(args.hidden), channels=args.channels, out="sigmoid" if image else "identity",
                   spectral_norm=args.spectral_norm, attention=args.attention, minibatch_std=args.minibatch_std,
                   loss=args.loss, n_critic=args.n_critic, gp=args.gp, r1=args.r1, lazy=args.lazy, ema=args.ema)

    def model(self, recipe: nn.Module, features: int, levels: int | None) -> nn.Module:
        r"""Images of levels: :class:`Quantized`; other data: under the data's standardization."""
        if levels:
            return Quantized(recipe, levels)
        return FlowModule([Standardize(features)], features=features, base=recipe)

    def is_discrete(self, model: nn.Module, levels: int | None) -> bool:
        return bool(levels)

    # --- training ----------------------------------------------------------------------------------------
    def objective(self, args: argparse.Namespace, levels: int | None) -> list[Objective]:
        return [_run_objective(o) for o in _recipe_objectives(args)]

    def log_prob_kind(self, model: nn.Module, config: dict[str, Any]) -> str:
        return "none"

    # --- the scores ----------------------------------------------------------------------------------------
    def sample_scores(self, model: nn.Module, data: Data, device: torch.device, seed: int) -> dict[str, Any]:
        r"""C2ST and precision/recall/density/coverage of samples against the test rows; modes on ring and grid."""
        n = min(SCORED_SAMPLES, len(data.test))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(seed)
            fake = model().sample((SCORED_SAMPLES,)).cpu().to(data.test.dtype)
        real = data.test[:n]
        g = torch.Generator().manual_seed(seed)
        scores: dict[str, Any] = {"c2st": classifier_two_sample_test(fake[:n], real, generator=g).statistic}
        scores.update(prdc(real, fake[:n], k=5)._asdict())
        d = densities[data.name]() if data.kind == "density" else None
        if d is not None and hasattr(d, "centres"):
            cover = mode_coverage(fake, d.centres.to(fake), d.std)
            scores.update(modes=cover.modes, of_modes=len(d.centres), high_quality=cover.high_quality)
        return scores

    def sample_summary(self, scores: dict[str, Any]) -> str:
        line = (f"no test NLL (a GAN has no density); test C2ST {scores['c2st']:.3f} (0.5: indistinguishable)   "
                f"precision {scores['precision']:.3f}   recall {scores['recall']:.3f}")
        if "modes" in scores:
            line += f"   modes {scores['modes']}/{scores['of_modes']}   high quality {scores['high_quality']:.1%}"
        return line


def _recipe_objectives(args: argparse.Namespace) -> list[Objective]:
    r"""The GAN's objectives for the flags (the same ones the recipe would give itself)."""
    return gan_objectives(args.loss, n_critic=args.n_critic, gp=args.gp, r1=args.r1, lazy=args.lazy)
