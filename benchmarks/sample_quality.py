r"""Sample quality of every family on the 8x8 digits: GAN, NSF flow, VAE and diffusion on one table (issue 15).

Every model is trained on the 1,200 training digits (``gendist.data.load_digits``, 17 integer levels) and
draws samples of integer levels; each row of the table scores ``--samples`` of them (297, the size of the
valid split, so every row, the real-vs-real one included, compares the same number of images) against the
300 test digits:

- ``c2st``: the classifier two-sample test on the raw pixels (:func:`gendist.metrics.classifier_two_sample_test`:
  held-out accuracy, 0.5 indistinguishable, 1 disjoint);
- ``precision``, ``recall``, ``density``, ``coverage`` (k = 5) and ``frechet`` (the Fréchet distance, an "FID" of
  the digits) in the feature space of a :class:`gendist.metrics.FeatureClassifier` trained on the training
  digits with their labels (``train_feature_classifier``, seed fixed; its penultimate layer of 64 units);
- ``nn_ratio``: the median distance (pixels) from a sample to its nearest training digit over the same median
  for the test digits. Below 1, samples sit closer to training images than new digits do: memorization.

Each model row is averaged over ``--draws`` independent sets of samples (mean and standard deviation).

The models (``--models``), trained by ``fit``; the flow, the VAE and the diffusion model with the configurations
the project measured (cosine decay):

- ``gan``: DCGAN generator and critic, ``GAN((64,), image=(1, 8, 8), generator="dcgan", discriminator="dcgan",
  out="sigmoid", channels=32, minibatch_std=True, ema=0.999)`` on :math:`(x + u)/17`, samples
  :math:`\lfloor 17\, G(z) \rfloor`; Adam (lr 4e-4, betas (0.5, 0.999)), batch 64, 200 epochs; two variants,
  ``ns_r1`` (the non-saturating loss with R1, weight 1, computed every 4th critic step) and ``hinge_sn`` (the
  hinge loss with a spectrally normalized critic), both sampling with the generator's weight average; with
  ``--gan-scale levels`` (the default is both mappings), each is also trained on the levels themselves,
  :math:`x / 16 \in [0, 1]` with no dequantization noise, and sampled as :math:`\mathrm{round}(16\, G(z))`
  clipped to 0..16 (the variants ``ns_r1_levels`` and ``hinge_sn_levels``: a background pixel then needs only
  :math:`G < 1/32`); of all the variants, the one with the lower mean Fréchet distance of ``--draws`` sets of
  samples to the *valid* split is the table's ``gan`` (the others are shown, marked "not selected");
- ``nsf``: the NSF of ``make demo`` (5 transforms, hidden (256, 256), 60 epochs of 100, lr 2e-3) on
  dequantized, standardized digits;
- ``vae``: the VAE of README_latent.md (latent 16, hidden (256, 256), a categorical decoder over the 17
  levels, early stopping on the valid ELBO, patience 30);
- ``diffusion``: the model of benchmarks/diffusion_digits.py (VP, ``gaussian`` parametrization, perceptron
  3 x 512, dropout 0.1, EMA 0.999, t_min 0.03, on :math:`2 (x + u)/17 - 1`, 20,000 steps of 128, lr 1e-3),
  without its selection of the weights on the valid PF-ODE likelihood (the last weights are kept), sampled by
  DPM-Solver++(2M) with 20 steps;

and two references: ``valid split`` (real against real: the floor of every metric) and ``gaussian`` (the
full-covariance Gaussian of the dequantized training digits). ``train split`` is a third: what a model that
copies its training images scores (and ``nn_ratio`` 0).

Continuous models' samples are floored and clipped to 0..16. Results: ``OUT/results.json`` (the table, every
row's metrics with their spread, training times), a grid of samples beside test digits per row ``OUT/<row>.png``
and all rows side by side in ``OUT/samples.png``; ``fit``'s checkpoints in ``OUT/ckpt/<model>/last.pt``
and the trained weights in ``OUT/models/<model>.pt``: ``--resume`` continues a killed run and skips the
models done.

Run (about 15 minutes on 2 shared CPU cores; numbers in benchmarks/README_sample_quality.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/sample_quality.py --out runs/sample-quality --resume

``--device cuda`` trains and samples on a GPU (the metrics follow the samples' device).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gendist.autoregressive import Categorical
from gendist.data import load_digits
from gendist.diffusion import DiffusionModel
from gendist.flows import NSF, FlowModule, Standardize
from gendist.gan import GAN
from gendist.inference import fit
from gendist.latent import VAE
from gendist.metrics import (
    FeatureClassifier,
    classifier_two_sample_test,
    sample_quality,
    train_feature_classifier,
)

LEVELS = 17
SHAPE = (1, 8, 8)
MODELS = ("gan", "nsf", "vae", "diffusion")
GAN_VARIANTS = ("ns_r1", "hinge_sn")
GAN_SCALES = ("dequantized", "levels")  # a variant trained on the levels is named "<variant>_levels"
METRICS = ("c2st", "precision", "recall", "density", "coverage", "frechet", "nn_ratio")

Sampler = Callable[[int, int], Tensor]  # (n, seed) -> (n, 64) integer levels, on the CPU


# -- the data and the features ----------------------------------------------------------------------------------
def to_levels(y: Tensor) -> Tensor:
    r"""Continuous values in level units back to integer levels: :math:`\min(\max(\lfloor y \rfloor, 0), 16)`."""
    return y.floor().clamp(0, LEVELS - 1)


def feature_network(train: Tensor, labels: Tensor, valid: Tensor, valid_labels: Tensor, args: argparse.Namespace
                    ) -> FeatureClassifier:
    r"""The classifier whose penultimate features the table's precision/recall and Fréchet distance use."""
    return train_feature_classifier(train, labels, SHAPE, classes=10, epochs=args.feature_epochs, seed=0,
                                    valid=(valid, valid_labels))


