"""gendist fit --model gan: sample-based scores instead of an NLL, samples in the data's units and levels,
evaluate refused with a clear message, resume, and one-line usage errors."""

import json

import numpy as np
import pytest

from gendist.cli import main
from gendist.cli.runs import load_run

QUIET = ["--quiet", "--batch-size", "500"]


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("gendist: error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "ring"
    argv = ["fit", "--data", "ring", "--model", "gan", "--hidden", "32", "32", "--latent", "2", "--epochs", "2",
            "--loss", "hinge", "--r1", "0.1", "--lazy", "4", "--ema", "0.9", "--out", str(out), *QUIET]
    assert main(argv) == 0
    return out


def test_a_run_reports_sample_scores_not_an_nll(ring, capsys):
    m = _metrics(ring)
    assert m["log_prob_kind"] == "none" and "test_nll" not in m
    scores = m["test_sample_scores"]
    assert 0 <= scores["c2st"] <= 1 and 0 <= scores["precision"] <= 1 and scores["of_modes"] == 8
    assert 0 <= scores["modes"] <= 8 and 0 <= scores["high_quality"] <= 1
    assert (ring / "samples.png").exists() and not (ring / "density.png").exists()


def test_sample_works_and_evaluate_says_there_is_no_density(ring, tmp_path, capsys):
    assert main(["sample", str(ring), "-n", "7", "-o", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (7, 2) and np.isfinite(x).all()
    capsys.readouterr()
    err = _error(capsys, ["evaluate", str(ring), "--data", str(tmp_path / "x.npy"), "-o", str(tmp_path / "l.npy")])
    assert "no log-density" in err and "gendist sample" in err


def test_the_saved_run_rebuilds_with_its_weight_average(ring):
    run, model = load_run(str(ring))
    assert run["model"]["class"] == "GAN"
    assert model.base.ema is not None and int(model.base.ema.updates) > 0


def test_resume_continues_the_run(ring, tmp_path):
    argv = ["fit", "--data", "ring", "--model", "gan", "--hidden", "32", "32", "--latent", "2", "--loss", "hinge",
            "--r1", "0.1", "--lazy", "4", "--ema", "0.9", *QUIET]
    out = tmp_path / "r"
    assert main([*argv, "--epochs", "1", "--out", str(out)]) == 0
    assert main([*argv, "--epochs", "2", "--out", str(out), "--resume"]) == 0
    assert _metrics(out)["epochs"] == 2


def test_images_give_integer_levels(tmp_path):
    out = tmp_path / "digits"
    assert main(["fit", "--data", "digits", "--model", "gan", "--channels", "4", "--latent", "4", "--epochs", "1",
                 "--out", str(out), *QUIET]) == 0
    assert main(["sample", str(out), "-n", "5", "-o", str(tmp_path / "d.npy")]) == 0
    x = np.load(tmp_path / "d.npy")
    assert x.shape == (5, 64) and np.array_equal(x, np.round(x)) and x.min() >= 0 and x.max() <= 16


@pytest.mark.parametrize("flags, message", [
    (["--generator", "dcgan"], "conv networks need image data"),
    (["--n-critic", "0"], "--n-critic must be >= 1"),
    (["--gp", "-1"], "--gp must be >= 0"),
    (["--ema", "1.5"], r"--ema must be in \[0, 1\)"),
])
def test_bad_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    import re

    err = _error(capsys, ["fit", "--data", "ring", "--model", "gan", "--out", str(tmp_path / "x"), *flags, *QUIET])
    assert re.search(message, err), err
