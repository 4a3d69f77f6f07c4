r"""``--model rbm | ebm``: energy-based models, trained without :math:`Z`, scored with a :math:`\log Z` found once.

``rbm`` is a restricted Boltzmann machine (:class:`gendist.ebm.RBM`): Bernoulli visible units on binary data
(``mnist``, or a table of 0/1 columns), Gaussian ones on continuous data (under the data's standardization).
``ebm`` is a deep energy (:class:`gendist.ebm.Energy`) of the standardized data. Both train on the family's own
loss (contrastive divergence with MCMC negatives, score matching, noise-contrastive estimation, or, for a small
RBM, exact maximum likelihood); once trained, :math:`\log Z` is found once (exact: enumeration of an RBM's smaller
layer or a quadrature in 1-2 dimensions; else an AIS estimate with its standard error) and kept with the weights,
so ``metrics.json``, ``gendist evaluate`` and ``log_prob_kind`` all say what the reported NLL is.
"""

from __future__ import annotations

import argparse
import copy
import math
import textwrap
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gendist.cli.data import Data
from gendist.cli.errors import UsageError
from gendist.cli.family import Family, Group, Loss, recipe_default
from gendist.diffusion import DiffusionModel
from gendist.distributions import LazyDistribution
from gendist.distributions.energy import ENUMERATION_LIMIT, EnergyBased, LogPartition
from gendist.ebm import RBM, Energy
from gendist.flows import FlowModule, Standardize
from gendist.inference import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseContrastiveEstimation,
    SlicedScoreMatching,
)

__all__ = ["EnergyLoss", "EnergyModels", "Normalized"]

HIDDEN_UNITS = 20
r"""The default hidden units of an RBM: few enough that its exact :math:`\log Z` sums :math:`2^{20}` states."""

OBJECTIVES = {"rbm": ("pcd", "cd", "exact"), "ebm": ("ssm", "pcd", "cd", "dsm", "nce")}
r"""The training objectives of each model, its default first."""

CD_STEPS = {"rbm": 1, "ebm": 10}
r"""The default MCMC steps per training step of ``cd`` and ``pcd`` (rbm: block-Gibbs sweeps; ebm: sampler steps)."""

L2 = {"rbm": 0.0, "ebm": 0.1}
r"""The default ``--l2``: an RBM's weight decay :math:`\lambda \lVert W \rVert^2`; a deep energy's penalty
:math:`\lambda (E(x)^2 + E(x^-)^2)` on the energies of data and negatives (cd, pcd), which keeps them bounded."""

SAMPLERS = ("mala", "ula", "hmc")
r"""The MCMC samplers of ``--model ebm`` (an RBM samples by block Gibbs sweeps)."""

SAMPLE_STEPS = recipe_default(DiffusionModel, "steps")
r"""The steps of a sample, the default of ``--sampler-steps`` (a flag of the diffusion family's, shared)."""

STEP_SIZE = 0.03
r"""The default step size of an ebm's sampler, in standardized units (MALA accepts about 3 moves in 4 on the 2-D
densities, whose 50 steps from :math:`\mathcal{N}(0, I)` then come close to the model)."""

LOG_PARTITION = ("auto", "exact", "ais")
r"""How the reported NLL's :math:`\log Z` is found: ``auto`` (exact where possible, else AIS), ``exact``
(rbm: enumerating the smaller layer; ebm: a quadrature, 1-2 features) or ``ais`` (an estimate)."""

AIS_CHAINS, AIS_BETAS = 100, 1000
r"""The default chains and inverse temperatures of AIS."""

DSM_SIGMA = 0.1
r"""The default noise level of denoising score matching, in standardized units."""

NCE_RATIO, NCE_SCALE = 4, 1.2
r"""Noise draws per example of noise-contrastive estimation, and the noise's scale: :math:`\mathcal{N}(0, 1.2^2 I)`
in standardized units, a little wider than the data."""

