"""Smoke tests of the GAN benchmarks (benchmarks/gan_modes.py, benchmarks/gan_overhead.py) with tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_gan_modes_tiny(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    gan_modes = _load("gan_modes")
    argv = ["--data", "ring", "--seeds", "0", "--steps", "12", "--train", "256", "--batch", "64", "--samples", "300",
            "--hidden", "16", "--latent", "4", "--checkpoint-every", "5", "--out", str(tmp_path), "--threads",
            str(threads)]
    summary = gan_modes.main(argv)
    rows = {r["row"]: r for r in summary["rows"]}
    assert set(rows) == {"gan", "data", "collapsed:constant", "collapsed:one_mode"}
    assert rows["gan"]["steps"] == 12 and rows["gan"]["of"] == 8
    assert rows["data"]["passes"] and rows["data"]["modes"] == 8
    for control in ("collapsed:constant", "collapsed:one_mode"):  # the negative controls fail the metric
        assert not rows[control]["passes"]
    assert rows["collapsed:constant"]["modes"] == 1
    assert math.isclose(rows["collapsed:constant"]["kl"], math.log(8), rel_tol=1e-6)
    assert summary["controls_fail"]
    assert (tmp_path / "ring" / "seed0" / "ckpt" / "last.pt").is_file()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["rows"][0]["modes"] == rows["gan"]["modes"]
    again = gan_modes.main([*argv, "--resume", "--controls", ""])  # runs done are read back, not retrained
    assert again["rows"][0] == saved["rows"][0]


def test_gan_overhead_tiny(tmp_path: Path) -> None:
    gan_overhead = _load("gan_overhead")
    out = tmp_path / "overhead.json"
    result = gan_overhead.main(["--data", "random", "--epochs", "1", "--batch", "400", "--channels", "4", "--latent",
                                "4", "--repeats", "1", "--out", str(out), "--threads", str(torch.get_num_threads())])
    assert result["steps"] == 3
    # the hand loop, the recipe's losses and fit compute the same thing: the same losses to the last bit
    assert result["max_loss_difference_from_hand"] == {"recipe": 0.0, "fit": 0.0}
    assert result["ratio_fit_hand"] > 0 and len(result["seconds"]["fit"]) == 1
    assert json.loads(out.read_text())["steps"] == 3
