"""The command as a package: user errors in one line (exit 2), bugs with a traceback (exit 1), defaults in --help,
each family's own flags, old runs, --resume checks, and torchrun."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gendist.cli import main
from gendist.cli.family import Family
from gendist.cli.flows import Flows
from gendist.cli.parser import build_parser
from gendist.cli.registry import FAMILIES, MODELS, family_of_class, family_of_model

FAST = ["--epochs", "1", "--transforms", "1", "--hidden", "16", "--quiet"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    assert main(["fit", "--data", "moons", "--out", str(out), *FAST]) == 0
    return out


def test_a_library_value_error_from_a_builder_is_the_users(monkeypatch, capsys, tmp_path):
    def bad(self, args, data):
        raise ValueError("NSF: `hidden` must be positive, got (0,)\nmore detail")

    monkeypatch.setattr(Flows, "recipe", bad)
    assert main(["fit", "--data", "moons", "--out", str(tmp_path / "r"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err == "gendist: error: NSF: `hidden` must be positive, got (0,)\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("error", [RuntimeError("boom"), TypeError("__init__() got an unexpected keyword")])
def test_an_internal_error_shows_its_traceback_and_how_to_report_it(monkeypatch, capsys, tmp_path, error):
    def bad(self, args, data):
        raise error

    monkeypatch.setattr(Flows, "recipe", bad)
    argv = ["fit", "--data", "moons", "--out", str(tmp_path / "r"), *FAST]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and str(error) in err
    assert "this is a bug in gendist" in err and "please report it" in err
    assert "gendist fit --data moons --out" in err  # the command line to report


def test_a_value_error_inside_training_is_a_bug_not_a_usage_error(monkeypatch, capsys, tmp_path):
    import gendist.cli.fit

    def broken(*args, **kwargs):
        raise ValueError("a shape mismatch deep inside a transform")

    monkeypatch.setattr(gendist.cli.fit, "fit", broken)
    assert main(["fit", "--data", "moons", "--out", str(tmp_path / "r"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "a shape mismatch" in err and "this is a bug in gendist" in err
    assert not err.startswith("gendist: error:")


@pytest.mark.parametrize("flags, words", [
    (["--epochs", "0"], "--epochs"), (["--batch-size", "0"], "--batch-size"), (["--lr", "0"], "--lr"),
    (["--patience", "-1"], "--patience"), (["--transforms", "0"], "--transforms"),
    (["--bins", "0"], "bins"),  # the library's ValueError, from building the model
])
def test_bad_training_and_model_flags_are_usage_errors(capsys, tmp_path, flags, words):
    argv = ["fit", "--data", "moons", "--out", str(tmp_path / "r"), *FAST, *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gendist: error:") and err.count("\n") == 1 and words in err
    assert not (tmp_path / "r").exists()


def _defaulted(action: argparse.Action) -> bool:
    return bool(action.option_strings) and action.nargs != 0 and not action.required and action.dest != "help"


@pytest.mark.parametrize("command", ["fit", "sample", "evaluate"])
def test_help_shows_every_default(command):
    parser = _subparsers(build_parser())[command]
    text = " ".join(parser.format_help().split())
    shown = 0
    for action in filter(_defaulted, parser._actions):
        if action.default is None:  # the help says in words what happens without the flag
            assert "(default:" in action.help, action.option_strings
        else:
            value = action.default
            value = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            assert re.search(re.escape(action.option_strings[-1]) + r"\b.*?\(default: " + re.escape(value) + r"\)",
                             text), action.option_strings
        shown += 1
    assert text.count("(default:") >= shown > 0


def test_flag_defaults_that_belong_to_a_recipe_come_from_it():
    import inspect

    from gendist.diffusion import DiffusionModel
    from gendist.flows import NSF

    args = build_parser().parse_args(["fit", "--data", "moons", "--out", "x"])
    nsf, diffusion = (inspect.signature(c).parameters for c in (NSF, DiffusionModel))
    assert (args.bins, args.transforms) == (nsf["bins"].default, nsf["transforms"].default)
    assert (args.sde, args.sampler, args.sampler_steps, args.t_min) == (
        diffusion["sde"].default, diffusion["sampler"].default, diffusion["steps"].default, diffusion["t_min"].default)


def _group_flags(family: Family) -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    family.add_arguments(parser.add_argument_group(family.title))
    return {s for a in parser._actions for s in a.option_strings}


def test_each_family_registers_its_own_flags_in_its_own_group():
    fit = _subparsers(build_parser())["fit"]
    groups = {g.title: {s for a in g._group_actions for s in a.option_strings} for g in fit._action_groups}
    seen: set[str] = set()
    for family in FAMILIES:
        own = _group_flags(family)
        assert own, f"{type(family).__name__} adds no flags"
        assert groups[family.title] == own  # registered on `fit`, in its group, and nothing else there
        assert not own & seen, f"{type(family).__name__} redefines {own & seen}"
        seen |= own
    shared = groups["model (sizes shared by the families)"]
    assert shared == {"--model", "--hidden", "--layers", "--channels"} and not shared & seen


def test_the_registry_maps_every_model_to_one_family():
    assert set(MODELS) == {"nsf", "maf", "iaf", "realnvp", "nice", "made", "nade", "pixelcnn", "wavenet",
                           "transformer", "vae", "iwae", "hvae", "vqvae", "diffusion", "rbm", "ebm", "gan"}
    for name, family in MODELS.items():
        assert family_of_model(name) is family
        assert family_of_class(family.models[name]) is family
    assert family_of_class("Diffusion") is MODELS["diffusion"]  # the recipe's name in runs of 0.1


def test_a_run_saved_under_the_old_diffusion_class_name_still_loads(tmp_path):
    table = np.random.default_rng(0).standard_normal((200, 2)) * [3.0, 0.5] + 10
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", header="a,b", comments="")
    out = tmp_path / "run"
    argv = ["fit", "--data", str(path), "--model", "diffusion", "--epochs", "1", "--hidden", "16", "--quiet",
            "--sampler", "ddim", "--sampler-steps", "4", "--out", str(out)]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["class"] == "DiffusionModel"
    config["model"]["class"] = "Diffusion"  # as the command wrote it before the rename
    (out / "config.json").write_text(json.dumps(config))
    samples = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "20", "-o", str(samples)]) == 0
    assert np.load(samples).shape == (20, 2)
    assert main(["evaluate", str(out), "--data", str(samples), "-o", str(tmp_path / "l.npy")]) == 0


def test_resume_with_the_flags_of_another_model_is_refused(capsys, tmp_path, moons_run):
    out = tmp_path / "run"
    shutil.copytree(moons_run, out)
    argv = ["fit", "--data", "moons", "--out", str(out), "--resume", *FAST[:-3], "--hidden", "8", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gendist: error: --resume:") and "another model" in err and err.count("\n") == 1


def test_resume_from_a_checkpoint_of_an_older_gendist_is_refused(capsys, tmp_path, moons_run):
    import torch

    out = tmp_path / "run"
    shutil.copytree(moons_run, out)
    torch.save({"model": torch.load(out / "model.pt", weights_only=True), "batch": 0}, out / "train" / "last.pt")
    assert main(["fit", "--data", "moons", "--out", str(out), "--resume", *FAST]) == 2
    err = capsys.readouterr().err
    assert "not a checkpoint of this version" in err and err.count("\n") == 1


def test_python_dash_m_gendist_cli_runs_the_command():
    help_ = subprocess.run([sys.executable, "-m", "gendist.cli", "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and "fit" in help_.stdout and "examples:" in help_.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="needs torchrun")
def test_fit_under_torchrun_writes_the_run_once(tmp_path):
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "gendist.cli", "fit", "--data", "moons",
           "--out", str(out), *FAST]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("test NLL") == 1 and run.stdout.count("wrote ") == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_nll"]) and (out / "model.pt").is_file() and (out / "train" / "last.pt").is_file()
