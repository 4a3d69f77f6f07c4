r"""The overhead of ``fit`` on a GAN over a hand-written two-optimizer PyTorch loop: one DCGAN, timed both ways.

The same DCGAN (:class:`gendist.nn.DCGANGenerator` and :class:`gendist.nn.DCGANDiscriminator`, ``--channels``,
latent ``--latent``, tanh output) on 8x8 images (``--data digits``: the 1,200 training digits scaled to
:math:`[-1, 1]`; ``random``: as many uniform 1x8x8 images) is trained for ``--epochs`` epochs of batch
``--batch`` with the non-saturating loss, Adam (``--lr``, betas (0.5, 0.999)) for each network, three ways:

- ``hand``: the loop one writes by hand in PyTorch with the raw networks: every epoch a ``randperm`` of the data;
  every batch a critic step on the real batch and a detached fake (``softplus(-D(x)) + softplus(D(G(z)))``,
  zero_grad, backward, step), then a generator step on a fresh fake (``softplus(-D(G(z')))``), and the
  ``.item()`` of both losses (``fit`` reads each loss to check it is finite and record it);
- ``recipe``: the same hand loop calling the GAN recipe's own losses (:class:`gendist.inference.gan.CriticLoss`,
  :class:`gendist.inference.gan.GeneratorLoss` on :class:`gendist.gan.GAN`: its latent distribution, its checks),
  which splits the overhead between the recipe and ``fit``'s loop;
- ``fit``: ``fit(GAN(...), x)``, the library's way.

All three start from the same weights and the same seed and draw the same random numbers in the same order, so they
compute the same losses (checked: the largest difference of the loss curves is printed); the timings are of the
whole call (optimizers built inside), in one process, interleaved (the order alternates every repeat), after a
warm-up run of each. The result is the ratio of medians ``fit / hand`` (aim: at most 1.1). ``--profile`` prints
where ``fit`` spends its time (cProfile, sorted by own time).

Run (numbers in benchmarks/README_gan.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gan_overhead.py --repeats 7 --threads 1 \
        --out runs/gan_overhead.json
    .venv/bin/python benchmarks/gan_overhead.py --device cuda --repeats 7 --out runs/gan_overhead_cuda.json
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import pstats
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist.data import load_digits
from gendist.gan import GAN
from gendist.inference import fit
from gendist.inference.gan import CriticLoss, GeneratorLoss

BETAS = (0.5, 0.999)


def data(args: argparse.Namespace, device: torch.device) -> Tensor:
    if args.data == "digits":
        x = load_digits("train") / 16 * 2 - 1
    else:
        x = torch.rand(1200, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return x.reshape(-1, 1, 8, 8).to(device)


def build(args: argparse.Namespace, device: torch.device) -> GAN:
    torch.manual_seed(0)
    return GAN((1, 8, 8), latent=args.latent, generator="dcgan", discriminator="dcgan", channels=args.channels,
               out="tanh", loss="non_saturating", betas=BETAS).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hand(G: nn.Module, D: nn.Module, x: Tensor, args: argparse.Namespace) -> list[float]:
    r"""The hand-written loop on the raw networks: what ``fit`` computes for a non-saturating GAN."""
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=BETAS)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=BETAS)
    G.train()
    D.train()
    losses = []
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(args.seed)
        n = len(x)
        for _ in range(args.epochs):
            order = torch.randperm(n)
            for i in range(0, n, args.batch):
                real = x[order[i : i + args.batch].to(x.device)]
                fake = G(torch.randn(len(real), args.latent, device=x.device)).detach()
                d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
                d_value = d_loss.item()
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                fake = G(torch.randn(len(real), args.latent, device=x.device))
                g_loss = F.softplus(-D(fake)).mean()
                g_value = g_loss.item()
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                losses.append(d_value + g_value)
    return losses


def recipe(gan: GAN, x: Tensor, args: argparse.Namespace) -> list[float]:
    r"""The hand loop again, calling the GAN recipe's losses (``model.fake``, ``model.critic``, the loss objects)."""
    critic, generator = CriticLoss("non_saturating"), GeneratorLoss("non_saturating")
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=args.lr, betas=BETAS)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=args.lr, betas=BETAS)
    gan.train()
    losses = []
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(args.seed)
        n = len(x)
        for _ in range(args.epochs):
            order = torch.randperm(n)
            for i in range(0, n, args.batch):
                batch = (x[order[i : i + args.batch].to(x.device)],)
                d_loss = critic(gan, batch)
                d_value = d_loss.item()
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                g_loss = generator(gan, batch)
                g_value = g_loss.item()
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                losses.append(d_value + g_value)
    return losses


