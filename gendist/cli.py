r"""The ``gendist`` command: ``fit``, ``sample`` and ``evaluate`` density models from the shell.

Every failure a user can cause (a missing file, bad data, an existing output
folder, an unknown name, a corrupt checkpoint) prints one line starting with
``gendist: error:`` and exits with status 2; nothing is written or overwritten
unless asked (``--force``, ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from gendist.io import atomic_write

__all__ = ["main"]

MODELS = {"nsf": "NSF", "maf": "MAF", "iaf": "IAF", "realnvp": "RealNVP", "nice": "NICE"}
AR_MODELS = {"made": "MADE", "nade": "NADE", "pixelcnn": "PixelCNN", "wavenet": "WaveNet", "transformer": "Transformer"}
LATENT_MODELS = {"vae": "VAE", "iwae": "IWAE", "hvae": "HierarchicalVAE", "vqvae": "VQVAE"}
ALL_MODELS = [*MODELS, *AR_MODELS, *LATENT_MODELS, "diffusion"]

EXAMPLES = """examples:
  gendist fit --data moons --model nsf --out runs/moons
  gendist fit --data digits --model nsf --epochs 100 --out runs/digits
  gendist fit --data digits --model made --hidden 512 --out runs/digits-made   # exact discrete NLL
  gendist fit --data mnist --model pixelcnn --layers 6 --channels 32 --out runs/mnist-pixelcnn
  gendist fit --data digits --model vae --latent 16 --out runs/digits-vae   # NLL: importance-sampled estimate
  gendist fit --data digits --model vqvae --codes 32 --out runs/digits-vqvae   # NLL: a lower bound
  gendist fit --data moons --model diffusion --weighting likelihood --importance --out runs/moons-diffusion
  gendist fit --data table.csv --columns a,b,c --model maf --out runs/table
  gendist fit --data moons --out runs/moons --resume      # continue a killed run exactly
  gendist sample runs/moons -n 1000 -o samples.npy
  gendist evaluate runs/table --data new.csv -o logp.npy
"""


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


# ------------------------------------------------------------------ data


def _split(x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = n_valid = max(1, len(x) // 10)
    test, valid, train = perm[:n_test], perm[n_test : n_test + n_valid], perm[n_test + n_valid :]
    return x[train], x[valid], x[test]


def load_data(name: str, columns: str | None, seed: int) -> dict:
    r"""Resolve ``--data`` into train/valid/test tensors and what is known about them."""
    from gendist import data as gdata

    if name in gdata.densities:
        density = gdata.densities[name]()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            train, valid, test = (density.sample((n,)) for n in (20000, 5000, 20000))
        entropy = float(density.entropy()) if density.log_prob_kind == "exact" else None
        return {"train": train, "valid": valid, "test": test, "names": ["x", "y"], "levels": None,
                "image_shape": None, "entropy": entropy, "kind": "toy2d"}
    if name == "digits":
        train, valid, test = (gdata.load_digits(s) for s in ("train", "valid", "test"))
        return {"train": train, "valid": valid, "test": test, "names": None, "levels": gdata.DIGITS_LEVELS,
                "image_shape": (8, 8), "entropy": None, "kind": "digits"}
    if name == "mnist":
        train, valid, test = (gdata.load_binarized_mnist(s) for s in ("train", "valid", "test"))
        return {"train": train, "valid": valid, "test": test, "names": None, "levels": 2,
                "image_shape": (28, 28), "entropy": None, "kind": "mnist"}
    path = Path(name)
    if not path.suffix:
        known = ", ".join([*gdata.densities, "digits", "mnist"])
        raise UsageError(f"unknown data {name!r}: give a .npy, .npz or .csv file or one of {known}")
    x, names = gdata.load_table(path, columns=columns.split(",") if columns else None)
    if len(x) < 10:
        raise UsageError(f"{path}: {len(x)} rows are too few to split into train/valid/test (need 10 or more)")
    train, valid, test = _split(x.to(torch.get_default_dtype()), seed)
    return {"train": train, "valid": valid, "test": test, "names": names, "levels": None,
            "image_shape": None, "entropy": None, "kind": "table"}


# ------------------------------------------------------------------ models


class _Flat(nn.Module):
    r"""An image model seen as a model of flat vectors (the command keeps every data set as rows)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, c: torch.Tensor | None = None):  # noqa: ANN201
        import pyro.distributions as dist
        from torch.distributions.transforms import ReshapeTransform

        d = self.model(c)
        return dist.TransformedDistribution(d, [ReshapeTransform(d.event_shape, (d.event_shape.numel(),))])


