r"""Energy-based models on the 8x8 digits: an RBM (exact and AIS log-likelihoods) and a deep energy; sample grids.

Two models of the digits of ``gendist.data`` (the project's fixed train/valid/test split):

- **RBMs** on the digits binarized at ``pixel > 8`` (64 binary visible units): centered Bernoulli RBMs
  (``gendist.ebm.RBM(centering=True)``; ``ContrastiveDivergence(centering=True)`` moves the offsets towards the
  batch's and the hidden units' means before every step) trained by persistent contrastive divergence (PCD-1 with
  block Gibbs sweeps, 100 persistent chains) through ``gendist.inference.fit``. Their test log-likelihood
  divides by the partition function: exact, by enumerating the hidden layer, for at most 25 hidden units; else
  annealed importance sampling from the data's base-rate model, forwards (a stochastic lower bound on
  :math:`\log Z`, so an optimistic log-likelihood) and backwards from the model's own Gibbs samples (an upper
  bound if those were exact draws: a conservative log-likelihood). The model with 25 hidden units gets both,
  which checks AIS against the exact value.
- **A deep energy** :math:`E_\theta` (``gendist.ebm.Energy``, a 64-256-256-1 SiLU perceptron) on the pixel values
  scaled to :math:`[-1, 1]`, trained by denoising score matching at one noise level :math:`\sigma`: its density
  is then the data's blurred by :math:`\mathcal{N}(0, \sigma^2 I)`. Samples are MALA chains of that density from
  :math:`\mathcal{N}(0, I)` noise, shown as they are and after one denoising step
  :math:`\hat x = x + \sigma^2 \nabla_x \log p_\theta(x)` (Tweedie's formula: the mean of the clean image given
  the noisy one, by the model's score).

Run with (one thread, a few minutes):

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python examples/ebm_digits.py

It writes ``rbm_digits.png`` and ``ebm_digits.png`` to ``--images`` (default ``docs/images``), prints the
numbers, and writes them as JSON to ``--json`` when given.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from einops import rearrange

from gendist.data import load_digits
from gendist.ebm import RBM, Energy
from gendist.inference import ContrastiveDivergence, DenoisingScoreMatching, fit

LOG2 = math.log(2)


def grid(x: torch.Tensor, rows: int) -> torch.Tensor:
    r"""Images ``(N, 64)`` tiled into one ``(rows 10, N / rows 10)`` picture, with a 1-pixel border."""
    x = torch.nn.functional.pad(x.reshape(-1, 8, 8), (1, 1, 1, 1), value=float("nan"))
    return rearrange(x, "(r c) h w -> (r h) (c w)", r=rows)


def save_images(path: Path, panels: dict[str, torch.Tensor], low: float, high: float, rows: int = 6) -> None:
    r"""Panels of images (ink dark on white), each value range ``[low, high]``, side by side in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.7))
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="white")
    for ax, (title, x) in zip(axes, panels.items()):
        ax.imshow(grid(x.detach().cpu().clamp(low, high), rows).numpy(), cmap=cmap, vmin=low, vmax=high,
                  interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_rbm(hidden: int, train: torch.Tensor, args: argparse.Namespace) -> tuple[RBM, float]:
    r"""A centered Bernoulli RBM trained by PCD-1 (block Gibbs) with SGD; returns it and the training seconds."""
    torch.manual_seed(args.seed)
    rbm = RBM(64, hidden, centering=True, init_std=0.01)
    rbm.init_from_data(train)  # visible biases from the data's marginals, offsets at the data's means
    # centering: before each step the offsets move towards the batch's and its hidden units' means (rate 0.01)
    loss = ContrastiveDivergence(k=1, persistent=True, chains=100, centering=True, seed=args.seed)
    start = time.perf_counter()
    fit(rbm, train, objective=loss, epochs=args.rbm_epochs, batch_size=20, lr=args.rbm_lr, schedule="cosine",
        optimizer=lambda p: torch.optim.SGD(p, lr=args.rbm_lr, momentum=0.5), seed=args.seed, progress=False)
    return rbm, time.perf_counter() - start


def rbm_part(args: argparse.Namespace, images: Path) -> dict:
    train, test = ((load_digits(s) > 8).to(torch.get_default_dtype()) for s in ("train", "test"))
    rate = train.mean(0)
    p = rate.clamp(1e-3, 1 - 1e-3)
    independent = float((test * p.log() + (1 - test) * (1 - p).log()).sum(-1).mean())
    print(f"binarized digits: independent pixels (the data's marginals) score {independent:.3f} nats per test image")
    results: dict = {"independent_pixels_test_ll_nats": independent, "models": []}
    for hidden in args.hidden:
        rbm, seconds = train_rbm(hidden, train, args)
        energy = rbm().energy.detach()
        g = torch.Generator().manual_seed(args.seed)
        row: dict = {"hidden": hidden, "train_seconds": round(seconds, 1)}
        with torch.no_grad():
            free = rbm.free_energy(test)
            if hidden <= 25:
                start = time.perf_counter()
                exact = energy.log_partition("exact").value
                row["log_z_exact"] = float(exact)
                row["exact_seconds"] = round(time.perf_counter() - start, 1)
                row["test_ll_exact"] = float((-free - exact).mean())
            start = time.perf_counter()
            fwd = energy.log_partition("ais", chains=args.ais_chains, betas=args.ais_betas, base_rate=rate,
                                       generator=g)
            samples = rbm(steps=args.gibbs).mcmc((max(64, args.ais_chains),), generator=g).x
            rev = energy.log_partition("reverse_ais", x=samples[: args.ais_chains], betas=args.ais_betas,
                                       base_rate=rate, generator=g)
            row["ais_seconds"] = round(time.perf_counter() - start, 1)
        for name, lz in (("ais", fwd), ("reverse_ais", rev)):
            row[f"log_z_{name}"], row[f"log_z_{name}_stderr"] = float(lz.value), float(lz.stderr)
            row[f"test_ll_{name}"] = float((-free - lz.value).mean())
        results["models"].append(row)
        print(f"RBM 64x{hidden}: trained {seconds:.0f} s")
        if "log_z_exact" in row:
            print(f"  log Z exact {row['log_z_exact']:.3f} (enumerating 2^{hidden} hidden states, "
                  f"{row['exact_seconds']:.0f} s): test log-likelihood {row['test_ll_exact']:.3f} nats "
                  f"= {-row['test_ll_exact'] / 64 / LOG2:.4f} bits/pixel")
        print(f"  log Z by AIS ({args.ais_chains} chains, {args.ais_betas} temperatures): forward "
              f"{row['log_z_ais']:.3f} ± {row['log_z_ais_stderr']:.3f}, reverse {row['log_z_reverse_ais']:.3f} ± "
              f"{row['log_z_reverse_ais_stderr']:.3f}; test log-likelihood {row['test_ll_ais']:.3f} (forward: "
              f"optimistic) and {row['test_ll_reverse_ais']:.3f} nats (reverse: conservative)")
        last = (rbm, samples)
    rbm, samples = last
    with torch.no_grad():
        means = rbm.visible_probs(rbm.sample_hidden(samples[:36], g))
    save_images(images / "rbm_digits.png", {
        "test digits (pixel > 8)": test[:36],
        f"RBM samples ({args.gibbs} Gibbs sweeps)": samples[:36],
        "their p(v | h), last sweep": means,
    }, 0.0, 1.0)
    return results


def ebm_part(args: argparse.Namespace, images: Path) -> dict:
    train, test = (load_digits(s) / 8 - 1 for s in ("train", "test"))  # levels 0..16 -> [-1, 1]
    torch.manual_seed(args.seed)
    model = Energy(64, hidden=(256, 256))
    sigma = args.sigma
    start = time.perf_counter()
    fit(model, train, objective=DenoisingScoreMatching(sigma), epochs=args.ebm_epochs, batch_size=100,
        lr=args.ebm_lr, seed=args.seed, progress=False)
    seconds = time.perf_counter() - start
    g = torch.Generator().manual_seed(args.seed)
    d = model()
    start = time.perf_counter()
    out = d.mcmc((36,), x=torch.randn(36, 64, generator=g), sampler="mala", steps=args.mala_steps,
                 step_size=args.mala_step, keep=100, thin=10, generator=g)
    sampling = time.perf_counter() - start
    x = out.x
    denoised = x + sigma**2 * d.score(x, create_graph=False)
    ess = out.ess()
    with torch.no_grad():
        gap = float(d.energy_of(test).mean() - d.energy_of(train).mean())
    metrics = {"train_seconds": round(seconds, 1), "sampling_seconds": round(sampling, 1),
               "acceptance": out.acceptance_rate, "ess_min": float(ess.min()), "ess_median": float(ess.median()),
               "test_minus_train_energy": gap}
    print(f"deep EBM: denoising score matching at sigma {sigma}, trained {seconds:.0f} s; {args.mala_steps} MALA "
          f"steps of size {args.mala_step} on 36 chains ({sampling:.0f} s): acceptance {out.acceptance_rate:.3f}, "
          f"effective sample size of the last 100 kept states per pixel {float(ess.min()):.1f} to "
          f"{float(ess.max()):.1f} (median {float(ess.median()):.1f}); mean energy test - train {gap:+.3f}")
    save_images(images / "ebm_digits.png", {
        "test digits": test[:36],
        f"MALA samples of p_σ (σ = {sigma})": x,
        "denoised: x + σ² ∇log p_σ(x)": denoised,
    }, -1.0, 1.0)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="An RBM and a deep energy-based model on the 8x8 digits.")
    p.add_argument("--images", default="docs/images", help="folder for rbm_digits.png and ebm_digits.png")
    p.add_argument("--json", default=None, help="write the numbers to this file")
    p.add_argument("--part", choices=("rbm", "ebm", "both"), default="both")
    p.add_argument("--hidden", type=int, nargs="+", default=[25, 100],
                   help="hidden units of each RBM; the grid shows the last")
    p.add_argument("--rbm-epochs", type=int, default=150)
    p.add_argument("--rbm-lr", type=float, default=0.05)
    p.add_argument("--gibbs", type=int, default=1000, help="Gibbs sweeps of the RBM's samples")
    p.add_argument("--ais-chains", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=10000)
    p.add_argument("--ebm-epochs", type=int, default=400)
    p.add_argument("--ebm-lr", type=float, default=1e-3)
    p.add_argument("--sigma", type=float, default=0.3, help="the noise level of denoising score matching")
    p.add_argument("--mala-steps", type=int, default=2000)
    p.add_argument("--mala-step", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    images = Path(args.images)
    images.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    metrics: dict = {"args": vars(args)}
    if args.part in ("rbm", "both"):
        metrics["rbm"] = rbm_part(args, images)
    if args.part in ("ebm", "both"):
        metrics["ebm"] = ebm_part(args, images)
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {images}/rbm_digits.png and ebm_digits.png in {metrics['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
