"""gendist fit --model diffusion: the PF-ODE likelihood in metrics.json, samples in the data's units."""

import json

import numpy as np

from gendist.cli import main


def test_diffusion_on_a_table(tmp_path):
    g = np.random.default_rng(0)
    table = np.c_[100 + 5 * g.standard_normal(300), 0.1 * g.standard_normal(300), g.standard_normal(300)]
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "run"
    argv = ["fit", "--data", str(path), "--model", "diffusion", "--epochs", "40", "--batch-size", "32",
            "--hidden", "32", "32", "--lr", "3e-3", "--quiet",
            "--sampler", "ddim", "--sampler-steps", "5", "--parametrization", "v",
            "--fourier-features", "8", "--fourier-scale", "0.5", "--dropout", "0.1", "--out", str(out)]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["log_prob_kind"] == "exact" and np.isfinite(metrics["test_nll"])
    args = json.loads((out / "config.json").read_text())["model"]["args"]
    assert args["sampler"] == "ddim" and args["features"] == 8 and args["dropout"] == 0.1
    samples = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "200", "-o", str(samples)]) == 0
    x = np.load(samples)
    assert x.shape == (200, 3) and abs(x[:, 0].mean() - 100) < 3 and x[:, 1].std() < 1  # in the data's units
    logp = tmp_path / "logp.npy"
    assert main(["evaluate", str(out), "--data", str(path), "-o", str(logp)]) == 0
    assert np.isfinite(np.load(logp)).all()


def test_diffusion_gaussian_parametrization(tmp_path):
    import torch

    from gendist.cli import build_model

    g = np.random.default_rng(1)
    table = g.standard_normal((400, 2)) @ np.array([[3.0, 2.0], [0.0, 0.5]]) + 10
    path = tmp_path / "g.csv"
    np.savetxt(path, table, delimiter=",", header="a,b", comments="")
    out = tmp_path / "run"
    argv = ["fit", "--data", str(path), "--model", "diffusion", "--parametrization", "gaussian", "--epochs", "1",
            "--hidden", "16", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    run = json.loads((out / "config.json").read_text())
    model = build_model(run)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    # the fitted Gaussian is that of the standardized data: zero mean, a correlation matrix, saved with the model
    D = model.base.denoiser
    cov = D.basis @ torch.diag(D.variances) @ D.basis.T
    assert D.mean.abs().max() < 0.1 and torch.allclose(cov.diagonal(), torch.ones(2), atol=0.1)
    assert abs(cov[0, 1]) > 0.9
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_nll"])


def test_diffusion_bad_options(capsys, tmp_path):
    out = str(tmp_path / "r")
    code = main(["fit", "--data", "moons", "--model", "diffusion", "--sampler-steps", "0", "--out", out])
    assert code == 2 and "--sampler-steps" in capsys.readouterr().err
    code = main(["fit", "--data", "moons", "--model", "diffusion", "--sampler", "magic", "--out", out])
    assert code == 2 and "sampler" in capsys.readouterr().err
    code = main(["fit", "--data", "moons", "--model", "diffusion", "--fourier-features", "3", "--out", out])
    assert code == 2 and "features" in capsys.readouterr().err
    code = main(["fit", "--data", "moons", "--model", "diffusion", "--dropout", "1.5", "--out", out])
    assert code == 2 and "dropout" in capsys.readouterr().err
