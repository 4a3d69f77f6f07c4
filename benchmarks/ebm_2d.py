r"""Deep energy-based models on the FFJORD 2-D densities: exact test NLL against the true entropy, and MALA samples.

For each density of ``gendist.data`` with a known entropy :math:`H`, a :class:`gendist.ebm.Energy` (an
:class:`gendist.nn.EnergyMLP`, optionally reading random Fourier features of its input, plus the Gaussian
envelope ``confine``) is trained on a fixed training set by ``--objective``:

- ``ml``: exact maximum likelihood. ``Energy(2, log_partition="quadrature")`` keeps the quadrature's graph, so
  the default objective of :func:`gendist.inference.fit`, the mean NLL, is the exact log-likelihood of the
  batch (:math:`\log Z` by the trapezoidal rule on a ``--points`` x ``--points`` grid over the box
  :math:`[-B, B]^2`, :math:`B = \max |x_{\text{train}}| + \text{margin}`); ``--jitter`` shifts the grid by a
  random fraction of its step at every batch;
- ``pcd``: persistent contrastive divergence (:class:`gendist.inference.ContrastiveDivergence`, MALA chains,
  L2 energy penalty), the classical way;
- ``ssm``: sliced score matching; ``nce``: noise-contrastive estimation against a Gaussian fitted to the data.

Whatever the objective, the model is then scored the same way:

- :math:`\log Z` by the trapezoidal rule on a finer grid over a larger box (``--eval-points`` over
  :math:`[-B_e, B_e]^2`, :math:`B_e = B + \text{eval-margin}`), also over the training box alone (the mass the
  box holds) and on the training grid (the error of the quadrature trained on); the distribution is then
  ``log_prob_kind="exact"`` and the test NLL on ``--test`` fresh draws gives ``NLL - H`` and the paired
  :math:`\mathrm{KL}(p \| q) = \overline{\log p - \log q}` with standard errors;
- samples: ``--chains`` MALA chains, their step size adapted during a burn-in of ``--burn-in`` steps to an
  acceptance near 0.6, then ``--mala-steps`` steps at the fixed step; started (``--samplers``) from uniform
  draws on the training box (``mala:uniform``), from training points (``mala:data``), from the model's own
  grid draws (``mala:grid``: a cell of the evaluation grid by its mass, uniform inside: MALA then only removes
  the cell's discretization), or parallel tempering with MALA moves from uniform draws (``pt:uniform``); their
  final states against as many fresh draws by the classifier two-sample test (held-out accuracy, 0.5 is
  indistinguishable; its floor is two true samples).

Results: ``OUT/NAME/result.json`` per density (and a table at the end). ``--out DIR --resume`` continues a
killed run from fit's last checkpoint (``OUT/NAME/ckpt/last.pt``) and skips densities already done;
``--resume --add-samplers LIST`` runs more samplers on the trained models of densities done (give the run's
training options).

Run (about 3 minutes a density on one CPU thread; numbers in benchmarks/README_energy.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ebm_2d.py --density all --out runs/ebm2d-ml --resume --threads 1
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ebm_2d.py --density all --objective pcd --steps 600 --k 10 \
        --confine 0.5 --out runs/ebm2d-pcd --resume --threads 1 --samplers mala:data
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gendist.data import densities
from gendist.ebm import Energy
from gendist.inference import (
    ContrastiveDivergence,
    NoiseContrastiveEstimation,
    SlicedScoreMatching,
    fit,
)
from gendist.metrics import classifier_two_sample_test
from gendist.nn import EnergyMLP

ANCHORS = ("eight_gaussians", "checkerboard", "rings", "circles", "moons")
OBJECTIVES = ("ml", "pcd", "ssm", "nce")
SAMPLERS = ("mala:uniform", "mala:data", "mala:grid", "pt:uniform")


class JitteredNLL:
    r"""The exact NLL with the quadrature grid shifted by :math:`u h`, :math:`u \sim \mathcal{U}[0, 1)` per batch
    (:math:`h` the grid step), so that no mass can hide between fixed nodes; the shift comes from torch's stream,
    which ``fit`` seeds and checkpoints."""

    def __init__(self, bound: float, points: int) -> None:
        self.bound, self.points = bound, points

    def __call__(self, model: Energy, batch: tuple[Tensor, ...]) -> Tensor:
        step = 2 * self.bound / (self.points - 1)
        shift = float(torch.rand(())) * step - step / 2
        options = {"low": -self.bound + shift, "high": self.bound + shift, "points": self.points}
        return -model(partition_options=options).log_prob(batch[0]).mean()


def build(args: argparse.Namespace, bound: float) -> Energy:
    torch.manual_seed(args.seed)
    net = EnergyMLP(2, args.hidden, fourier=args.fourier, fourier_scale=args.fourier_scale, fourier_seed=args.seed)
    return Energy(2, net=net, confine=args.confine, log_partition="quadrature" if args.objective == "ml" else None,
                  partition_options={"bound": bound, "points": args.points},
                  learn_normalizer=args.objective == "nce", steps=args.mala_steps)


def objective(args: argparse.Namespace, x: Tensor, bound: float) -> Any:
    if args.objective == "ml":
        return JitteredNLL(bound, args.points) if args.jitter else None  # None: fit's NLL
    if args.objective == "pcd":
        return ContrastiveDivergence(args.k, persistent=True, chains=args.pcd_chains, sampler="mala", l2=args.l2,
                                     seed=args.seed, step_size=args.pcd_step)
    if args.objective == "ssm":
        return SlicedScoreMatching(projections=1, directions="rademacher")
    mean, std = x.mean(0), x.std(0) * 1.2
    noise = torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)
    return NoiseContrastiveEstimation(noise, ratio=args.nce_ratio)


def grid(bound: float, points: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, float]:
    g = torch.linspace(-bound, bound, points, device=device, dtype=dtype)
    return torch.cartesian_prod(g, g), 2 * bound / (points - 1)


def _trapezoid(model: Energy, bound: float, points: int) -> float:
    r""":math:`\log \int_{[-B, B]^2} e^{-E}` by the trapezoidal rule, in float64 (no check that the box holds the
    mass: this is how much it holds)."""
    g = torch.linspace(-bound, bound, points, dtype=torch.float64)
    w = torch.full((points,), 2 * bound / (points - 1), dtype=torch.float64)
    w[0] = w[-1] = w[0] / 2
    x, logw = torch.cartesian_prod(g, g), (w[:, None] * w[None, :]).log().reshape(-1)
    p = next(model.parameters())
    with torch.no_grad():
        e = torch.cat([model.energy(c.to(p)).double().cpu() for c in x.split(2**16)])
    return torch.logsumexp(logw - e, 0).item()


def log_partitions(model: Energy, bound: float, args: argparse.Namespace) -> dict[str, float]:
    r""":math:`\log Z` on the training grid, on a fine grid over the training box and over the larger box."""
    big_bound = bound + args.eval_margin
    while True:  # the library's quadrature refuses a box whose edge holds mass: then a wider one
        big_points = int(math.ceil((args.eval_points - 1) * big_bound / bound)) + 1
        try:
            with torch.no_grad():
                big = model(log_partition="quadrature", partition_options={"bound": big_bound, "points": big_points})
            break
        except ValueError as e:
            if big_bound > 4 * bound:
                raise
            print(f"  {e}: scoring on a wider box", flush=True)
            big_bound *= 1.5
    lz = {"log_z_train_grid": _trapezoid(model, bound, args.points), "log_z_box": _trapezoid(model, bound,
          args.eval_points), "log_z": big.log_partition_value.item(), "eval_bound": big_bound,
          "eval_points": big_points}
    lz["mass_outside_box"] = -math.expm1(lz["log_z_box"] - lz["log_z"])
    return lz


def likelihood(model: Energy, name: str, bound: float, args: argparse.Namespace, device: torch.device,
               dtype: torch.dtype) -> dict[str, Any]:
    data = densities[name](validate_args=False)
    torch.manual_seed(10_000 + args.seed)
    x = data.sample((args.test,)).to(device=device, dtype=dtype)
    start = time.perf_counter()
    out = log_partitions(model, bound, args)
    with torch.no_grad():
        d = model(log_partition="quadrature", partition_options={"bound": out["eval_bound"],
                                                                  "points": out["eval_points"]})
        log_q = d.log_prob(x).double()
        assert abs(d.log_partition_value.item() - out["log_z"]) < 1e-5
        log_p = data.log_prob(x.double())
    diff = log_p - log_q
    H = data.entropy().item()
    n = len(x)
    out.update({"kind": d.log_prob_kind, "H": H, "nll": -log_q.mean().item(), "nll_se": log_q.std().item() / n**0.5,
                "gap": -log_q.mean().item() - H, "kl": diff.mean().item(), "kl_se": diff.std().item() / n**0.5,
                "score_seconds": time.perf_counter() - start})
    return out


def _grid_draws(model: Energy, bound: float, n: int, args: argparse.Namespace, g: torch.Generator,
                device: torch.device, dtype: torch.dtype) -> Tensor:
    r"""Draws of the model's grid density: a cell by :math:`e^{-E}` at its centre, then uniform in the cell."""
    x, h = grid(bound, args.eval_points, device, dtype)
    with torch.no_grad():
        e = torch.cat([model.energy(chunk) for chunk in x.split(2**16)])
    idx = torch.multinomial(torch.softmax(-e.double(), 0), n, replacement=True, generator=g)
    u = torch.rand(n, 2, generator=g, device=device, dtype=dtype) - 0.5
    return x[idx] + u * h


