r"""Flow speed, side by side in one process: gendist against zuko, nflows, Pyro and normflows.

Same architecture for every library: MAF (affine) and autoregressive NSF
(rational-quadratic spline, 8 bins, bound 5, linear/identity tails), 8 features,
5 transforms, MADE hidden (64, 64) with ReLU, batch 4096, float32, CPU,
``torch.set_num_threads(2)``. Operations:

- ``log_prob``: build the distribution and score a batch of data, under ``torch.no_grad()``;
- ``log_prob+backward``: the same with gradients, then ``(-lp.mean()).backward()``;
- ``sample``: build the distribution and draw 4096 samples, under ``torch.no_grad()``.

Building the distribution from the module (``flow()`` in gendist and zuko, a
``TransformedDistribution`` in Pyro) is inside the timed region: it is part of
the cost of every call. nflows and normflows flows are modules with
``log_prob``/``sample`` methods, so they have nothing to build.

Timing: a warm-up, then ``rounds * reps`` passes, each running every library
once in a fresh shuffled order, so that load from other jobs hits all libraries
alike; the table gives the median time per call and, as "x zuko", the median
over passes of each library's time divided by zuko's time in the same pass.

Run ``python benchmarks/speed.py`` (``make bench``), ``--quick`` for a short
run, ``--no-write`` to skip writing ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import math
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore")

import nflows  # noqa: E402
import nflows.distributions  # noqa: E402
import nflows.flows  # noqa: E402
import nflows.transforms  # noqa: E402
import normflows  # noqa: E402
import pyro.distributions as pdist  # noqa: E402
import pyro.distributions.transforms as ptransforms  # noqa: E402
import zuko  # noqa: E402  (importing zuko switches torch's argument validation off)
from pyro.nn import AutoRegressiveNN  # noqa: E402

from gendist.flows import MAF, NSF  # noqa: E402

# zuko sets Distribution._validate_args = False on import; make that explicit and
# global so that no library pays for argument validation that another skips.
torch.distributions.Distribution.set_default_validate_args(False)

FEATURES, TRANSFORMS, HIDDEN, BINS, BOUND, BATCH = 8, 5, (64, 64), 8, 5.0, 4096
OPS = ("log_prob", "log_prob+backward", "sample")

Op = Callable[[], object]


# ---------------------------------------------------------------------------------------
# Builders: one Library per flow library, same architecture
# ---------------------------------------------------------------------------------------


class Library:
    r"""One library's flow: ``log_prob(x)`` and ``sample(n)`` closures and the module holding it."""

    def __init__(
        self,
        name: str,
        log_prob: Callable[[torch.Tensor], torch.Tensor],
        sample: Callable[[int], torch.Tensor],
        module: torch.nn.Module,
        note: str = "",
    ) -> None:
        self.name, self.log_prob, self.sample, self.module, self.note = (
            name,
            log_prob,
            sample,
            module,
            note,
        )

    def ops(self, x: torch.Tensor) -> dict[str, Op]:
        module = self.module

        def lp() -> object:
            with torch.no_grad():
                return self.log_prob(x)

        def lp_backward() -> object:
            module.zero_grad(set_to_none=True)
            loss = -self.log_prob(x).mean()
            loss.backward()
            return loss

        def sample() -> object:
            with torch.no_grad():
                return self.sample(BATCH)

        return {"log_prob": lp, "log_prob+backward": lp_backward, "sample": sample}


def gendist_flow(kind: str) -> Library:
    if kind == "MAF":
        flow = MAF(FEATURES, transforms=TRANSFORMS, hidden=HIDDEN)
    else:
        flow = NSF(FEATURES, transforms=TRANSFORMS, bins=BINS, bound=BOUND, hidden=HIDDEN)
    return Library(
        "gendist",
        lambda x: flow().log_prob(x),
        lambda n: flow().sample((n,)),
        flow,
    )


def zuko_flow(kind: str) -> Library:
    if kind == "MAF":
        flow = zuko.flows.MAF(FEATURES, transforms=TRANSFORMS, hidden_features=HIDDEN)
    else:  # zuko's NSF spline bound is fixed at 5 (MonotonicRQSTransform's default)
        flow = zuko.flows.NSF(FEATURES, bins=BINS, transforms=TRANSFORMS, hidden_features=HIDDEN)
    return Library(
        "zuko",
        lambda x: flow().log_prob(x),
        lambda n: flow().sample((n,)),
        flow,
    )