QUADRATURE_BOUND, QUADRATURE_STEP, QUADRATURE_DOUBLINGS = 10.0, 0.05, 2
r"""The quadrature of an ebm's :math:`\log Z` (1-2 features): the box :math:`[-B, B]^D` in standardized units,
:math:`B` at least 10 and 2 beyond the farthest training value, on a grid of this step; :math:`B` is doubled (up
to twice) while the box's edge holds mass."""

_METHODS = (None, "exact", "quadrature", "ais")  # codes of the stored log Z's method (0: not found yet)


class Normalized(LazyDistribution):
    r"""An energy recipe (an :class:`~gendist.ebm.RBM` or :class:`~gendist.ebm.Energy`) whose :math:`\log Z`,
    once found (:meth:`set_log_partition`), is kept in buffers with the weights: its call then returns the
    recipe's distribution with that :math:`\log Z` (and its standard error), without computing it again.
    Until then the call is the recipe's (what training uses)."""

    def __init__(self, recipe: nn.Module) -> None:
        super().__init__()
        self.recipe = recipe
        self.register_buffer("log_z", torch.tensor(math.nan))
        self.register_buffer("log_z_stderr", torch.tensor(math.nan))  # NaN: exact
        self.register_buffer("log_z_method", torch.tensor(0))

    @property
    def log_partition(self) -> LogPartition | None:
        r"""The stored :math:`\log Z` (None before :meth:`set_log_partition`)."""
        code = int(self.log_z_method)
        if code == 0:
            return None
        se = None if torch.isnan(self.log_z_stderr) else self.log_z_stderr
        return LogPartition(self.log_z, se, _METHODS[code])

    def set_log_partition(self, log_z: LogPartition) -> None:
        r"""Keep ``log_z`` (a scalar) with the weights."""
        self.log_z.copy_(log_z.value.detach().reshape(()))
        self.log_z_stderr.fill_(math.nan if log_z.stderr is None else float(log_z.stderr))
        self.log_z_method.fill_(_METHODS.index(log_z.method))

    def forward(self, c: Tensor | None = None) -> EnergyBased:
        log_z = self.log_partition
        if log_z is None:
            return self.recipe(c)
        d = copy.copy(self.recipe(c, log_partition=None))  # the stored log Z, not the recipe's own
        d.log_z, d.up_to_constant = log_z, False
        return d


def _normalized(model: nn.Module) -> Normalized:
    r"""The :class:`Normalized` energy of a run's model (inside the data's standardization, or the model)."""
    return model.base if isinstance(model, FlowModule) else model


class EnergyLoss:
    r"""The training loss of a run's energy: ``loss(recipe, (y,))`` on the rows :math:`y` in the recipe's space
    (dequantized in training where ``levels``, then standardized), plus an RBM's weight decay; an RBM with
    centering moves its offsets towards the batch's means first (in training). Its ``state_dict`` is the inner
    loss's (persistent chains and their generator), which ``fit`` checkpoints."""

    def __init__(self, loss: Loss, levels: int | None = None, weight_decay: float = 0.0) -> None:
        self.loss, self.levels, self.weight_decay = loss, levels, weight_decay

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x = batch[0]
        if self.levels and model.training:
            x = x + torch.rand_like(x)
        if isinstance(model, FlowModule):
            x = model.transforms[-1]().inv(x)
        recipe = _normalized(model).recipe
        if model.training and getattr(recipe, "centering", False):
            recipe.update_offsets(x)
        loss = self.loss(recipe, (x,))
        if self.weight_decay:
            loss = loss + self.weight_decay * recipe.weight.pow(2).sum()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.loss.state_dict() if callable(getattr(self.loss, "state_dict", None)) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if callable(getattr(self.loss, "load_state_dict", None)):
            self.loss.load_state_dict(state)


