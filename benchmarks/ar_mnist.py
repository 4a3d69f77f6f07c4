r"""Autoregressive models on statically binarized MNIST: test NLL in nats against the published numbers.

Protocol (Larochelle & Murray, 2011; ``../shared/data/binarized_mnist.npz``):
train on the 50,000 training images, keep the weights of the best validation
epoch (early stopping), report the test NLL summed over the 784 pixels and
averaged over the 10,000 test images. Every number here is an exact
log-likelihood (``log_prob_kind == "exact"``).

Published: NADE 88.86, MADE 88.04 (one hidden layer) / 86.64 (two layers,
order ensemble), PixelCNN 81.30.

Run (CPU times on this 2-core machine are in benchmarks/README_ar.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ar_mnist.py --model made
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ar_mnist.py --model nade
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ar_mnist.py --model pixelcnn

Options: ``--epochs``, ``--patience``, ``--batch``, ``--lr``, ``--hidden``,
``--orders`` (MADE order ensemble), ``--direct`` (MADE direct input connections),
``--valid-size`` (early-stop on the first N validation images: an ensemble's
validation costs K passes), ``--channels``/``--layers`` (PixelCNN),
``--threads``, ``--out`` (a folder for the checkpoint and ``result.json``; a
run there is resumed with ``--resume``), ``--device``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from mnist_run import save, settings, train

from gendist.autoregressive import MADE, Bernoulli
from gendist.data import load_binarized_mnist

PUBLISHED = {"made": 88.04, "nade": 88.86, "pixelcnn": 81.30}


def build(args: argparse.Namespace) -> torch.nn.Module:
    if args.model == "made":
        return MADE(
            784,
            family=Bernoulli(),
            hidden=tuple(args.hidden or (500,)),
            orders=args.orders,
            direct=args.direct,
            seed=args.seed,
        )
    if args.model == "nade":
        from gendist.autoregressive import NADE

        return NADE(784, family=Bernoulli(), hidden=(args.hidden or [500])[0])
    if args.model == "pixelcnn":
        from gendist.autoregressive import PixelCNN

        return PixelCNN((1, 28, 28), family=Bernoulli(), channels=args.channels, layers=args.layers)
    raise SystemExit(f"unknown --model {args.model!r}: expected made, nade or pixelcnn")


def images(split: str, model: str) -> torch.Tensor:
    x = load_binarized_mnist(split)
    return x.reshape(-1, 1, 28, 28) if model == "pixelcnn" else x


@torch.no_grad()
def test_nll(model: torch.nn.Module, x: torch.Tensor, batch: int = 500) -> tuple[float, float]:
    r"""Mean test NLL (nats) and its standard error."""
    model.eval()
    lp = torch.cat([model().log_prob(x[i : i + batch]) for i in range(0, len(x), batch)])
    return float(-lp.mean()), float(lp.std() / math.sqrt(len(lp)))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="made", choices=["made", "nade", "pixelcnn"])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, nargs="+", default=None)
    p.add_argument("--orders", type=int, default=1)
    p.add_argument("--direct", action="store_true", help="MADE: direct input-to-output connections")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--valid-size", type=int, default=None, help="early-stop on the first N validation images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    x_train, valid, test = (images(s, args.model).to(device) for s in ("train", "valid", "test"))
    valid = valid[: args.valid_size]
    model = build(args).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {n_params:,} parameters, {len(x_train)} train images", flush=True)

    history, seconds = train(model, x_train, valid, args)
    nll, se = test_nll(model, test)
    result = {
        "model": args.model,
        "parameters": n_params,
        "settings": settings(args),
        "epochs": len(history.epoch_valid),
        "best_valid_nll": round(min(history.epoch_valid), 3),
        "test_nll": round(nll, 3),
        "test_nll_se": round(se, 3),
        "published": PUBLISHED[args.model],
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    save(result, args.out)
    return result


if __name__ == "__main__":
    main()