def _pyro_layers(kind: str) -> list[torch.distributions.Transform]:
    layers = []
    for i in range(TRANSFORMS):
        order = torch.arange(FEATURES)
        order = order if i % 2 == 0 else order.flip(0)
        if kind == "MAF":
            arn = AutoRegressiveNN(FEATURES, list(HIDDEN), permutation=order)
            layers.append(ptransforms.AffineAutoregressive(arn))
        else:
            # spline_autoregressive(order="quadratic") is unusable in Pyro 1.9: it sizes the
            # network for the rational-linear spline (4 parameter groups) and sampling fails
            # with "too many values to unpack"; so the network gets the 3 groups it needs.
            arn = AutoRegressiveNN(
                FEATURES, list(HIDDEN), param_dims=[BINS, BINS, BINS - 1], permutation=order
            )
            layers.append(
                ptransforms.SplineAutoregressive(
                    FEATURES, arn, count_bins=BINS, bound=BOUND, order="quadratic"
                )
            )
    return layers


def pyro_flow(kind: str, fast: bool) -> Library:
    layers = _pyro_layers(kind)
    module = torch.nn.ModuleList(layers)
    loc, scale = torch.zeros(FEATURES), torch.ones(FEATURES)
    if fast:  # data -> base is each transform's forward (one network pass): MAF orientation
        transforms = [t.inv for t in reversed(layers)]
    else:  # Pyro's own orientation: base -> data is the forward pass (IAF)
        transforms = layers

    def dist() -> pdist.TransformedDistribution:
        # Pyro's transforms keep a one-entry cache (cache_size=1): scoring the very same
        # tensor again would return the cached result, so each call starts with empty caches.
        for t in layers:
            t._cached_x_y = None, None
        return pdist.TransformedDistribution(pdist.Normal(loc, scale).to_event(1), transforms)

    name = "Pyro (.inv, MAF orientation)" if fast else "Pyro (natural, IAF orientation)"
    return Library(name, lambda x: dist().log_prob(x), lambda n: dist().sample((n,)), module)


def nflows_flow(kind: str) -> Library:
    layers = []
    for i in range(TRANSFORMS):
        if i > 0:
            layers.append(nflows.transforms.ReversePermutation(FEATURES))
        # plain (non-residual) MADE, 1 block: Linear(8, 64), ReLU, Linear(64, 64), ReLU, out
        common = dict(
            features=FEATURES,
            hidden_features=HIDDEN[0],
            num_blocks=len(HIDDEN) - 1,
            use_residual_blocks=False,
            activation=torch.relu,
        )
        if kind == "MAF":
            layers.append(nflows.transforms.MaskedAffineAutoregressiveTransform(**common))
        else:
            layers.append(
                nflows.transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                    num_bins=BINS, tails="linear", tail_bound=BOUND, **common
                )
            )
    flow = nflows.flows.Flow(
        nflows.transforms.CompositeTransform(layers),
        nflows.distributions.StandardNormal([FEATURES]),
    )
    return Library("nflows", flow.log_prob, flow.sample, flow)


def normflows_flow(kind: str, fast: bool) -> Library:
    assert kind == "MAF"
    nf = normflows
    flows = []
    for i in range(TRANSFORMS):
        if i > 0:
            flows.append(nf.flows.Permute(FEATURES, mode="shuffle"))
        layer = nf.flows.MaskedAffineAutoregressive(
            FEATURES, HIDDEN[0], num_blocks=len(HIDDEN) - 1, use_residual_blocks=False
        )
        flows.append(nf.flows.Reverse(layer) if fast else layer)
    flow = nf.NormalizingFlow(nf.distributions.DiagGaussian(FEATURES, trainable=False), flows)
    name = "normflows (Reverse, MAF orientation)" if fast else "normflows (natural, IAF orientation)"
    return Library(name, flow.log_prob, lambda n: flow.sample(n)[0], flow)


