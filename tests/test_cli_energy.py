"""gendist fit --model rbm | ebm: log Z (exact or AIS, with its standard error) in metrics.json, MCMC samples,
evaluate with the stored log Z, exact --resume of persistent chains, and one-line usage errors."""

import functools
import json

import numpy as np
import pytest
import torch

import gendist.cli.fit
from gendist.cli import main
from gendist.cli.runs import load_run

QUIET = ["--quiet", "--batch-size", "32"]


def _binary_table(path, rows=200, columns=6, seed=0):
    g = np.random.default_rng(seed)
    z = g.random(rows) < 0.5  # a mixture of two product Bernoullis: correlated columns
    p = np.where(z[:, None], 0.85, 0.15) * np.ones(columns)
    x = (g.random((rows, columns)) < p).astype(int)
    np.savetxt(path, x, delimiter=",", fmt="%d", header=",".join(f"b{j}" for j in range(columns)), comments="")
    return path


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("gendist: error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return _binary_table(tmp_path_factory.mktemp("data") / "bits.csv")


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory, table):
    out = tmp_path_factory.mktemp("runs") / "rbm"
    argv = ["fit", "--data", str(table), "--model", "rbm", "--hidden-units", "3", "--epochs", "10", "--lr", "0.03",
            "--centering", "--out", str(out), *QUIET]
    assert main(argv) == 0
    return out


def test_rbm_on_a_binary_table_has_an_exact_nll(rbm_run, table, tmp_path, capsys):
    metrics = _metrics(rbm_run)
    assert metrics["log_prob_kind"] == "exact" and metrics["log_partition_method"] == "exact"
    assert metrics["log_partition_stderr"] is None and np.isfinite(metrics["test_nll"])
    assert 0 < metrics["test_bits_per_dim"] < 0.95  # 6 correlated binary columns: learnt below 1 bit each
    args = json.loads((rbm_run / "config.json").read_text())["model"]
    assert args["class"] == "RBM" and args["args"]["centering"] is True
    run, model = load_run(str(rbm_run))
    assert run["levels"] == 2 and model.log_z_method.item() > 0  # the table is binary to the RBM
    with torch.no_grad():  # the stored log Z is the exact one of the trained weights
        fresh = model.recipe(log_partition="exact").log_partition_value.item()
        d = model()
        assert fresh == pytest.approx(metrics["log_partition"], abs=1e-5)
        assert d.log_prob(d.enumerate_support()).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    samples = tmp_path / "s.npy"
    assert main(["sample", str(rbm_run), "-n", "50", "-o", str(samples)]) == 0
    x = np.load(samples)
    assert x.shape == (50, 6) and set(np.unique(x)) <= {0.0, 1.0}
    logp = tmp_path / "logp.npy"
    assert main(["evaluate", str(rbm_run), "--data", str(table), "-o", str(logp)]) == 0
    lp = np.load(logp)
    assert lp.shape == (200,) and (lp < 0).all() and np.isfinite(lp).all()


def test_rbm_log_z_by_ais_is_an_estimate_with_its_stderr(rbm_run, table, tmp_path, capsys):
    out = tmp_path / "ais"
    argv = ["fit", "--data", str(table), "--model", "rbm", "--hidden-units", "3", "--epochs", "10", "--lr", "0.03",
            "--centering", "--log-partition", "ais", "--ais-chains", "50", "--ais-betas", "200", "--out", str(out),
            *QUIET]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert "estimate: log Z" in line and "by AIS" in line
    metrics, exact = _metrics(out), _metrics(rbm_run)
    assert metrics["log_prob_kind"] == "estimate" and metrics["log_partition_method"] == "ais"
    assert metrics["ais"] == {"chains": 50, "betas": 200}
    se = metrics["log_partition_stderr"]
    assert se is not None and 0 <= se < 0.1
    assert metrics["log_partition"] == pytest.approx(exact["log_partition"], abs=5 * se + 0.02)  # same weights
    assert metrics["test_nll"] == pytest.approx(exact["test_nll"], abs=5 * se + 0.02)