class _ExactNLL:
    r"""The mean NLL of an RBM carrying its exact, differentiable :math:`\log Z` (exact maximum likelihood)."""

    def __call__(self, recipe: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return -recipe().log_prob(batch[0]).mean()


class _NCE:
    r"""Noise-contrastive estimation against :math:`\mathcal{N}(0, s^2 I)` (on the batch's device and dtype)."""

    def __init__(self, ratio: int, scale: float = NCE_SCALE) -> None:
        self.ratio, self.scale = ratio, scale

    def __call__(self, recipe: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x = batch[0]
        noise = torch.distributions.Independent(torch.distributions.Normal(x.new_zeros(x.shape[-1]), self.scale), 1)
        return NoiseContrastiveEstimation(noise, self.ratio)(recipe, batch)


def _objective(args: argparse.Namespace) -> str:
    return _option(args, "objective", {m: o[0] for m, o in OBJECTIVES.items()})


def _option(args: argparse.Namespace, name: str, defaults: dict[str, Any]) -> Any:
    r"""A flag whose default depends on the model (None: not given)."""
    value = getattr(args, name)
    return defaults[args.model] if value is None else value


def _sampler(args: argparse.Namespace) -> str:
    r"""The ebm's sampler: ``--sampler`` (the diffusion family's flag, which the energies share) where it names
    one of :data:`SAMPLERS`; the flag's default (diffusion's ODE solver) means the first of them."""
    name = getattr(args, "sampler", None)
    if name in SAMPLERS:
        return name
    if name in (None, recipe_default(DiffusionModel, "sampler")):
        return SAMPLERS[0]
    raise UsageError(f"--sampler {name}: --model ebm samples by MCMC: {', '.join(SAMPLERS)}")


def _sample_steps(args: argparse.Namespace) -> int:
    r"""``--sampler-steps`` (the diffusion family's flag, which the energies share)."""
    return getattr(args, "sampler_steps", SAMPLE_STEPS)


class EnergyModels(Family):
    r"""Energy-based models: an RBM or a deep energy; NLL with an exact or AIS-estimated :math:`\log Z`."""

    title = "energy-based models (--model rbm, ebm)"
    models = {"rbm": "RBM", "ebm": "Energy"}
    plot_samples = 500  # a sample is an MCMC chain
    examples = (
        "gendist fit --data mnist --model rbm --hidden-units 20 --out runs/mnist-rbm   # PCD; exact NLL",
        "gendist fit --data moons --model ebm --hidden 64 64 --out runs/moons-ebm   # SSM; exact NLL by quadrature",
    )

    def add_arguments(self, group: Group) -> None:
        group.description = textwrap.fill(  # printed as it is (the parser's formatter keeps descriptions raw)
            "rbm: Bernoulli units on binary data (mnist, a table of 0/1 columns), Gaussian ones on continuous "
            "data; ebm: a deep energy (--hidden) of real data. Their samples are MCMC chains of --sampler-steps "
            f"steps (the diffusion models' flag, default {SAMPLE_STEPS}) of --sampler (ebm: {', '.join(SAMPLERS)}; "
            f"default {SAMPLERS[0]}; rbm: block Gibbs).", width=78)
        group.add_argument("--hidden-units", type=int, default=HIDDEN_UNITS, help="rbm: hidden units")
        group.add_argument("--visible", default="auto", choices=["auto", "bernoulli", "gaussian"],
                           help="rbm: the visible units: auto (bernoulli on binary data, gaussian on continuous "
                           "data), or gaussian on discrete data, dequantized")
        group.add_argument("--centering", action="store_true",
                           help="rbm: centered energy (offsets at the data's and hidden units' running means)")
        group.add_argument("--objective", choices=sorted({o for v in OBJECTIVES.values() for o in v}),
                           help="the training loss; rbm: pcd, cd or exact (maximum likelihood with the exact "
                           "log Z, at most 25 units in the smaller layer); ebm: pcd, cd, ssm (sliced score "
                           "matching), dsm (denoising score matching) or nce (noise-contrastive estimation) "
                           f"(default: {OBJECTIVES['rbm'][0]} for rbm, {OBJECTIVES['ebm'][0]} for ebm)")
        group.add_argument("--cd-steps", type=int, help="cd, pcd: MCMC steps per training step (rbm: Gibbs sweeps) "
                           f"(default: {CD_STEPS['rbm']} for rbm, {CD_STEPS['ebm']} for ebm)")
        group.add_argument("--chains", type=int, help="pcd: persistent chains (default: the batch size)")
        group.add_argument("--l2", type=float, help="rbm: weight decay l2 |W|^2; ebm (cd, pcd): the penalty "
                           f"l2 (E(x)^2 + E(x-)^2) on the energies (default: {L2['rbm']:g} for rbm, "
                           f"{L2['ebm']:g} for ebm)")
        group.add_argument("--step-size", type=float, default=STEP_SIZE,
                           help="ebm: the sampler's step size, in standardized units")
        group.add_argument("--dsm-sigma", type=float, default=DSM_SIGMA,
                           help="ebm, dsm: the noise level, in standardized units")
        group.add_argument("--nce-ratio", type=int, default=NCE_RATIO,
                           help=f"ebm, nce: noise draws per example (noise N(0, {NCE_SCALE:g}^2 I), standardized)")
        group.add_argument("--log-partition", default="auto", choices=LOG_PARTITION,
                           help="the reported NLL's log Z: exact (rbm: enumerating the smaller layer, at most "
                           f"{ENUMERATION_LIMIT} units; ebm: a quadrature, 1-2 features), ais (an estimate, with "
                           "its standard error in metrics.json), or auto (exact where possible, else ais)")
        group.add_argument("--ais-chains", type=int, default=AIS_CHAINS, help="ais: chains")
        group.add_argument("--ais-betas", type=int, default=AIS_BETAS, help="ais: inverse temperatures")

    # --- the data and the recipe -----------------------------------------------------------------------
    def data_levels(self, args: argparse.Namespace, data: Data) -> int | None:
        r"""A table of 0/1 columns is binary data to a Bernoulli RBM (``--visible`` auto or bernoulli)."""
        if args.model == "rbm" and data.levels is None and args.visible != "gaussian" and _binary(data):
            return 2
        return data.levels

    def _visible(self, args: argparse.Namespace, data: Data) -> str:
        levels = self.data_levels(args, data)
        if args.visible == "gaussian":
            return "gaussian"
        if levels == 2:
            return "bernoulli"
        if levels:
            raise UsageError(
                f"--model rbm: {data.name} has {levels} levels, but a Bernoulli RBM's units are binary (2 levels): "
                "binarize the data (--data mnist, or a table of 0/1 columns) or fit a Gaussian-Bernoulli RBM of the "
                "dequantized values with --visible gaussian")
        if args.visible == "bernoulli":
            raise UsageError(f"--visible bernoulli: {data.name} is not binary (a Bernoulli RBM needs values 0 and 1 "
                             "only); use --visible gaussian")
        return "gaussian"

    def _check(self, args: argparse.Namespace, data: Data) -> None:
        for flag, value, low in (("--cd-steps", args.cd_steps, 1), ("--chains", args.chains, 1),
                                 ("--sampler-steps", _sample_steps(args), 1), ("--ais-chains", args.ais_chains, 2),
                                 ("--ais-betas", args.ais_betas, 4), ("--hidden-units", args.hidden_units, 1),
                                 ("--nce-ratio", args.nce_ratio, 1)):
            if value is not None and value < low:
                raise UsageError(f"{flag} must be >= {low}, got {value}")
        for flag, value, zero in (("--step-size", args.step_size, False), ("--dsm-sigma", args.dsm_sigma, False),
                                  ("--l2", args.l2, True)):
            if value is not None and not (math.isfinite(value) and (value > 0 or (zero and value == 0))):
                raise UsageError(f"{flag} must be {'>= 0' if zero else '> 0'} and finite, got {value:g}")
        objective = _objective(args)
        if objective not in OBJECTIVES[args.model]:
            raise UsageError(f"--objective {objective}: --model {args.model} trains by "
                             f"{', '.join(OBJECTIVES[args.model])}")
        if args.chains is not None and objective != "pcd":
            raise UsageError(f"--chains is the number of persistent chains of --objective pcd, not {objective}")

    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        self._check(args, data)
        return self._rbm(args, data) if args.model == "rbm" else self._ebm(args, data)

    def _rbm(self, args: argparse.Namespace, data: Data) -> nn.Module:
        if getattr(args, "sampler", None) in SAMPLERS:
            raise UsageError(f"--sampler {args.sampler}: an RBM samples by block Gibbs sweeps; --sampler is the "
                             "ebm's")
        visible = self._visible(args, data)
        V, H = data.features, args.hidden_units
        n, layer = (H, "hidden") if visible == "gaussian" or H <= V else (V, "visible")  # what exact log Z sums
        objective = _objective(args)
        if objective == "exact" and n > ENUMERATION_LIMIT:
            raise UsageError(
                f"--objective exact sums the 2^{n} states of the {layer} layer at every step; at most "
                f"{ENUMERATION_LIMIT} units are enumerated (--hidden-units {ENUMERATION_LIMIT} or fewer); "
                "train with --objective pcd instead")
        if args.log_partition == "exact" and n > ENUMERATION_LIMIT:
            raise UsageError(
                f"--log-partition exact sums the 2^{n} states of the {layer} layer; at most {ENUMERATION_LIMIT} "
                "units are enumerated: use --log-partition ais (an estimate with its standard error)")
        return RBM(V, H, visible_kind=visible, centering=args.centering, steps=_sample_steps(args),
                   log_partition="exact" if objective == "exact" else None)

    def _ebm(self, args: argparse.Namespace, data: Data) -> nn.Module:
        objective = _objective(args)
        if args.log_partition == "exact" and data.features > 2:
            raise UsageError(
                f"--log-partition exact: an ebm's exact log Z is a quadrature, of 1 or 2 features; the data has "
                f"{data.features}: use --log-partition ais (an estimate with its standard error)")
        if args.centering or args.visible != "auto":
            raise UsageError("--centering and --visible apply to --model rbm, not ebm")
        return Energy(data.features, hidden=tuple(args.hidden), sampler=_sampler(args), steps=_sample_steps(args),
                      step_size=args.step_size, learn_normalizer=objective == "nce")

    def model(self, recipe: nn.Module, features: int, levels: int | None) -> nn.Module:
        r"""A Bernoulli RBM models the binary rows as they are; other energies the standardized rows."""
        energy = Normalized(recipe)
        if isinstance(recipe, RBM) and recipe.visible_kind == "bernoulli":
            return energy
        return FlowModule([Standardize(features)], features=features, base=energy)

    def is_discrete(self, model: nn.Module, levels: int | None) -> bool:
        return bool(levels) and not isinstance(model, FlowModule)

    def prepare(self, model: nn.Module, standardized: Any) -> None:
        r"""An RBM starts from the data (Hinton, 2010): visible biases at the data's marginals, centered offsets."""
        recipe = _normalized(model).recipe
        if isinstance(recipe, RBM):
            with torch.no_grad():
                recipe.init_from_data(standardized())

    # --- training ----------------------------------------------------------------------------------------
    def objective(self, args: argparse.Namespace, levels: int | None) -> Loss | None:
        objective = _objective(args)
        l2 = _option(args, "l2", L2)
        k = _option(args, "cd_steps", CD_STEPS)
        rbm = args.model == "rbm"
        loss: Any
        if objective in ("cd", "pcd"):
            loss = ContrastiveDivergence(k, persistent=objective == "pcd", chains=args.chains,
                                         l2=0.0 if rbm else l2, seed=args.seed)
        elif objective == "exact":
            loss = _ExactNLL()
        elif objective == "ssm":
            loss = SlicedScoreMatching(directions="rademacher")
        elif objective == "dsm":
            loss = DenoisingScoreMatching(args.dsm_sigma)
        else:
            loss = _NCE(args.nce_ratio)
        return EnergyLoss(loss, levels, weight_decay=l2 if rbm else 0.0)

    # --- log Z and the scores ------------------------------------------------------------------------------
    def finish(self, model: nn.Module, train: Tensor, args: argparse.Namespace) -> dict[str, Any]:
        r"""Find :math:`\log Z` by ``--log-partition`` (in the recipe's space) and keep it with the weights."""
        energy = _normalized(model)
        y = model.transforms[-1]().inv(train) if isinstance(model, FlowModule) else train
        with torch.no_grad():
            log_z = _log_partition(energy.recipe, y, args)
        energy.set_log_partition(log_z)
        se = None if log_z.stderr is None else float(log_z.stderr)
        out = {"log_partition": float(log_z.value), "log_partition_stderr": se, "log_partition_method": log_z.method}
        if log_z.method == "ais":
            out["ais"] = {"chains": args.ais_chains, "betas": args.ais_betas}
        return out

    def log_prob_kind(self, model: nn.Module, config: dict[str, Any]) -> str:
        return _normalized(model)().log_prob_kind

    def summary(self, metrics: dict[str, Any]) -> str:
        lz, se, method = (metrics.get(k) for k in ("log_partition", "log_partition_stderr", "log_partition_method"))
        if lz is None:
            return ""
        how = {"exact": "enumeration", "quadrature": "quadrature", "ais": "AIS"}.get(method, method)
        error = f" +- {se:.4f}" if se is not None else ""
        return f" ({metrics['log_prob_kind']}: log Z {lz:.4f}{error} by {how})"


def _log_partition(recipe: nn.Module, y: Tensor, args: argparse.Namespace) -> LogPartition:
    r"""The recipe's :math:`\log Z` by ``--log-partition`` (``y``: the training rows in its space)."""
    asked = args.log_partition
    ais: dict[str, Any] = {"chains": args.ais_chains, "betas": args.ais_betas,
                           "generator": torch.Generator(device=y.device).manual_seed(args.seed)}
    if isinstance(recipe, RBM):
        n = recipe.hidden if recipe.visible_kind == "gaussian" else min(recipe.visible, recipe.hidden)
        method = asked if asked != "auto" else "exact" if n <= ENUMERATION_LIMIT else "ais"
        options = {"base_rate": y.mean(0), **ais} if method == "ais" else {}
        return recipe(log_partition=method, partition_options=options).log_z
    if asked == "ais" or recipe.shape.numel() > 2:
        return recipe(log_partition="ais", partition_options=ais).log_z
    log_z = _quadrature(recipe, y, asked == "exact")
    return log_z if log_z is not None else recipe(log_partition="ais", partition_options=ais).log_z


def _quadrature(recipe: nn.Module, y: Tensor, asked: bool) -> LogPartition | None:
    r"""An ebm's :math:`\log Z` by a quadrature over a box that holds its mass: :math:`[-B, B]^D` with :math:`B`
    doubled while mass lies on its edge, up to :data:`QUADRATURE_DOUBLINGS` times; then None (AIS instead), or,
    when ``--log-partition exact`` was asked, a :class:`UsageError`."""
    bound = max(QUADRATURE_BOUND, math.ceil(float(y.abs().max())) + 2.0)
    for _ in range(QUADRATURE_DOUBLINGS + 1):
        options = {"bound": bound, "points": round(2 * bound / QUADRATURE_STEP) + 1}
        try:
            return recipe(log_partition="quadrature", partition_options=options).log_z
        except ValueError as e:  # mass on the edge of the box
            error = e
        bound *= 2
    if not asked:
        return None
    raise UsageError(f"--log-partition exact: no box up to [-{bound / 2:g}, {bound / 2:g}] (standardized) holds the "
                     f"model's mass ({error}); continue with --resume --log-partition ais to score the trained weights "
                     "by AIS")


def _binary(data: Data) -> bool:
    r"""Whether every value of every split is 0 or 1."""
    return all(bool(((x == 0) | (x == 1)).all()) for x in (data.train, data.valid, data.test))
