"""The gendist command: fit / sample / evaluate, and one clear line with exit status 2 for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from gendist.cli import main

FAST = ["--epochs", "1", "--transforms", "1", "--hidden", "16", "--quiet"]


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    assert main(["fit", "--data", "moons", "--model", "nsf", "--out", str(out), *FAST]) == 0
    return out


def test_fit_writes_metrics_checkpoint_and_config(moons_run):
    metrics = json.loads((moons_run / "metrics.json").read_text())
    for key in ("train_nll", "valid_nll", "test_nll", "entropy", "test_nll_minus_entropy", "train_seconds"):
        assert key in metrics
    assert metrics["test_nll"] > metrics["entropy"] - 0.05
    state = torch.load(moons_run / "model.pt", weights_only=True)
    assert isinstance(state, dict) and json.loads((moons_run / "config.json").read_text())["features"] == 2


def test_sample_and_evaluate(moons_run, tmp_path):
    samples = tmp_path / "s.npy"
    assert main(["sample", str(moons_run), "-n", "50", "-o", str(samples)]) == 0
    x = np.load(samples)
    assert x.shape == (50, 2)
    csv = tmp_path / "x.csv"
    np.savetxt(csv, x, delimiter=",", header="x,y", comments="")
    logp = tmp_path / "logp.npy"
    assert main(["evaluate", str(moons_run), "--data", str(csv), "-o", str(logp)]) == 0
    assert np.load(logp).shape == (50,) and np.isfinite(np.load(logp)).all()


def test_table_data_is_standardized_inside_the_model(tmp_path):
    g = np.random.default_rng(0)
    table = np.c_[1000 + 50 * g.standard_normal(400), 0.01 * g.standard_normal(400), g.standard_normal(400)]
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "run"
    assert main(["fit", "--data", str(path), "--columns", "a,b", "--model", "maf", "--out", str(out), *FAST]) == 0
    samples = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "500", "-o", str(samples)]) == 0
    x = np.load(samples)
    assert abs(x[:, 0].mean() - 1000) < 20 and x[:, 1].std() < 0.1  # original units


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("gendist: error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_input_gives_one_line_and_status_2(capsys, tmp_path, moons_run):
    assert "exists" in _error(capsys, ["fit", "--data", "moons", "--out", str(moons_run)])
    assert "no such file" in _error(capsys, ["fit", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "a")])
    assert "unknown data" in _error(capsys, ["fit", "--data", "cifar", "--out", str(tmp_path / "b")])
    assert "unknown model" in _error(capsys, ["fit", "--data", "moons", "--model", "gpt", "--out", str(tmp_path / "c")])
    if not torch.cuda.is_available():
        assert "CUDA" in _error(capsys, ["fit", "--data", "moons", "--device", "cuda", "--out", str(tmp_path / "d")])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,oops\n")
    assert "oops" in _error(capsys, ["fit", "--data", str(bad), "--out", str(tmp_path / "e")])
    assert not (tmp_path / "e").exists()
    wide = tmp_path / "wide.npy"
    np.save(wide, np.random.default_rng(0).standard_normal((20, 3)))
    argv = ["evaluate", str(moons_run), "--data", str(wide), "-o", str(tmp_path / "l.npy")]
    assert "fitted to 2" in _error(capsys, argv)
    assert "exists" in _error(capsys, ["sample", str(moons_run), "-o", str(wide)])
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((moons_run / "config.json").read_text())
    (corrupt / "model.pt").write_bytes((moons_run / "model.pt").read_bytes()[:100])
    assert "corrupt" in _error(capsys, ["sample", str(corrupt), "-o", str(tmp_path / "s.npy")])
    assert "checkpoint" in _error(capsys, ["fit", "--data", "moons", "--out", str(tmp_path / "f"), "--resume"])


def test_console_script_help_and_error_have_no_traceback(tmp_path):
    help_ = subprocess.run([sys.executable, "-m", "gendist.cli", "fit", "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and "examples:" in help_.stdout
    bad = subprocess.run([sys.executable, "-m", "gendist.cli", "sample", str(tmp_path), "-o", str(tmp_path / "x.npy")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "not a finished gendist run" in bad.stderr


@pytest.mark.parametrize(
    "content, words",
    [
        ("a,b\n1,2\n3\n4,5\n", "row"),  # ragged
        ("a,b\n1,7\n2,7\n3,7\n", "constant"),
        ("a,b\n1,2\n,3\n", "empty"),
        ("a,b\n1,nan\n2,3\n", "NaN"),
    ],
)
def test_bad_tables_through_the_command(capsys, tmp_path, content, words):
    path = tmp_path / "t.csv"
    path.write_text(content)
    err = _error(capsys, ["fit", "--data", str(path), "--out", str(tmp_path / "run")])
    assert words.lower() in err.lower()
    assert not (tmp_path / "run").exists()


def test_truncated_checkpoint_on_resume(capsys, tmp_path, moons_run):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(moons_run, out)
    last = out / "train" / "last.pt"
    last.write_bytes(last.read_bytes()[:200])
    assert "checkpoint" in _error(capsys, ["fit", "--data", "moons", "--out", str(out), "--resume", *FAST])


@pytest.mark.parametrize("command", ["fit", "sample", "evaluate"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and "examples:" in capsys.readouterr().out