def test_gaussian_rbm_on_continuous_data_with_exact_training(tmp_path):
    g = np.random.default_rng(1)
    table = g.standard_normal((300, 3)) @ np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.1]]) + 50
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "run"
    argv = ["fit", "--data", str(path), "--model", "rbm", "--objective", "exact", "--hidden-units", "4",
            "--epochs", "2", "--out", str(out), *QUIET]
    assert main(argv) == 0
    metrics = _metrics(out)
    assert metrics["log_prob_kind"] == "exact" and np.isfinite(metrics["test_nll"])
    assert json.loads((out / "config.json").read_text())["model"]["args"]["visible_kind"] == "gaussian"
    samples = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "300", "-o", str(samples)]) == 0
    x = np.load(samples)
    assert abs(x[:, 0].mean() - 50) < 1.5 and x[:, 2].std() < 1  # in the data's units


@pytest.fixture(scope="module")
def ebm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ebm"
    argv = ["fit", "--data", "moons", "--model", "ebm", "--epochs", "1", "--hidden", "16", "16", "--lr", "1e-2",
            "--sampler-steps", "20", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def test_ebm_on_moons_has_an_exact_nll_by_quadrature(ebm_run, tmp_path):
    metrics = _metrics(ebm_run)
    assert metrics["log_prob_kind"] == "exact" and metrics["log_partition_method"] == "quadrature"
    assert metrics["log_partition_stderr"] is None
    assert metrics["entropy"] < metrics["test_nll"] < metrics["entropy"] + 1.5  # trained, and honest
    samples = tmp_path / "s.npy"
    assert main(["sample", str(ebm_run), "-n", "100", "-o", str(samples), "--seed", "3"]) == 0
    x = np.load(samples)
    assert x.shape == (100, 2) and np.isfinite(x).all() and np.abs(x).max() < 10
    csv = tmp_path / "x.csv"
    np.savetxt(csv, x, delimiter=",", header="x,y", comments="")
    logp = tmp_path / "logp.npy"
    assert main(["evaluate", str(ebm_run), "--data", str(csv), "-o", str(logp)]) == 0
    assert np.load(logp).shape == (100,) and np.isfinite(np.load(logp)).all()
    _, model = load_run(str(ebm_run))
    with torch.no_grad():  # evaluate uses the stored log Z: the density integrates to one on a grid
        axes = torch.linspace(-10, 11, 421), torch.linspace(-6, 6.5, 251)  # steps of 0.05
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        mass = model().log_prob(grid).exp().sum().item() * 0.05**2
    assert mass == pytest.approx(1.0, abs=0.05)


def test_ebm_in_three_dimensions_estimates_log_z_by_ais(tmp_path, capsys):
    g = np.random.default_rng(2)
    path = tmp_path / "t.npy"
    np.save(path, g.standard_normal((200, 3)) * [1.0, 2.0, 0.5])
    out = tmp_path / "run"
    argv = ["fit", "--data", str(path), "--model", "ebm", "--objective", "dsm", "--epochs", "1", "--hidden", "8",
            "--ais-chains", "20", "--ais-betas", "50", "--sampler-steps", "5", "--out", str(out), *QUIET]
    assert main(argv) == 0
    assert "estimate: log Z" in capsys.readouterr().out
    metrics = _metrics(out)
    assert metrics["log_prob_kind"] == "estimate" and metrics["log_partition_method"] == "ais"
    assert metrics["log_partition_stderr"] >= 0 and np.isfinite(metrics["test_nll"])
    logp = tmp_path / "logp.csv"
    assert main(["evaluate", str(out), "--data", str(path), "-o", str(logp)]) == 0


@pytest.mark.parametrize("model, flags", [
    ("rbm", ["--objective", "pcd", "--chains", "16", "--hidden-units", "3"]),
    ("ebm", ["--objective", "pcd", "--chains", "16", "--cd-steps", "2", "--hidden", "8", "--sampler-steps", "5",
             "--log-partition", "ais", "--ais-chains", "10", "--ais-betas", "20"]),
])
def test_resume_continues_the_persistent_chains_exactly(monkeypatch, tmp_path, table, model, flags):
    if model == "ebm":
        table = tmp_path / "t.npy"
        np.save(table, np.random.default_rng(0).standard_normal((200, 2)) * [1.0, 3.0])
    argv = ["fit", "--data", str(table), "--model", model, *flags, "--epochs", "2", "--checkpoint-every", "3", *QUIET]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*argv, "--out", str(whole)]) == 0

    def kill(step, loss):
        if step == 8:
            raise KeyboardInterrupt

    monkeypatch.setattr(gendist.cli.fit, "fit", functools.partial(gendist.cli.fit.fit, callback=kill))
    assert main([*argv, "--out", str(parts)]) == 130  # interrupted after step 8, its checkpoint at step 6
    assert (parts / "train" / "last.pt").is_file() and not (parts / "model.pt").exists()
    monkeypatch.undo()
    assert main([*argv, "--out", str(parts), "--resume"]) == 0
    a, b = (torch.load(out / "model.pt", weights_only=True) for out in (whole, parts))
    assert a.keys() == b.keys()
    for k in a:  # bit for bit (a NaN, an exact log Z's standard error, equals a NaN)
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True)
    assert _metrics(whole)["test_nll"] == _metrics(parts)["test_nll"]
    assert _metrics(whole)["history"] == _metrics(parts)["history"]


