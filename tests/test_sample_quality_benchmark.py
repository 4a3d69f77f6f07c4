"""Smoke test of benchmarks/sample_quality.py: every row of the table, with tiny models and few samples."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--samples", "40", "--draws", "2", "--c2st-steps", "10", "--feature-epochs", "1", "--gan-epochs", "1",
        "--gan-channels", "4", "--gan-latent", "4", "--nsf-epochs", "1", "--nsf-transforms", "1", "--nsf-hidden", "8",
        "--vae-epochs", "1", "--vae-hidden", "8", "--diffusion-epochs", "1", "--diffusion-hidden", "8",
        "--checkpoint-every", "5"]


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_sample_quality_tiny(tmp_path: Path) -> None:
    sample_quality = _load("sample_quality")
    threads = torch.get_num_threads()
    try:
        results = sample_quality.main([*TINY, "--out", str(tmp_path), "--threads", str(threads)])
    finally:
        torch.set_num_threads(threads)
    rows = results["rows"]
    picked = results["selection"]["picked"]
    variants = [*sample_quality.GAN_VARIANTS, *(f"{v}_levels" for v in sample_quality.GAN_VARIANTS)]
    assert picked in variants and set(results["selection"]) == {*variants, "picked"}
    assert set(rows) == {"valid split", "train split", "gaussian", "nsf", "vae", "diffusion", f"gan ({picked})",
                         *(f"gan ({v}, not selected)" for v in variants if v != picked)}
    for name, row in rows.items():
        for k in sample_quality.METRICS:
            assert math.isfinite(row[k]), (name, k)
        assert 0 <= row["c2st"] <= 1 and 0 <= row["precision"] <= 1 and 0 <= row["coverage"] <= 1
    assert rows["train split"]["nn_ratio"] == 0  # copies of training images sit on them
    assert rows["valid split"]["draws"] == 1 and rows["nsf"]["draws"] == 2
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"].keys() == rows.keys() and "| gaussian |" in saved["table"]
    assert (tmp_path / "models" / "nsf.pt").is_file() and (tmp_path / "ckpt" / "vae" / "last.pt").is_file()
    assert (tmp_path / "gaussian.png").is_file()

    # --resume loads the trained models instead of training them again: the same samples, the same rows
    again = sample_quality.main([*TINY, "--out", str(tmp_path), "--threads", str(threads), "--resume",
                                 "--models", "vae"])
    for name in ("vae", "gaussian", "valid split"):
        assert again["rows"][name]["frechet"] == rows[name]["frechet"]
    assert again["training"]["vae"]["steps"] == rows["vae"]["steps"] and "nsf" in again["training"]
    torch.set_num_threads(threads)


def test_gan_levels_mapping() -> None:
    sample_quality = _load("sample_quality")
    args = sample_quality.parse(["--gan-variants", "ns_r1", "--gan-scale", "levels,dequantized"])
    assert args.gan_variants == ["ns_r1_levels", "ns_r1"]
    assert sample_quality.gan_variant("hinge_sn_levels") == ("hinge_sn", "levels")

    class Generator(torch.nn.Module):  # stands for a GAN: model().sample((n,)) -> G(z) in [0, 1]
        def forward(self) -> "Generator":
            return self

        def sample(self, shape: tuple[int]) -> torch.Tensor:
            return torch.tensor([[0.0, 0.03, 0.04, 0.5, 0.97, 1.0]]).expand(*shape, 6)

    levels = sample_quality.gan_sampler(Generator(), "levels")(2, 0)
    assert levels[0].tolist() == [0, 0, 1, 8, 16, 16]  # round(16 G): the background needs only G < 1/32
    floored = sample_quality.gan_sampler(Generator(), "dequantized")(2, 0)
    assert floored[0].tolist() == [0, 0, 0, 8, 16, 16]  # floor(17 G) clipped to 0..16
    seen = []
    sample_quality.Levels(lambda m, b: seen.append(b[0]) or b[0].sum())(None, (torch.tensor([0.0, 8.0, 16.0]),))
    assert seen[0].tolist() == [0.0, 0.5, 1.0]  # x / 16 exactly, no noise
