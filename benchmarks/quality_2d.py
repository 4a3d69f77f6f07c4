r"""Quality on the FFJORD 2-D densities: an NSF's test NLL against the true entropy.

For each density of ``gendist.data`` with a known entropy :math:`H`, fit a
neural spline flow :math:`q` by maximum likelihood on fresh samples (Adam,
cosine learning-rate decay), then score 20,000 fresh test samples. Since
:math:`H = -E_p[\log p]` is the best NLL any model can reach,

.. math:: \mathrm{NLL} - H = E_p[\log p(x) - \log q(x)] = \mathrm{KL}(p \,\|\, q) \ge 0 .

The table gives ``NLL - H`` with the plain test NLL, and the same KL
estimated pairwise, :math:`\overline{\log p(x_i) - \log q(x_i)}`, whose
standard error is far smaller (every density here has an exact ``log_prob``).

Run (about 9 minutes on one CPU core; results in benchmarks/README_quality.md):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality_2d.py

Options: ``--density NAME`` (repeatable), ``--seed``, ``--threads``,
``--test``, and overrides of the per-density settings: ``--steps``,
``--batch``, ``--lr``, ``--transforms``, ``--bins``, ``--hidden``,
``--bound``, ``--coupling``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace

import torch

from gendist.data import densities
from gendist.flows import NSF

ANCHORS = ("eight_gaussians", "checkerboard", "rings", "circles", "moons")


@dataclass(frozen=True)
class Config:
    r"""Model and training settings for one density."""

    steps: int = 3000
    batch: int = 1024
    lr: float = 2e-3
    transforms: int = 4
    bins: int = 32
    hidden: tuple[int, ...] = (128, 128)
    bound: float = 5.0
    coupling: bool = False


CONFIGS: dict[str, Config] = {name: Config() for name in ANCHORS}


def fit(name: str, config: Config, seed: int = 0, test: int = 20_000) -> dict[str, float]:
    r"""Train an NSF on ``densities[name]`` and return its test scores and training time."""
    torch.manual_seed(seed)
    data = densities[name](validate_args=False)
    flow = NSF(
        features=2,
        transforms=config.transforms,
        bins=config.bins,
        hidden=config.hidden,
        bound=config.bound,
        coupling=config.coupling,
    )
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    start = time.perf_counter()
    for _ in range(config.steps):
        loss = -flow().log_prob(data.sample((config.batch,))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - start

    torch.manual_seed(10_000 + seed)
    x = data.sample((test,))
    with torch.no_grad():
        log_q = flow().log_prob(x)
        log_p = data.log_prob(x)
    entropy = data.entropy().item()
    nll = -log_q.mean().item()
    diff = log_p - log_q
    return {
        "H": entropy,
        "nll": nll,
        "gap": nll - entropy,
        "kl": diff.mean().item(),
        "kl_se": diff.std().item() / math.sqrt(test),
        "nll_se": log_q.std().item() / math.sqrt(test),
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--density", action="append", choices=ANCHORS, help="repeatable; default: all five")
    parser.add_argument("--steps", type=int, help="override the per-density number of steps")
    parser.add_argument("--batch", type=int, help="override the batch size")
    parser.add_argument("--lr", type=float, help="override the peak learning rate")
    parser.add_argument("--transforms", type=int, help="override the number of spline layers")
    parser.add_argument("--bins", type=int, help="override the number of spline bins")
    parser.add_argument("--hidden", type=lambda s: tuple(map(int, s.split(","))), help="override, e.g. 128,128")
    parser.add_argument("--bound", type=float, help="override the spline half-width")
    parser.add_argument("--coupling", type=int, choices=(0, 1), help="override: 1 coupling, 0 autoregressive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--test", type=int, default=20_000, help="test samples per density")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    names = ("steps", "batch", "lr", "transforms", "bins", "hidden", "bound", "coupling")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if "coupling" in overrides:
        overrides["coupling"] = bool(overrides["coupling"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), seed {args.seed}, {args.test} test samples")
    print()
    print("| density | H | test NLL | NLL - H | KL (paired) | steps x batch | model | train time |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.density or ANCHORS:
        config = replace(CONFIGS[name], **overrides)
        r = fit(name, config, seed=args.seed, test=args.test)
        kind = "C" if config.coupling else "AR"
        model = f"NSF-{kind} {config.transforms}x{config.bins} bins, {config.hidden}, B={config.bound:g}"
        print(
            f"| {name} | {r['H']:.4f} | {r['nll']:.4f} ± {r['nll_se']:.4f} | {r['gap']:+.4f} "
            f"| {r['kl']:.4f} ± {r['kl_se']:.4f} | {config.steps} x {config.batch} | {model} "
            f"| {r['seconds']:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
