"""Tests of gendist.plots: each layout writes a valid PNG, atomically, without touching pyplot's state."""

from __future__ import annotations

import os
import sys

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")

from gendist.plots import plot_density_2d, plot_loss, plot_samples  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path, written) -> None:
    assert written == path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 2000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("shape", [(8, 8), (28, 28)])
def test_plot_samples_images(tmp_path, gen, shape) -> None:
    h, w = shape
    real = torch.rand(100, h * w, generator=gen)
    fake = torch.rand(10, h, w, generator=gen)  # fewer than 64, and (N, H, W)
    path = tmp_path / "images.png"
    _check_png(path, plot_samples(real, fake, path, image_shape=shape))


def test_plot_samples_2d(tmp_path, gen) -> None:
    real = torch.randn(500, 2, generator=gen)
    fake = torch.randn(300, 2, generator=gen) * 2 + 1
    path = tmp_path / "scatter.png"
    _check_png(path, plot_samples(real, fake, str(path)).resolve())


@pytest.mark.parametrize("dim", [3, 8])
def test_plot_samples_tabular(tmp_path, gen, dim) -> None:
    real = torch.randn(200, dim, generator=gen)
    fake = torch.randn(150, dim, generator=gen)
    names = [f"feature {i}" for i in range(dim)]
    path = tmp_path / "pairs.png"
    _check_png(path, plot_samples(real, fake, path, names=names))


def test_plot_loss(tmp_path, gen) -> None:
    steps = (torch.linspace(3, 1, 200) + 0.1 * torch.randn(200, generator=gen)).tolist()
    steps[17] = float("nan")
    valid = [2.5, 2.0, 1.6, 1.3, 1.2]
    path = tmp_path / "loss.png"
    _check_png(path, plot_loss(steps, valid, 40, path))
    _check_png(path, plot_loss(steps, [], 40, path))  # overwrites in place


def test_plot_density_2d(tmp_path, gen) -> None:
    normal = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    calls = []

    def log_prob(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        assert not torch.is_grad_enabled()
        return normal.log_prob(x)

    data = normal.sample((500,))
    path = tmp_path / "density.png"
    _check_png(path, plot_density_2d(log_prob, path, data=data, points=60, chunk=1000))
    assert sum(calls) == 60 * 60 and max(calls) <= 1000
    _check_png(path, plot_density_2d(log_prob, path, bounds=(-3, 3, -2, 2), points=50))


def test_errors_leave_no_file(tmp_path, gen) -> None:
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError):
        plot_samples(torch.randn(10, 3), torch.randn(10, 2), path)
    with pytest.raises(ValueError):
        plot_samples(torch.randn(10, 10), torch.randn(10, 10), path, image_shape=(3, 3))
    with pytest.raises(ValueError):
        plot_loss([1.0], [], 0, path)
    with pytest.raises(ValueError):
        plot_density_2d(lambda x: x.sum(1), path)
    with pytest.raises(ValueError):
        plot_density_2d(lambda x: x, path, bounds=(0, 1, 0, 1), points=10)
    with pytest.raises(RuntimeError, match="boom"):

        def failing(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

        plot_density_2d(failing, path, bounds=(0, 1, 0, 1), points=10)
    assert list(tmp_path.iterdir()) == []


def test_error_while_saving_leaves_no_file(tmp_path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    def broken(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        plot_loss([1.0, 0.5], [0.7], 1, path)
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]
    assert path.read_bytes() == b"old"  # the previous file survives untouched


def test_global_state_unchanged(tmp_path, gen) -> None:
    backend = matplotlib.rcParams._get_backend_or_none()
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    plot_samples(torch.randn(50, 2, generator=gen), torch.randn(50, 2, generator=gen), tmp_path / "a.png")
    plot_loss([1.0, 0.5, 0.4], [0.6], 3, tmp_path / "b.png")
    plot_density_2d(lambda x: -x.pow(2).sum(1), tmp_path / "c.png", bounds=(-1, 1, -1, 1), points=10)
    assert matplotlib.rcParams._get_backend_or_none() == backend
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded
    if pyplot_loaded:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_missing_matplotlib(tmp_path, monkeypatch) -> None:
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import raise ImportError
    with pytest.raises(ImportError, match=r"gendist\[plot\]"):
        plot_loss([1.0], [], 1, tmp_path / "loss.png")
    assert list(tmp_path.iterdir()) == []


def test_file_mode_follows_umask(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        path = plot_loss([1.0, 0.5], [0.7], 1, tmp_path / "loss.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