def libraries(kind: str) -> list[Library]:
    libs = [
        gendist_flow(kind),
        zuko_flow(kind),
        nflows_flow(kind),
        pyro_flow(kind, fast=True),
        pyro_flow(kind, fast=False),
    ]
    if kind == "MAF":
        libs += [normflows_flow(kind, fast=True), normflows_flow(kind, fast=False)]
    return libs


# ---------------------------------------------------------------------------------------
# Same computation?
# ---------------------------------------------------------------------------------------


def _copy_made(gendist_made: torch.nn.Module, zuko_mlp: torch.nn.Module) -> None:
    src = list(gendist_made.layers)
    dst = [m for m in zuko_mlp if isinstance(m, torch.nn.Linear)]
    assert len(src) == len(dst)
    for a, b in zip(src, dst):
        assert a.weight.shape == b.weight.shape
        b.weight.data.copy_(a.weight.data)
        b.bias.data.copy_(a.bias.data)
        b.mask = a.mask.to(b.mask.dtype).clone()


def _unsoftclip(y: torch.Tensor, bound: float) -> torch.Tensor:
    r"""Inverse of zuko's soft clip :math:`x / (1 + |x| / b)` onto :math:`(-b, b)`."""
    return y / (1 - y.abs() / bound)


def zuko_twin(kind: str, flow: torch.nn.Module) -> torch.nn.Module:
    r"""A zuko flow with the gendist flow's weights and masks, and a univariate adapter that
    maps gendist's head parameters to zuko's parameterization (same numbers, same function)."""
    c = -math.log(1e-3)  # zuko's soft-clip bound for log-scales (slope 1e-3)
    if kind == "MAF":
        def univariate(shift: torch.Tensor, raw: torch.Tensor) -> torch.distributions.Transform:
            log_scale = 3.0 * torch.tanh(raw / 3.0)  # gendist's Affine(max_log_scale=3)
            return zuko.transforms.MonotonicAffineTransform(shift, _unsoftclip(log_scale, c))

        twin = zuko.flows.MAF(
            FEATURES, transforms=TRANSFORMS, hidden_features=HIDDEN, univariate=univariate
        )
    else:
        def univariate(w: torch.Tensor, h: torch.Tensor, d: torch.Tensor):
            def bins(u: torch.Tensor) -> torch.Tensor:
                logp = torch.log(1e-3 + (1 - 1e-3 * BINS) * torch.softmax(u, dim=-1))
                return _unsoftclip(logp - logp.mean(-1, keepdim=True), c / 2)

            shift = math.log(math.expm1(1.0 - 1e-3))
            logd = torch.log(1e-3 + torch.nn.functional.softplus(d + shift))
            return zuko.transforms.MonotonicRQSTransform(
                bins(w), bins(h), _unsoftclip(logd, c), bound=BOUND
            )

        twin = zuko.flows.NSF(FEATURES, bins=BINS, transforms=TRANSFORMS, hidden_features=HIDDEN)
        for t in twin.transform.transforms:
            t.univariate = univariate
    # gendist lists layers base -> data; zuko lists them data -> base
    for g, z in zip(reversed(list(flow.transforms)), twin.transform.transforms):
        assert torch.equal(g.made.order, z.order), "layer orders differ"
        _copy_made(g.made, z.hyper)
    return twin


def check(kind: str, libs: list[Library], x: torch.Tensor) -> list[str]:
    lines = []
    with torch.no_grad():
        for lib in libs:
            lp = lib.log_prob(x)
            ok = lp.shape == (x.shape[0],) and bool(torch.isfinite(lp).all())
            s = lib.sample(16)
            ok_s = s.shape == (16, FEATURES) and bool(torch.isfinite(lib.log_prob(s)).all())
            if not (ok and ok_s):
                raise RuntimeError(f"{kind} {lib.name}: log_prob or sample not finite / wrong shape")
        g = libs[0]
        twin = zuko_twin(kind, g.module)
        a, b = g.log_prob(x), twin().log_prob(x)
        err = (a - b).abs().max().item()
        if not err < 1e-3:
            raise RuntimeError(f"{kind}: gendist and its zuko twin disagree by {err:.3g}")
        lines.append(
            f"- {kind}: every library's `log_prob` of the batch (and of its own samples) is "
            f"finite; gendist and a zuko {kind} carrying the same weights and masks agree to "
            f"{err:.1e} (max abs difference in `log_prob`, mean {a.mean().item():.3f})."
        )
    return lines


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