@pytest.mark.parametrize("flags, words", [
    (["--model", "ebm", "--step-size", "0"], "--step-size"),
    (["--model", "rbm", "--objective", "pcd", "--chains", "0"], "--chains"),
    (["--model", "rbm", "--objective", "cd", "--chains", "8"], "persistent"),
    (["--model", "ebm", "--cd-steps", "0"], "--cd-steps"),
    (["--model", "ebm", "--sampler-steps", "0"], "--sampler-steps"),
    (["--model", "ebm", "--ais-chains", "1"], "--ais-chains"),
    (["--model", "ebm", "--l2", "-1"], "--l2"),
    (["--model", "ebm", "--dsm-sigma", "0"], "--dsm-sigma"),
    (["--model", "ebm", "--objective", "exact"], "trains by ssm, pcd, cd, dsm, nce"),
    (["--model", "rbm", "--objective", "dsm"], "trains by pcd, cd, exact"),
    (["--model", "ebm", "--sampler", "gibbs"], "mala, ula, hmc"),
    (["--model", "rbm", "--sampler", "hmc"], "block Gibbs"),
    (["--model", "rbm", "--visible", "bernoulli"], "--visible gaussian"),
    (["--model", "ebm", "--centering"], "rbm"),
])
def test_bad_flags_are_one_line_usage_errors(capsys, tmp_path, flags, words):
    out = tmp_path / "r"
    assert words in _error(capsys, ["fit", "--data", "moons", "--out", str(out), *flags])
    assert not out.exists()


def test_rbm_refuses_what_it_cannot_do(capsys, tmp_path):
    out = str(tmp_path / "r")
    err = _error(capsys, ["fit", "--data", "digits", "--model", "rbm", "--out", out])
    assert "17 levels" in err and "binarize" in err and "--visible gaussian" in err
    wide = _binary_table(tmp_path / "wide.csv", rows=40, columns=30)
    err = _error(capsys, ["fit", "--data", str(wide), "--model", "rbm", "--hidden-units", "30", "--objective",
                          "exact", "--out", out])
    assert "2^30" in err and "--objective pcd" in err
    err = _error(capsys, ["fit", "--data", str(wide), "--model", "rbm", "--hidden-units", "30", "--log-partition",
                          "exact", "--out", out])
    assert "--log-partition ais" in err
    path = tmp_path / "t.npy"
    np.save(path, np.random.default_rng(0).standard_normal((40, 3)))
    err = _error(capsys, ["fit", "--data", str(path), "--model", "ebm", "--log-partition", "exact", "--out", out])
    assert "quadrature" in err and "--log-partition ais" in err
    assert not (tmp_path / "r").exists()
