"""The training loop: determinism, validation, early stopping, checkpoints and exact resume."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gendist.flows import MAF, NSF
from gendist.inference import Objective, Stage, fit, load_checkpoint, nll_objective


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


# ---------------------------------------------------------------- several objectives, stages, state


def test_objectives_have_their_own_parameters_optimizers_and_turns():
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 1), "b": torch.nn.Linear(2, 1)})
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def square(name):
        return lambda m, batch: m[name](batch[0]).pow(2).mean()

    made = []

    def sgd(params):
        made.append(torch.optim.SGD(params, lr=1.0))
        return made[-1]

    objectives = [
        Objective("a", square("a"), parameters=lambda m: m["a"].parameters(), lr=0.0),  # never moves
        Objective("b", square("b"), parameters=lambda m: m["b"].parameters(), optimizer=sgd, lr=0.05, every=2,
                  steps=3),
    ]
    h = fit(net, torch.randn(80, 2), objective=objectives, epochs=2, batch_size=10, progress=False)
    assert len(h.step_loss) == 16 and len(h.losses["a"]) == 16 and len(h.losses["b"]) == 8 * 3
    assert made[0].param_groups[0]["lr"] == 0.05  # the objective's lr is set on its optimizer
    after = net.state_dict()
    assert torch.equal(after["a.weight"], before["a.weight"]) and not torch.equal(after["b.weight"], before["b.weight"])
    # step_loss: the sum of the objectives that stepped, the last of each one's steps
    assert h.step_loss[1] == pytest.approx(h.losses["a"][1] + h.losses["b"][2])
    assert h.step_loss[0] == h.losses["a"][0]


def test_stages_run_in_order_with_their_epochs_and_setup():
    x, v = _data(200), _data(100, 1)
    seen = []
    model = _model()
    stages = [
        Stage("first", Objective("nll", nll_objective, parameters=lambda m: m.transforms[0].parameters()),
              epochs=2, setup=lambda m: seen.append("first")),
        Stage("second", nll_objective, setup=lambda m: seen.append("second")),
    ]
    w1 = [p.clone() for p in model.transforms[1].parameters()]
    h = fit(model, x, valid=v, stages=stages, epochs=3, batch_size=100, progress=False)
    assert seen == ["first", "second"] and h.epoch == 5 and h.stage == 1 and len(h.epoch_valid) == 5
    assert len(h.losses["first/nll"]) == 4 and len(h.losses["second/loss"]) == 6
    assert h.best_epoch >= 2  # the best of the last stage
    assert not all(torch.equal(a, b) for a, b in zip(w1, model.transforms[1].parameters()))


def test_vqvae_autoencoder_then_prior_as_stages():
    from gendist.latent import VQVAE

    torch.manual_seed(0)
    vq = VQVAE((1, 4, 4), "bernoulli", codes=4, dim=2, channels=8, downsample=1, blocks=1, prior_channels=4,
               prior_layers=1)
    x = (torch.rand(64, 1, 4, 4) < 0.5).float()
    snapshots = {}

    def enter(name):
        def setup(m):
            snapshots[name] = {k: v.clone() for k, v in m.state_dict().items()}
            m.stage = name
        return setup

    stages = [
        Stage("autoencoder", nll_objective, epochs=2, setup=enter("autoencoder")),
        Stage("prior", Objective("prior", nll_objective, parameters=lambda m: m.prior.parameters(), lr=1e-2),
              epochs=2, setup=enter("prior")),
    ]
    h = fit(vq, x, stages=stages, batch_size=16, progress=False)
    assert list(h.losses) == ["autoencoder/loss", "prior/prior"] and vq.stage == "prior"
    before, after = snapshots["prior"], vq.state_dict()
    prior = [k for k in after if k.startswith("prior.")]
    others = [k for k in after if not k.startswith("prior.")]
    assert all(torch.equal(before[k], after[k]) for k in others)  # the prior stage moves the prior alone
    assert not all(torch.equal(before[k], after[k]) for k in prior)
    assert not all(torch.equal(snapshots["autoencoder"][k], before[k]) for k in others)


def test_a_model_offers_its_own_objectives_or_stages():
    class Two(MAF):
        def objectives(self):
            return [Objective("one", nll_objective), Objective("two", nll_objective, every=3)]

    class Staged(MAF):
        def stages(self):
            return [Stage("s", nll_objective, epochs=1), Stage("t", nll_objective, epochs=2)]

    h = fit(Two(2, transforms=1, hidden=(4,)), _data(60), epochs=1, batch_size=10, progress=False)
    assert sorted(h.losses) == ["one", "two"] and len(h.losses["two"]) == 2
    h = fit(Staged(2, transforms=1, hidden=(4,)), _data(60), epochs=5, batch_size=30, progress=False)
    assert h.epoch == 3 and len(h.losses["s/loss"]) == 2


def test_bad_objectives_and_state(tmp_path):
    x = _data(50)
    with pytest.raises(ValueError, match="not both"):
        fit(_model(), x, objective=nll_objective, stages=[Stage("s", nll_objective)], progress=False)
    with pytest.raises(ValueError, match="unique"):
        fit(_model(), x, objective=[Objective("a", nll_objective), Objective("a", nll_objective)], progress=False)
    with pytest.raises(ValueError, match="every"):
        Objective("a", nll_objective, every=0)
    with pytest.raises(TypeError, match="objective"):
        fit(_model(), x, objective=3, progress=False)
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not the model's"):
        fit(_model(), x, objective=Objective("a", nll_objective, parameters=lambda m: other.parameters()),
            progress=False)
    with pytest.raises(TypeError, match="state_dict"):
        fit(_model(), x, state={"buffer": [1, 2]}, progress=False)
    fit(_model(), x, epochs=1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="objectives"):
        fit(_model(), x, objective=[Objective("a", nll_objective)], checkpoint_dir=tmp_path, resume=True,
            progress=False)


MULTI = textwrap.dedent(
    '''
    import os, signal, sys, torch
    from gendist.flows import MAF
    from gendist.inference import Objective, Stage, fit


    class Replay:
        """A replay buffer of the flow's samples: state outside the model, checkpointed through `state=`."""

        def __init__(self):
            self.x, self.pushes = torch.zeros(16, 2), 0

        def push(self, x):
            i = torch.randint(0, 16, (len(x),))
            self.x[i] = x.detach()
            self.pushes += 1

        def state_dict(self):
            return {"x": self.x.clone(), "pushes": self.pushes}

        def load_state_dict(self, state):
            self.x, self.pushes = state["x"].clone(), state["pushes"]


    class Chains:
        """A loss with persistent chains of its own (a stateful loss object: checkpointed by itself)."""

        def __init__(self):
            self.z = torch.zeros(8, 2)

        def __call__(self, m, batch):
            self.z = 0.5 * self.z + torch.randn_like(self.z)
            fake = m["flow"]().rsample((8,)).detach()
            score = m["critic"](torch.cat((batch[0], fake, self.z)))
            n = len(batch[0])
            return score[n:].mean() - score[:n].mean() + score.pow(2).mean()

        def state_dict(self):
            return {"z": self.z.clone()}

        def load_state_dict(self, state):
            self.z = state["z"].clone()


    def build():
        torch.manual_seed(0)
        model = torch.nn.ModuleDict({"flow": MAF(2, transforms=1, hidden=(8,)), "critic": torch.nn.Linear(2, 1)})
        buffer, chains = Replay(), Chains()

        def noisy_nll(m, batch):  # random: noise from the run's RNG, and a push into the buffer
            x = batch[0] + 0.1 * torch.randn_like(batch[0])
            if m.training:
                buffer.push(m["flow"]().sample((4,)))
            return -m["flow"]().log_prob(x).mean()

        nll = Objective("nll", noisy_nll, parameters=lambda m: m["flow"].parameters())
        critic = Objective("critic", chains, parameters=lambda m: m["critic"].parameters(),
                           optimizer=lambda p: torch.optim.SGD(p, lr=0.1), every=2, steps=2, validate=False)
        stages = [Stage("warm", nll, epochs=2), Stage("joint", [critic, nll], epochs=2)]
        return model, stages, buffer, chains


    def run(out, kill_at=None, resume=False):
        x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
        model, stages, buffer, chains = build()

        def die(step, loss):
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        h = fit(model, x, valid=x[:30], stages=stages, batch_size=32, lr=1e-2, schedule="cosine", progress=False,
                checkpoint_dir=out, checkpoint_every=3, resume=resume, callback=die, state={"buffer": buffer})
        return h, model, buffer, chains


    if __name__ == "__main__":
        run(sys.argv[1], kill_at=int(sys.argv[2]))
    '''
)


@pytest.mark.parametrize("kill_at", [5, 14])  # mid-epoch in the first stage; in the second, two objectives
def test_killed_multi_objective_run_resumes_exactly(tmp_path, kill_at):
    import runpy

    script = tmp_path / "multi.py"
    script.write_text(MULTI)
    run = runpy.run_path(str(script))["run"]
    reference, ref_model, ref_buffer, ref_chains = run(None)
    assert reference.epoch == 4 and len(reference.losses["joint/critic"]) == 4 * 2
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, str(script), str(out), str(kill_at)], capture_output=True, timeout=120)
    assert killed.returncode != 0
    saved = load_checkpoint(out / "last.pt")
    assert saved["history"]["step"] < kill_at and sorted(saved["optimizers"]) == ["joint/critic", "joint/nll",
                                                                                  "warm/nll"]
    resumed, model, buffer, chains = run(out, resume=True)
    assert resumed.step_loss == reference.step_loss and resumed.losses == reference.losses
    assert resumed.epoch_valid == reference.epoch_valid and resumed.valid == reference.valid
    assert torch.equal(buffer.x, ref_buffer.x) and buffer.pushes == ref_buffer.pushes
    assert torch.equal(chains.z, ref_chains.z)
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)