def nn_distances(x: Tensor, train: Tensor) -> Tensor:
    r"""The Euclidean distance from each row of ``x`` to its nearest row of ``train``."""
    return torch.cdist(x.double(), train.double()).min(dim=1).values


def score(real: Tensor, fake: Tensor, features: FeatureClassifier, train: Tensor, test_nn: float, seed: int,
          c2st_steps: int = 300) -> dict[str, float]:
    r"""One draw's metrics: :func:`gendist.metrics.sample_quality` (its C2ST with ``c2st_steps`` Adam steps per
    fold; 300 is the test's default) and the nearest-training-image ratio."""
    row = sample_quality(real, fake, features=features.features, k=5, c2st=False)
    g = torch.Generator().manual_seed(seed)
    row["c2st"] = classifier_two_sample_test(real, fake, steps=c2st_steps, generator=g).statistic
    row["nn_ratio"] = float(nn_distances(fake, train).median()) / test_nn
    return row


def summarize(draws: list[dict[str, float]]) -> dict[str, Any]:
    r"""The mean and the standard deviation (over draws) of each metric."""
    out: dict[str, Any] = {}
    for k in METRICS:
        v = torch.tensor([d[k] for d in draws], dtype=torch.float64)
        out[k] = float(v.mean())
        out[f"{k}_sd"] = float(v.std()) if len(draws) > 1 else 0.0
    out["draws"] = len(draws)
    return out


