r"""MCMC speed on one energy, side by side with TorchEBM in one process: steps per second, as ratios.

The energy is a small MLP (``--dim`` inputs, two hidden layers of ``--hidden`` SiLU units) plus a quadratic
confinement, the same module for both libraries; ``--chains`` chains take ``--steps`` steps after a warm-up of
the same length. Timed by the median of ``--repeats`` runs:

- unadjusted Langevin: gendist ``sample_ula`` vs TorchEBM ``LangevinDynamics`` (step ε, noise :math:`\sqrt{2ε}`);
- MALA: gendist ``sample_mala`` (TorchEBM has no Metropolis-adjusted Langevin: compared with its Langevin, so the
  ratio prices the accept/reject step);
- HMC: gendist ``sample_hmc`` vs TorchEBM ``HamiltonianMonteCarlo`` (same step size and leapfrog steps).

Run (numbers in benchmarks/README_energy.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ebm_speed.py --threads 1
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/ebm_speed.py --device cuda --chains 10000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn

from gendist.samplers import MCMC_SAMPLERS


class Net(nn.Module):
    r""":math:`E(x) = \mathrm{MLP}(x) + \lVert x \rVert^2 / 2`: one energy module for both libraries."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                               nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x).squeeze(-1) + 0.5 * x.pow(2).sum(-1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--chains", type=int, default=1000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--step-size", type=float, default=1e-2)
    p.add_argument("--leapfrog", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = Net(args.dim, args.hidden).to(device)
    for q in net.parameters():
        q.requires_grad_(False)
    x0 = torch.randn(args.chains, args.dim, device=device)
    target = lambda x: -net(x)  # noqa: E731
    eps, n = args.step_size, args.steps
    rows: dict[str, dict[str, float]] = {}

    from torchebm.core import BaseModel
    from torchebm.samplers import HamiltonianMonteCarlo, LangevinDynamics

    class Theirs(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    theirs = Theirs().to(device)
    langevin = LangevinDynamics(theirs, step_size=eps, noise_scale=1.0, device=device)
    ours_ula = _time(lambda: MCMC_SAMPLERS["ula"](target, x0, n, step_size=eps), args.repeats, device)
    ours_mala = _time(lambda: MCMC_SAMPLERS["mala"](target, x0, n, step_size=eps), args.repeats, device)
    theirs_ula = _time(lambda: langevin.sample(x=x0.clone(), n_steps=n), args.repeats, device)
    rows["langevin"] = {"gendist_steps_per_s": n / ours_ula, "torchebm_steps_per_s": n / theirs_ula,
                        "speedup": theirs_ula / ours_ula}
    rows["mala_vs_their_langevin"] = {"gendist_steps_per_s": n / ours_mala, "torchebm_steps_per_s": n / theirs_ula,
                                      "speedup": theirs_ula / ours_mala}
    if "hmc" in MCMC_SAMPLERS:
        hmc = HamiltonianMonteCarlo(theirs, step_size=eps, n_leapfrog_steps=args.leapfrog, device=device)
        ours_hmc = _time(lambda: MCMC_SAMPLERS["hmc"](target, x0, n, step_size=eps, leapfrog=args.leapfrog),
                         args.repeats, device)
        theirs_hmc = _time(lambda: hmc.sample(x=x0.clone(), n_steps=n), args.repeats, device)
        rows["hmc"] = {"gendist_steps_per_s": n / ours_hmc, "torchebm_steps_per_s": n / theirs_hmc,
                       "speedup": theirs_hmc / ours_hmc}
    result = {"settings": vars(args), "device": str(device), "results": rows}
    for name, r in rows.items():
        print(f"{name:24s} gendist {r['gendist_steps_per_s']:8.1f} steps/s   torchebm "
              f"{r['torchebm_steps_per_s']:8.1f} steps/s   gendist/torchebm speed {r['speedup']:.2f}x")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