def sample(model: Energy, how: str, train: Tensor, bound: float, args: argparse.Namespace,
           device: torch.device, dtype: torch.dtype) -> tuple[Tensor, dict[str, Any]]:
    sampler, init = how.split(":")
    g = torch.Generator(device=device).manual_seed(20_000 + args.seed)
    n = args.chains
    if init == "uniform":
        x = (torch.rand(n, 2, generator=g, device=device, dtype=dtype) * 2 - 1) * bound
    elif init == "data":
        x = train[torch.randint(len(train), (n,), generator=g, device=device)]
    else:
        x = _grid_draws(model, bound, n, args, g, device, dtype)
    d = model()
    eps, start = args.mala_step, time.perf_counter()
    name = "mala" if sampler == "mala" else "parallel_tempering"
    extra = {} if sampler == "mala" else {"betas": args.pt_betas, "beta_min": args.pt_beta_min, "kernel": "mala"}
    block = 50
    for _ in range(max(0, args.burn_in // block)):  # burn-in: adapt the step size to an acceptance near 0.6
        out = d.mcmc(x=x, sampler=name, steps=block, generator=g, step_size=eps, **extra)
        x, acc = out.x, out.acceptance_rate
        eps *= math.exp(2 * (acc - 0.6))
    out = d.mcmc(x=x, sampler=name, steps=args.mala_steps, generator=g, step_size=eps, **extra)
    info = {"sampler": how, "chains": n, "burn_in": args.burn_in, "steps": args.mala_steps, "step_size": eps,
            "acceptance": out.acceptance_rate, "sample_seconds": time.perf_counter() - start}
    if "swap_rates" in out.info:
        info["swap_rates"] = [float(r) for r in torch.as_tensor(out.info["swap_rates"]).flatten()]
    return out.x, info


def samples(model: Energy, name: str, train: Tensor, bound: float, args: argparse.Namespace,
            device: torch.device, dtype: torch.dtype, which: list[str]) -> list[dict[str, Any]]:
    if not which:
        return []
    data = densities[name](validate_args=False)
    torch.manual_seed(30_000 + args.seed)
    real = data.sample((2 * args.chains,)).to(torch.float32)
    floor = classifier_two_sample_test(real[: args.chains], real[args.chains:],
                                       generator=torch.Generator().manual_seed(0)).statistic
    rows = []
    for how in which:
        fake, info = sample(model, how, train, bound, args, device, dtype)
        fake = fake.detach().cpu().float()
        ok = bool(torch.isfinite(fake).all())
        if ok:
            test = classifier_two_sample_test(real[: args.chains], fake, floor=False,
                                              generator=torch.Generator().manual_seed(0))
            info.update({"c2st": test.statistic, "c2st_p": test.p_value})
        else:
            info.update({"c2st": float("nan"), "c2st_p": float("nan")})
        info["c2st_floor"] = floor
        rows.append(info)
        print(f"  {name} {how}: C2ST {info['c2st']:.3f} (floor {info['c2st_floor']:.3f}), acceptance "
              f"{info['acceptance']:.2f} at step {info['step_size']:.2g}, {info['sample_seconds']:.0f} s", flush=True)
    return rows


def run(name: str, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    where = Path(args.out) / name
    done = where / "result.json"
    old = json.loads(done.read_text()) if args.resume and done.is_file() else None
    if old is not None and not args.add_samplers:
        print(f"{name}: done already ({done})", flush=True)
        return old
    data = densities[name](validate_args=False)
    torch.manual_seed(args.seed)
    train = data.sample((args.train,)).to(device=device, dtype=dtype)
    bound = math.ceil((train.abs().max().item() + args.margin) * 10) / 10
    model = build(args, bound).to(device=device, dtype=dtype)
    loss = objective(args, train, bound)
    per_epoch = math.ceil(args.train / args.batch)
    epochs = args.epochs or max(1, round(args.steps / per_epoch))
    ckpt = where / "ckpt"
    resume = args.resume and (ckpt / "last.pt").is_file()
    history = fit(model, train, objective=loss, epochs=epochs, batch_size=args.batch, lr=args.lr,
                  schedule="cosine", clip_grad=args.clip, seed=args.seed, checkpoint_dir=ckpt,
                  checkpoint_every=args.checkpoint_every, resume=resume, progress=False)
    model.eval()
    if old is not None:  # the model of the finished run (fit resumed at its end): more samplers
        old["samples"] += samples(model, name, train, bound, args, device, dtype, args.add_samplers)
        done.write_text(json.dumps(old, indent=1))
        return old
    result: dict[str, Any] = {"density": name, "objective": args.objective, "bound": bound, "epochs": epochs,
                              "steps": history.step, "train_seconds": history.seconds,
                              "final_loss": history.step_loss[-1] if history.step_loss else None,
                              "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}}
    result.update(likelihood(model, name, bound, args, device, dtype))
    print(f"{name} ({args.objective}): NLL - H {result['gap']:+.4f} ± {result['nll_se']:.4f}, KL {result['kl']:.4f}"
          f" ± {result['kl_se']:.4f}; log Z {result['log_z']:.4f} (train grid {result['log_z_train_grid']:+.4f}, "
          f"outside the box {result['mass_outside_box']:.1e}); {result['steps']} steps in "
          f"{result['train_seconds']:.0f} s", flush=True)
    result["samples"] = samples(model, name, train, bound, args, device, dtype, args.samplers)
    where.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result, indent=1))
    return result


def _sizes(s: str) -> tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--density", default="all", choices=("all", *ANCHORS), help="one density, or all five")
    p.add_argument("--objective", default="ml", choices=OBJECTIVES)
    p.add_argument("--out", default="runs/ebm2d", help="results and checkpoints: OUT/NAME/")
    p.add_argument("--resume", action="store_true", help="skip densities done, continue from the last checkpoint")
    p.add_argument("--steps", type=int, default=2000, help="training steps (rounded to whole epochs)")
    p.add_argument("--epochs", type=int, default=0, help="epochs over the training set (overrides --steps)")
    p.add_argument("--train", type=int, default=100_000, help="training set size")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam, cosine decay")
    p.add_argument("--clip", type=float, default=None, help="gradient norm clipping")
    p.add_argument("--hidden", type=_sizes, default=(128, 128))
    p.add_argument("--fourier", type=int, default=128, help="random Fourier features of the input (0: none)")
    p.add_argument("--fourier-scale", type=float, default=0.5, help="their frequency scale (per unit of x)")
    p.add_argument("--confine", type=float, default=1.0, help="the envelope lambda |x|^2 / 2")
    p.add_argument("--margin", type=float, default=1.5, help="box B = max |x_train| + margin")
    p.add_argument("--points", type=int, default=121, help="training quadrature: points per axis")
    p.add_argument("--jitter", action="store_true", help="shift the training grid at random every batch")
    p.add_argument("--eval-points", type=int, default=801, help="scoring quadrature over the training box")
    p.add_argument("--eval-margin", type=float, default=2.0, help="the scoring box: B + eval-margin")
    p.add_argument("--k", type=int, default=20, help="pcd: MALA steps per training step")
    p.add_argument("--pcd-chains", type=int, default=1024, help="pcd: persistent chains")
    p.add_argument("--pcd-step", type=float, default=0.005, help="pcd: MALA step size")
    p.add_argument("--l2", type=float, default=0.01, help="pcd: weight of the energies' L2 penalty")
    p.add_argument("--nce-ratio", type=int, default=4, help="nce: noise draws per example")
    p.add_argument("--test", type=int, default=5000, help="fresh test draws of the NLL")
    p.add_argument("--samplers", type=lambda s: [v for v in s.split(",") if v],
                   default=["mala:uniform", "mala:data", "mala:grid"], help=f"comma list of {SAMPLERS} ('' for none)")
    p.add_argument("--add-samplers", type=lambda s: [v for v in s.split(",") if v], default=[],
                   help="with --resume: run these samplers too on densities done (same training options)")
    p.add_argument("--chains", type=int, default=2000, help="MALA chains (= samples compared)")
    p.add_argument("--burn-in", type=int, default=500, help="MALA steps adapting the step size")
    p.add_argument("--mala-steps", type=int, default=1000, help="MALA steps at the adapted step size")
    p.add_argument("--mala-step", type=float, default=0.01, help="MALA's initial step size")
    p.add_argument("--pt-betas", type=int, default=8, help="pt: replicas")
    p.add_argument("--pt-beta-min", type=float, default=0.05, help="pt: the hottest inverse temperature")
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    bad = [s for s in args.samplers + args.add_samplers if s not in SAMPLERS]
    if bad:
        p.error(f"--samplers: unknown {bad}; expected some of {SAMPLERS}")
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    names = ANCHORS if args.density == "all" else (args.density,)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {device}, {args.dtype}, "
          f"seed {args.seed}; {args.objective}, EnergyMLP {args.hidden} with {args.fourier} Fourier features (scale "
          f"{args.fourier_scale:g}), confine {args.confine:g}, grid {args.points}^2"
          f"{' jittered' if args.jitter else ''}",
          flush=True)
    rows = [run(name, args, device, dtype) for name in names]
    print("\n| density | objective | H | test NLL | NLL - H | KL (paired) | outside box | train | sampler | C2ST |"
          " acceptance |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for s in r["samples"] or [{"sampler": "-", "c2st": float("nan"), "acceptance": float("nan")}]:
            print(f"| {r['density']} | {r['objective']} | {r['H']:.4f} | {r['nll']:.4f} ± {r['nll_se']:.4f} "
                  f"| {r['gap']:+.4f} | {r['kl']:.4f} ± {r['kl_se']:.4f} | {r['mass_outside_box']:.1e} "
                  f"| {r['train_seconds']:.0f} s | {s['sampler']} | {s['c2st']:.3f} | {s['acceptance']:.2f} |")


if __name__ == "__main__":
    main()