# -- the models -------------------------------------------------------------------------------------------------
class Dequantized:
    r"""A GAN objective's loss on integer levels: the batch dequantized to :math:`(x + u)/17` first. Its
    ``state_dict`` is the inner loss's (a lazy regularizer's counter), which ``fit`` checkpoints."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x = batch[0]
        return self.loss(model, ((x + torch.rand_like(x)) / LEVELS, *batch[1:]))

    def state_dict(self) -> dict[str, Any]:
        return self.loss.state_dict() if callable(getattr(self.loss, "state_dict", None)) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if callable(getattr(self.loss, "load_state_dict", None)):
            self.loss.load_state_dict(state)


class Levels(Dequantized):
    r"""A GAN objective's loss on integer levels: the batch mapped to :math:`x / 16 \in [0, 1]` exactly, with no
    dequantization noise (the samples go back by :math:`\mathrm{round}(16\, G(z))`)."""

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return self.loss(model, (batch[0] / (LEVELS - 1), *batch[1:]))


def gan_variant(name: str) -> tuple[str, str]:
    r"""A GAN variant's loss and data mapping: ``"ns_r1"`` is ``("ns_r1", "dequantized")``, ``"ns_r1_levels"``
    is ``("ns_r1", "levels")``."""
    if name.endswith("_levels"):
        return name.removesuffix("_levels"), "levels"
    return name, "dequantized"


def gan_model(variant: str, args: argparse.Namespace) -> GAN:
    variant = gan_variant(variant)[0]
    common = dict(latent=args.gan_latent, generator="dcgan", discriminator="dcgan", image=SHAPE, out="sigmoid",
                  channels=args.gan_channels, ema=0.999, betas=tuple(args.gan_betas), lr_critic=args.gan_lr_critic,
                  minibatch_std=args.minibatch_std)
    if variant == "ns_r1":
        return GAN((64,), loss="non_saturating", r1=args.r1, lazy=args.lazy, **common)
    if variant == "hinge_sn":
        return GAN((64,), loss="hinge", spectral_norm=True, **common)
    raise ValueError(f"unknown GAN variant {variant!r}; use one of {GAN_VARIANTS}")


def train_gan(variant: str, train: Tensor, valid: Tensor, args: argparse.Namespace, ckpt: Path
              ) -> tuple[nn.Module, dict[str, Any]]:
    model = gan_model(variant, args).to(args.device)
    mapping = Levels if gan_variant(variant)[1] == "levels" else Dequantized
    objectives = [dataclasses.replace(o, loss=mapping(o.loss)) for o in model.objectives()]
    history = fit(model, train, objective=objectives, epochs=args.gan_epochs, batch_size=args.gan_batch,
                  lr=args.gan_lr, seed=args.seed, checkpoint_dir=ckpt, checkpoint_every=args.checkpoint_every,
                  resume=args.resume and (ckpt / "last.pt").is_file(), progress=False)
    return model, {"epochs": history.epoch, "steps": history.step, "train_seconds": history.seconds}


def gan_sampler(model: GAN, scale: str = "dequantized") -> Sampler:
    r"""Samples of levels: :math:`\lfloor 17\, G(z) \rfloor` (``dequantized``) or :math:`\mathrm{round}(16\, G(z))`
    (``levels``), clipped to 0..16."""

    def sample(n: int, seed: int) -> Tensor:
        model.eval()
        torch.manual_seed(seed)
        g = model().sample((n,))
        if scale == "levels":
            return ((LEVELS - 1) * g).round().clamp(0, LEVELS - 1).cpu()
        return to_levels(LEVELS * g).cpu()

    return sample


def nsf_model(args: argparse.Namespace) -> FlowModule:
    recipe = NSF(64, transforms=args.nsf_transforms, hidden=tuple(args.nsf_hidden))
    return FlowModule([*recipe.transforms, Standardize(64)], features=64, base=recipe.base)


def _nll_of_dequantized(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    x = batch[0]
    return -m().log_prob(x + torch.rand_like(x) if m.training else x).mean()


def train_nsf(train: Tensor, valid: Tensor, args: argparse.Namespace, ckpt: Path) -> tuple[nn.Module, dict]:
    model = nsf_model(args).to(args.device)
    with torch.random.fork_rng(devices=[]):  # the data's standardization, as `gendist fit` fits it
        torch.manual_seed(args.seed)
        fitted = Standardize.from_data(train + torch.rand_like(train))
    model.transforms[-1].load_state_dict(fitted.state_dict())
    noisy_valid = valid + torch.rand(valid.shape, generator=torch.Generator().manual_seed(args.seed + 1)).to(valid)
    history = fit(model, train, valid=noisy_valid, objective=_nll_of_dequantized, epochs=args.nsf_epochs,
                  batch_size=100, lr=2e-3, schedule="cosine", clip_grad=10.0, seed=args.seed, checkpoint_dir=ckpt,
                  checkpoint_every=args.checkpoint_every, resume=args.resume and (ckpt / "last.pt").is_file(),
                  progress=False)
    return model, {"epochs": history.epoch, "steps": history.step, "best_epoch": history.best_epoch,
                   "train_seconds": history.seconds}


def vae_model(args: argparse.Namespace) -> VAE:
    return VAE(64, latent=16, family=Categorical(LEVELS), hidden=tuple(args.vae_hidden), particles=100, chunk=100)


def train_vae(train: Tensor, valid: Tensor, args: argparse.Namespace, ckpt: Path) -> tuple[nn.Module, dict]:
    model = vae_model(args).to(args.device)
    history = fit(model, train, valid=valid, epochs=args.vae_epochs, batch_size=100, lr=1e-3, schedule="cosine",
                  clip_grad=10.0, patience=30, seed=args.seed, checkpoint_dir=ckpt,
                  checkpoint_every=args.checkpoint_every, resume=args.resume and (ckpt / "last.pt").is_file(),
                  progress=False)
    return model, {"epochs": history.epoch, "steps": history.step, "best_epoch": history.best_epoch,
                   "stopped_early": history.stopped_early, "train_seconds": history.seconds}


SCALE = 2 / LEVELS  # the diffusion model sees y = 2 (x + u) / 17 - 1


def diffusion_model(train: Tensor, args: argparse.Namespace) -> DiffusionModel:
    g = torch.Generator().manual_seed(args.seed)
    y = (train.cpu() + torch.rand(train.shape, generator=g)) * SCALE - 1
    model = DiffusionModel(64, sde="vp", t_min=0.03, parametrization="gaussian", sigma_data=float(y.std()),
                           hidden=tuple(args.diffusion_hidden), dropout=0.1, ema=0.999, sampler="dpmpp_2m",
                           steps=20, spacing="logsnr")
    model.fit_gaussian(y)
    return model


def _dsm(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    x = batch[0]
    return m.loss((x + torch.rand_like(x)) * SCALE - 1)


def train_diffusion(train: Tensor, valid: Tensor, args: argparse.Namespace, ckpt: Path) -> tuple[nn.Module, dict]:
    model = diffusion_model(train, args).to(args.device)
    history = fit(model, train, objective=_dsm, epochs=args.diffusion_epochs, batch_size=128, lr=1e-3,
                  schedule="cosine", seed=args.seed, checkpoint_dir=ckpt, checkpoint_every=args.checkpoint_every,
                  resume=args.resume and (ckpt / "last.pt").is_file(), progress=False)
    return model, {"epochs": history.epoch, "steps": history.step, "train_seconds": history.seconds}


def plain_sampler(model: nn.Module, outward: Callable[[Tensor], Tensor]) -> Sampler:
    def sample(n: int, seed: int) -> Tensor:
        model.eval()
        torch.manual_seed(seed)
        return outward(model().sample((n,))).cpu()

    return sample


def gaussian_sampler(train: Tensor, seed: int) -> Sampler:
    r"""The full-covariance Gaussian of the dequantized training digits, floored back to levels."""
    g = torch.Generator().manual_seed(seed)
    y = train.cpu().double() + torch.rand(train.shape, generator=g, dtype=torch.float64)
    gauss = torch.distributions.MultivariateNormal(y.mean(0), torch.cov(y.T))

    def sample(n: int, s: int) -> Tensor:
        torch.manual_seed(s)
        return to_levels(gauss.sample((n,))).float()

    return sample


def subset_sampler(x: Tensor) -> Sampler:
    def sample(n: int, seed: int) -> Tensor:
        return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]].cpu()

    return sample


# -- the run ----------------------------------------------------------------------------------------------------
TRAINERS = {"nsf": train_nsf, "vae": train_vae, "diffusion": train_diffusion}
OUTWARD = {"nsf": to_levels, "vae": lambda x: x, "diffusion": lambda y: to_levels((y + 1) / SCALE)}
BUILDERS: dict[str, Callable[..., nn.Module]] = {"nsf": lambda tr, a: nsf_model(a), "vae": lambda tr, a: vae_model(a),
                                                 "diffusion": diffusion_model}


def trained(name: str, train: Tensor, valid: Tensor, args: argparse.Namespace, out: Path,
            done: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    r"""Train model ``name`` (a GAN variant is ``gan:<variant>``), or load it when ``--resume`` finds it done."""
    file = out / "models" / f"{name.replace(':', '-')}.pt"
    ckpt = out / "ckpt" / name.replace(":", "-")
    if name.startswith("gan:"):
        variant = name.split(":", 1)[1]
        build, train_it = (lambda: gan_model(variant, args)), (lambda: train_gan(variant, train, valid, args, ckpt))
    else:
        build, train_it = (lambda: BUILDERS[name](train, args)), (lambda: TRAINERS[name](train, valid, args, ckpt))
    if args.resume and file.is_file() and name in done:
        torch.manual_seed(args.seed)
        model = build().to(args.device)
        model.load_state_dict(torch.load(file, map_location=args.device, weights_only=True))
        print(f"{name}: loaded {file}", flush=True)
        return model, done[name]
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    model, info = train_it()
    info["train_seconds"] = round(info.get("train_seconds") or time.perf_counter() - start, 1)
    file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), file)
    print(f"{name}: trained in {info['train_seconds']} s ({info['steps']} steps)", flush=True)
    return model, info


def draw(sampler: Sampler, n: int, draws: int, seed: int, device: torch.device) -> list[Tensor]:
    r"""``draws`` sets of ``n`` samples (seeds ``seed``, ``seed + 1000``, ...), leaving the global random state be."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        return [sampler(n, seed + 1000 * i) for i in range(draws)]


