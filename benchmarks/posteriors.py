r"""Posterior benchmark: gendist's ``AutoFlow`` against Pyro's auto guides on posteriors with known draws (issue 16).

Every guide is trained by plain :class:`pyro.infer.SVI` with the same objective, optimizer, schedule and number of
steps: ``Trace_ELBO(num_particles=4, vectorize_particles=True)`` and ``ClippedAdam`` (lr ``--lr`` = 1e-2 decayed
geometrically to ``--lr-final`` = 1e-3 over the run, ``clip_norm`` 10, Pyro's default betas), ``--steps`` = 1500.
Then, for each (posterior, guide, seed) cell:

- ``c2st``: the classifier two-sample test (:func:`gendist.metrics.classifier_two_sample_test`, its defaults: 5
  folds, an MLP of 64 x 64 units, 300 Adam steps) of ``--draws`` = 2000 guide draws against 2000 reference
  draws, both the latent sites' values in the model's constrained space, flattened in the order of the
  posterior's sites; held-out accuracy, 0.5 = indistinguishable, 1 = disjoint;
- ``elbo``: :math:`\mathbb{E}_q[\log p(x, z) - \log q(z)]` estimated with ``--elbo-particles`` = 2000 fresh
  draws (its Monte Carlo standard error beside it); where the evidence is known (funnel, banana, mixture:
  :math:`\log Z = 0`), ``kl`` :math:`= \log Z - \mathrm{ELBO} = \mathrm{KL}(q \,\|\, p)`;
- ``sec_per_step`` (the table's ms / step and its ratio to ``iaf3``): measured apart from the training runs, all
  guides of a posterior interleaved (:func:`speed`: 7 rounds of 30 steps each, in a fresh random order every
  round, after 20 warm-up steps; the median over rounds, and the median of the per-round ratios to ``iaf3``), so
  that the load of a shared machine hits all alike (:func:`table_speeds`); each cell also keeps its own training
  loop's time;
- funnel only: ``p_neck`` :math:`= P_q(v < -3)` from 20,000 guide draws, against the exact
  :math:`\Phi(-1) = 0.1587`.

Two budgets (``--budgets``): ``steps`` (every guide ``--steps`` steps) and ``wall`` (every guide the wall time
that ``AutoIAFNormal(num_transforms=3)`` takes for ``--steps`` steps on that posterior: a guide whose step takes
``r`` times ``iaf3``'s runs ``round(steps / r)`` steps, the same schedule spread over them). The row
``reference`` is the C2ST of two independent sets of reference draws: the floor.

The guides (``--guides``; :data:`GUIDES`). ``AutoNormal`` and ``AutoMultivariateNormal`` start from
``init_to_median`` (``AutoMultivariateNormal``'s default; ``AutoNormal``'s own is ``init_to_feasible``) with
``init_scale`` 0.1 (their default); ``AutoFlow`` runs with its own defaults (``init_to_feasible``, ``init_scale`` 1):

- ``normal``: ``AutoNormal``; ``mvn``: ``AutoMultivariateNormal``;
- ``iaf1``, ``iaf3``: ``AutoIAFNormal(num_transforms=1 | 3)`` (Pyro's default hidden layer, ``3 D + 1`` units;
  Pyro's flow guides take no ``init_loc_fn``: they start from :math:`N(0, I)` in the unconstrained space);
- ``spline``: ``AutoNormalizingFlow`` of three ``spline_autoregressive`` transforms (Pyro's defaults: 8 bins on
  [-3, 3], hidden ``[10 D, 10 D]``), each with its own random order of the variables;
- ``autoflow``: ``gendist.bayes.AutoFlow(model)`` with its defaults; variants on request: ``autoflow_t5`` (its
  defaults, five IAF layers) and ``autoflow_s01_*`` / ``autoflow_s1_*`` (:data:`GUIDES`: ``init_to_median``
  and ``init_scale`` 0.1, ``s01``, or 1, ``s1``, spelled out, and another
  flow: ``t5`` five IAF layers, ``lu`` the IAF then a learned ``LU`` linear map, ``randperm`` random orders,
  ``nsf`` / ``nsf_wide`` autoregressive splines in the sampling orientation).

The posteriors (``--posteriors``; :data:`POSTERIORS`):

- ``funnel``: Neal's funnel, :math:`v \sim N(0, 3^2)`, :math:`x_{1..9} \sim N(0, e^{v})` (sd :math:`e^{v/2}`);
  exact draws by construction;
- ``banana``: two independent bananas, :math:`a \in \mathbb{R}^2 \sim N(0, I)`,
  :math:`b_i \mid a \sim N(a_i^2 - 1, 0.5^2)`; exact draws;
- ``mixture``: :math:`z \in \mathbb{R}^2` with a :math:`N(0, 5^2 I)` prior and a ``pyro.factor`` that turns the
  joint into :math:`\tfrac12 N(\mu, 0.5^2 I) + \tfrac12 N(-\mu, 0.5^2 I)`, :math:`\mu = (1, 1)`: two modes
  with a valley at 4% of their height between them; exact draws. A reverse-KL guide tends to pick one mode
  (C2ST about 0.75 for a perfect one-mode fit);
- ``schools_centered``, ``schools_noncentered``: eight schools (Rubin 1981), :math:`\mu \sim N(0, 5^2)`,
  :math:`\tau \sim \mathrm{HalfCauchy}(5)`, :math:`\theta_j \sim N(\mu, \tau^2)` (centered) or
  :math:`\tilde\theta_j \sim N(0, 1)`, :math:`\theta_j = \mu + \tau \tilde\theta_j` (non-centered),
  :math:`y_j \sim N(\theta_j, \sigma_j^2)`. The reference is exact: given :math:`\tau` the model is conjugate,
  so :math:`\tau` is drawn from its marginal posterior on a fine grid of :math:`\log\tau` (inverse CDF, jittered
  within a cell of width 1e-4) and :math:`\mu, \theta` from their Gaussian conditionals; both parametrizations
  use the same draws (:math:`\tilde\theta = (\theta - \mu)/\tau`). ``--check-references`` compares them with
  long NUTS on the non-centered model (the brief's reference; the numbers are in README_posteriors.md);
- ``logistic``: Bayesian logistic regression on scikit-learn's breast-cancer data (569 rows, its 10 "mean"
  features standardized, an intercept; :math:`w \sim N(0, I_{11})`); the features are strongly collinear
  (radius, perimeter, area: there the prior dominates, posterior sds 0.84 against 0.22-0.67 elsewhere), and the
  posterior's correlations reach 0.6 in magnitude. Reference: Pyro's NUTS, 4 chains x 5000 draws after 1000
  warm-up steps, float64 (322 s here; split R-hat at most 1.0001, smallest effective sample size 15,000),
  cached once in ``benchmarks/references/posteriors_logistic.pt`` (every 2nd draw: 10,000) and reused.

Results: one JSON per cell, ``OUT/<posterior>/<guide>/seed<S>_<budget>.json``, skipped when present and made with
the same settings (``--force`` redoes them); ``OUT/results.json`` and ``OUT/table.md`` hold the table, which is
also printed.

Run (numbers and timings in benchmarks/README_posteriors.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/posteriors.py --out runs/posteriors

``--device cuda`` trains and evaluates on a GPU (the C2ST follows the draws' device).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.transforms import iterated, spline_autoregressive
from pyro.infer import MCMC, NUTS, SVI, Trace_ELBO
from pyro.infer.autoguide import (
    AutoIAFNormal,
    AutoMultivariateNormal,
    AutoNormal,
    AutoNormalizingFlow,
    init_to_median,
)
from torch import Tensor

from gendist.metrics import classifier_two_sample_test

ROOT = Path(__file__).resolve().parent
REFERENCES = ROOT / "references"
WALL_GUIDE = "iaf3"  # the guide whose time for --steps steps is every guide's budget under "wall"
BUDGETS = ("steps", "wall")
NECK = -3.0  # the funnel's neck: P(v < -3) = Phi(-1)
SCHOOLS_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
SCHOOLS_SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)

Model = Callable[[], Any]


# -- the posteriors -----------------------------------------------------------------------------------------------
@dataclass
class Posterior:
    r"""A Pyro model without arguments, its latent sites (in the order draws are flattened), its plate nesting,
    its log-evidence where known, and ``reference(n, generator)``: ``n`` exact (or long-MCMC) posterior draws,
    shape ``(n, D)``, flattened in ``sites`` order."""

    name: str
    model: Model
    sites: tuple[str, ...]
    max_plate_nesting: int
    reference: Callable[[int, torch.Generator], Tensor]
    log_z: float | None = None


def _normal(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    return torch.randn(shape, generator=g, dtype=dtype)


def funnel(device: torch.device, dtype: torch.dtype) -> Posterior:
    r"""Neal's funnel in 10 dimensions: :math:`v \sim N(0, 9)`, :math:`x_i \mid v \sim N(0, e^v)`, i = 1..9."""
    zero = torch.zeros((), device=device, dtype=dtype)

    def model() -> None:
        v = pyro.sample("v", dist.Normal(zero, 3.0))
        pyro.sample("x", dist.Normal(zero.expand(9), torch.exp(v / 2).unsqueeze(-1)).to_event(1))

    def reference(n: int, g: torch.Generator) -> Tensor:
        v = 3.0 * _normal((n, 1), g)
        return torch.cat([v, torch.exp(v / 2) * _normal((n, 9), g)], dim=1)

    return Posterior("funnel", model, ("v", "x"), 0, reference, log_z=0.0)