class _FlatWithLoss(_Flat):
    r"""A :class:`_Flat` image model with its own training loss (a VQ-VAE's), of flat rows."""

    def loss(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.loss(x.reshape(x.shape[:-1] + self.model.shape), c)


def _is_autoregressive(run: dict) -> bool:
    return run["model"].get("class") in AR_MODELS.values()


def _is_latent(run: dict) -> bool:
    return run["model"].get("class") in LATENT_MODELS.values()


def _is_diffusion(run: dict) -> bool:
    return run["model"].get("class") in ("Diffusion", "DiffusionModel")


def build_model(run: dict) -> nn.Module:
    r"""The model of a run: the recipe of its config, with its standardization layer (continuous data)
    or as a model of flat rows (images)."""
    from gendist.config import from_config
    from gendist.flows import FlowModule, Standardize

    recipe = from_config(run["model"])
    D = run["features"]
    if not (_is_autoregressive(run) or _is_latent(run) or _is_diffusion(run)):
        return FlowModule([*recipe.transforms, Standardize(D)], features=D, base=recipe.base)
    if not run.get("levels") or _is_diffusion(run):  # a continuous density under the data's standardization
        return FlowModule([Standardize(D)], features=D, base=recipe)
    if len(recipe.shape) == 1:
        return recipe
    return _FlatWithLoss(recipe) if callable(getattr(recipe, "loss", None)) else _Flat(recipe)


def _family(args: argparse.Namespace, levels: int | None):  # noqa: ANN202
    from gendist.autoregressive import Bernoulli, Categorical, DiscretizedLogisticMixture, NormalMixture

    if not levels:
        return NormalMixture(args.components)
    if args.family == "logistic":
        return DiscretizedLogisticMixture(levels, args.components)
    return Bernoulli() if levels == 2 else Categorical(levels)


def _ar_config(args: argparse.Namespace, data: dict) -> dict:
    from gendist import autoregressive
    from gendist.config import config

    D, levels, image = data["train"].shape[-1], data["levels"], data["image_shape"]
    family = _family(args, levels)
    if args.model == "pixelcnn":
        if image is None or not levels:
            raise UsageError("--model pixelcnn needs image data with levels (digits or mnist)")
        kwargs = {"shape": (1, *image), "channels": args.channels, "layers": args.layers}
    elif args.model in ("transformer", "wavenet"):
        kwargs = {"length": D, "layers": args.layers}
        kwargs["d_model" if args.model == "transformer" else "channels"] = args.channels
    elif args.model == "nade":
        kwargs = {"features": D, "hidden": args.hidden[0]}
    else:
        kwargs = {"features": D, "hidden": tuple(args.hidden), "orders": args.orders}
    cls = getattr(autoregressive, AR_MODELS[args.model], None)
    if cls is None:
        raise UsageError(f"--model {args.model} is not available in this version of gendist")
    return config(cls(family=family, **kwargs))


def _latent_config(args: argparse.Namespace, data: dict) -> dict:
    from gendist import latent
    from gendist.autoregressive import Bernoulli, Categorical, Normal
    from gendist.config import config

    D, levels = data["train"].shape[-1], data["levels"]
    family = (Bernoulli() if levels == 2 else Categorical(levels)) if levels else Normal()
    if args.model == "vqvae":
        return _vqvae_config(args, data, family)
    if args.latent < 1 or args.k < 1 or args.particles < 1:
        raise UsageError(f"--latent, --k and --particles must be >= 1, got {args.latent}, {args.k}, {args.particles}")
    kwargs = {"family": family, "hidden": tuple(args.hidden), "particles": args.particles, "chunk": 500}
    if args.model in ("vae", "iwae"):
        kwargs.update(prior=args.prior, encoder=args.encoder, components=args.prior_components)
    elif (args.prior, args.encoder) != ("normal", "diag"):
        raise UsageError(f"--prior and --encoder apply to vae and iwae, not {args.model}")
    if args.model == "hvae":
        kwargs["latents"] = (args.latent, max(1, args.latent // 2))
    else:
        kwargs["latent"] = args.latent
    if args.model == "iwae":
        kwargs["k"] = args.k
    return config(getattr(latent, LATENT_MODELS[args.model])(D, **kwargs))


def _vqvae_config(args: argparse.Namespace, data: dict, family) -> dict:  # noqa: ANN001
    from gendist.config import config
    from gendist.latent import VQVAE

    image, levels = data["image_shape"], data["levels"]
    if image is None or not levels:
        raise UsageError("--model vqvae needs image data with levels (digits or mnist)")
    if args.codes < 2 or args.downsample < 0:
        raise UsageError(f"--codes must be >= 2 and --downsample >= 0, got {args.codes} and {args.downsample}")
    f = 2**args.downsample
    if image[0] % f or image[1] % f:
        raise UsageError(f"--downsample {args.downsample}: the {image[0]}x{image[1]} images are not divisible by {f}")
    model = VQVAE((1, *image), family, codes=args.codes, dim=args.latent, channels=args.channels,
                  downsample=args.downsample, prior_channels=args.channels, prior_layers=args.layers)
    return config(model)


def _latent_objective(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    r"""A latent model's own loss; on continuous data, under the data's standardization :math:`x = t(y)`:
    :math:`-\log p(x) = -\log p(y) + \log |\det \partial x / \partial y|`."""
    x = batch[0]
    if not hasattr(m, "base"):
        return m.loss(x)
    t = m.transforms[-1]()
    y = t.inv(x)
    return m.base.loss(y) + t.log_abs_det_jacobian(y, x).mean()


def _diffusion_config(args: argparse.Namespace, data: dict) -> dict:
    from gendist.config import config
    from gendist.diffusion import DiffusionModel

    if args.sampler_steps < 1:
        raise UsageError(f"--sampler-steps must be >= 1, got {args.sampler_steps}")
    model = DiffusionModel(data["train"].shape[-1], sde=args.sde, parametrization=args.parametrization,
                      hidden=tuple(args.hidden), weighting=args.weighting, importance=args.importance,
                      sampler=args.sampler, steps=args.sampler_steps, t_min=args.t_min,
                      features=args.fourier_features, feature_scale=args.fourier_scale, dropout=args.dropout)
    return config(model)


def _recipe_config(args: argparse.Namespace, data: dict) -> dict:
    from gendist import flows
    from gendist.config import config

    if args.model == "diffusion":
        return _diffusion_config(args, data)
    if args.model in AR_MODELS:
        return _ar_config(args, data)
    if args.model in LATENT_MODELS:
        return _latent_config(args, data)
    if args.model not in MODELS:
        raise UsageError(f"unknown model {args.model!r}: choose one of {', '.join(ALL_MODELS)}")
    features = data["train"].shape[-1]
    kwargs = {"features": features, "transforms": args.transforms, "hidden": tuple(args.hidden)}
    if args.model == "nsf":
        kwargs["bins"] = args.bins
    if args.model in ("realnvp", "nice") and features < 2:
        raise UsageError(f"--model {args.model} needs at least 2 features, the data has {features}")
    return config(getattr(flows, MODELS[args.model])(**kwargs))


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available here; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise UsageError(f"--device {name}: {e}") from e


def load_run(path: str, device: torch.device | None = None) -> tuple[dict, nn.Module]:
    r"""Load a run folder written by ``gendist fit``: its config and the trained model."""
    folder = Path(path)
    cfg_path, weights = folder / "config.json", folder / "model.pt"
    if not cfg_path.is_file() or not weights.is_file():
        raise UsageError(f"{folder} is not a finished gendist run (config.json and model.pt are needed)")
    try:
        run = json.loads(cfg_path.read_text())
        model = build_model(run)
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{cfg_path} is not a valid gendist run config ({e})") from e
    try:
        state = torch.load(weights, weights_only=True, map_location="cpu")
        model.load_state_dict(state)
    except Exception as e:  # truncated, corrupt, or from another model
        raise UsageError(f"{weights} cannot be loaded ({type(e).__name__}); the file is corrupt or incomplete") from e
    model.eval()
    return run, model.to(device) if device is not None else model


# ------------------------------------------------------------------ commands


def cmd_fit(args: argparse.Namespace) -> int:
    from gendist.flows import Standardize
    from gendist.inference import fit, nll_objective
    from gendist.metrics import bits_per_dim

    out = Path(args.out)
    if out.exists() and not (args.force or args.resume):
        raise UsageError(f"{out} exists; use --force to overwrite it or --resume to continue its run")
    if args.resume and not (out / "train" / "last.pt").is_file():
        raise UsageError(f"--resume: {out} has no checkpoint (train/last.pt) to continue from")
    device = _device(args.device)
    data = load_data(args.data, args.columns, args.seed)
    D = data["train"].shape[-1]
    levels = data["levels"]

    def dequantize(x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x) if levels else x

    torch.manual_seed(args.seed)
    train = data["train"].to(device)
    model_cfg = _recipe_config(args, data)
    run = {"model": model_cfg, "features": D, "data": args.data, "columns": data["names"],
           "levels": levels, "image_shape": data["image_shape"], "seed": args.seed}
    model = build_model(run).to(device)
    latent = _is_latent(run) or _is_diffusion(run)  # trained on their own loss
    if (_is_autoregressive(run) or _is_latent(run)) and levels:
        levels = None  # a discrete model: NLL of the integers (exact, or estimated for latent models), no dequantizing
        discrete = True
    else:
        discrete = False
        with torch.random.fork_rng():
            torch.manual_seed(args.seed)
            fitted = Standardize.from_data(dequantize(train)).to(device)
        model.transforms[-1].load_state_dict(fitted.state_dict())
        if _is_diffusion(run) and model.base.denoiser.parametrization == "gaussian":
            with torch.no_grad():  # the Gaussian of the standardized training data (a resumed run reloads it)
                model.base.fit_gaussian(model.transforms[-1]().inv(dequantize(train)))

    def noisy(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return dequantize(x) if m.training else x  # validation data is dequantized once, with fixed noise

    def objective(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return -m().log_prob(noisy(m, batch[0])).mean()

    def diffusion_objective(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return _latent_objective(m, (noisy(m, batch[0]),))

    g = torch.Generator().manual_seed(args.seed + 1)
    fixed_noise = (lambda x: x + torch.rand(x.shape, generator=g).to(x)) if levels else (lambda x: x)
    valid = fixed_noise(data["valid"]).to(device)

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    chosen = (diffusion_objective if _is_diffusion(run) else _latent_objective if latent
              else objective if levels else nll_objective)
    history = fit(model, train, valid=valid, objective=chosen, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, schedule="cosine", clip_grad=10.0, seed=args.seed,
                  patience=args.patience, checkpoint_dir=out / "train", checkpoint_every=args.checkpoint_every,
                  resume=args.resume, progress=not args.quiet)
    seconds = time.perf_counter() - start

    model.eval()
    scores = {}
    with torch.no_grad():
        for split in ("train", "valid", "test"):
            x = data[split].to(device)
            draws = 10 if levels else 1
            nll = sum(float(-model().log_prob(fixed_noise(x.cpu()).to(device)).mean()) for _ in range(draws)) / draws
            scores[f"{split}_nll"] = nll
            if levels or discrete:
                scores[f"{split}_bits_per_dim"] = bits_per_dim(nll, D, scale=1.0)
    metrics = {**scores, "train_seconds": round(history.seconds or seconds, 2), "epochs": history.epoch,
               "steps": history.step, "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
               "data": {"name": args.data, "features": D, "levels": levels,
                        "sizes": {k: len(data[k]) for k in ("train", "valid", "test")}},
               "model": model_cfg, "history": {"step_loss": history.step_loss, "epoch_valid": history.epoch_valid}}
    kind = "bound" if model_cfg["class"] == "VQVAE" else "estimate" if _is_latent(run) else "exact"
    if _is_diffusion(run):
        kind = model.base().log_prob_kind
    metrics["log_prob_kind"] = kind
    if data["entropy"] is not None:
        metrics["entropy"] = data["entropy"]
        metrics["test_nll_minus_entropy"] = scores["test_nll"] - data["entropy"]
    atomic_write(out / "model.pt", lambda p: torch.save(model.state_dict(), p))
    atomic_write(out / "config.json", lambda p: Path(p).write_text(json.dumps(run, indent=2)))
    atomic_write(out / "metrics.json", lambda p: Path(p).write_text(json.dumps(metrics, indent=2)))
    _plots(out, model, data, history, device, n=200 if _is_autoregressive(run) else 2000)
    line = f"test NLL {scores['test_nll']:.4f} nats"
    if kind == "bound":
        line += " (a lower bound: log p(x | codes) + log p(codes) at the encoder's codes)"
    elif _is_diffusion(run):
        line += f" (probability-flow ODE, {'Hutchinson estimate' if kind == 'estimate' else 'exact divergence'})"
    elif latent:
        line += f" (importance-sampled estimate, {args.particles} particles: a bound in expectation)"
    if levels or discrete:
        line += f"   test bits/dim {scores['test_bits_per_dim']:.3f}"
    if data["entropy"] is not None:
        line += f"   entropy H {data['entropy']:.4f}   NLL - H {metrics['test_nll_minus_entropy']:+.4f}"
    print(line)
    if data["kind"] == "digits":  # anchors.md, same split and dequantization
        print("reference test bits/dim: full-covariance Gaussian 2.943, categorical MADE 2.252, NSF 2.210")
    if data["kind"] == "mnist":  # published test NLL (nats), statically binarized MNIST
        print("reference test NLL: NADE 88.86, MADE 88.04, PixelCNN 81.30")
    print(f"wrote {out}/metrics.json, model.pt, config.json")
    return 0


def _plots(out: Path, model: nn.Module, data: dict, history, device: torch.device, n: int = 2000) -> None:
    """samples.png, loss.png and (2-D) density.png, when matplotlib is installed."""
    try:
        from gendist import plots
    except ImportError:
        return
    try:
        with torch.no_grad():
            fake = model().sample((n,)).cpu()  # autoregressive samples take D sequential steps: fewer
        real = data["test"][:n]
        plots.plot_samples(real, fake, out / "samples.png", image_shape=data["image_shape"], names=data["names"])
        per_epoch = max(1, history.step // max(1, history.epoch))
        plots.plot_loss(history.step_loss, history.epoch_valid, per_epoch, out / "loss.png")
        if data["train"].shape[-1] == 2:
            plots.plot_density_2d(lambda x: model().log_prob(x.to(device)).cpu(), out / "density.png", data=real)
    except ImportError:
        return


def _output_path(path: str, force: bool) -> Path:
    out = Path(path)
    if out.suffix not in (".npy", ".csv"):
        raise UsageError(f"-o {path}: the output must end in .npy or .csv")
    if out.exists() and not force:
        raise UsageError(f"{out} exists; use --force to overwrite it")
    if not out.parent.exists():
        raise UsageError(f"-o {path}: the folder {out.parent} does not exist")
    return out


def _write_array(out: Path, array: np.ndarray, header: list[str] | None) -> None:
    if out.suffix == ".npy":
        atomic_write(out, lambda p: np.save(open(p, "wb"), array))
    else:
        head = ",".join(header) if header else ""
        atomic_write(out, lambda p: np.savetxt(p, array.reshape(len(array), -1), delimiter=",", header=head,
                                                comments=""))


def cmd_sample(args: argparse.Namespace) -> int:
    out = _output_path(args.output, args.force)
    if args.n < 1:
        raise UsageError(f"-n must be >= 1, got {args.n}")
    run, model = load_run(args.run, _device(args.device))
    torch.manual_seed(args.seed)
    with torch.no_grad():
        x = model().sample((args.n,)).cpu().numpy()
    _write_array(out, x, run.get("columns"))
    print(f"wrote {args.n} samples of dimension {x.shape[-1]} to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gendist.data import load_table

    out = _output_path(args.output, args.force)
    run, model = load_run(args.run, _device(args.device))
    columns = args.columns.split(",") if args.columns else run.get("columns") if run.get("columns") else None
    path = Path(args.data)
    try:
        x, _ = load_table(path, columns=columns if path.suffix == ".csv" else None)
    except ValueError as e:
        if columns and "column" in str(e):
            x, _ = load_table(path)
        else:
            raise
    if x.shape[-1] != run["features"]:
        raise UsageError(f"{path}: rows have {x.shape[-1]} values, the model was fitted to {run['features']}")
    with torch.no_grad():
        logp = model().log_prob(x.to(next(model.parameters()).dtype)).numpy()
    _write_array(out, logp, ["log_prob"])
    print(f"mean log-density {float(np.mean(logp)):.4f} nats over {len(logp)} rows; wrote {out}")
    return 0


# ------------------------------------------------------------------ entry point


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gendist", description="Fit, sample and evaluate density models.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit a model to data", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--data", required=True, help="moons, eight_gaussians, checkerboard, rings, circles, "
                   "pinwheel, two_spirals, digits, mnist, or a .npy/.npz/.csv file")
    f.add_argument("--columns", help="comma-separated column names or indices of a table to use")
    f.add_argument("--model", default="nsf", help=f"one of {', '.join(ALL_MODELS)} (default nsf)")
    f.add_argument("--out", required=True, help="the run folder to write (refused if it exists)")
    f.add_argument("--epochs", type=int, default=20)
    f.add_argument("--batch-size", type=int, default=256)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--transforms", type=int, default=5)
    f.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    f.add_argument("--bins", type=int, default=8, help="spline bins (nsf)")
    f.add_argument("--layers", type=int, default=4, help="layers (pixelcnn, wavenet, transformer)")
    f.add_argument("--channels", type=int, default=64, help="channels (pixelcnn, wavenet) or width (transformer)")
    f.add_argument("--family", default="auto", choices=["auto", "logistic"],
                   help="autoregressive conditionals: auto (Bernoulli, categorical, or a Gaussian mixture for "
                   "continuous data) or logistic (discretized logistic mixture)")
    f.add_argument("--components", type=int, default=5, help="mixture components (autoregressive families)")
    f.add_argument("--orders", type=int, default=1, help="made: orders sharing the weights, averaged as an ensemble")
    f.add_argument("--latent", type=int, default=16, help="latent dimension (vae, iwae, hvae: the lower layer)")
    f.add_argument("--prior", default="normal", choices=["normal", "mixture", "flow", "vamp"],
                   help="vae, iwae: the prior over the latent (mixture and vamp take --prior-components)")
    f.add_argument("--prior-components", type=int, default=50, help="vae, iwae: mixture components or pseudo-inputs")
    f.add_argument("--encoder", default="diag", choices=["diag", "full", "flow"], help="vae, iwae: the guide")
    f.add_argument("--codes", type=int, default=32, help="vqvae: codebook size (--latent: code dimension)")
    f.add_argument("--downsample", type=int, default=1, help="vqvae: stride-2 steps from the image to the code grid")
    f.add_argument("--k", type=int, default=50, help="iwae: importance samples of the training bound")
    f.add_argument("--particles", type=int, default=1000,
                   help="latent models: importance samples of the reported log-likelihood estimate")
    f.add_argument("--sde", default="vp", choices=["vp", "subvp", "ve", "ddpm"], help="diffusion: the process")
    f.add_argument("--parametrization", default="eps", choices=["eps", "x0", "v", "edm", "score", "gaussian"],
                   help="diffusion: what the network predicts (gaussian: around the data's full-covariance Gaussian)")
    f.add_argument("--weighting", default="simple", choices=["simple", "likelihood", "min_snr", "edm"],
                   help="diffusion: the loss weighting over time")
    f.add_argument("--importance", action="store_true", help="diffusion: importance-sample the training times")
    f.add_argument("--t-min", type=float, default=None,
                   help="diffusion: the smallest time, whose noise level the model's density has (default 1e-3; "
                   "on dequantized data, a noise of a fraction of a bin: see docs/diffusion.md)")
    f.add_argument("--fourier-features", type=int, default=0,
                   help="diffusion: random Fourier features of the network input (fine detail in low dimension)")
    f.add_argument("--fourier-scale", type=float, default=1.0, help="diffusion: their frequency scale")
    f.add_argument("--dropout", type=float, default=0.0, help="diffusion: dropout of the network (small data)")
    f.add_argument("--sampler", default="rk45", help="diffusion: the sampler of `gendist sample` (default rk45, "
                   "the ODE the likelihood solves; dpmpp_2m, ddim, heun, euler, ddpm, euler_maruyama, pc)")
    f.add_argument("--sampler-steps", type=int, default=50, help="diffusion: the sampler's steps")
    f.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    f.add_argument("--checkpoint-every", type=int, default=200, help="checkpoint period in steps")
    f.add_argument("--device", default="cpu")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    f.add_argument("--force", action="store_true", help="overwrite an existing --out folder")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fit)
    s = sub.add_parser("sample", help="draw samples from a fitted run", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("run", help="a run folder written by gendist fit")
    s.add_argument("-n", type=int, default=1000, help="number of samples")
    s.add_argument("-o", "--output", required=True, help="samples.npy or samples.csv")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--force", action="store_true", help="overwrite an existing output file")
    s.set_defaults(func=cmd_sample)
    e = sub.add_parser("evaluate", help="log-density of new data under a fitted run", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("run", help="a run folder written by gendist fit")
    e.add_argument("--data", required=True, help="a .npy/.npz/.csv file with the model's columns")
    e.add_argument("--columns", help="comma-separated columns to use (default: the ones fitted)")
    e.add_argument("-o", "--output", required=True, help="logp.npy or logp.csv")
    e.add_argument("--device", default="cpu")
    e.add_argument("--force", action="store_true", help="overwrite an existing output file")
    e.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, FileNotFoundError, ValueError, TypeError, ImportError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"gendist: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gendist: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

