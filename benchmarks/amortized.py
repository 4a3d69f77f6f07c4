r"""AutoAmortizedFlow on conjugate hierarchical models: the globals' and the locals' posteriors against exact ones.

The model: :math:`\mu \sim \mathcal{N}(0, 5^2 I)`, :math:`z_n \mid \mu \sim \mathcal{N}(\mu, \tau^2 I)`,
:math:`x_n \mid z_n \sim \mathcal{N}(W z_n, \sigma^2 I)`, ``--n`` data in subsamples of ``--batch``, in two regimes:

- ``strong``: :math:`z_n \in \mathbb{R}^2`, :math:`x_n \in \mathbb{R}^3`, :math:`\sigma = 0.5` (each datum pins its
  :math:`z_n`: levels nearly independent a posteriori);
- ``weak``: :math:`z_n, x_n \in \mathbb{R}`, :math:`W = 1`, :math:`\sigma = 2` (each datum says little about its
  :math:`z_n`: the locals follow :math:`\mu`, and a guide that makes the levels independent narrows :math:`\mu`'s
  posterior sd by :math:`\sqrt{(\tau^2) / (\tau^2 + \sigma^2)} = 0.45`).

:math:`p(\mu \mid x)` is Gaussian (:math:`x_n \sim \mathcal{N}(W\mu, \tau^2 W W^\top + \sigma^2 I)`) and so is every
:math:`z_n`'s marginal posterior. Variants (``--variants``): ``conditioned`` (the default guide: the local flow sees
the globals' draw and its deviation from their guide's location), ``draw`` / ``deviation`` (one of the two only),
``independent`` (``condition_on_globals=False``). Each cell trains the guide's default schedule for ``--steps``
steps (``fit``) and reports :math:`\mu`'s posterior median error (in exact sds) and sd ratio, and the locals' largest
median error and mean sd ratio (quantiles 0.16 / 0.5 / 0.84 from 1000 draws), and seconds per step. One JSON per cell
under ``--out``, skipped when present.

Run (numbers in the report of issue 16's amortized guides):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/amortized.py --out runs/amortized --threads 1
    .venv/bin/python benchmarks/amortized.py --out runs/amortized-cuda --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions as dist
import torch

from gendist.bayes.amortized import AutoAmortizedFlow

VARIANTS = {
    "conditioned": {"condition_on_globals": True, "inputs": ("draw", "deviation")},
    "draw": {"condition_on_globals": True, "inputs": ("draw",)},
    "deviation": {"condition_on_globals": True, "inputs": ("deviation",)},
    "independent": {"condition_on_globals": False, "inputs": ("draw", "deviation")},
}


def problem(regime: str, n: int, seed: int, device: torch.device) -> dict[str, Any]:
    if regime == "strong":
        W, tau, sigma, mu = torch.tensor([[1.0, 0.5], [-0.3, 1.0], [0.8, -0.6]]), 1.0, 0.5, torch.tensor([1.0, -2.0])
    else:
        W, tau, sigma, mu = torch.ones(1, 1), 1.0, 2.0, torch.tensor([1.5])
    g = torch.Generator().manual_seed(seed)
    d, k = W.shape[1], W.shape[0]
    x = (mu + tau * torch.randn(n, d, generator=g)) @ W.T + sigma * torch.randn(n, k, generator=g)
    C = tau**2 * W @ W.T + sigma**2 * torch.eye(k)
    Ci = torch.linalg.inv(C)
    cov_mu = torch.linalg.inv(torch.eye(d) / 25 + n * W.T @ Ci @ W)
    mean_mu = cov_mu @ (W.T @ Ci @ x.sum(0))
    S = torch.linalg.inv(torch.eye(d) / tau**2 + W.T @ W / sigma**2)
    mean_z = (mean_mu / tau**2 + x @ W / sigma**2) @ S
    A = S / tau**2
    return {"W": W.to(device), "tau": tau, "sigma": sigma, "x": x.to(device), "mean_mu": mean_mu,
            "sd_mu": cov_mu.diag().sqrt(), "mean_z": mean_z, "sd_z": (S + A @ cov_mu @ A.T).diag().sqrt()}


def run_cell(regime: str, variant: str, seed: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    p = problem(regime, args.n, seed, device)
    W, tau, sigma, batch = p["W"], p["tau"], p["sigma"], args.batch

    def model(x):
        mu = pyro.sample("mu", dist.Normal(torch.zeros(W.shape[1], device=x.device), 5.0).to_event(1))
        with pyro.plate("data", len(x), subsample_size=batch, device=x.device) as i:
            z = pyro.sample("z", dist.Normal(mu, tau).to_event(1))
            pyro.sample("x", dist.Normal(z @ W.T, sigma).to_event(1), obs=x[i])

    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    options = VARIANTS[variant]
    guide = AutoAmortizedFlow(model, plate="data", condition_on_globals=options["condition_on_globals"])
    guide._global_inputs = options["inputs"]
    start = time.perf_counter()
    losses = guide.fit(p["x"], steps=args.steps)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    q = {k: v.cpu() for k, v in guide.quantiles([0.1587, 0.5, 0.8413], p["x"]).items()}
    mu_ratio = (q["mu"][2] - q["mu"][0]) / 2 / p["sd_mu"]
    z_ratio = ((q["z"][2] - q["z"][0]) / 2 / p["sd_z"]).mean(0)
    return {
        "regime": regime, "variant": variant, "seed": seed, "steps": args.steps, "n": args.n, "batch": batch,
        "device": str(device), "seconds_per_step": seconds / args.steps, "final_loss": losses[-1],
        "mu_error_sd": ((q["mu"][1] - p["mean_mu"]) / p["sd_mu"]).abs().max().item(),
        "mu_sd_ratio": mu_ratio.tolist(),
        "z_max_error_sd": ((q["z"][1] - p["mean_z"]) / p["sd_z"]).abs().max().item(),
        "z_sd_ratio": z_ratio.tolist(),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/amortized", help="one JSON per cell: OUT/<regime>-<variant>-<seed>.json")
    p.add_argument("--regimes", default="weak,strong", help="comma list of weak, strong")
    p.add_argument("--variants", default="conditioned,independent", help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for regime in args.regimes.split(","):
        for variant in args.variants.split(","):
            if variant not in VARIANTS:
                raise SystemExit(f"--variants: unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
            for seed in range(args.seeds):
                path = out / f"{regime}-{variant}-{seed}.json"
                if path.exists():
                    row = json.loads(path.read_text())
                else:
                    row = run_cell(regime, variant, seed, args, device)
                    path.write_text(json.dumps(row, indent=1))
                rows.append(row)
                print(f"{regime:6s} {variant:11s} seed {seed}: mu error {row['mu_error_sd']:.2f} sd, mu sd ratio "
                      f"{[round(r, 3) for r in row['mu_sd_ratio']]}, z error {row['z_max_error_sd']:.3f} sd, z sd "
                      f"ratio {[round(r, 3) for r in row['z_sd_ratio']]}, {1000 * row['seconds_per_step']:.1f} ms/step",
                      flush=True)
    return rows


if __name__ == "__main__":
    main()
