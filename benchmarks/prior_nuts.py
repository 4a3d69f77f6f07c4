r"""A gendist flow as a prior under Pyro's NUTS, against an exact Gaussian prior of the same dimension.

The model: :math:`z \sim p(z)` in :math:`D` dimensions, :math:`y_i \sim N(a_i^\top z, \sigma^2)` for ``--obs``
observations. The prior is either the known Gaussian :math:`N(0, \Sigma)` (``--target gaussian``, a random
correlated :math:`\Sigma`) or a banana (``--target banana``: :math:`z_2 = z_1^2 - 1 + \epsilon/2`, the others
standard normal), and the flow (``--flows maf`` or ``nsf``, the recipe's default sizes unless
``--transforms``/``--hidden`` say otherwise) is fitted to its samples by ``gendist.inference.fit``. The
Gaussian comparison prior is the target itself (gaussian) or its moment match (banana).

What is timed, for the same model with each prior, in CPU seconds of this process (steady while other
processes share the cores; wall seconds are kept too):

- ``per_eval``: one potential-and-gradient evaluation of Pyro's own ``potential_fn`` (from
  ``pyro.infer.mcmc.util.initialize_model``, as NUTS calls it), the median of ``--repeats`` interleaved
  rounds of ``--evals`` calls; ``ratio_to_gaussian`` divides by the Gaussian prior's;
- ``nuts`` (unless ``--no-nuts``): ``--nuts-repeats`` interleaved ``MCMC(NUTS(model))`` runs (median): seconds,
  per NUTS iteration and per model execution (one per gradient evaluation, counted), divergences, and the
  posterior mean's error in posterior standard deviations against the exact Gaussian posterior (gaussian
  target; the flow prior only approximates that Gaussian);
- ``--breakdown``: where a MAF prior's time goes, one log-density-and-gradient at one point, from the old
  pattern (flow rebuilt at each call, trainable parameters) to the fused pass, over widths and dtypes.

Priors compared: ``gaussian``; ``before``, the pattern the docs showed before :class:`gendist.bayes.Prior`
(``pyro.module("prior", flow)`` and ``pyro.sample("z", flow())`` at every model call); ``flow_call``,
``pyro.sample("z", flow())`` without ``pyro.module``; ``prior_unfused``, ``Prior(flow, fused=False)``
(built once, frozen, the flow's own ``log_prob``); ``prior``, ``Prior(flow)`` (the hand-differentiated pass);
``prior_compiled``, ``Prior(flow, compile=True)`` (``torch.compile``; its compilation is in ``setup_seconds``).

Results are written to ``--out`` (one entry per dimension, flow and target; entries present are skipped unless
``--force``); fitted flows are cached in ``--cache``. Run (numbers in benchmarks/README_prior.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/prior_nuts.py --dims 2 10 --flows maf
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/prior_nuts.py --dims 2 10 --flows nsf \
        --nuts-priors gaussian before prior prior_compiled --nuts-repeats 1
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/prior_nuts.py --breakdown --evals 100 --repeats 5
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/prior_nuts.py --device cuda --out runs/prior_nuts_cuda.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.mcmc.util import initialize_model
from pyro.ops.integrator import potential_grad

from gendist.bayes.prior import Prior
from gendist.flows import MAF, NSF
from gendist.inference import fit

PRIORS = ("gaussian", "before", "flow_call", "prior_unfused", "prior", "prior_compiled")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def target_samples(target: str, D: int, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` draws of the target prior and its covariance :math:`\Sigma` (exact for the Gaussian)."""
    if target == "gaussian":
        L = torch.randn(D, D, generator=g) * (0.5 / math.sqrt(D)) + torch.eye(D)
        cov = L @ L.T
        x = torch.randn(n, D, generator=g) @ L.T
        return x, cov
    if D < 2:
        raise ValueError("--target banana needs D >= 2")
    x = torch.randn(n, D, generator=g)
    x[:, 1] = x[:, 0] ** 2 - 1 + 0.5 * x[:, 1]
    return x, torch.cov(x.T)


def make_flow(kind: str, D: int, transforms: int | None, hidden: tuple[int, ...] | None) -> torch.nn.Module:
    kwargs: dict = {}
    if transforms is not None:
        kwargs["transforms"] = transforms
    if hidden is not None:
        kwargs["hidden"] = hidden
    return (MAF if kind == "maf" else NSF)(D, **kwargs)


