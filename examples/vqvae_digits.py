r"""Train a VQ-VAE with a PixelCNN prior on the 8x8 digits; report the test NLL bound, code usage, and save images.

The data are the 8x8 digits of ``gendist.data`` (17 levels per pixel, the
project's fixed train/valid/test split); the model is ``gendist.latent.VQVAE``
with a ``Categorical(17)`` likelihood per pixel, a 4x4 grid of codes and a
gated PixelCNN prior over it. Training is ``gendist.inference.fit`` twice:
first the ``"joint"`` stage (autoencoder and prior together), then the
``"prior"`` stage (the prior alone, on the final codes). The test score is
the VQ-VAE's ``log_prob``, a lower bound on :math:`\log p(x)`
(:math:`\log p(x \mid k(x)) + \log p(k(x))`), in bits/dim.

Run with:

    .venv/bin/python examples/vqvae_digits.py --out runs/vqvae-digits

It writes ``images.png`` (test digits, their reconstructions, samples from the
prior) and ``metrics.json`` to ``--out``. With the defaults (seed 0, one CPU
thread, 162 s of training) it reports a test bound of 97.41 nats = 2.196
bits/dim (reconstruction 57.36 + prior 40.05 nats), every one of the 32 codes
used on the test digits, code perplexity 24.3.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from einops import rearrange

from gendist.data import DIGITS_LEVELS, load_digits
from gendist.distributions.conditionals import Categorical
from gendist.inference import fit
from gendist.latent import VQVAE


def grid(x: torch.Tensor, rows: int) -> torch.Tensor:
    r"""Images ``(N, 1, H, W)`` tiled into one ``(rows H, N / rows W)`` picture, with a 1-pixel border."""
    x = torch.nn.functional.pad(x[:, 0], (1, 1, 1, 1), value=float("nan"))
    return rearrange(x, "(r c) h w -> (r h) (c w)", r=rows)


def save_images(path: Path, panels: dict[str, torch.Tensor], rows: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 2.9))
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="white")
    for ax, (title, x) in zip(axes, panels.items()):
        ax.imshow(grid(x, rows).numpy(), cmap=cmap, vmin=0, vmax=DIGITS_LEVELS - 1)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="VQ-VAE with a PixelCNN prior on the 8x8 digits.")
    p.add_argument("--out", required=True, help="folder for images.png and metrics.json")
    p.add_argument("--codes", type=int, default=32)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--downsample", type=int, default=1, help="1: a 4x4 code grid, 2: 2x2")
    p.add_argument("--prior-channels", type=int, default=32)
    p.add_argument("--prior-layers", type=int, default=4)
    p.add_argument("--epochs", type=int, default=80, help="epochs of the joint stage")
    p.add_argument("--prior-epochs", type=int, default=40, help="epochs of the prior stage")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    train, valid, test = (load_digits(s).reshape(-1, 1, 8, 8) for s in ("train", "valid", "test"))
    model = VQVAE(
        (1, 8, 8),
        Categorical(DIGITS_LEVELS),
        codes=args.codes,
        dim=args.dim,
        channels=args.channels,
        downsample=args.downsample,
        prior_channels=args.prior_channels,
        prior_layers=args.prior_layers,
    )
    start = time.perf_counter()
    common = dict(
        valid=valid, batch_size=args.batch_size, lr=args.lr, schedule="cosine", seed=args.seed, progress=False
    )
    joint = fit(model, train, epochs=args.epochs, **common)
    model.stage = "prior"
    prior = fit(model, train, epochs=args.prior_epochs, **common)
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        recon, logp = model.bound(test)
    D = test[0].numel()
    nll = float(-(recon + logp).mean())
    usage = model.code_usage(test)
    metrics = {
        "test_nll_bound_nats": nll,
        "test_bits_per_dim_bound": nll / (D * math.log(2)),
        "test_reconstruction_nats": float(-recon.mean()),
        "test_prior_nats": float(-logp.mean()),
        "test_code_usage": usage.fraction,
        "test_code_perplexity": usage.perplexity,
        "codes": args.codes,
        "grid": list(model.grid),
        "train_seconds": round(seconds, 1),
        "joint_best_epoch": joint.best_epoch,
        "prior_best_epoch": prior.best_epoch,
        "steps": joint.step + prior.step,
        "args": vars(args),
    }
    torch.manual_seed(args.seed)
    with torch.no_grad():
        originals = test[:32]
        panels = {
            "test digits": originals,
            "reconstructions (mean)": model.reconstruct(originals),
            "samples from the prior": model().sample((32,)),
        }
    save_images(out / "images.png", panels, rows=4)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        f"test NLL bound {nll:.2f} nats = {metrics['test_bits_per_dim_bound']:.3f} bits/dim "
        f"(reconstruction {metrics['test_reconstruction_nats']:.2f} + prior {metrics['test_prior_nats']:.2f})"
    )
    print(
        f"code usage {usage.fraction:.1%} of {args.codes} codes, perplexity {usage.perplexity:.2f}; "
        f"trained {seconds:.0f} s"
    )
    print(f"wrote {out}/images.png and metrics.json")
    return metrics


if __name__ == "__main__":
    main()
