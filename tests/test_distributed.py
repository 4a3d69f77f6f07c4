"""Several processes (torchrun, gloo on the CPU) compute what one process computes.

One launch of 2 processes trains a MAF with a global batch of 64 (the last batch of an
epoch is 9 examples: 5 on rank 0, 4 on rank 1; the validation set of 51 splits 26 / 25);
its loss curve, validation losses and test NLL must equal the 1-process run's within
1e-4 relative. A second launch loses rank 1 (SIGKILL) mid-run: torchrun stops rank 0,
the last checkpoint is whole; a third resumes it under torchrun and must finish with
exactly the uninterrupted 2-process run's curve.
"""

import json
import os
import runpy
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from gendist.inference import distributed, fit, load_checkpoint

SCRIPT = textwrap.dedent(
    '''
    import json, os, signal, sys
    import torch
    from gendist.flows import MAF
    from gendist.inference import Objective, distributed, fit, nll_objective


    def problem():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(302, 2, generator=g)
        x = torch.stack((x[:, 0], x[:, 1] + x[:, 0] ** 2), -1)
        return x[:201], x[201:252], x[252:]  # 201 = 3 * 64 + 9: the last batch splits 5 / 4


    def train(cfg):
        train, valid, test = problem()
        out = {}
        torch.manual_seed(0)
        model = MAF(2, transforms=2, hidden=(16,))
        if cfg.get("bad_batch"):
            try:
                fit(model, train, batch_size=33, epochs=1, progress=False)
            except ValueError as e:
                out["bad_batch"] = str(e)

        def die(step, loss):
            if distributed.rank() == cfg.get("die_rank") and step == cfg.get("kill_at"):
                os.kill(os.getpid(), signal.SIGKILL)

        h = fit(model, train, valid=valid, epochs=3, batch_size=64, lr=3e-3, schedule="cosine", clip_grad=5.0,
                progress=False, checkpoint_dir=cfg.get("dir"), checkpoint_every=3, resume=cfg.get("resume", False),
                callback=die)
        with torch.no_grad():
            out["test_nll"] = float(-model().log_prob(test).mean())
        out.update(step_loss=h.step_loss, epoch_valid=h.epoch_valid)
        if cfg.get("two"):  # two objectives, one on part of the parameters (DDP looks for unused ones)
            torch.manual_seed(1)
            model = MAF(2, transforms=2, hidden=(16,))
            two = [Objective("first", nll_objective, parameters=lambda m: m.transforms[0].parameters(), lr=1e-2),
                   Objective("all", nll_objective, every=2)]
            h = fit(model, train, valid=valid, objective=two, epochs=2, batch_size=64, progress=False)
            out["two"] = {"losses": h.losses, "valid": h.epoch_valid}
        out["world"] = distributed.world_size()
        return out


    if __name__ == "__main__":
        cfg = json.loads(sys.argv[1])
        result = train(cfg)
        if distributed.is_main():
            with open(cfg["result"], "w") as f:
                json.dump(result, f)
    '''
)


def _torchrun(tmp, cfg, timeout=90):
    script = tmp / "script.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", GENDIST_DIST_TIMEOUT="60")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(script), json.dumps(cfg)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp)


def _close(a, b, rel=1e-4):
    assert len(a) == len(b)
    assert all(abs(x - y) <= rel * abs(y) for x, y in zip(a, b)), (a, b)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    cfg = {"bad_batch": True, "two": True, "dir": str(tmp / "ckpt"), "result": str(tmp / "result.json")}
    done = _torchrun(tmp, cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, json.loads((tmp / "result.json").read_text())


def test_two_processes_compute_the_one_process_run(two_process_run):
    tmp, two = two_process_run
    one = runpy.run_path(str(tmp / "script.py"))["train"]({"two": True})
    assert one["world"] == 1 and two["world"] == 2
    assert len(two["step_loss"]) == 3 * 4
    _close(two["step_loss"], one["step_loss"])
    _close(two["epoch_valid"], one["epoch_valid"])
    assert two["test_nll"] == pytest.approx(one["test_nll"], rel=1e-5)
    for name in ("first", "all"):  # several objectives: the same too
        _close(two["two"]["losses"][name], one["two"]["losses"][name])
    _close(two["two"]["valid"], one["two"]["valid"])


def test_global_batch_not_divisible_by_the_world_size(two_process_run):
    message = two_process_run[1]["bad_batch"]
    assert "batch_size=33" in message and "world size 2" in message


def test_resuming_on_another_world_size_is_refused(two_process_run):
    tmp = two_process_run[0]
    assert load_checkpoint(tmp / "ckpt" / "last.pt")["world_size"] == 2
    from gendist.flows import MAF

    with pytest.raises(ValueError, match="2 process"):
        fit(MAF(2, transforms=2, hidden=(16,)), torch.randn(201, 2), batch_size=64, epochs=3,
            checkpoint_dir=tmp / "ckpt", resume=True, progress=False)


def test_a_dying_rank_stops_the_run_and_resume_under_torchrun_continues_exactly(two_process_run, tmp_path):
    tmp, reference = two_process_run
    (tmp_path / "script.py").write_text(SCRIPT)
    ckpt = tmp_path / "ckpt"
    start = time.perf_counter()
    died = _torchrun(tmp_path, {"dir": str(ckpt), "result": str(tmp_path / "r.json"), "die_rank": 1,
                                "kill_at": 8})
    assert died.returncode != 0 and time.perf_counter() - start < 60
    assert "rank      : 1" in died.stderr and "SIGKILL" in died.stderr  # torchrun's report names the dead rank
    assert not (tmp_path / "r.json").exists()
    # rank 0 was waiting for rank 1 to gather the checkpoint of step 8: the last one is step 6's, whole
    assert sorted(p.name for p in ckpt.iterdir()) == ["last.pt"]
    saved = load_checkpoint(ckpt / "last.pt")
    assert saved["history"]["step"] == 6 and saved["batch"] == 2 and len(saved["ranks"]) == 2
    resumed = _torchrun(tmp_path, {"dir": str(ckpt), "result": str(tmp_path / "r.json"), "resume": True})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["step_loss"] == reference["step_loss"] and result["epoch_valid"] == reference["epoch_valid"]
    assert result["test_nll"] == reference["test_nll"]


def test_one_process_without_torchrun(monkeypatch):
    assert not distributed.init_from_env()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_sum([1.0, 2]) == [1.0, 2.0] and distributed.gather_object("a") == ["a"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        distributed.init_from_env()
