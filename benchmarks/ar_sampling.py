r"""Cached against uncached autoregressive sampling: the same samples, how much faster.

For each network, draw the same samples twice under the same seed: with the
network's cache (a transformer's keys and values, WaveNet's per-layer queues,
PixelCNN's row-cropped vertical stack, MADE's prefix of hidden units, NADE's
running pre-activation) and with a full network pass per position
(``sample(cache=False)``). Prints the times, their ratio and whether the
samples are identical.

Run (one thread; a few minutes, almost all of it the uncached runs):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ar_sampling.py

Options: ``--only NAME`` (repeatable), ``--samples``, ``--threads``, ``--device``.
"""

from __future__ import annotations

import argparse
import time

import torch

from gendist.autoregressive import (
    MADE,
    NADE,
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    PixelCNN,
    Transformer,
    WaveNet,
)

CASES = {
    "transformer": lambda: Transformer(256, Categorical(256), d_model=64, heads=4, layers=2),
    "wavenet": lambda: WaveNet(256, DiscretizedLogisticMixture(256, 5), channels=32, blocks=2, layers=6),
    "pixelcnn": lambda: PixelCNN((1, 16, 16), Bernoulli(), channels=32, layers=6, kernel=5),
    "made": lambda: MADE(784, Bernoulli(), hidden=(500,)),
    "nade": lambda: NADE(196, Bernoulli(), hidden=256),
}


def timed(d: torch.distributions.Distribution, n: int, cache: bool, device: torch.device) -> tuple[float, torch.Tensor]:
    torch.manual_seed(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    x = d.sample((n,), cache=cache)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, x


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", choices=list(CASES))
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {device}, {args.samples} samples, float32")
    print(f"{'model':<12} {'event':>12} {'cached s':>9} {'uncached s':>11} {'ratio':>7}  same samples")
    for name in args.only or list(CASES):
        torch.manual_seed(0)
        d = CASES[name]().to(device).eval()()
        d.sample((2,))  # warm-up
        fast, a = timed(d, args.samples, True, device)
        slow, b = timed(d, args.samples, False, device)
        event = "x".join(map(str, d.event_shape))
        print(f"{name:<12} {event:>12} {fast:9.2f} {slow:11.2f} {slow / fast:6.1f}x  {torch.equal(a, b)}", flush=True)


if __name__ == "__main__":
    main()
