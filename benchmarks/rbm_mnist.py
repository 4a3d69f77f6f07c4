r"""Restricted Boltzmann machines on statically binarized MNIST: test log-likelihood against published numbers.

Protocol (``../shared/data/binarized_mnist.npz``): train on the 50,000 training images, report the test
log-likelihood in nats averaged over the 10,000 test images, :math:`-F(v) - \log Z`, with :math:`\log Z`
exact (enumerating :math:`2^H` hidden states, ``H <= 25``) or by forward AIS from the base-rate model (an
estimate with its standard error, a stochastic lower bound on log Z: the LL errs upward), optionally checked
by reverse AIS started from long Gibbs chains (``--reverse-ais``).

Published: 16 hidden units, PCD-1: -142.56 centered, -149.05 plain (Melchior et al., JMLR 2016);
500 hidden units: -86.34 by CD-25 (Salakhutdinov & Murray, 2008), -84.9 centered (Melchior et al.).

Run (CPU times on this 2-core machine are in benchmarks/README_energy.md):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/rbm_mnist.py --hidden 16 --centering --lr 0.05 --momentum 0.9 \
        --schedule cosine --epochs 20 --out runs/rbm16c
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/rbm_mnist.py --hidden 16 --objective exact --batch 1000 \
        --centering --out runs/rbm16x
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/rbm_mnist.py --hidden 500 --objective cd --k 25 \
        --centering --snapshot-every 1 --out runs/rbm500 [--resume]
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/rbm_mnist.py --hidden 500 --out runs/rbm500 \
        --score-snapshots   # test LL of every saved epoch by AIS
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/rbm_mnist.py --compare-sklearn --hidden 16 --epochs 10

Options: ``--objective pcd|cd|exact`` (persistent CD-k, CD-k from the batch, or exact maximum likelihood through
the differentiable exact :math:`\log Z`), ``--finetune N`` (N more epochs of exact ML after CD), ``--k``,
``--chains``, ``--centering`` / ``--decay``, ``--optimizer sgd|adam``, ``--momentum``, ``--lr``, ``--batch``,
``--epochs``, ``--schedule cosine``, ``--init-from PATH`` (another run's weights),
``--init data|zero`` (visible biases from the data's marginals, or zero as scikit-learn),
``--ais-chains``, ``--ais-betas``, ``--reverse-ais``, ``--test-size``, ``--threads``, ``--device``,
``--out``/``--resume``, ``--snapshot-every`` (save the weights every N epochs: the learning curve),
``--score-snapshots``, ``--eval-only``, ``--compare-sklearn`` (scikit-learn's BernoulliRBM and ours, same
PCD-1, size, epochs, batch and learning rate, scored by the same exact log Z).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from mnist_run import save, settings

from gendist.data import load_binarized_mnist
from gendist.distributions.energy import ENUMERATION_LIMIT
from gendist.ebm import RBM, RBMEnergy
from gendist.inference import ContrastiveDivergence, fit, load_checkpoint

PUBLISHED = {16: {"centered": -142.56, "plain": -149.05}, 500: {"centered": -84.9, "plain": -86.34}}


class ExactNLL:
    r"""The exact mean NLL of an RBM built with ``log_partition="exact"``; with ``centering``, the offsets are
    moved with the batch first (what :class:`ContrastiveDivergence` does with ``centering=True``)."""

    def __init__(self, centering: bool = False) -> None:
        self.centering = centering

    def __call__(self, model: RBM, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = batch[0]
        if self.centering and model.training:
            model.update_offsets(x)
        return -model().log_prob(x).mean()


def build(args: argparse.Namespace) -> RBM:
    return RBM(784, args.hidden, centering=args.centering, centering_decay=args.decay, init_std=0.01)


def objective(args: argparse.Namespace, exact: bool) -> object:
    if exact:
        return ExactNLL(args.centering)
    return ContrastiveDivergence(args.k, persistent=args.objective == "pcd",
                                 chains=(args.chains or args.batch) if args.objective == "pcd" else None,
                                 centering=args.centering, seed=args.seed)


def optimizer(args: argparse.Namespace):  # noqa: ANN201
    if args.optimizer == "adam":
        return lambda params: torch.optim.Adam(params, lr=args.lr)
    return lambda params: torch.optim.SGD(params, lr=args.lr, momentum=args.momentum)


def train(model: RBM, x: torch.Tensor, args: argparse.Namespace, exact: bool, epochs: int, out: Path | None,
          resume: bool, valid: torch.Tensor | None = None) -> float:
    r"""``fit`` with a log line per epoch, a checkpoint per epoch in ``out`` and the weights every
    ``--snapshot-every`` epochs (``out/epoch_NNN.pt``); returns the seconds it took."""
    start = time.perf_counter()
    per_epoch, running = len(x) // args.batch, []
    model.log_partition = "exact" if exact else None

    def log(step: int, loss: float) -> None:
        running.append(loss)
        if step % per_epoch == 0:
            epoch = step // per_epoch
            print(f"epoch {epoch}: train loss {sum(running) / len(running):.3f} "
                  f"({(time.perf_counter() - start) / 60:.1f} min)", flush=True)
            running.clear()
            if out is not None and args.snapshot_every and epoch % args.snapshot_every == 0:
                torch.save(model.state_dict(), out / f"epoch_{epoch:04d}.pt")

    if epochs > 0:
        fit(model, x, valid=valid if exact else None, objective=objective(args, exact), epochs=epochs,
            batch_size=args.batch, lr=args.lr, optimizer=optimizer(args), schedule=args.schedule, seed=args.seed,
            checkpoint_dir=out, checkpoint_every=per_epoch if out else None, resume=resume,
            progress=sys.stderr.isatty(), callback=log)
    model.log_partition = None
    return time.perf_counter() - start


@torch.no_grad()
def score(energy: RBMEnergy, test: torch.Tensor, args: argparse.Namespace, base_rate: torch.Tensor,
          chains_from: torch.Tensor | None = None) -> dict:
    r"""Mean test log-likelihood (nats): exact :math:`\log Z` if the hidden layer can be enumerated, else
    forward AIS (and, with ``--reverse-ais``, reverse AIS from ``--reverse-gibbs`` Gibbs sweeps of test images)."""
    e = energy.detach().to(torch.float64)
    test = test.to(torch.float64)
    t0 = time.perf_counter()
    mean_f = float(torch.cat([e.free_energy(test[i:i + 1000]) for i in range(0, len(test), 1000)]).mean())
    out: dict = {}
    if e.hidden_size <= ENUMERATION_LIMIT:
        lz = float(e.log_partition("exact").value)
        out.update(log_z=round(lz, 3), test_ll=round(-mean_f - lz, 3), log_z_method="exact")
    else:
        g = torch.Generator(device=test.device).manual_seed(args.seed + 1)
        fwd = e.log_partition("ais", chains=args.ais_chains, betas=args.ais_betas, base_rate=base_rate.double(),
                              generator=g)
        lz, se = float(fwd.value), float(fwd.stderr)
        out.update(log_z=round(lz, 3), log_z_se=round(se, 3), test_ll=round(-mean_f - lz, 3), log_z_method="ais",
                   ais_chains=args.ais_chains, ais_betas=args.ais_betas)
        if args.reverse_ais:
            start = (chains_from if chains_from is not None else test)[: args.ais_chains].to(torch.float64)
            for _ in range(args.reverse_gibbs):
                start = e.gibbs(start, None, g)
            rev = e.log_partition("reverse_ais", x=start, betas=args.ais_betas, base_rate=base_rate.double(),
                                  generator=g)
            out.update(reverse_log_z=round(float(rev.value), 3), reverse_log_z_se=round(float(rev.stderr), 3),
                       reverse_test_ll=round(-mean_f - float(rev.value), 3), reverse_gibbs=args.reverse_gibbs)
    out["score_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def compare_sklearn(args: argparse.Namespace, x: torch.Tensor, test: torch.Tensor) -> dict:
    r"""scikit-learn's ``BernoulliRBM`` and ours, same PCD-1 (chains = batch), plain SGD, size, epochs, batch
    size and learning rate, zero starting biases; both scored by the same exact :math:`\log Z`."""
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    rows = {}
    with threadpool_limits(torch.get_num_threads()):
        sk = BernoulliRBM(n_components=args.hidden, learning_rate=args.lr, batch_size=args.batch,
                          n_iter=args.epochs, random_state=args.seed)
        t0 = time.perf_counter()
        sk.fit(x.numpy())
        sk_seconds = time.perf_counter() - t0
    like = torch.zeros((), dtype=torch.float64)
    energy = RBMEnergy(torch.as_tensor(sk.components_.T, dtype=like.dtype).contiguous(),
                       torch.as_tensor(sk.intercept_visible_, dtype=like.dtype),
                       torch.as_tensor(sk.intercept_hidden_, dtype=like.dtype))
    rows["sklearn"] = {"seconds_per_epoch": round(sk_seconds / args.epochs, 3), "dtype": str(sk.components_.dtype),
                       **score(energy, test, args, x.mean(0))}
    fair = argparse.Namespace(**{**vars(args), "objective": "pcd", "k": 1, "chains": args.batch,
                                 "centering": False, "optimizer": "sgd", "momentum": 0.0, "snapshot_every": 0,
                                 "schedule": None})
    torch.manual_seed(args.seed)
    model = build(fair)
    seconds = train(model, x, fair, False, args.epochs, None, False)
    rows["gendist"] = {"seconds_per_epoch": round(seconds / args.epochs, 3), "dtype": str(model.weight.dtype),
                       **score(model.energy(), test, args, x.mean(0))}
    rows["time_ratio_sklearn_over_gendist"] = round(sk_seconds / seconds, 2)
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--objective", default="pcd", choices=["pcd", "cd", "exact"])
    p.add_argument("--finetune", type=int, default=0, help="epochs of exact ML after CD/PCD")
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--chains", type=int, default=None, help="persistent chains (default: the batch size)")
    p.add_argument("--centering", action="store_true")
    p.add_argument("--decay", type=float, default=0.01, help="the offsets' moving-average rate")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--schedule", default=None, choices=[None, "cosine"], help="the learning rate's decay")
    p.add_argument("--finetune-lr", type=float, default=None)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--finetune-batch", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--init", default="data", choices=["data", "zero"])
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from the weights of another run's checkpoint (last.pt or epoch_NNNN.pt): a second "
                        "phase with other settings, such as a decaying rate")
    p.add_argument("--ais-chains", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=14500)
    p.add_argument("--reverse-ais", action="store_true")
    p.add_argument("--reverse-gibbs", type=int, default=1000)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--snapshot-every", type=int, default=0)
    p.add_argument("--score-snapshots", action="store_true", help="score every out/epoch_*.pt and stop")
    p.add_argument("--eval-only", action="store_true", help="only score the weights saved in --out")
    p.add_argument("--compare-sklearn", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    x, test = (load_binarized_mnist(s).to(device) for s in ("train", "test"))
    valid = load_binarized_mnist("valid").to(device)
    test = test[: args.test_size]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    if args.compare_sklearn:
        result = {"settings": settings(args), **compare_sklearn(args, x.cpu(), test.cpu()),
                  "torch_threads": torch.get_num_threads()}
        save(result, args.out)
        return result

    model = build(args).to(device)
    if args.score_snapshots:
        curve = {}
        for path in sorted(args.out.glob("epoch_*.pt")):
            model.load_state_dict(torch.load(path, map_location=device))
            curve[int(path.stem.split("_")[1])] = score(model.energy(), test, args, x.mean(0))
            print(path.name, curve[int(path.stem.split("_")[1])], flush=True)
        result = {"settings": settings(args), "curve": curve}
        save(result, None)
        return result
    if args.init_from is not None and not args.resume and not args.eval_only:
        saved = torch.load(args.init_from, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"] if "model" in saved else saved)
    elif not args.resume and not args.eval_only and args.init == "data":
        model.init_from_data(x)
    exact = args.objective == "exact"
    if args.eval_only:  # the weights of the last epoch fit checkpointed
        model.load_state_dict(load_checkpoint(args.out / "last.pt")["model"])
    seconds = train(model, x, args, exact, 0 if args.eval_only else args.epochs, args.out,
                    args.resume or args.eval_only, valid)
    ft_seconds = 0.0
    if args.finetune:
        ft = argparse.Namespace(**{**vars(args), "batch": args.finetune_batch, "optimizer": "adam",
                                   "lr": args.finetune_lr or 1e-3, "snapshot_every": 0})
        sub = args.out / "finetune" if args.out else None
        if sub is not None:
            sub.mkdir(exist_ok=True)
        ft_seconds = train(model, x, ft, True, args.finetune, sub,
                           args.eval_only or (args.resume and sub is not None and (sub / "last.pt").is_file()), valid)
    result = {
        "hidden": args.hidden,
        "objective": args.objective,
        "centering": args.centering,
        "settings": settings(args),
        "train_seconds": round(seconds, 1),
        "finetune_seconds": round(ft_seconds, 1),
        **score(model.energy(), test, args, x.mean(0)),
        "published": PUBLISHED.get(args.hidden, {}).get("centered" if args.centering else "plain"),
        "torch_threads": torch.get_num_threads(),
    }
    save(result, args.out)
    return result


if __name__ == "__main__":
    main()
