"""The training loop: determinism, validation, early stopping, checkpoints and exact resume."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gendist.flows import MAF, NSF
from gendist.inference import fit, load_checkpoint


def _data(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return torch.stack((x[:, 0], x[:, 1] + x[:, 0] ** 2), -1)


def _model(seed=0):
    torch.manual_seed(seed)
    return MAF(2, transforms=2, hidden=(16,))


def test_fixed_seed_gives_identical_runs_and_leaves_caller_rng_alone():
    x = _data()
    state = torch.get_rng_state()
    h1 = fit(_model(), x, epochs=3, batch_size=64, progress=False, seed=3)
    h2 = fit(_model(), x, epochs=3, batch_size=64, progress=False, seed=3)
    assert h1.step_loss == h2.step_loss and len(h1.step_loss) == 3 * 5
    h3 = fit(_model(), x, epochs=3, batch_size=64, progress=False, seed=4)
    assert h3.step_loss != h1.step_loss
    torch.set_rng_state(state)


def test_training_lowers_validation_nll_and_restores_best_weights():
    x, v = _data(600), _data(300, seed=1)
    model = _model()
    h = fit(model, x, valid=v, epochs=8, batch_size=100, lr=3e-3, progress=False, schedule="cosine", clip_grad=5.0)
    assert h.epoch_valid[-1] < h.epoch_valid[0]
    with torch.no_grad():
        final = -model().log_prob(v).mean().item()
    assert final == pytest.approx(h.best_valid, abs=1e-5)
    assert h.best_valid == min(h.epoch_valid)


def test_early_stopping():
    x = _data(200)
    model = _model()
    # a learning rate of zero never improves after the first epoch: stop after `patience` more
    h = fit(model, x, valid=_data(100, 1), epochs=20, lr=0.0, patience=2, progress=False)
    assert h.stopped_early and len(h.epoch_valid) == 3


def test_conditional_data_and_dataloader():
    x, c = _data(), torch.randn(300, 3)
    flow = NSF(2, context=3, transforms=1, hidden=(8,))
    h = fit(flow, (x, c), valid=(x[:50], c[:50]), epochs=2, batch_size=100, progress=False)
    assert len(h.step_loss) == 6
    loader = DataLoader(TensorDataset(x, c), batch_size=128, shuffle=True)
    h = fit(flow, loader, epochs=2, progress=False)
    assert len(h.step_loss) == 2 * len(loader)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="`data`"):
        fit(_model(), [1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="different lengths"):
        fit(_model(), (torch.randn(5, 2), torch.randn(4, 3)), progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(_model(), _data(), checkpoint_dir=tmp_path, resume=True, progress=False)
    (tmp_path / "last.pt").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="not a readable gendist checkpoint"):
        load_checkpoint(tmp_path / "last.pt")


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, torch
    from gendist.flows import MAF
    from gendist.inference import fit
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=g)
    torch.manual_seed(0)
    model = MAF(2, transforms=2, hidden=(16,))
    kill_at = int(sys.argv[2])
    def die(step, loss):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    fit(model, x, valid=x[:100], epochs=4, batch_size=64, progress=False, checkpoint_dir=sys.argv[1],
        checkpoint_every=3, resume=len(sys.argv) > 3, callback=die)
    """
)


@pytest.mark.parametrize("kill_at", [8, 11])  # resumes mid-epoch (step 6), and from an epoch end (step 10)
def test_killed_run_resumes_exactly(tmp_path, kill_at):
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    reference = fit(MAF(2, transforms=2, hidden=(16,)), x, valid=x[:100], epochs=4, batch_size=64,
                    progress=False, seed=0)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, str(script), str(out), str(kill_at)], capture_output=True, timeout=120)
    assert killed.returncode != 0  # it really died
    saved = load_checkpoint(out / "last.pt")
    assert saved["history"]["step"] < kill_at
    torch.manual_seed(0)
    model = MAF(2, transforms=2, hidden=(16,))
    resumed = fit(model, x, valid=x[:100], epochs=4, batch_size=64, progress=False, seed=0,
                  checkpoint_dir=out, checkpoint_every=3, resume=True)
    assert resumed.step_loss == reference.step_loss
    assert resumed.epoch_valid == reference.epoch_valid
