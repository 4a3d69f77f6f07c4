r"""A diffusion model of the 8x8 digits: bits/dim by the probability-flow ODE, samples, and a classifier test.

anchors.md protocol: the 1200/297/300 split of ``gendist.data.load_digits``, uniform dequantization
(bin width 1) and bits/dim averaged over 10 dequantization draws. The model sees
:math:`y = 2 (x + u) / 17 - 1 \in [-1, 1)^{64}` (scale :math:`s = 2/17`, handled by
:func:`gendist.metrics.bits_per_dim`); its test NLL is the probability-flow likelihood with the exact
divergence (64 backward passes per evaluation, batched) at rtol = atol = 1e-4 (``--tol``).

The model's distribution is its :math:`p_{t_{\min}}`, the data blurred by :math:`\sigma_{t_{\min}}`.
Dequantized data is uniform inside each bin, with edges no network resolves at tiny noise, and the
PF-ODE density there is wild: with ``t_min = 1e-3`` (sigma 0.01) single draws scored 5.6 to 16.4
bits/dim. So the default ``t_min = 0.03`` (sigma 0.045, under half a bin) trains and scores the model
where it is reliable; any continuous density gives a valid dequantization bound.

Samples from DPM-Solver++(2M) at 20 and 100 network evaluations are mapped back to integers (floor,
clip to 0..16) and told apart from the 300 test images by a classifier two-sample test (accuracy: 0.5 is
indistinguishable); the same test of a full-covariance Gaussian and of two halves of the real data give
the scale.

Run (about 7 minutes of training, 30 of scoring, on one CPU thread; see benchmarks/README_diffusion.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/diffusion_digits.py --out runs/diffusion-digits
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from gendist.data import load_digits
from gendist.diffusion import DiffusionModel
from gendist.metrics import bits_per_dim, classifier_two_sample_test

LEVELS, SCALE = 17, 2 / 17


def to_model(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return (x + u) * SCALE - 1


def to_images(y: torch.Tensor) -> torch.Tensor:
    return ((y + 1) / SCALE).floor().clamp(0, LEVELS - 1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20_000, help="training steps")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=lambda s: tuple(map(int, s.split(","))), default=(512, 512, 512))
    p.add_argument("--sde", default="vp")
    p.add_argument("--parametrization", default="eps",
                   help="gaussian: around the full-covariance Gaussian of the training data")
    p.add_argument("--weighting", default="simple")
    p.add_argument("--importance", action="store_true", help="importance-sample time by the weighting")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout of the denoiser's hidden layers")
    p.add_argument("--valid-every", type=int, default=0,
                   help="score the validation split every this many steps and keep the best weights (0: never)")
    p.add_argument("--t-min", type=float, default=0.03,
                   help="the smallest time (VP: sigma 0.045, under half a bin of width 2/17 = 0.118)")
    p.add_argument("--draws", type=int, default=10, help="dequantization draws of the test NLL")
    p.add_argument("--divergence", default="exact", choices=["exact", "hutchinson"],
                   help="of the test NLL: exact (64 backward passes per evaluation) or Hutchinson (unbiased)")
    p.add_argument("--tol", type=float, default=1e-4, help="rtol = atol of the likelihood's ODE solve")
    p.add_argument("--probes", type=int, default=4, help="Hutchinson probes per solve")
    p.add_argument("--eval-only", action="store_true", help="load OUT/model.pt instead of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/diffusion-digits")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, valid, test = load_digits("train"), load_digits("valid"), load_digits("test")
    sigma_data = float(to_model(train, torch.rand_like(train)).std())
    model = DiffusionModel(64, sde=args.sde, t_min=args.t_min, parametrization=args.parametrization,
                           sigma_data=sigma_data, hidden=args.hidden, weighting=args.weighting,
                           importance=args.importance, dropout=args.dropout, ema=0.999)
    if args.parametrization == "gaussian":  # the full-covariance Gaussian of the dequantized training data
        model.fit_gaussian(to_model(train, torch.rand_like(train)))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    start = time.perf_counter()
    if args.eval_only:
        model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
        args.steps = 0
    # model selection on the validation split: one fixed dequantization draw, a looser ODE tolerance
    valid_y = to_model(valid, torch.rand(valid.shape, generator=torch.Generator().manual_seed(4)))
    best = (math.inf, 0, None)

    def validate(step: int) -> None:
        nonlocal best
        model.eval()
        with torch.no_grad():
            nll = float(-model(rtol=1e-3, atol=1e-3).log_prob(valid_y).mean())
        model.train()
        print(f"step {step} valid {bits_per_dim(nll, 64, scale=SCALE):.4f} bits/dim", flush=True)
        if nll < best[0]:
            best = (nll, step, {k: v.clone() for k, v in model.state_dict().items()})

    if args.valid_every and args.steps:
        validate(0)
    for step in range(1, args.steps + 1):
        x = train[torch.randint(len(train), (args.batch,))]
        loss = model.loss(to_model(x, torch.rand_like(x)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step()
        schedule.step()
        if step % 2000 == 0:
            print(f"step {step} loss {loss.item():.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
        if args.valid_every and (step % args.valid_every == 0 or step == args.steps):
            validate(step)
    seconds = time.perf_counter() - start
    if best[2] is not None:
        model.load_state_dict(best[2])
        print(f"keeping step {best[1]} (valid {bits_per_dim(best[0], 64, scale=SCALE):.4f} bits/dim)", flush=True)
    model.eval()
    if not args.eval_only:
        torch.save(model.state_dict(), out / "model.pt")

    g = torch.Generator().manual_seed(1)
    result: dict = {"train_seconds": round(seconds, 1), "args": vars(args)}
    if best[2] is not None:
        result["kept_step"] = best[1]
        result["valid_bits_per_dim"] = bits_per_dim(best[0], 64, scale=SCALE)
    start = time.perf_counter()
    with torch.no_grad():
        for split, x in (("test", test),):
            d = model(divergence=args.divergence, probes=args.probes, rtol=args.tol, atol=args.tol)
            result["log_prob_kind"] = d.log_prob_kind
            nll = []
            for i in range(args.draws):
                nll.append(float(-d.log_prob(to_model(x, torch.rand(x.shape, generator=g))).mean()))
                print(f"draw {i}: {bits_per_dim(nll[-1], 64, scale=SCALE):.4f} bits/dim "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            result[f"{split}_nll"] = sum(nll) / len(nll)
            result[f"{split}_bits_per_dim"] = bits_per_dim(result[f"{split}_nll"], 64, scale=SCALE)
            print(f"{split}: {result[f'{split}_bits_per_dim']:.4f} bits/dim", flush=True)
    result["score_seconds"] = round(time.perf_counter() - start, 1)

    gen = torch.Generator().manual_seed(2)
    c2st = {"real halves": classifier_two_sample_test(test, test, floor=True, generator=gen).floor}
    mu, cov = train.mean(0), torch.cov((train + torch.rand_like(train)).T)
    gauss = torch.distributions.MultivariateNormal(mu + 0.5, cov).sample((1000,)).floor().clamp(0, 16)
    c2st["full-covariance Gaussian"] = classifier_two_sample_test(test, gauss, generator=gen).statistic
    grids = {}
    with torch.no_grad():
        for nfe in (20, 100):
            torch.manual_seed(3)
            s = to_images(model(sampler="dpmpp_2m", steps=nfe, spacing="logsnr").sample((1000,)))
            c2st[f"dpmpp_2m, {nfe} NFE"] = classifier_two_sample_test(test, s, generator=gen).statistic
            grids[nfe] = s[:100]
    result["c2st_accuracy"] = c2st
    for k, v in c2st.items():
        print(f"C2ST {k}: {v:.3f}")
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
        for ax, (title, imgs) in zip(axes, [("test images", test[:100]), *[(f"DPM-Solver++ {k} NFE", v)
                                                                         for k, v in grids.items()]]):
            n = int(math.sqrt(len(imgs)))
            grid = imgs[: n * n].reshape(n, n, 8, 8).permute(0, 2, 1, 3).reshape(8 * n, 8 * n)
            ax.imshow(grid, cmap="gray_r", vmin=0, vmax=16)
            ax.set_title(title)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out / "samples.png", dpi=80)
    except ImportError:
        pass
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
