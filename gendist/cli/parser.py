r"""The ``gendist`` parser: ``fit`` (shared flags, then one group per family), ``sample`` and ``evaluate``."""

from __future__ import annotations

import argparse

from gendist.cli.fit import cmd_fit
from gendist.cli.registry import FAMILIES, MODELS
from gendist.cli.use import cmd_evaluate, cmd_sample
from gendist.data import densities

__all__ = ["EXAMPLES", "HelpFormatter", "build_parser"]

# named defaults of the flags every family shares
MODEL = "nsf"
HIDDEN = (128, 128)
LAYERS = 4
CHANNELS = 64
# and of training
EPOCHS = 20
BATCH_SIZE = 256
LR = 1e-3
CHECKPOINT_EVERY = 200
SEED = 0
DEVICE = "cpu"
SAMPLES = 1000

_RUN_EXAMPLES = (
    "gendist fit --data moons --out runs/moons --resume      # continue a killed run exactly",
    "gendist sample runs/moons -n 1000 -o samples.npy",
    "gendist evaluate runs/table --data new.csv -o logp.npy",
)
EXAMPLES = "examples:\n" + "".join(f"  {line}\n" for f in FAMILIES for line in f.examples) + "".join(
    f"  {line}\n" for line in _RUN_EXAMPLES)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    r"""Examples as written, and every option's default after its help (unless the help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default in (None, argparse.SUPPRESS) or action.required or action.nargs == 0:
            return text
        value = action.default
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        return f"{text} (default: {shown.replace('%', '%%')})"


def _subcommand(sub: argparse._SubParsersAction, name: str, help_: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".", epilog=EXAMPLES,
                          formatter_class=HelpFormatter)


def _fit(sub: argparse._SubParsersAction) -> None:
    f = _subcommand(sub, "fit", "fit a model to data")
    data = f.add_argument_group("data")
    data.add_argument("--data", required=True, help=f"{', '.join(densities)}, digits, mnist, or a .npy/.npz/.csv file")
    data.add_argument("--columns", help="comma-separated column names or indices of a table to use (default: all)")
    model = f.add_argument_group("model (sizes shared by the families)")
    model.add_argument("--model", default=MODEL, help=f"one of {', '.join(MODELS)}")
    model.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN),
                       help="hidden layer widths (flows, made, nade: the first, latent models, diffusion)")
    model.add_argument("--layers", type=int, default=LAYERS,
                       help="layers (pixelcnn, wavenet, transformer, vqvae prior)")
    model.add_argument("--channels", type=int, default=CHANNELS,
                       help="channels (pixelcnn, wavenet, vqvae) or width (transformer)")
    for family in FAMILIES:
        family.add_arguments(f.add_argument_group(family.title))
    train = f.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=EPOCHS, help="passes over the training data")
    train.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="rows per step")
    train.add_argument("--lr", type=float, default=LR, help="learning rate (Adam, cosine decay)")
    train.add_argument("--patience", type=int, help="early stopping patience in epochs (default: none)")
    train.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                       help="checkpoint period in steps (0: at the end of each epoch only)")
    train.add_argument("--device", default=DEVICE, help="cpu, cuda, cuda:1, ...")
    train.add_argument("--seed", type=int, default=SEED, help="seed of the split, the initialization and training")
    run = f.add_argument_group("run folder")
    run.add_argument("--out", required=True, help="the run folder to write (refused if it exists)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    run.add_argument("--force", action="store_true", help="overwrite an existing --out folder")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fit)


def _sample(sub: argparse._SubParsersAction) -> None:
    s = _subcommand(sub, "sample", "draw samples from a fitted run")
    s.add_argument("run", help="a run folder written by gendist fit")
    s.add_argument("-n", type=int, default=SAMPLES, help="number of samples")
    s.add_argument("-o", "--output", required=True, help="samples.npy or samples.csv")
    s.add_argument("--seed", type=int, default=SEED, help="seed of the samples")
    s.add_argument("--device", default=DEVICE, help="cpu, cuda, cuda:1, ...")
    s.add_argument("--force", action="store_true", help="overwrite an existing output file")
    s.set_defaults(func=cmd_sample)


def _evaluate(sub: argparse._SubParsersAction) -> None:
    e = _subcommand(sub, "evaluate", "log-density of new data under a fitted run")
    e.add_argument("run", help="a run folder written by gendist fit")
    e.add_argument("--data", required=True, help="a .npy/.npz/.csv file with the model's columns")
    e.add_argument("--columns", help="comma-separated columns to use (default: the ones fitted)")
    e.add_argument("-o", "--output", required=True, help="logp.npy or logp.csv")
    e.add_argument("--device", default=DEVICE, help="cpu, cuda, cuda:1, ...")
    e.add_argument("--force", action="store_true", help="overwrite an existing output file")
    e.set_defaults(func=cmd_evaluate)


def build_parser() -> argparse.ArgumentParser:
    r"""The parser of the ``gendist`` command; each subcommand's ``func`` runs it."""
    p = argparse.ArgumentParser(prog="gendist", description="Fit, sample and evaluate density models.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    _fit(sub)
    _sample(sub)
    _evaluate(sub)
    return p