def by_fit(gan: GAN, x: Tensor, args: argparse.Namespace) -> list[float]:
    return fit(gan, x, epochs=args.epochs, batch_size=args.batch, lr=args.lr, seed=args.seed,
               progress=False).step_loss


def _timed(fn: Callable[[], list[float]], device: torch.device) -> tuple[float, list[float]]:
    _sync(device)
    start = time.perf_counter()
    losses = fn()
    _sync(device)
    return time.perf_counter() - start, losses


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="digits", choices=("digits", "random"))
    p.add_argument("--epochs", type=int, default=10, help="epochs of each timed run (19 batches each at 64)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--repeats", type=int, default=7, help="timed runs of each way, interleaved")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true", help="cProfile one fit run and print the top of it")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = data(args, device)

    def fresh() -> dict[str, Callable[[], list[float]]]:  # the same starting weights for the three ways
        gan, twin = build(args, device), build(args, device)
        G, D = copy.deepcopy(gan.generator.net), copy.deepcopy(gan.discriminator)
        return {"hand": lambda: hand(G, D, x, args), "recipe": lambda: recipe(twin, x, args),
                "fit": lambda: by_fit(gan, x, args)}

    ways = ("hand", "recipe", "fit")
    warm = fresh()
    curves = {w: warm[w]() for w in ways}  # warm-up, and the losses to compare
    gap = {w: max(abs(a - b) for a, b in zip(curves[w], curves["hand"])) for w in ways if w != "hand"}
    steps = len(curves["hand"])
    times: dict[str, list[float]] = {w: [] for w in ways}
    for r in range(args.repeats):
        runs = fresh()
        for w in (ways if r % 2 == 0 else ways[::-1]):
            seconds, losses = _timed(runs[w], device)
            if len(losses) != steps:
                raise RuntimeError(f"{w} took {len(losses)} steps, the hand loop {steps}")
            times[w].append(seconds)
    med = {w: statistics.median(times[w]) for w in ways}
    result: dict[str, Any] = {
        "settings": vars(args), "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "steps": steps, "seconds": times, "median_seconds": med,
        "ms_per_step": {w: 1000 * med[w] / steps for w in ways},
        "ratio_fit_hand": med["fit"] / med["hand"], "ratio_recipe_hand": med["recipe"] / med["hand"],
        "ratio_fit_recipe": med["fit"] / med["recipe"],
        "ratio_fit_hand_per_repeat": [f / h for f, h in zip(times["fit"], times["hand"])],
        "max_loss_difference_from_hand": gap,
    }
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} thread(s); DCGAN channels {args.channels}, "
          f"latent {args.latent}, {args.data} 1x8x8, batch {args.batch}, {steps} steps per run, {args.repeats} repeats")
    for w in ways:
        print(f"{w:7s} median {med[w]:.3f} s ({result['ms_per_step'][w]:.3f} ms/step)  runs "
              + " ".join(f"{t:.3f}" for t in times[w]))
    print(f"fit / hand {result['ratio_fit_hand']:.3f} (per repeat "
          + " ".join(f"{v:.3f}" for v in result["ratio_fit_hand_per_repeat"])
          + f"); recipe / hand {result['ratio_recipe_hand']:.3f}; fit / recipe {result['ratio_fit_recipe']:.3f}")
    print("largest loss difference from the hand loop: "
          + ", ".join(f"{w} {v:.2e}" for w, v in gap.items()))
    if args.profile:
        gan = fresh()
        prof = cProfile.Profile()
        prof.enable()
        gan["fit"]()
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        result["profile"] = text.getvalue()
        print(result["profile"])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
