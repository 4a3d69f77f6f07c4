r"""Mode collapse on the ring of 8 and the grid of 25 Gaussians: the protocol of VEEGAN and PacGAN.

For each data set (:class:`gendist.data.Ring`: 8 modes on a circle of radius 2, :math:`\sigma = 0.02`;
:class:`gendist.data.Grid`: 25 modes on :math:`\{-4, -2, 0, 2, 4\}^2`, :math:`\sigma = 0.05`) and each seed, a
:class:`gendist.gan.GAN` with perceptron generator and critic is trained by :func:`gendist.inference.fit` on
``--train`` fixed draws for ``--steps`` steps; then ``--samples`` (2500) samples are drawn in eval mode (from the
generator's weight average when ``--ema`` is set) and scored by :func:`gendist.metrics.mode_coverage`: the modes
covered (a mode is covered when at least one sample lies within :math:`3\sigma` of it as its nearest centre), the
share of high-quality samples (within :math:`3\sigma` of their nearest centre) and the KL divergence of the
high-quality samples' mode histogram from the uniform one (0 balanced, :math:`\log M` one mode).

The targets (issue 15): all modes covered and at least 90% high-quality samples, on every seed. VEEGAN
(Srivastava et al., 2017) reports 8 modes / 52.9% on the ring and 24.6 modes / 40% on the grid.

Rows printed besides the trained GANs, scored by the same metric:

- ``data``: 2500 exact draws of the mixture (what a perfect generator gives: about 98.9% within :math:`3\sigma`
  in 2-D, the :math:`\chi^2_2` tail);
- ``collapsed:constant``: a negative control, a generator whose output ignores :math:`z` (the first centre);
- ``collapsed:one_mode``: a negative control, the same GAN trained the same way on draws of one mode only.

Both controls must fail the targets (one mode covered, KL :math:`= \log M`).

Results: ``OUT/DATA/seedS/result.json`` per run and ``OUT/summary.json``; fit's checkpoint in
``OUT/DATA/seedS/ckpt/last.pt``: ``--resume`` continues a killed run and skips the runs done.

Run (numbers in benchmarks/README_gan.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gan_modes.py --data ring,grid --seeds 0,1,2 \
        --out runs/gan_modes --resume --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gendist.data import Grid, Ring
from gendist.gan import GAN
from gendist.inference import fit
from gendist.metrics import mode_coverage

DATA = {"ring": Ring, "grid": Grid}
CONTROLS = ("constant", "one_mode")


class Constant(nn.Module):
    r"""A collapsed generator: :math:`G(z) = \mu` for every :math:`z` (the output ignores the latent)."""

    def __init__(self, point: Tensor) -> None:
        super().__init__()
        self.point = nn.Parameter(point.clone())

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.point.expand(z.shape[0], -1) + 0 * z[:, :1]


def build(args: argparse.Namespace, generator: str | nn.Module = "mlp") -> GAN:
    return GAN(2, latent=args.latent, generator=generator, hidden=args.hidden, loss=args.loss,
               n_critic=args.n_critic, gp=args.gp, r1=args.r1, lazy=args.lazy, lr_generator=args.lr_generator,
               lr_critic=args.lr_critic, betas=(args.beta1, args.beta2), ema=args.ema or None,
               minibatch_std=args.minibatch_std, spectral_norm=args.spectral_norm)


def score(samples: Tensor, data: Ring | Grid) -> dict[str, Any]:
    r = mode_coverage(samples.double().cpu(), data.centres.double(), data.std)
    m = data.centres.shape[0]
    return {"modes": r.modes, "of": m, "high_quality": r.high_quality, "kl": r.kl, "counts": r.counts.tolist(),
            "passes": r.modes == m and r.high_quality >= 0.9}


def train(args: argparse.Namespace, name: str, seed: int, where: Path, device: torch.device,
          dtype: torch.dtype, one_mode: bool = False) -> dict[str, Any]:
    done = where / "result.json"
    if args.resume and done.is_file():
        old = json.loads(done.read_text())
        print(f"{name} seed {seed}{' (one mode)' if one_mode else ''}: done already ({done})", flush=True)
        return old
    data = DATA[name](dtype=torch.float64)
    torch.manual_seed(seed)
    x = data.sample((args.train,))
    if one_mode:  # every draw moved to the first mode: the data of one mode only
        k = torch.cdist(x, data.centres).argmin(1)
        x = x - data.centres[k] + data.centres[0]
    x = x.to(device=device, dtype=dtype)
    torch.manual_seed(seed)
    model = build(args).to(device=device, dtype=dtype)
    per_epoch = math.ceil(args.train / args.batch)
    epochs = max(1, round(args.steps / per_epoch))
    ckpt = where / "ckpt"
    resume = args.resume and (ckpt / "last.pt").is_file()
    history = fit(model, x, epochs=epochs, batch_size=args.batch, lr=args.lr, schedule=args.schedule, seed=seed,
                  checkpoint_dir=ckpt, checkpoint_every=args.checkpoint_every, resume=resume, progress=False)
    model.eval()
    torch.manual_seed(50_000 + seed)
    with torch.no_grad():
        samples = model().sample((args.samples,))
    result = {"data": name, "seed": seed, "row": "collapsed:one_mode" if one_mode else "gan",
              "steps": history.step, "train_seconds": history.seconds, **score(samples, data)}
    where.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result, indent=1))
    return result


def reference_rows(args: argparse.Namespace, name: str, device: torch.device, dtype: torch.dtype) -> list[dict]:
    data = DATA[name](dtype=torch.float64)
    torch.manual_seed(60_000)
    rows = [{"data": name, "seed": "-", "row": "data", "steps": 0, "train_seconds": 0.0,
             **score(data.sample((args.samples,)), data)}]
    if "constant" in args.controls:
        model = build(args, Constant(data.centres[0].to(dtype))).to(device=device, dtype=dtype).eval()
        with torch.no_grad():
            samples = model().sample((args.samples,))
        rows.append({"data": name, "seed": "-", "row": "collapsed:constant", "steps": 0, "train_seconds": 0.0,
                     **score(samples, data)})
    return rows


def _list(kind: type) -> Any:
    return lambda s: [kind(v) for v in s.split(",") if v]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| data | row | seed | modes covered | high quality | KL | steps | train | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['row']} | {r['seed']} | {r['modes']} / {r['of']} | "
                     f"{100 * r['high_quality']:.1f}% | {r['kl']:.3f} | {r['steps']} | {r['train_seconds']:.0f} s | "
                     f"{'pass' if r['passes'] else 'FAIL'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=_list(str), default=["ring", "grid"], help="comma list of ring, grid")
    p.add_argument("--seeds", type=_list(int), default=[0, 1, 2])
    p.add_argument("--controls", type=_list(str), default=list(CONTROLS),
                   help=f"negative controls, comma list of {CONTROLS} ('' for none); one_mode trains on the first "
                        "seed")
    p.add_argument("--out", default="runs/gan_modes", help="results and checkpoints: OUT/DATA/seedS/")
    p.add_argument("--resume", action="store_true", help="skip runs done, continue from the last checkpoint")
    p.add_argument("--steps", type=int, default=20000, help="training steps (rounded to whole epochs)")
    p.add_argument("--train", type=int, default=100_000, help="fixed training draws")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--samples", type=int, default=2500, help="samples scored")
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--hidden", type=_list(int), default=[128, 128, 128], help="both networks' hidden layers")
    p.add_argument("--loss", default="non_saturating")
    p.add_argument("--n-critic", type=int, default=1)
    p.add_argument("--gp", type=float, default=0.0, help="gradient penalty weight (WGAN-GP: 10)")
    p.add_argument("--r1", type=float, default=0.1, help="R1 weight gamma")
    p.add_argument("--minibatch-std", action="store_true", help="the critic's minibatch standard deviation")
    p.add_argument("--spectral-norm", action="store_true", help="the critic's spectral normalization")
    p.add_argument("--lazy", type=int, default=1, help="R1 every LAZY critic steps")
    p.add_argument("--lr", type=float, default=2e-3, help="both rates unless set apart")
    p.add_argument("--lr-generator", type=float, default=None)
    p.add_argument("--lr-critic", type=float, default=None)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--schedule", default="cosine", choices=("cosine", "none"))
    p.add_argument("--ema", type=float, default=0.999, help="generator weight average decay (0: none)")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    bad = [d for d in args.data if d not in DATA] + [c for c in args.controls if c not in CONTROLS]
    if bad or not args.data or not args.seeds:
        p.error(f"unknown data or controls {bad}; --data from {tuple(DATA)}, --controls from {CONTROLS}")
    args.schedule = None if args.schedule == "none" else args.schedule
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    out = Path(args.out)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {device}, {args.dtype}; GAN "
          f"loss={args.loss} r1={args.r1:g} gp={args.gp:g} n_critic={args.n_critic}, MLP {args.hidden}, latent "
          f"{args.latent}, ema {args.ema:g}, batch {args.batch}, {args.steps} steps, lr {args.lr:g} "
          f"({args.schedule or 'constant'})", flush=True)
    rows: list[dict[str, Any]] = []
    for name in args.data:
        for seed in args.seeds:
            start = time.perf_counter()
            r = train(args, name, seed, out / name / f"seed{seed}", device, dtype)
            rows.append(r)
            print(f"{name} seed {seed}: {r['modes']} / {r['of']} modes, {100 * r['high_quality']:.1f}% high quality, "
                  f"KL {r['kl']:.3f}; {r['steps']} steps, {r['train_seconds']:.0f} s training "
                  f"({time.perf_counter() - start:.0f} s in all)", flush=True)
        rows += reference_rows(args, name, device, dtype)
        if "one_mode" in args.controls:
            seed = args.seeds[0]
            rows.append(train(args, name, seed, out / name / f"one_mode_seed{seed}", device, dtype, one_mode=True))
    gans = [r for r in rows if r["row"] == "gan"]
    summary = {"args": {k: v for k, v in vars(args).items()}, "rows": rows,
               "all_pass": all(r["passes"] for r in gans),
               "controls_fail": all(not r["passes"] for r in rows if r["row"].startswith("collapsed"))}
    for name in args.data:
        mine = [r for r in gans if r["data"] == name]
        summary[name] = {"modes_mean": sum(r["modes"] for r in mine) / len(mine),
                         "high_quality_mean": sum(r["high_quality"] for r in mine) / len(mine),
                         "kl_mean": sum(r["kl"] for r in mine) / len(mine),
                         "train_seconds_mean": sum(r["train_seconds"] for r in mine) / len(mine)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print()
    print(table(rows))
    print(f"\nall GAN runs pass: {summary['all_pass']}; every collapsed control fails: {summary['controls_fail']}")
    return summary


if __name__ == "__main__":
    main()