def banana(device: torch.device, dtype: torch.dtype) -> Posterior:
    r"""Two independent bananas: :math:`a \sim N(0, I_2)`, :math:`b_i \mid a \sim N(a_i^2 - 1, 0.25)`."""
    zero = torch.zeros(2, device=device, dtype=dtype)

    def model() -> None:
        a = pyro.sample("a", dist.Normal(zero, 1.0).to_event(1))
        pyro.sample("b", dist.Normal(a.square() - 1, 0.5).to_event(1))

    def reference(n: int, g: torch.Generator) -> Tensor:
        a = _normal((n, 2), g)
        return torch.cat([a, a.square() - 1 + 0.5 * _normal((n, 2), g)], dim=1)

    return Posterior("banana", model, ("a", "b"), 0, reference, log_z=0.0)


MIXTURE_MEAN = (1.0, 1.0)
MIXTURE_SD = 0.5
MIXTURE_PRIOR_SD = 5.0


def mixture(device: torch.device, dtype: torch.dtype) -> Posterior:
    r"""A bimodal posterior: a :math:`N(0, 25 I)` prior on :math:`z \in \mathbb{R}^2` and a factor
    :math:`\log m(z) - \log N(z; 0, 25 I)` with :math:`m = \frac12 N(\mu, 0.25 I) + \frac12 N(-\mu, 0.25 I)`,
    so the joint (and the posterior, :math:`\log Z = 0`) is :math:`m`."""
    mu = torch.tensor(MIXTURE_MEAN, device=device, dtype=dtype)
    prior = dist.Normal(torch.zeros_like(mu), MIXTURE_PRIOR_SD).to_event(1)

    def log_m(z: Tensor) -> Tensor:
        comps = torch.stack([dist.Normal(mu, MIXTURE_SD).to_event(1).log_prob(z),
                             dist.Normal(-mu, MIXTURE_SD).to_event(1).log_prob(z)], dim=-1)
        return torch.logsumexp(comps, dim=-1) - math.log(2.0)

    def model() -> None:
        z = pyro.sample("z", prior)
        pyro.factor("mixture", log_m(z) - prior.log_prob(z))

    def reference(n: int, g: torch.Generator) -> Tensor:
        sign = torch.where(torch.rand(n, 1, generator=g, dtype=torch.float64) < 0.5, 1.0, -1.0)
        return sign * torch.tensor(MIXTURE_MEAN, dtype=torch.float64) + MIXTURE_SD * _normal((n, 2), g)

    return Posterior("mixture", model, ("z",), 0, reference, log_z=0.0)