def measure(ops: dict[str, Op], rounds: int, reps: int, warmup: int) -> dict[str, list[float]]:
    r"""Seconds per call of every op, ``rounds * reps`` each.

    Each of the ``rounds * reps`` passes runs every op once, in a fresh shuffled
    order, so a burst of load from other jobs lands on all ops alike and the
    i-th times of two ops were taken seconds apart (see :func:`paired_ratio`).
    """
    names = list(ops)
    for name in names:
        for _ in range(warmup):
            ops[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    rng = random.Random(0)
    for _ in range(rounds * reps):
        rng.shuffle(names)
        for name in names:
            t0 = time.perf_counter()
            ops[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    r"""Median over passes of ``a[i] / b[i]``: the two times of a pass share the machine's load."""
    return statistics.median(x / y for x, y in zip(a, b))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> str:
    names = ("gendist", "torch", "zuko", "nflows", "pyro-ppl", "normflows")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} ?")
    return ", ".join(found) + f", Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (6 passes instead of 35)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/README.md")
    parser.add_argument("--only", choices=["MAF", "NSF"], default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    reps = args.reps or (2 if args.quick else 5)
    warmup = 1 if args.quick else 3

    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = torch.randn(BATCH, FEATURES)

    kinds = [args.only] if args.only else ["MAF", "NSF"]
    tables, checks = [], []
    start = time.time()
    for kind in kinds:
        torch.manual_seed(1)
        libs = libraries(kind)
        checks += check(kind, libs, x)
        results: dict[str, dict[str, tuple[float, float]]] = {lib.name: {} for lib in libs}
        for op in OPS:
            ops = {lib.name: lib.ops(x)[op] for lib in libs}
            times = measure(ops, rounds, reps, warmup)
            for name, ts in times.items():
                results[name][op] = (statistics.median(ts) * 1e3, paired_ratio(ts, times["zuko"]))
            print(f"  {kind} {op}: done ({time.time() - start:.0f} s)", file=sys.stderr)
        head = "| library | " + " | ".join(f"{op} ms (x zuko)" for op in OPS) + " |"
        rows = [head, "|---|" + "---:|" * len(OPS)]
        for lib in libs:
            cells = [f"{results[lib.name][op][0]:.1f} ({results[lib.name][op][1]:.2f}x)" for op in OPS]
            rows.append(f"| {lib.name} | " + " | ".join(cells) + " |")
        table = f"#### {kind}\n\n" + "\n".join(rows)
        print("\n" + table + "\n")
        tables.append(table)

    command = " ".join(["OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/speed.py", *sys.argv[1:]])
    command = f"`{command}`" + ("" if sys.argv[1:] else " (`make bench`)")
    meta = (
        f"- command: {command}\n"
        f"- machine: {os.cpu_count()}-core CPU ({cpu_name()}), `torch.set_num_threads(2)`, "
        f"shared with other jobs, default allocator\n"
        f"- versions: {versions()}\n"
        f"- date: {datetime.date.today().isoformat()}\n"
        f"- timing: {warmup} warm-up call(s) per library, then {rounds * reps} passes, each running every "
        f"library once in a fresh shuffled order; ms = median per call, x zuko = median over "
        f"passes of the time relative to zuko's in the same pass"
    )
    print(meta)
    print("\n".join(checks))
    if not args.no_write and not args.only:
        write_readme(tables, meta, checks)


def write_readme(tables: list[str], meta: str, checks: list[str]) -> None:
    path = Path(__file__).with_name("README.md")
    text = path.read_text() if path.exists() else ""
    begin, end = "<!-- speed:begin -->", "<!-- speed:end -->"
    body = f"{begin}\n{meta}\n\n" + "\n\n".join(tables) + "\n\nSame computation:\n\n"
    body += "\n".join(checks) + f"\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + body + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + body + "\n"
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