def fitted_flow(args: argparse.Namespace, kind: str, D: int, x: torch.Tensor) -> tuple[torch.nn.Module, dict]:
    flow = make_flow(kind, D, args.transforms, tuple(args.hidden) if args.hidden else None)
    tag = f"{args.target}_{kind}_D{D}_t{args.transforms}_h{'x'.join(map(str, args.hidden or []))}_s{args.seed}"
    path = Path(args.cache) / f"{tag}.pt"
    info: dict = {"cache": str(path)}
    if path.exists():
        flow.load_state_dict(torch.load(path, map_location="cpu"))
        info["fit_seconds"] = None
    else:
        n = len(x)
        start = time.perf_counter()
        history = fit(flow, x[: n * 9 // 10], valid=x[n * 9 // 10 :], epochs=args.fit_epochs, batch_size=256,
                      lr=1e-3, schedule="cosine", progress=False, seed=args.seed)
        info["fit_seconds"] = time.perf_counter() - start
        info["valid_nll"] = history.best_valid
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(flow.state_dict(), path)
    return flow, info


def models(flow: torch.nn.Module, gauss: dist.Distribution, A: torch.Tensor, sigma: float, names: list[str]
           ) -> dict[str, Callable]:
    r"""The model with each prior of ``names``."""
    def likelihood(z: torch.Tensor, y: torch.Tensor) -> None:
        with pyro.plate("obs", len(y)):
            pyro.sample("y", dist.Normal(z @ A.T, sigma), obs=y)

    def with_prior(prior: dist.Distribution) -> Callable:
        def model(y: torch.Tensor) -> None:
            likelihood(pyro.sample("z", prior), y)
        return model

    def before(y: torch.Tensor) -> None:
        pyro.module("prior", flow)
        likelihood(pyro.sample("z", flow()), y)

    def flow_call(y: torch.Tensor) -> None:
        likelihood(pyro.sample("z", flow()), y)

    makers: dict[str, Callable[[], Callable]] = {
        "gaussian": lambda: with_prior(gauss),
        "before": lambda: before,
        "flow_call": lambda: flow_call,
        "prior_unfused": lambda: with_prior(Prior(flow, fused=False)),
        "prior": lambda: with_prior(Prior(flow)),
        "prior_compiled": lambda: with_prior(Prior(flow, compile=True)),  # compiles at its first use
    }
    return {name: makers[name]() for name in PRIORS if name in names}


def time_evals(fns: dict[str, Callable], y: torch.Tensor, evals: int, repeats: int, device: torch.device
               ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    r"""Median seconds per potential-and-gradient evaluation of each model, in interleaved rounds: CPU seconds
    of this process (steady when other processes share the cores) and wall seconds; and the wall seconds of
    the first evaluations (initialization, and compilation for ``prior_compiled``)."""
    setups, first = {}, {}
    for name, model in fns.items():
        pyro.clear_param_store()
        start = time.perf_counter()
        init, potential, _, _ = initialize_model(model, (y,))
        setups[name] = (potential, {k: v.detach().clone() for k, v in init.items()})
        for _ in range(10):
            potential_grad(potential, setups[name][1])
        first[name] = time.perf_counter() - start
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, (potential, z) in setups.items():
            _sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(evals):
                potential_grad(potential, z)
            _sync(device)
            wall[name].append((time.perf_counter() - start) / evals)
            cpu[name].append((time.process_time() - start_cpu) / evals)
    return ({name: statistics.median(t) for name, t in cpu.items()},
            {name: statistics.median(t) for name, t in wall.items()}, first)


def run_nuts(model: Callable, y: torch.Tensor, args: argparse.Namespace, exact: tuple | None) -> dict:
    calls = [0]

    def counted(y: torch.Tensor) -> None:
        calls[0] += 1
        model(y)

    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    mcmc = MCMC(NUTS(counted, max_tree_depth=args.tree_depth), num_samples=args.samples, warmup_steps=args.warmup,
                disable_progbar=True)
    start, start_cpu = time.perf_counter(), time.process_time()
    mcmc.run(y)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    z = mcmc.get_samples()["z"]
    iterations = args.samples + args.warmup
    out = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "iterations": iterations,
        "cpu_seconds_per_iteration": cpu / iterations,
        "model_executions": calls[0],
        "cpu_seconds_per_execution": cpu / max(calls[0], 1),
        "divergences": len(mcmc.diagnostics()["divergences"]["chain 0"]),
        "posterior_mean": z.mean(0).tolist(),
        "posterior_sd": z.std(0).tolist(),
    }
    if exact is not None:
        mean, sd = exact
        out["mean_error_in_sd"] = float(((z.mean(0) - mean).abs() / sd).max())
        out["sd_ratio_range"] = [float((z.std(0) / sd).min()), float((z.std(0) / sd).max())]
    return out


def run_one(args: argparse.Namespace, D: int, kind: str, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(args.seed + D)
    x, cov = target_samples(args.target, D, args.fit_samples, g)
    flow, info = fitted_flow(args, kind, D, x)
    flow = flow.to(device)
    mean = x.mean(0) if args.target == "banana" else torch.zeros(D)
    gauss = dist.MultivariateNormal(mean.to(device), cov.to(device))
    A = (torch.randn(args.obs, D, generator=g) / math.sqrt(D)).to(device)
    z_true = x[-1].to(device)
    y = z_true @ A.T + args.sigma * torch.randn(args.obs, generator=g).to(device)
    exact = None
    if args.target == "gaussian":  # the conjugate posterior under the Gaussian prior (the flow's approximates it)
        prec = torch.linalg.inv(cov.to(device)) + A.T @ A / args.sigma**2
        post = torch.linalg.inv(prec)
        exact = (post @ (A.T @ y) / args.sigma**2, post.diagonal().sqrt())
    start = time.perf_counter()
    fns = models(flow, gauss, A, args.sigma, sorted({*args.priors, *([] if args.no_nuts else args.nuts_priors)}))
    build = time.perf_counter() - start
    with torch.no_grad():
        zs = x[:1000].to(device)
        gap = float((Prior(flow).log_prob(zs) - gauss.log_prob(zs)).abs().mean())
    chosen = {k: v for k, v in fns.items() if k in args.priors}
    cpu, wall, first = time_evals(chosen, y, args.evals, args.repeats, device)
    result: dict = {
        "D": D, "flow": kind, "target": args.target, "fit": info, "build_priors_seconds": build,
        "mean_abs_log_density_gap_to_gaussian": gap,
        "per_eval_cpu_seconds": cpu,
        "per_eval_wall_seconds": wall,
        "setup_seconds": first,
        "ratio_to_gaussian": {k: v / cpu["gaussian"] for k, v in cpu.items()},
        "wall_ratio_to_gaussian": {k: v / wall["gaussian"] for k, v in wall.items()},
        "fused": Prior(flow).fused,
    }
    if not args.no_nuts:
        runs: dict[str, list[dict]] = {name: [] for name in args.nuts_priors}
        for _ in range(args.nuts_repeats):  # interleaved, so a busy spell of the machine hits every prior
            for name in args.nuts_priors:
                runs[name].append(run_nuts(fns[name], y, args, exact))
        result["nuts"] = {}
        for name, rs in runs.items():
            r = dict(rs[0])
            for k in ("seconds", "cpu_seconds", "cpu_seconds_per_iteration", "cpu_seconds_per_execution"):
                r[k] = statistics.median(x[k] for x in rs)
            r["repeats"] = len(rs)
            result["nuts"][name] = r
        if "gaussian" in result["nuts"]:
            base = result["nuts"]["gaussian"]
            result["nuts_ratio_to_gaussian"] = {
                name: {"per_execution": r["cpu_seconds_per_execution"] / base["cpu_seconds_per_execution"],
                       "per_iteration": r["cpu_seconds_per_iteration"] / base["cpu_seconds_per_iteration"],
                       "total": r["cpu_seconds"] / base["cpu_seconds"]}
                for name, r in result["nuts"].items()}
    return result


def breakdown(args: argparse.Namespace, device: torch.device) -> dict:
    r"""Where a flow prior's time goes: CPU seconds of one log-density-and-gradient evaluation at one point,
    for a MAF of each ``--dims`` and hidden width, step by step from the docs' old pattern to the fused pass."""
    out: dict = {}
    for D in args.dims:
        for width in (32, 64, 128):
            for dtype in (torch.float32, torch.float64):
                flow = MAF(D, hidden=(width, width)).to(device, dtype)
                z0 = torch.randn(D, device=device, dtype=dtype)
                frozen = Prior(flow, fused=False)
                unchecked = Prior(flow, fused=False, validate_args=False)
                unchecked.distribution._validate_args = False
                fused = Prior(flow)

                def rebuilt(z: torch.Tensor) -> torch.Tensor:  # flow() at every call, parameters trainable
                    return flow().log_prob(z)

                variants = {"rebuilt_trainable": rebuilt, "built_once_frozen": frozen.log_prob,
                            "no_validation": unchecked.log_prob, "fused": fused.log_prob}
                times: dict[str, list[float]] = {k: [] for k in variants}
                for _ in range(args.repeats):
                    for name, f in variants.items():
                        start = time.process_time()
                        for _ in range(args.evals):
                            z = z0.clone().requires_grad_(True)
                            torch.autograd.grad(f(z), z)
                        _sync(device)
                        times[name].append((time.process_time() - start) / args.evals)
                key = f"D{D}/hidden{width}/{str(dtype).removeprefix('torch.')}"
                out[key] = {k: statistics.median(v) for k, v in times.items()}
                print(key, "  ".join(f"{k} {v * 1e6:.0f}us" for k, v in out[key].items()))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[2, 10])
    p.add_argument("--flows", nargs="+", choices=("maf", "nsf"), default=["maf", "nsf"])
    p.add_argument("--target", choices=("gaussian", "banana"), default="gaussian")
    p.add_argument("--transforms", type=int, default=None, help="flow layers (default: the recipe's)")
    p.add_argument("--hidden", type=int, nargs="*", default=None, help="hidden sizes (default: the recipe's)")
    p.add_argument("--obs", type=int, default=50)
    p.add_argument("--sigma", type=float, default=0.5)
    p.add_argument("--fit-samples", type=int, default=20000)
    p.add_argument("--fit-epochs", type=int, default=20)
    p.add_argument("--evals", type=int, default=200, help="gradient evaluations per timing round")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds (median)")
    p.add_argument("--priors", nargs="+", choices=PRIORS, default=list(PRIORS))
    p.add_argument("--nuts-priors", nargs="+", choices=PRIORS, default=["gaussian", "before", "prior"])
    p.add_argument("--no-nuts", action="store_true")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--tree-depth", type=int, default=10)
    p.add_argument("--nuts-repeats", type=int, default=3, help="interleaved NUTS runs per prior (median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/prior_nuts.json")
    p.add_argument("--cache", default="runs/prior_nuts")
    p.add_argument("--force", action="store_true", help="recompute entries already in --out")
    p.add_argument("--breakdown", action="store_true",
                   help="only time a MAF prior's log-density and gradient, variant by variant (see breakdown)")
    args = p.parse_args(argv)
    if "gaussian" not in args.priors:
        args.priors = ["gaussian", *args.priors]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    if args.breakdown:
        key = f"{args.device.split(':')[0]}/breakdown"
        if key not in results or args.force:
            results[key] = {"cpu_seconds": breakdown(args, device), "settings": vars(args),
                            "torch": torch.__version__}
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
        return results
    for D in args.dims:
        for kind in args.flows:
            key = (f"{args.device.split(':')[0]}/{args.target}/{kind}/D{D}/t{args.transforms}/"
                   f"h{'x'.join(map(str, args.hidden or [])) or 'default'}/nuts{0 if args.no_nuts else args.samples}")
            if key in results and not args.force:
                print(f"{key}: done, skipped")
                continue
            r = run_one(args, D, kind, device)
            r["settings"] = {k: v for k, v in vars(args).items() if k not in ("force",)}
            r["torch"], r["pyro"] = torch.__version__, pyro.__version__
            results[key] = r
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
            line = "  ".join(f"{k} {v * 1e6:.0f}us ({r['ratio_to_gaussian'][k]:.2f}x)"
                             for k, v in r["per_eval_cpu_seconds"].items())
            print(f"{key}: CPU time per gradient evaluation: {line}")
            for name, n in r.get("nuts", {}).items():
                ratio = r["nuts_ratio_to_gaussian"][name]
                print(f"  NUTS {name}: {n['cpu_seconds']:.1f} CPU s ({n['seconds']:.1f} s wall), "
                      f"{n['model_executions']} model executions ({n['cpu_seconds_per_execution'] * 1e6:.0f}us each, "
                      f"{ratio['per_execution']:.2f}x; per iteration {ratio['per_iteration']:.2f}x), "
                      f"{n['divergences']} divergences"
                      + (f", mean error {n['mean_error_in_sd']:.2f} sd" if "mean_error_in_sd" in n else ""))
    return results


if __name__ == "__main__":
    main()
