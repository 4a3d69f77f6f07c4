"""Smoke test of benchmarks/posteriors.py: every posterior and guide on tiny settings, resuming, the references."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pyro
import pyro.distributions as dist
import torch

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--steps", "3", "--seeds", "1", "--draws", "40", "--elbo-particles", "16", "--tail-draws", "200",
        "--c2st-steps", "3", "--speed-rounds", "2", "--speed-steps", "2", "--speed-warmup", "1",
        "--nuts-chains", "2", "--nuts-samples", "80", "--nuts-warmup", "20", "--no-jit"]


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_posteriors_tiny(tmp_path: Path) -> None:
    bench = _load("posteriors")
    threads = torch.get_num_threads()
    out, refs = tmp_path / "out", tmp_path / "refs"
    argv = [*TINY, "--out", str(out), "--reference-dir", str(refs), "--threads", str(threads)]
    try:
        results = bench.main(argv)
        guides = bench.parse(argv).guides
        assert {"normal", "mvn", "iaf1", "iaf3", "spline"} <= set(guides)
        rows = results["rows"]
        for p in bench.POSTERIORS:
            assert 0 <= rows[f"{p}/reference"]["floor"][0] <= 1
            for g in guides:
                row = rows[f"{p}/{g}"]
                for budget in bench.BUDGETS:
                    assert row[budget]["failed"] == 0, (p, g, budget)
                    assert 0 <= row[budget]["c2st"][0] <= 1 and math.isfinite(row[budget]["elbo"][0])
                assert row["steps"]["steps"] == [3]
        cells = {c.name for c in (out / "funnel" / "normal").iterdir()}
        assert "seed0_steps3.json" in cells
        funnel = json.loads((out / "funnel" / "iaf3" / "seed0_steps3.json").read_text())
        assert 0 <= funnel["p_neck"] <= 1 and abs(funnel["p_neck_exact"] - 0.158655) < 1e-5
        assert funnel["kl"] == -funnel["elbo"]
        # the wall budget: iaf3's time for --steps steps at the guide's interleaved speed
        timing = json.loads((out / "funnel" / "speed.json").read_text())
        speed = timing["guides"]
        assert speed["iaf3"]["ratio"] == 1 and set(speed) == set(guides)
        wall = rows["funnel/spline"]["wall"]["steps"][0]
        assert wall == max(1, round(3 / speed["spline"]["ratio"]))
        assert rows["funnel/spline"]["speed"] == timing["table"]["guides"]["spline"]  # the table's own session
        assert (out / "funnel" / "floor_seed0.json").is_file()
        assert (refs / "posteriors_logistic.pt").is_file() and "| logistic | mvn |" in results["table"]
        assert (out / "table.md").read_text().strip() == results["table"]

        # resuming: saved cells are loaded, not run again (same numbers); --force runs them again
        before = (out / "banana" / "mvn" / "seed0_steps3.json").stat().st_mtime_ns
        again = bench.main([*argv, "--posteriors", "banana", "--guides", "mvn", "--budgets", "steps"])
        assert again["rows"]["banana/mvn"]["steps"]["c2st"] == rows["banana/mvn"]["steps"]["c2st"]
        assert (out / "banana" / "mvn" / "seed0_steps3.json").stat().st_mtime_ns == before
        bench.main([*argv, "--posteriors", "banana", "--guides", "mvn", "--budgets", "steps", "--force"])
        assert (out / "banana" / "mvn" / "seed0_steps3.json").stat().st_mtime_ns != before
    finally:
        torch.set_num_threads(threads)
        pyro.clear_param_store()


def test_log_weights_per_draw() -> None:
    # a guide that draws the prior: the log-weight of each draw is the data's log-likelihood at it
    bench = _load("posteriors")
    post = bench.schools(True, torch.device("cpu"), torch.float64)
    zero = torch.zeros((), dtype=torch.float64)

    def prior_guide() -> None:
        mu = pyro.sample("mu", dist.Normal(zero, 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(zero + 5.0))
        with pyro.plate("schools", 8):
            pyro.sample("theta", dist.Normal(mu, tau))

    pyro.set_rng_seed(0)
    values, log_w = bench.guide_draws(post, prior_guide, 50)
    assert values.shape == (50, 10)
    y, sigma = torch.tensor(bench.SCHOOLS_Y).double(), torch.tensor(bench.SCHOOLS_SIGMA).double()
    expected = dist.Normal(values[:, 2:], sigma).log_prob(y).sum(-1)
    assert torch.allclose(log_w, expected)


def test_exact_references() -> None:
    bench = _load("posteriors")
    g = torch.Generator().manual_seed(0)
    mu, tau, theta = bench.schools_exact(40000, g)
    # the published posterior of eight schools with these priors: E[mu] 4.4, E[tau] 3.6, E[theta_1] 6.2
    assert abs(mu.mean() - 4.4) < 0.1 and abs(tau.mean() - 3.6) < 0.15 and abs(theta[:, 0].mean() - 6.2) < 0.2
    assert bool((tau > 0).all())
    ref = bench.schools(False, torch.device("cpu"), torch.float32).reference(20000, g)
    assert abs(ref[:, 2:].std(0).mean() - 1) < 0.1  # the non-centered theta: close to N(0, 1) a posteriori
    funnel = bench.funnel(torch.device("cpu"), torch.float32).reference(100000, g)
    assert abs(float((funnel[:, 0] < -3).double().mean()) - 0.1587) < 0.005
    mix = bench.mixture(torch.device("cpu"), torch.float32).reference(20000, g)
    assert abs(float((mix[:, 0] > 0).double().mean()) - 0.5) < 0.02