def schools_exact(n: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    r"""Exact draws of eight schools' posterior :math:`(\mu, \tau, \theta)` (float64).

    Given :math:`\tau`, :math:`y_j \mid \mu, \tau \sim N(\mu, v_j)` with :math:`v_j = \sigma_j^2 + \tau^2`, so with
    :math:`P = 1/25 + \sum_j 1/v_j` and :math:`b = \sum_j y_j / v_j`,

    .. math:: \log p(\tau \mid y) = \log p(\tau) - \tfrac12 \sum_j \log v_j - \tfrac12 \log P
              - \tfrac12 \sum_j y_j^2 / v_j + \tfrac12 b^2 / P + \mathrm{const},

    :math:`\mu \mid \tau, y \sim N(b/P, 1/P)` and :math:`\theta_j \mid \mu, \tau, y \sim N(m_j, s_j^2)` with
    :math:`1/s_j^2 = 1/\sigma_j^2 + 1/\tau^2`, :math:`m_j = s_j^2 (y_j/\sigma_j^2 + \mu/\tau^2)`. :math:`\log\tau`
    is drawn by inverse CDF on a grid of width 1e-4 over [-14, 10] (the mass outside is below 1e-6), uniform
    within its cell.
    """
    y = torch.tensor(SCHOOLS_Y, dtype=torch.float64)
    s2 = torch.tensor(SCHOOLS_SIGMA, dtype=torch.float64).square()
    width = 1e-4
    u = torch.arange(-14.0, 10.0, width, dtype=torch.float64) + width / 2  # cell centres of log(tau)
    tau = u.exp()
    v = s2 + tau.square().unsqueeze(-1)
    p = 1 / 25 + (1 / v).sum(-1)
    b = (y / v).sum(-1)
    log_post = (dist.HalfCauchy(torch.tensor(5.0, dtype=torch.float64)).log_prob(tau) + u  # d tau = tau d u
                - 0.5 * v.log().sum(-1) - 0.5 * p.log() - 0.5 * (y.square() / v).sum(-1) + 0.5 * b.square() / p)
    w = (log_post - log_post.max()).exp()
    idx = torch.multinomial(w, n, replacement=True, generator=g)
    log_tau = u[idx] + width * (torch.rand(n, generator=g, dtype=torch.float64) - 0.5)
    tau = log_tau.exp()
    v = s2 + tau.square().unsqueeze(-1)
    p = 1 / 25 + (1 / v).sum(-1)
    mu = (y / v).sum(-1) / p + p.rsqrt() * _normal((n,), g)
    prec = 1 / s2 + 1 / tau.square().unsqueeze(-1)
    mean = (y / s2 + mu.unsqueeze(-1) / tau.square().unsqueeze(-1)) / prec
    theta = mean + prec.rsqrt() * _normal((n, 8), g)
    return mu, tau, theta


def schools(centered: bool, device: torch.device, dtype: torch.dtype) -> Posterior:
    r"""Eight schools, centered (latent :math:`\mu, \tau, \theta`) or non-centered (:math:`\mu, \tau, \tilde\theta`)."""
    y = torch.tensor(SCHOOLS_Y, device=device, dtype=dtype)
    sigma = torch.tensor(SCHOOLS_SIGMA, device=device, dtype=dtype)
    zero = torch.zeros((), device=device, dtype=dtype)

    def model() -> None:
        mu = pyro.sample("mu", dist.Normal(zero, 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(zero + 5.0))
        with pyro.plate("schools", 8):
            if centered:
                theta = pyro.sample("theta", dist.Normal(mu, tau))
            else:
                theta = mu + tau * pyro.sample("theta_tilde", dist.Normal(zero, 1.0))
            pyro.sample("y", dist.Normal(theta, sigma), obs=y)

    def reference(n: int, g: torch.Generator) -> Tensor:
        mu, tau, theta = schools_exact(n, g)
        last = theta if centered else (theta - mu.unsqueeze(-1)) / tau.unsqueeze(-1)
        return torch.cat([mu.unsqueeze(-1), tau.unsqueeze(-1), last], dim=1)

    name = "schools_centered" if centered else "schools_noncentered"
    return Posterior(name, model, ("mu", "tau", "theta" if centered else "theta_tilde"), 1, reference)


def logistic_data(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    r"""scikit-learn's breast cancer: the 10 "mean" features standardized, an intercept column first; labels."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = torch.as_tensor(x[:, :10], dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0)
    x = torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x], dim=1)
    return x.to(device=device, dtype=dtype), torch.as_tensor(y, dtype=torch.float64).to(device=device, dtype=dtype)


def logistic_model(device: torch.device, dtype: torch.dtype) -> Model:
    r"""The logistic regression :math:`w \sim N(0, I_{11})`, :math:`y_i \sim \mathrm{Bernoulli}(\sigma(x_i^\top w))`."""
    x, y = logistic_data(device, dtype)

    def model() -> None:
        w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[1], device=device, dtype=dtype), 1.0).to_event(1))
        pyro.sample("y", dist.Bernoulli(logits=w @ x.T).to_event(1), obs=y)

    return model


def nuts_draws(model: Model, site: str, chains: int, samples: int, warmup: int, seed: int, jit: bool = True
               ) -> tuple[Tensor, dict[str, Any]]:
    r"""``chains`` NUTS chains run one after the other (Pyro's default adaptation); the draws of ``site``, shape
    ``(chains * samples, ...)``, and diagnostics (split R-hat, effective sample size, seconds)."""
    start = time.perf_counter()
    draws = []
    for c in range(chains):
        pyro.set_rng_seed(seed + c)
        mcmc = MCMC(NUTS(model, jit_compile=jit, ignore_jit_warnings=True), num_samples=samples,
                    warmup_steps=warmup, disable_progbar=True)
        mcmc.run()
        draws.append(mcmc.get_samples(group_by_chain=True)[site])
    chained = torch.cat(draws)  # (chains, samples, ...)
    flat = chained.reshape(chains, samples, -1)
    rhat = pyro.ops.stats.split_gelman_rubin(flat, chain_dim=0, sample_dim=1)
    ess = pyro.ops.stats.effective_sample_size(flat, chain_dim=0, sample_dim=1)
    info = {"chains": chains, "samples": samples, "warmup": warmup, "seconds": time.perf_counter() - start,
            "r_hat_max": float(rhat.max()), "ess_min": float(ess.min())}
    return chained.reshape(chains * samples, *chained.shape[2:]), info


def logistic_reference(args: argparse.Namespace) -> tuple[Tensor, dict[str, Any]]:
    r"""The cached NUTS draws of the logistic regression (made and saved when missing or on ``--force-reference``)."""
    path = Path(args.reference_dir) / "posteriors_logistic.pt"
    settings = {"chains": args.nuts_chains, "samples": args.nuts_samples, "warmup": args.nuts_warmup, "thin": 2}
    if path.is_file() and not args.force_reference:
        saved = torch.load(path, weights_only=True)
        if saved["settings"] == settings:
            return saved["draws"].double(), saved["info"]
    print(f"logistic reference: NUTS, {args.nuts_chains} chains x {args.nuts_samples} after {args.nuts_warmup} "
          "warm-up, float64 ...", flush=True)
    with torch.device("cpu"):
        model = logistic_model(torch.device("cpu"), torch.float64)
        draws, info = nuts_draws(model, "w", args.nuts_chains, args.nuts_samples, args.nuts_warmup, seed=0,
                                 jit=not args.no_jit)
    draws = draws[::2].float()
    print(f"  {info['seconds']:.0f} s, max split R-hat {info['r_hat_max']:.4f}, min ESS {info['ess_min']:.0f}",
          flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"settings": settings, "info": info, "draws": draws}, path)
    return draws.double(), info


def logistic(device: torch.device, dtype: torch.dtype, args: argparse.Namespace) -> Posterior:
    r"""The logistic regression with its cached NUTS reference; ``reference`` draws rows without replacement."""
    cached, _ = logistic_reference(args)

    def reference(n: int, g: torch.Generator) -> Tensor:
        if n > len(cached):
            raise ValueError(f"the logistic reference holds {len(cached)} draws, asked for {n}")
        return cached[torch.randperm(len(cached), generator=g)[:n]]

    return Posterior("logistic", logistic_model(device, dtype), ("w",), 0, reference)


POSTERIORS: dict[str, Callable[[torch.device, torch.dtype, argparse.Namespace], Posterior]] = {
    "funnel": lambda d, t, a: funnel(d, t),
    "banana": lambda d, t, a: banana(d, t),
    "mixture": lambda d, t, a: mixture(d, t),
    "schools_centered": lambda d, t, a: schools(True, d, t),
    "schools_noncentered": lambda d, t, a: schools(False, d, t),
    "logistic": logistic,
}


# -- the guides ---------------------------------------------------------------------------------------------------
_AUTOFLOW_SHA1: list[str] = []


def _autoflow(model: Model, **kwargs: Any) -> Any:
    r"""``AutoFlow(model, **kwargs)``; the first call notes which ``autoflow.py`` was imported."""
    import gendist.bayes.autoflow as module
    from gendist.bayes import AutoFlow

    if not _AUTOFLOW_SHA1:
        _AUTOFLOW_SHA1.append(hashlib.sha1(Path(module.__file__).read_bytes()).hexdigest()[:12])
    return AutoFlow(model, **kwargs)


def _variant(model: Model, scale: float, **kwargs: Any) -> Any:
    r"""An AutoFlow variant: ``init_to_median`` and ``init_scale=scale`` spelled out, then ``kwargs``."""
    return _autoflow(model, init_loc_fn=init_to_median, init_scale=scale, **kwargs)


def _iaf(d: int, **kwargs: Any) -> Any:
    from gendist.flows import IAF

    return IAF(d, **{"transforms": 3, **kwargs})


def _nsf(d: int, **kwargs: Any) -> Any:
    from gendist.flows import NSF

    return NSF(d, **{"transforms": 3, "fast": "sample", **kwargs})


def _iaf_lu(d: int) -> Any:
    r"""AutoFlow's default IAF followed by a learned full-rank linear map (``LU``, identity at the start)."""
    from gendist.flows import LU, FlowModule

    return FlowModule([*_iaf(d, hidden=(max(3 * d + 1, 32),)).transforms, LU(d)], d)


GUIDES: dict[str, Callable[[Model], Any]] = {
    "normal": lambda m: AutoNormal(m, init_loc_fn=init_to_median, init_scale=0.1),
    "mvn": lambda m: AutoMultivariateNormal(m, init_loc_fn=init_to_median, init_scale=0.1),
    "iaf1": lambda m: AutoIAFNormal(m, num_transforms=1),
    "iaf3": lambda m: AutoIAFNormal(m, num_transforms=3),
    "spline": lambda m: AutoNormalizingFlow(m, functools.partial(iterated, 3, spline_autoregressive)),
    "autoflow": _autoflow,
    "autoflow_t5": lambda m: _autoflow(m, transforms=5),  # AutoFlow's defaults but five IAF layers
    # AutoFlow variants (not in the default list): init_to_median, init_scale 0.1 (s01, AutoFlow's first default)
    # or 1 (s1), and a different flow
    "autoflow_s01": lambda m: _variant(m, 0.1),
    "autoflow_s01_t5": lambda m: _variant(m, 0.1, transforms=5),
    "autoflow_s01_lu": lambda m: _variant(m, 0.1, flow=_iaf_lu),
    "autoflow_s1": lambda m: _variant(m, 1.0),
    "autoflow_s1_t5": lambda m: _variant(m, 1.0, transforms=5),
    "autoflow_s1_lu": lambda m: _variant(m, 1.0, flow=_iaf_lu),
    "autoflow_s1_randperm": lambda m: _variant(m, 1.0, randperm=True),
    "autoflow_s1_nsf": lambda m: _variant(m, 1.0, flow=lambda d: _nsf(d, hidden=(max(3 * d + 1, 32),))),
    "autoflow_s1_nsf_wide": lambda m: _variant(m, 1.0, flow=lambda d: _nsf(d, hidden=(10 * d, 10 * d), bound=3.0)),
}
DEFAULT_GUIDES = ("normal", "mvn", "iaf1", "iaf3", "spline", "autoflow")


def autoflow_available() -> bool:
    try:
        from gendist.bayes import AutoFlow  # noqa: F401
    except ImportError:
        return False
    return True


# -- one cell -----------------------------------------------------------------------------------------------------
def _per_particle(lp: Tensor | float, k: int, nesting: int, like: Tensor) -> Tensor:
    r"""A site's log-density summed over everything but the particle dimension (at ``-(nesting + 1)``)."""
    lp = torch.as_tensor(lp, device=like.device, dtype=like.dtype)
    if lp.dim() < nesting + 1:
        return lp.sum().expand(k)
    lp = lp.movedim(-(nesting + 1), 0)
    return lp.reshape(lp.shape[0], -1).sum(1).expand(k)


@torch.no_grad()
def guide_draws(post: Posterior, guide: Any, n: int) -> tuple[Tensor, Tensor]:
    r"""``n`` guide draws in one vectorized pass: the latent sites' constrained values flattened, shape ``(n, D)``,
    and the log-weights :math:`\log p(x, z) - \log q(z)`, shape ``(n,)``."""
    nesting = post.max_plate_nesting
    with pyro.plate("_draws", n, dim=-(nesting + 1)):
        gtr = poutine.trace(guide).get_trace()
        mtr = poutine.trace(poutine.replay(post.model, trace=gtr)).get_trace()
    values = torch.cat([gtr.nodes[s]["value"].reshape(n, -1) for s in post.sites], dim=1)
    gtr.compute_log_prob()
    mtr.compute_log_prob()
    log_w = torch.zeros(n, device=values.device, dtype=values.dtype)
    for tr, sign in ((mtr, 1.0), (gtr, -1.0)):
        for site in tr.nodes.values():
            if site["type"] == "sample":
                log_w = log_w + sign * _per_particle(site["log_prob"], n, nesting, log_w)
    return values, log_w


def make_svi(post: Posterior, guide_name: str, steps: int, args: argparse.Namespace) -> tuple[Any, SVI, float]:
    r"""A fresh guide and its SVI: every guide the same objective, optimizer and schedule; and the decay ``lrd``."""
    guide = GUIDES[guide_name](post.model)
    lrd = (args.lr_final / args.lr) ** (1 / steps)
    optim = pyro.optim.ClippedAdam({"lr": args.lr, "lrd": lrd, "clip_norm": 10.0})
    elbo = Trace_ELBO(num_particles=args.particles, vectorize_particles=True,
                      max_plate_nesting=post.max_plate_nesting)
    return guide, SVI(post.model, guide, optim, elbo), lrd


def _sync(args: argparse.Namespace) -> Callable[[], None]:
    return torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)


def speed(post: Posterior, guides: list[str], args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    r"""Seconds per SVI step of each guide, measured interleaved so that the machine's load hits all alike.

    Every guide is built and warmed up (``--speed-warmup`` steps) in its own parameter store; then
    ``--speed-rounds`` rounds each run ``--speed-steps`` steps of every guide in a fresh random order. Per guide:
    the median over rounds of its seconds per step, and the median over rounds of its time divided by
    ``WALL_GUIDE``'s in the same round (a paired ratio, steadier than a ratio of medians).
    """
    names = list(dict.fromkeys([WALL_GUIDE, *guides]))
    store = pyro.get_param_store()
    states, svis = {}, {}
    sync = _sync(args)
    with torch.device(device):
        for name in names:
            with store.scope() as state:
                pyro.set_rng_seed(0)
                _, svis[name], _ = make_svi(post, name, args.steps, args)
                for _ in range(args.speed_warmup):
                    svis[name].step()
            states[name] = state
        times: dict[str, list[float]] = {name: [] for name in names}
        g = torch.Generator().manual_seed(0)
        for _ in range(args.speed_rounds):
            for i in torch.randperm(len(names), generator=g).tolist():
                with store.scope(states[names[i]]):
                    sync()
                    start = time.perf_counter()
                    for _ in range(args.speed_steps):
                        svis[names[i]].step()
                    sync()
                    times[names[i]].append((time.perf_counter() - start) / args.speed_steps)
    ref = times[WALL_GUIDE]
    return {name: {"sec_per_step": statistics.median(t),
                   "ratio": statistics.median(a / b for a, b in zip(t, ref, strict=True))}
            for name, t in times.items()}


def speeds(post: Posterior, guides: list[str], args: argparse.Namespace, device: torch.device, out: Path
           ) -> dict[str, Any]:
    r"""The saved speeds of ``post`` (``OUT/<posterior>/speed.json``), the guides missing measured (with
    ``WALL_GUIDE`` again, for their paired ratio) and saved."""
    path = out / post.name / "speed.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    key = {**settings(args), "steps": args.speed_steps, "rounds": args.speed_rounds}
    if saved.get("settings") != key:
        saved = {"settings": key, "guides": {}}
    if args.force:  # measure the guides asked for again, keep the others'
        saved["guides"] = {g: m for g, m in saved["guides"].items() if g not in guides}
    missing = [g for g in guides if g not in saved["guides"]]
    if missing:
        start = time.perf_counter()
        measured = speed(post, missing, args, device)
        if WALL_GUIDE in saved["guides"]:  # measured again only as the others' yardstick
            measured.pop(WALL_GUIDE)
        saved["guides"].update(measured)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=1))
        print(f"{post.name:20s} speed: " + ", ".join(f"{g} {1e3 * m['sec_per_step']:.2f} ms ({m['ratio']:.2f})"
                                                      for g, m in measured.items())
              + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    return saved["guides"]


def table_speeds(post: Posterior, guides: list[str], args: argparse.Namespace, device: torch.device, out: Path
                 ) -> dict[str, Any]:
    r"""The table's seconds per step: every guide of the table measured in one interleaved session (saved in
    ``OUT/<posterior>/speed.json`` under ``"table"``, measured again when the guides change or on ``--retime``).

    The wall budgets keep the first measurement of each guide (:func:`speeds`), so that adding a guide later does
    not move the others' budgets; the table's column comes from one session, so that its numbers compare.
    """
    path = out / post.name / "speed.json"
    saved = json.loads(path.read_text())
    if args.retime or args.force or saved.get("table", {}).get("names") != sorted(guides):
        start = time.perf_counter()
        saved["table"] = {"names": sorted(guides), "guides": speed(post, guides, args, device)}
        path.write_text(json.dumps(saved, indent=1))
        print(f"{post.name:20s} table speed: " + ", ".join(
            f"{g} {1e3 * m['sec_per_step']:.2f} ms ({m['ratio']:.2f})" for g, m in saved["table"]["guides"].items())
            + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    return saved["table"]["guides"]


def train(post: Posterior, guide_name: str, steps: int, seed: int, args: argparse.Namespace) -> tuple[Any, dict]:
    r"""A fresh guide trained by SVI for ``steps`` steps; its timings and final loss."""
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    guide, svi, lrd = make_svi(post, guide_name, steps, args)
    losses: list[float] = []
    sync = _sync(args)
    start = time.perf_counter()
    for i in range(steps):
        if i == 1:  # the first step builds the guide's parameters: left out of the timing
            sync()
            start = time.perf_counter()
        loss = svi.step()
        losses.append(loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f"SVI loss {loss} at step {i}")
    sync()
    seconds = time.perf_counter() - start
    timed = max(steps - 1, 1)
    tail = losses[-max(1, steps // 20):]
    return guide, {"steps": steps, "svi_seconds": seconds * steps / timed, "sec_per_step": seconds / timed,
                   "final_loss": sum(tail) / len(tail), "lrd": lrd}


def evaluate(post: Posterior, guide: Any, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    r"""C2ST against fresh reference draws, the ELBO (and KL where the evidence is known), the funnel's neck."""
    pyro.set_rng_seed(10_000 + seed)
    g = torch.Generator().manual_seed(seed)
    draws, _ = guide_draws(post, guide, args.draws)
    reference = post.reference(args.draws, g).to(draws)
    if not bool(torch.isfinite(draws).all()):
        return {"c2st": 1.0, "elbo": -math.inf, "note": "non-finite guide draws"}
    c2st = classifier_two_sample_test(reference, draws, steps=args.c2st_steps, generator=g).statistic
    _, log_w = guide_draws(post, guide, args.elbo_particles)
    log_w = log_w.double()
    out = {"c2st": c2st, "elbo": float(log_w.mean()), "elbo_se": float(log_w.std() / math.sqrt(len(log_w)))}
    if post.log_z is not None:
        out["kl"] = post.log_z - out["elbo"]
    if post.name == "funnel":
        tail, _ = guide_draws(post, guide, args.tail_draws)
        out["p_neck"] = float((tail[:, 0] < NECK).double().mean())
        out["p_neck_exact"] = 0.5 * math.erfc(-NECK / 3.0 / math.sqrt(2.0))
    return out


def settings(args: argparse.Namespace) -> dict[str, Any]:
    r"""What a cell's numbers depend on: a saved cell made with other settings is made again."""
    return {k: getattr(args, k) for k in ("lr", "lr_final", "particles", "draws", "elbo_particles", "c2st_steps",
                                          "tail_draws", "device", "dtype")}


def cell_path(out: Path, post: str, guide: str, seed: int, budget: str, steps: int) -> Path:
    return out / post / guide / f"seed{seed}_{budget}{steps}.json"


def load_cell(path: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    if args.force or not path.is_file():
        return None
    cell = json.loads(path.read_text())
    return cell if cell.get("settings") == settings(args) else None


def run_cell(post: Posterior, guide_name: str, seed: int, budget: str, steps: int, args: argparse.Namespace,
             device: torch.device) -> dict[str, Any]:
    r"""Train one guide for ``steps`` steps and evaluate it; a failure (NaN loss, an error) is recorded, not raised."""
    cell: dict[str, Any] = {"posterior": post.name, "guide": guide_name, "seed": seed, "budget": budget,
                            "settings": settings(args)}
    with torch.device(device):
        try:
            guide, info = train(post, guide_name, steps, seed, args)
            cell.update(info)
            cell["init"] = {"init_loc_fn": getattr(getattr(guide, "init_loc_fn", None), "__name__", None),
                            "init_scale": getattr(guide, "_init_scale", None)}
            if guide_name.startswith("autoflow"):  # which AutoFlow made the numbers (it is being developed)
                cell["autoflow_sha1"] = _AUTOFLOW_SHA1[0]
            start = time.perf_counter()
            cell.update(evaluate(post, guide, seed, args))
            cell["eval_seconds"] = time.perf_counter() - start
        except (FloatingPointError, ValueError, RuntimeError) as e:
            cell.update({"steps": steps, "failed": f"{type(e).__name__}: {e}", "c2st": 1.0})
    return cell


def cell(post: Posterior, guide_name: str, seed: int, budget: str, args: argparse.Namespace, device: torch.device,
         out: Path, speed_of: dict[str, Any] | None = None) -> dict[str, Any]:
    r"""One (posterior, guide, seed, budget) cell, loaded when saved with the same settings, else run and saved.

    Under ``budget="wall"`` the guide runs ``round(steps / ratio)`` steps, ``ratio`` its interleaved seconds per
    step over ``WALL_GUIDE``'s (``speed_of``, from :func:`speeds`): ``WALL_GUIDE``'s time for ``--steps`` steps.
    """
    steps = args.steps
    if budget == "wall":
        if speed_of is None:
            raise ValueError("a wall-time cell needs the guides' speeds (speed_of)")
        steps = max(1, round(args.steps / speed_of[guide_name]["ratio"]))
        if steps == args.steps:  # the same run as the steps budget's
            return {**cell(post, guide_name, seed, "steps", args, device, out), "budget": "wall"}
    path = cell_path(out, post.name, guide_name, seed, budget, args.steps)
    saved = load_cell(path, args)
    if saved is not None and saved["steps"] == steps:
        return saved
    start = time.perf_counter()
    result = run_cell(post, guide_name, seed, budget, steps, args, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    what = result.get("failed") or (f"C2ST {result['c2st']:.3f}, ELBO {result['elbo']:.3f}, "
                                    f"{1e3 * result['sec_per_step']:.2f} ms/step")
    print(f"{post.name:20s} {guide_name:16s} seed {seed} {budget:5s} {steps:5d} steps: {what} "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    return result


def reference_floor(post: Posterior, seed: int, args: argparse.Namespace, out: Path) -> float:
    r"""The C2ST of two independent sets of ``--draws`` reference draws: what a perfect guide scores (saved in
    ``OUT/<posterior>/floor_seed<S>.json``)."""
    path = out / post.name / f"floor_seed{seed}.json"
    saved = load_cell(path, args)
    if saved is not None:
        return saved["c2st"]
    g = torch.Generator().manual_seed(seed)
    both = post.reference(2 * args.draws, g).float()
    c2st = classifier_two_sample_test(both[: args.draws], both[args.draws:], steps=args.c2st_steps,
                                      generator=g).statistic
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"c2st": c2st, "settings": settings(args)}))
    return c2st


# -- the table ----------------------------------------------------------------------------------------------------
def _mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def _fmt(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    m, sd = _mean_sd(values)
    return f"{m:.{digits}f}" if len(values) == 1 else f"{m:.{digits}f} ± {sd:.{digits}f}"


def summarize(cells: list[dict[str, Any]], floors: dict[str, list[float]], speed_of: dict[str, dict[str, Any]]
              ) -> dict[str, dict[str, Any]]:
    r"""Per (posterior, guide): means and sds over seeds of each budget's numbers, and the interleaved speed."""
    rows: dict[str, dict[str, Any]] = {}
    for c in cells:
        row = rows.setdefault(f"{c['posterior']}/{c['guide']}", {"posterior": c["posterior"], "guide": c["guide"]})
        b = c["budget"]
        row.setdefault(f"{b}_cells", []).append(c)
    for row in rows.values():
        for b in BUDGETS:
            cs = row.pop(f"{b}_cells", [])
            ok = [c for c in cs if "failed" not in c]
            row[b] = {"seeds": len(cs), "failed": len(cs) - len(ok), "c2st": [c["c2st"] for c in cs],
                      "elbo": [c["elbo"] for c in ok], "sec_per_step": [c["sec_per_step"] for c in ok],
                      "steps": [c["steps"] for c in cs], "kl": [c["kl"] for c in ok if "kl" in c],
                      "p_neck": [c["p_neck"] for c in ok if "p_neck" in c]}
        row["speed"] = speed_of.get(row["posterior"], {}).get(row["guide"])
    for name, fl in floors.items():
        rows[f"{name}/reference"] = {"posterior": name, "guide": "reference", "floor": fl}
    return rows


def table(rows: dict[str, dict[str, Any]], posteriors: list[str], guides: list[str]) -> str:
    r"""The markdown table: one line per (posterior, guide), mean ± sd over seeds."""
    head = ("| posterior | guide | C2ST, same steps | C2ST, same wall time (steps) | ELBO | ms / step | "
            "× iaf3 | P(v < -3) |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for p in posteriors:
        if f"{p}/reference" in rows:
            lines.append(f"| {p} | reference vs reference | {_fmt(rows[p + '/reference']['floor'])} | | | | | "
                         f"{'0.159' if p == 'funnel' else ''} |")
        for gname in guides:
            row = rows.get(f"{p}/{gname}")
            if row is None:
                continue
            s, w = row["steps"], row["wall"]
            fail = f" ({s['failed']} failed)" if s["failed"] else ""
            steps_w = f" ({_fmt(w['steps'], 0) if len(set(w['steps'])) > 1 else w['steps'][0]})" if w["steps"] else ""
            sp = row.get("speed") or {"sec_per_step": math.nan, "ratio": math.nan}
            lines.append(f"| {p} | {gname} | {_fmt(s['c2st'])}{fail} | {_fmt(w['c2st'])}{steps_w} | "
                         f"{_fmt(s['elbo'], 2)} | {1e3 * sp['sec_per_step']:.2f} | {sp['ratio']:.2f} | "
                         f"{_fmt(s['p_neck'])} |")
    return "\n".join(lines)


# -- the reference check ------------------------------------------------------------------------------------------
def check_references(args: argparse.Namespace) -> dict[str, Any]:
    r"""Eight schools' exact draws against long NUTS on the non-centered model (transformed to both
    parametrizations): C2ST on ``--draws`` of each, and the means and sds side by side."""
    post = schools(False, torch.device("cpu"), torch.float64)
    with torch.device("cpu"):
        chains = []
        start = time.perf_counter()
        for c in range(args.nuts_chains):
            pyro.set_rng_seed(c)
            mcmc = MCMC(NUTS(post.model, jit_compile=not args.no_jit, ignore_jit_warnings=True),
                        num_samples=args.nuts_samples, warmup_steps=args.nuts_warmup, disable_progbar=True)
            mcmc.run()
            s = mcmc.get_samples()
            chains.append(torch.cat([s["mu"].reshape(-1, 1), s["tau"].reshape(-1, 1), s["theta_tilde"]], dim=1))
        seconds = time.perf_counter() - start
        nuts = torch.stack(chains)  # (chains, samples, 10)
        rhat = float(pyro.ops.stats.split_gelman_rubin(nuts, chain_dim=0, sample_dim=1).max())
        nuts = nuts.reshape(-1, 10)
        centered = torch.cat([nuts[:, :2], nuts[:, :1] + nuts[:, 1:2] * nuts[:, 2:]], dim=1)
    g = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {"nuts_seconds": seconds, "nuts_r_hat_max": rhat, "nuts_draws": len(nuts)}
    for name, ref in (("noncentered", nuts), ("centered", centered)):
        exact = schools(name == "centered", torch.device("cpu"), torch.float64).reference(args.draws, g)
        pick = ref[torch.randperm(len(ref), generator=g)[: args.draws]]
        out[f"c2st_{name}"] = classifier_two_sample_test(exact.float(), pick.float(), steps=args.c2st_steps,
                                                         generator=g).statistic
        big = schools(name == "centered", torch.device("cpu"), torch.float64).reference(len(ref), g)
        out[f"mean_{name}"] = {"exact": big.mean(0).tolist(), "nuts": ref.mean(0).tolist()}
        out[f"sd_{name}"] = {"exact": big.std(0).tolist(), "nuts": ref.std(0).tolist()}
    return out


# -- main ---------------------------------------------------------------------------------------------------------
def _list(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/posteriors", help="one JSON per cell: OUT/<posterior>/<guide>/")
    p.add_argument("--posteriors", type=_list, default=list(POSTERIORS), help=f"comma list of {', '.join(POSTERIORS)}")
    p.add_argument("--guides", type=_list, default=None,
                   help=f"comma list of {', '.join(GUIDES)} (default: {', '.join(DEFAULT_GUIDES)}; autoflow "
                        "when gendist.bayes has it)")
    p.add_argument("--budgets", type=_list, default=list(BUDGETS), help="comma list of steps, wall")
    p.add_argument("--steps", type=int, default=1500, help="SVI steps of every guide (the 'steps' budget)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 .. SEEDS-1")
    p.add_argument("--lr", type=float, default=1e-2, help="ClippedAdam's initial learning rate")
    p.add_argument("--lr-final", type=float, default=1e-3, help="the learning rate at the last step (geometric decay)")
    p.add_argument("--particles", type=int, default=4, help="Trace_ELBO particles (vectorized)")
    p.add_argument("--draws", type=int, default=2000, help="guide and reference draws in the C2ST")
    p.add_argument("--c2st-steps", type=int, default=300, help="Adam steps per fold of the C2ST's classifier")
    p.add_argument("--elbo-particles", type=int, default=2000, help="draws of the final ELBO estimate")
    p.add_argument("--tail-draws", type=int, default=20000, help="draws of the funnel's P(v < -3)")
    p.add_argument("--speed-rounds", type=int, default=7, help="interleaved timing rounds (seconds per step)")
    p.add_argument("--speed-steps", type=int, default=30, help="SVI steps of each guide per timing round")
    p.add_argument("--speed-warmup", type=int, default=20, help="SVI steps of each guide before the timing")
    p.add_argument("--reference-dir", default=str(REFERENCES), help="where the NUTS reference is cached")
    p.add_argument("--force-reference", action="store_true", help="run the logistic regression's NUTS again")
    p.add_argument("--nuts-chains", type=int, default=4)
    p.add_argument("--nuts-samples", type=int, default=5000)
    p.add_argument("--nuts-warmup", type=int, default=1000)
    p.add_argument("--no-jit", action="store_true", help="NUTS without jit_compile")
    p.add_argument("--check-references", action="store_true",
                   help="only compare eight schools' exact draws with NUTS (non-centered), then stop")
    p.add_argument("--force", action="store_true", help="redo the cells already saved")
    p.add_argument("--retime", action="store_true", help="measure the table's seconds per step again")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.guides is None:
        args.guides = [g for g in DEFAULT_GUIDES if g != "autoflow" or autoflow_available()]
    bad = ([x for x in args.posteriors if x not in POSTERIORS] + [x for x in args.guides if x not in GUIDES]
           + [x for x in args.budgets if x not in BUDGETS])
    if bad:
        p.error(f"unknown {bad}: --posteriors from {tuple(POSTERIORS)}, --guides from {tuple(GUIDES)}, "
                f"--budgets from {BUDGETS}")
    if args.steps < 2 or args.seeds < 1 or args.draws < 10:
        p.error("--steps must be >= 2, --seeds >= 1, --draws >= 10")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    out = Path(args.out)
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, {torch.get_num_threads()} thread(s), {device}, "
          f"{args.dtype}; SVI: Trace_ELBO({args.particles} vectorized particles), ClippedAdam lr {args.lr:g} -> "
          f"{args.lr_final:g}, {args.steps} steps; seeds {args.seeds}", flush=True)
    if args.check_references:
        result = check_references(args)
        out.mkdir(parents=True, exist_ok=True)
        (out / "reference_check.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return result
    start = time.perf_counter()
    cells: list[dict[str, Any]] = []
    floors: dict[str, list[float]] = {}
    speed_of: dict[str, dict[str, Any]] = {}
    shown: dict[str, dict[str, Any]] = {}
    for pname in args.posteriors:
        post = POSTERIORS[pname](device, dtype, args)
        floors[pname] = [reference_floor(post, seed, args, out) for seed in range(args.seeds)]
        speed_of[pname] = speeds(post, args.guides, args, device, out)
        shown[pname] = table_speeds(post, args.guides, args, device, out)
        for seed in range(args.seeds):
            for budget in args.budgets:
                for gname in args.guides:
                    cells.append(cell(post, gname, seed, budget, args, device, out, speed_of[pname]))
    rows = summarize(cells, floors, shown)
    text = table(rows, args.posteriors, args.guides)
    summary = {"settings": settings(args), "steps": args.steps, "seeds": args.seeds, "speed": speed_of, "rows": rows,
               "table": text, "seconds": time.perf_counter() - start}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "table.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\n{summary['seconds']:.0f} s in all (cells already saved were loaded, not run)")
    return summary


if __name__ == "__main__":
    main()
