r"""Diffusion models on the FFJORD 2-D densities: probability-flow NLL against the true entropy, and samplers.

For each density of ``gendist.data`` with a known entropy :math:`H`, train a
:class:`gendist.diffusion.DiffusionModel` (VP SDE, :math:`\epsilon`-prediction, a perceptron of three
layers of 256) by denoising score matching on fresh samples, then

- score fresh test samples by the probability-flow ODE (exact divergence, Dormand–Prince at
  rtol = atol = 1e-5): ``NLL - H`` and the paired :math:`\mathrm{KL}(p \| q) = \overline{\log p - \log q}`;
- draw samples with every sampler at a few step counts and compare them with test samples by the
  energy distance (a permutation p-value, and the floor: two true samples of the same size), counting
  network evaluations (NFE).

Run (about 25 minutes on one CPU core for all five; results in benchmarks/README_diffusion.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/diffusion_2d.py

Options: ``--density NAME`` (repeatable), ``--steps``, ``--batch``, ``--lr``, ``--hidden``,
``--weighting``, ``--importance``, ``--sde``, ``--features``, ``--feature-scale``,
``--parametrization``, ``--sigma-data``, ``--test``, ``--samples``, ``--seed``, ``--threads``,
``--no-samplers``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import Tensor

from gendist.data import densities
from gendist.diffusion import DiffusionModel
from gendist.distributions.diffusion import Diffusion
from gendist.metrics import energy_distance

ANCHORS = ("eight_gaussians", "checkerboard", "rings", "circles", "moons")

# (sampler, steps, spacing, options): 1000-step ancestral sampling is the reference
SAMPLER_RUNS = [
    ("ddpm", 1000, "uniform", {}),
    ("euler_maruyama", 1000, "uniform", {}),
    ("pc", 500, "uniform", {}),
    ("euler", 100, "uniform", {}),
    ("heun", 10, "karras", {}),
    ("ddim", 20, "logsnr", {}),
    ("dpmpp_2m", 10, "logsnr", {}),
    ("dpmpp_2m", 20, "logsnr", {}),
    ("rk45", 1, "uniform", {}),
]


class Counted:
    r"""A denoiser that counts its calls (the network evaluations of a sampler or a likelihood)."""

    def __init__(self, denoiser) -> None:  # noqa: ANN001
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, x: Tensor, t: Tensor, c: Tensor | None = None) -> Tensor:
        self.calls += 1
        return self.denoiser(x, t, c)


def train(name: str, args: argparse.Namespace) -> tuple[DiffusionModel, float]:
    torch.manual_seed(args.seed)
    data = densities[name](validate_args=False)
    model = DiffusionModel(2, sde=args.sde, hidden=args.hidden, weighting=args.weighting, importance=args.importance,
                      parametrization=args.parametrization, sigma_data=args.sigma_data, ema=0.999,
                      features=args.features, feature_scale=args.feature_scale)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = model.loss(data.sample((args.batch,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step()
        schedule.step()
    model.eval()
    return model, time.perf_counter() - start


def likelihood(model: DiffusionModel, name: str, args: argparse.Namespace) -> dict[str, float]:
    data = densities[name](validate_args=False)
    torch.manual_seed(10_000 + args.seed)
    x = data.sample((args.test,))
    counted = Counted(model.active())
    d = Diffusion(counted, model.sde, (2,))
    start = time.perf_counter()
    with torch.no_grad():
        log_q = torch.cat([d.log_prob(chunk) for chunk in x.split(5000)])
        log_p = data.log_prob(x)
    diff = log_p - log_q
    H = data.entropy().item()
    return {"H": H, "nll": -log_q.mean().item(), "nll_se": log_q.std().item() / math.sqrt(len(x)),
            "gap": -log_q.mean().item() - H, "kl": diff.mean().item(), "kl_se": diff.std().item() / math.sqrt(len(x)),
            "nfe": counted.calls / math.ceil(len(x) / 5000), "seconds": time.perf_counter() - start}


def samplers(model: DiffusionModel, name: str, args: argparse.Namespace) -> list[dict]:
    data = densities[name](validate_args=False)
    torch.manual_seed(20_000 + args.seed)
    real = data.sample((args.samples,))
    floor = energy_distance(real, data.sample((args.samples,)), permutations=0).statistic
    rows = []
    for sampler, steps, spacing, options in SAMPLER_RUNS:
        counted = Counted(model.active())
        d = Diffusion(counted, model.sde, (2,), sampler=sampler, steps=steps, spacing=spacing,
                                  sampler_options=options)
        torch.manual_seed(30_000 + args.seed)
        start = time.perf_counter()
        fake = d.sample((args.samples,))
        seconds = time.perf_counter() - start
        test = energy_distance(fake, real, permutations=200, generator=torch.Generator().manual_seed(0))
        rows.append({"sampler": sampler, "steps": steps, "spacing": spacing, "nfe": counted.calls,
                     "energy": test.statistic, "p": test.p_value, "floor": floor, "seconds": seconds})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--density", action="append", choices=ANCHORS, help="repeatable; default: all five")
    parser.add_argument("--steps", type=int, default=10_000, help="training steps")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=lambda s: tuple(map(int, s.split(","))), default=(256, 256, 256))
    parser.add_argument("--weighting", default="likelihood", choices=["simple", "likelihood", "min_snr", "edm"])
    parser.add_argument("--importance", type=int, default=1, choices=(0, 1), help="importance-sample time")
    parser.add_argument("--sde", default="vp", choices=["vp", "subvp", "ve", "ddpm"])
    parser.add_argument("--parametrization", default="eps", choices=["eps", "x0", "v", "edm", "score"])
    parser.add_argument("--sigma-data", type=float, default=1.0, help="the preconditioning's data scale")
    parser.add_argument("--features", type=int, default=0, help="random Fourier features of the network input")
    parser.add_argument("--feature-scale", type=float, default=1.0, help="their frequency scale")
    parser.add_argument("--test", type=int, default=20_000, help="test points of the likelihood")
    parser.add_argument("--samples", type=int, default=2000, help="samples per sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-samplers", action="store_true")
    args = parser.parse_args(argv)
    args.importance = bool(args.importance)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), seed {args.seed}; "
          f"{args.sde} SDE, {args.weighting} weighting{' with importance-sampled time' if args.importance else ''}, "
          f"{args.parametrization} (sigma_data {args.sigma_data:g}), MLP {args.hidden}, "
          f"{args.features} Fourier features (scale {args.feature_scale:g}), "
          f"{args.steps} x {args.batch} steps, lr {args.lr:g}")
    likelihoods, tables = [], []
    for name in args.density or ANCHORS:
        model, seconds = train(name, args)
        r = likelihood(model, name, args)
        likelihoods.append(
            f"| {name} | {r['H']:.4f} | {r['nll']:.4f} ± {r['nll_se']:.4f} | {r['gap']:+.4f} "
            f"| {r['kl']:.4f} ± {r['kl_se']:.4f} | {r['nfe']:.0f} | {seconds:.0f} s | {r['seconds']:.0f} s |")
        print(likelihoods[-1], flush=True)
        if not args.no_samplers:
            for row in samplers(model, name, args):
                tables.append(
                    f"| {name} | {row['sampler']} | {row['steps']} ({row['spacing']}) | {row['nfe']} "
                    f"| {row['energy']:.5f} | {row['p']:.2f} | {row['floor']:.5f} | {row['seconds']:.1f} s |")
                print(tables[-1], flush=True)
    print("\n| density | H | test NLL (PF-ODE) | NLL - H | KL (paired) | NFE | train | score |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(likelihoods))
    if tables:
        print("\n| density | sampler | steps (spacing) | NFE | energy distance | p | floor | time |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(tables))


if __name__ == "__main__":
    main()