def plot(test: Tensor, fake: Tensor, path: Path) -> None:
    try:
        from gendist.plots import plot_samples

        plot_samples(test[:64], fake[:64], path, image_shape=(8, 8))
    except ImportError:  # no matplotlib: no figure
        pass


def plot_all(panels: dict[str, Tensor], path: Path) -> None:
    r"""One figure: a grid of 36 images per row of the table (the first draw), side by side."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, (title, x) in zip(axes.flat, panels.items()):
        x = x[:36].reshape(-1, 8, 8)
        grid = torch.full((6 * 9 - 1, 6 * 9 - 1), math.nan)
        for i, image in enumerate(x):
            r, c = divmod(i, 6)
            grid[9 * r: 9 * r + 8, 9 * c: 9 * c + 8] = image
        ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=LEVELS - 1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| row | C2ST (pixels) | precision | recall | density | coverage | Fréchet (features) | NN ratio |"
             " train |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        cells = []
        for k in METRICS:
            sd = r[f"{k}_sd"]
            cells.append(f"{r[k]:.3f}" + (f" ± {sd:.3f}" if r["draws"] > 1 else ""))
        seconds = r.get("train_seconds")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'' if seconds is None else f'{seconds:.0f} s'} |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/sample-quality", help="folder of results.json, the grids and checkpoints")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--gan-variants", default=",".join(GAN_VARIANTS), help=f"of {', '.join(GAN_VARIANTS)}")
    p.add_argument("--gan-scale", default=",".join(GAN_SCALES),
                   help="the GANs' data mappings, comma-separated: dequantized ((x + u)/17, samples floored) and/or "
                        "levels (x/16 exactly, samples rounded); each variant is trained with each")
    p.add_argument("--samples", type=int, default=0, help="samples per row (0: the valid split's size, 297)")
    p.add_argument("--draws", type=int, default=3, help="independent sets of samples per model row")
    p.add_argument("--c2st-steps", type=int, default=300, help="Adam steps per fold of the C2ST's classifier")
    p.add_argument("--feature-epochs", type=int, default=30, help="epochs of the feature classifier")
    p.add_argument("--gan-epochs", type=int, default=200, help="19 steps each")
    p.add_argument("--gan-batch", type=int, default=64)
    p.add_argument("--gan-lr", type=float, default=4e-4)
    p.add_argument("--gan-lr-critic", type=float, default=None, help="the critic's rate (default: --gan-lr)")
    p.add_argument("--gan-betas", type=float, nargs=2, default=[0.5, 0.999], help="Adam's betas of both networks")
    p.add_argument("--minibatch-std", action=argparse.BooleanOptionalAction, default=True,
                   help="minibatch standard deviation in the critic")
    p.add_argument("--gan-latent", type=int, default=64)
    p.add_argument("--gan-channels", type=int, default=32)
    p.add_argument("--r1", type=float, default=1.0, help="weight of the R1 penalty (ns_r1)")
    p.add_argument("--lazy", type=int, default=4, help="R1 every this many critic steps, scaled up to match")
    p.add_argument("--nsf-epochs", type=int, default=60)
    p.add_argument("--nsf-transforms", type=int, default=5)
    p.add_argument("--nsf-hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--vae-epochs", type=int, default=300)
    p.add_argument("--vae-hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--diffusion-epochs", type=int, default=2000, help="10 steps each")
    p.add_argument("--diffusion-hidden", type=int, nargs="+", default=[512, 512, 512])
    p.add_argument("--checkpoint-every", type=int, default=500, help="fit's checkpoint period in steps")
    p.add_argument("--resume", action="store_true", help="continue from OUT's checkpoints; skip the models done")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.gan_variants = [v for v in args.gan_variants.split(",") if v]
    for m in args.models:
        if m not in MODELS:
            p.error(f"--models: unknown model {m!r}; use {', '.join(MODELS)}")
    for v in args.gan_variants:
        if v not in GAN_VARIANTS:
            p.error(f"--gan-variants: unknown variant {v!r}; use {', '.join(GAN_VARIANTS)}")
    scales = [s for s in args.gan_scale.split(",") if s]
    for s in scales:
        if s not in GAN_SCALES:
            p.error(f"--gan-scale: unknown mapping {s!r}; use {', '.join(GAN_SCALES)}")
    if "gan" in args.models and not (args.gan_variants and scales):
        p.error("--gan-variants, --gan-scale: give at least one of each")
    args.gan_variants = [v if s == "dequantized" else f"{v}_levels" for s in scales for v in args.gan_variants]
    args.device = torch.device(args.device)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    previous = json.loads(results_file.read_text()) if args.resume and results_file.is_file() else {}
    done: dict[str, Any] = previous.get("training", {})

    (train, ytrain), (valid, yvalid), (test, ytest) = (load_digits(s, labels=True) for s in ("train", "valid",
                                                                                              "test"))
    n = args.samples or len(valid)
    if n > len(test) or n > len(valid):
        raise SystemExit(f"--samples {n}: at most the valid split's {len(valid)} (every row has the same n)")
    start = time.perf_counter()
    features = feature_network(train, ytrain, valid, yvalid, args)
    with torch.no_grad():
        accuracy = float((features(test).argmax(1) == ytest).double().mean())
    print(f"feature classifier: valid accuracy {features.accuracy:.3f}, test {accuracy:.3f} "
          f"({time.perf_counter() - start:.1f} s)", flush=True)
    test_nn = float(nn_distances(test, train).median())
    dev_train, dev_valid = train.to(args.device), valid.to(args.device)

    results: dict[str, Any] = {
        "protocol": {"samples": n, "draws": args.draws, "real": "test split (300)", "k": 5,
                     "features": "FeatureClassifier(64 features) trained on the train split's labels, seed 0",
                     "feature_accuracy": {"valid": features.accuracy, "test": accuracy},
                     "test_nn_median": test_nn},
        "args": {k: (str(v) if isinstance(v, torch.device) else v) for k, v in vars(args).items()},
        "training": done, "selection": {}, "rows": {},
    }

    def save() -> None:
        results_file.write_text(json.dumps(results, indent=2))

    panels: dict[str, Tensor] = {"test split": test}

    def row(name: str, sampler: Sampler, draws: int, info: dict[str, Any] | None = None) -> dict[str, Any]:
        t = time.perf_counter()
        fakes = draw(sampler, n, draws, args.seed + 7, args.device)
        seconds = time.perf_counter() - t
        r = summarize([score(test, f, features, train, test_nn, args.seed + i, args.c2st_steps)
                       for i, f in enumerate(fakes)])
        r["sample_seconds"] = round(seconds / draws, 2)
        if info is not None:
            r.update({k: v for k, v in info.items() if k != "model"})
        results["rows"][name] = r
        panels[name] = fakes[0]
        plot(test, fakes[0], out / f"{name.replace(' ', '_').replace(':', '-').replace(',', '')}.png")
        save()
        print(f"{name}: " + "  ".join(f"{k} {r[k]:.3f}" for k in METRICS), flush=True)
        return r

    row("valid split", subset_sampler(valid), 1)
    row("train split", subset_sampler(train), args.draws)
    row("gaussian", gaussian_sampler(train, args.seed), args.draws)

    if "gan" in args.models:  # the variants, picked by the Fréchet distance to the valid split
        picked: tuple[float, str] = (math.inf, "")
        gans: dict[str, tuple[nn.Module, dict[str, Any]]] = {}
        for variant in args.gan_variants:
            name = f"gan:{variant}"
            model, info = gans[variant] = trained(name, dev_train, dev_valid, args, out, done)
            done[name] = info
            fakes = draw(gan_sampler(model, gan_variant(variant)[1]), n, args.draws, args.seed + 3, args.device)
            fid_valid = sum(sample_quality(valid, f, features=features.features, c2st=False)["frechet"]
                            for f in fakes) / len(fakes)
            results["selection"][variant] = fid_valid
            print(f"{name}: Fréchet distance to the valid split {fid_valid:.3f}", flush=True)
            if fid_valid < picked[0]:
                picked = (fid_valid, variant)
            save()
        results["selection"]["picked"] = picked[1]
        for variant in args.gan_variants:
            model, info = gans[variant]
            label = f"gan ({variant})" if variant == picked[1] else f"gan ({variant}, not selected)"
            row(label, gan_sampler(model, gan_variant(variant)[1]), args.draws,
                {**info, "valid_frechet": results["selection"][variant]})
    for name in args.models:
        if name == "gan":
            continue
        model, info = trained(name, dev_train, dev_valid, args, out, done)
        done[name] = info
        row(name, plain_sampler(model, OUTWARD[name]), args.draws, info)
    results["table"] = table(results["rows"])
    save()
    plot_all({k: v for k, v in panels.items() if k != "train split"}, out / "samples.png")
    print(results["table"])
    return results


if __name__ == "__main__":
    main()
