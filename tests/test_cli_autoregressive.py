"""The gendist command with autoregressive models: exact discrete NLL, integer samples, clear errors."""

import json

import numpy as np
import pytest

from gendist.cli import main

FAST = ["--epochs", "1", "--hidden", "16", "--layers", "1", "--channels", "8", "--quiet"]


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gendist: error:") and "\n" not in err
    return err


@pytest.mark.parametrize("model", ["made", "nade", "pixelcnn", "wavenet", "transformer"])
def test_digits_exact_discrete_nll_and_integer_samples(model, tmp_path):
    out = tmp_path / model
    assert main(["fit", "--data", "digits", "--model", model, "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["class"].lower() == model
    # an exact categorical likelihood over 17 levels: at most log2(17) = 4.09 bits/dim after any training
    assert 0 < metrics["test_bits_per_dim"] < 4.2
    assert abs(metrics["test_bits_per_dim"] - metrics["test_nll"] / (64 * np.log(2))) < 1e-9
    samples = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "7", "-o", str(samples)]) == 0
    x = np.load(samples)
    assert x.shape == (7, 64) and np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 16
    logp = tmp_path / "logp.npy"
    assert main(["evaluate", str(out), "--data", str(samples), "-o", str(logp)]) == 0
    assert np.all(np.isfinite(np.load(logp)))


def test_continuous_data_gets_a_gaussian_mixture_made(tmp_path):
    out = tmp_path / "moons"
    assert main(["fit", "--data", "moons", "--model", "made", "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["args"]["family"]["family"] == "NormalMixture"
    assert metrics["test_nll"] > metrics["entropy"] - 0.05  # an exact density cannot beat the entropy


def test_autoregressive_errors(capsys, tmp_path):
    fit = ["fit", "--out", str(tmp_path / "a")]
    assert "pixelcnn" in _error(capsys, [*fit, "--data", "moons", "--model", "pixelcnn"])
    assert "unknown model" in _error(capsys, [*fit, "--data", "digits", "--model", "rnn"])
