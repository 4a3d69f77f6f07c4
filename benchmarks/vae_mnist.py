r"""Latent-variable models on statically binarized MNIST: test NLL (IWAE estimate, K = 5000) against published numbers.

Protocol (``../shared/data/binarized_mnist.npz``): train on the 50,000
training images, keep the weights of the best validation epoch (early
stopping on the validation loss: the negative training objective), report
the test NLL estimated by importance sampling with K = 5000 particles from
the guide, averaged over the 10,000 test images. The estimate is an IWAE
bound, so it errs upward (a true NLL is at most this, in expectation).

Published (one stochastic layer, 50 latents, two hidden layers of 200):
VAE 88.71, IWAE k=5 87.63, IWAE k=50 87.10.

Run (CPU times on this 2-core machine are in benchmarks/README_latent.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/vae_mnist.py --model vae --out runs/vae
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/vae_mnist.py --model iwae --k 50 --out runs/iwae50
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/vae_mnist.py --model vae --prior vamp --out runs/vamp

Options: ``--latent``, ``--hidden``, ``--prior normal|mixture|flow|vamp``, ``--components``,
``--encoder diag|full|flow``, ``--warmup`` (KL warm-up steps), ``--k`` (IWAE particles),
``--test-k`` (5000), ``--test-size`` (all 10,000 by default), ``--epochs``, ``--patience``,
``--batch``, ``--lr``, ``--threads``, ``--out``/``--resume``, ``--device``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
from mnist_run import save, settings, train

from gendist.data import load_binarized_mnist
from gendist.latent import IWAE, VAE, HierarchicalVAE

PUBLISHED = {"vae": 88.71, "iwae": {5: 87.63, 50: 87.10}, "hvae": None}


def build(args: argparse.Namespace) -> nn.Module:
    common = dict(family="bernoulli", activation=nn.Tanh, particles=args.test_k, chunk=args.chunk)
    if args.model == "hvae":
        return HierarchicalVAE(
            784,
            latents=(args.latent, args.latent // 2),
            hidden=tuple(args.hidden),
            top_hidden=(100, 100),
            warmup=args.warmup,
            **common,
        )
    cls = IWAE if args.model == "iwae" else VAE
    extra = {"k": args.k} if args.model == "iwae" else {"warmup": args.warmup}
    return cls(
        784,
        latent=args.latent,
        hidden=tuple(args.hidden),
        encoder=args.encoder,
        prior=args.prior,
        components=args.components,
        **extra,
        **common,
    )


@torch.no_grad()
def test_nll(model: nn.Module, x: torch.Tensor, k: int, batch: int = 100) -> tuple[float, float]:
    r"""Mean test NLL (nats) by importance sampling with ``k`` particles, and its standard error."""
    model.eval()
    d = model()
    lp = torch.cat([d.log_prob(x[i : i + batch], k) for i in range(0, len(x), batch)])
    return float(-lp.mean()), float(lp.std() / math.sqrt(len(lp)))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vae", choices=["vae", "iwae", "hvae"])
    p.add_argument("--latent", type=int, default=50)
    p.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    p.add_argument("--encoder", default="diag", choices=["diag", "full", "flow"])
    p.add_argument("--prior", default="normal", choices=["normal", "mixture", "flow", "vamp"])
    p.add_argument("--components", type=int, default=500)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--test-k", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--eval-only", action="store_true", help="only evaluate the best weights saved in --out")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    x_train, valid, test = (load_binarized_mnist(s).to(device) for s in ("train", "valid", "test"))
    test = test[: args.test_size]
    model = build(args).to(device)
    n_params = sum(q.numel() for q in model.parameters())
    print(f"{args.model}: {n_params:,} parameters, {len(x_train)} train images", flush=True)

    history, seconds = train(
        model, x_train, valid, args, epochs=0 if args.eval_only else args.epochs, resume=args.resume or args.eval_only
    )
    t0 = time.perf_counter()
    torch.manual_seed(args.seed + 1)
    nll, se = test_nll(model, test, args.test_k)
    published = PUBLISHED[args.model]
    result = {
        "model": args.model,
        "parameters": n_params,
        "settings": settings(args),
        "epochs": len(history.epoch_valid),
        "best_valid_loss": round(min(history.epoch_valid), 3) if history.epoch_valid else None,
        "test_nll": round(nll, 3),
        "test_nll_se": round(se, 3),
        "test_k": args.test_k,
        "published": published.get(args.k) if isinstance(published, dict) else published,
        "train_seconds": round(seconds, 1),
        "eval_seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(),
    }
    save(result, args.out)
    return result


if __name__ == "__main__":
    main()
