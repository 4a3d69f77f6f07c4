r"""One training loop for every model with a training objective: ``fit``.

Mini-batches from tensors or a ``DataLoader``; one or several objectives, each
with its own parameters, optimizer, learning rate and steps per batch, in
stages run one after another (:mod:`gendist.inference.objective`); an optional
learning-rate schedule and gradient clipping; validation every epoch with
early stopping and restore of the best weights; a progress bar; atomic
checkpoints; exact resume (a run killed at any moment and resumed from its
last checkpoint produces the same loss curve as an uninterrupted one); and
several processes under ``torchrun`` (``DistributedDataParallel``) computing
what one process computes (:mod:`gendist.inference.distributed`).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils.data import DataLoader

from gendist.inference import _batches as B
from gendist.inference import checkpoint as C
from gendist.inference import distributed as D
from gendist.inference.checkpoint import load_checkpoint
from gendist.inference.objective import Batch, Loss, Objective, Stage, Stateful, nll_objective, resolve_stages
from gendist.io import atomic_write

__all__ = ["History", "fit", "nll_objective", "load_checkpoint"]

Data = B.Data


@dataclass
class History:
    r"""What a run did: every step's loss, every epoch's validation loss, per objective too.

    ``step_loss[t]`` is the loss of batch ``t`` (with several objectives, the sum of the
    losses of those that stepped on it); ``losses[name]`` has every step of objective
    ``name`` (``"stage/name"`` when there are several stages) and ``valid[name]`` its
    validation loss each epoch. ``epoch_valid`` (the sum over the validated objectives)
    drives early stopping and the best weights, per stage; ``stopped_early`` says a stage
    stopped early. ``step`` counts batches, ``stage`` the stage the run is in.
    """

    step_loss: list[float] = field(default_factory=list)
    epoch_valid: list[float] = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    best_valid: float = math.inf
    best_epoch: int = -1
    stopped_early: bool = False
    seconds: float = 0.0
    losses: dict[str, list[float]] = field(default_factory=dict)
    valid: dict[str, list[float]] = field(default_factory=dict)
    stage: int = 0
    stage_epoch: int = 0
    stage_step: int = 0
    stage_stopped: bool = False


@dataclass
class _Run:
    """One objective of the run, ready: its key, parameters, optimizer and schedule."""

    key: str
    objective: Objective
    params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    clip: float | None


class _Step(nn.Module):
    """What ``DistributedDataParallel`` wraps: its forward is the whole loss, so gradients sync on backward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, loss: Loss) -> Tensor:
        return loss(self.model, batch)


def _evaluate(model: nn.Module, runs: list[_Run], data: Data, batch_size: int) -> dict[str, float]:
    """Each validated objective's mean loss over ``data``, split across ranks and summed over them."""
    was_training = model.training
    model.eval()
    rank, world = D.rank(), D.world_size()
    scored = [r for r in runs if r.objective.validate]
    totals, count = [0.0] * len(scored), 0
    if isinstance(data, DataLoader):  # this rank's share of every batch
        shares = (B.local_share(b, rank, world) for b in B.batches(data, 0, None))
        parts: Iterable[Batch] = (b for b, w in shares if w)
    else:  # this rank's contiguous share of the data
        start, stop = B.share(len(B.tensors(data)[0]), rank, world)
        mine = [t[start:stop] for t in B.tensors(data)]
        parts = B.batches(mine, max(1, batch_size // world), None) if stop > start else ()
    with torch.no_grad():
        for batch in parts:
            n = len(batch[0])
            for i, r in enumerate(scored):
                totals[i] += float(r.objective.loss(model, batch)) * n
            count += n
    model.train(was_training)
    *totals, count = D.all_reduce_sum([*totals, count])
    return {r.key: t / count for r, t in zip(scored, totals)}


def _rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own stream, the objectives' randomness (apart from the shuffle's)."""
    return int(torch.randint(0, 2**62, (rank + 1,), generator=torch.Generator().manual_seed(seed))[-1])


def _optimizer(
    obj: Objective, params: list[nn.Parameter], default: Callable | None, lr: float
) -> torch.optim.Optimizer:
    """The objective's optimizer: its own factory, else ``fit``'s, else Adam; its ``lr`` set on every group
    (a factory with ``uses_fit_lr = True``, which sets only the other options, gets ``fit``'s ``lr`` too)."""
    factory = obj.optimizer or default
    if factory is None:
        return torch.optim.Adam(params, lr=obj.lr if obj.lr is not None else lr)
    opt = factory(params)
    rate = obj.lr if obj.lr is not None else lr if getattr(factory, "uses_fit_lr", False) else None
    if rate is not None:
        for group in opt.param_groups:
            group["lr"] = rate
    return opt


def fit(
    model: nn.Module,
    data: Data,
    *,
    valid: Data | None = None,
    objective: Loss | Objective | Sequence[Objective] | None = None,
    stages: Sequence[Stage] | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    schedule: str | None = None,
    clip_grad: float | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    seed: int | None = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
    state: Mapping[str, Stateful] | None = None,
) -> History:
    r"""Train ``model`` by minimizing its objectives over mini-batches of ``data``.

    Each batch :math:`t` of a stage, each of the stage's objectives :math:`g` whose turn
    it is (:meth:`Objective.active`) takes a step
    :math:`\theta_g \leftarrow \mathrm{opt}_g\big(\nabla_{\theta_g} L_g(\text{batch}_t)\big)`.

    Arguments:
        model: the module to train (``model(c)`` returns a distribution for the default objective).
        data: training data: a tensor ``x``, a tuple ``(x, c)``, or a ``DataLoader``.
        valid: validation data of the same form, scored every epoch.
        objective: ``objective(model, batch) -> loss``, an :class:`Objective`, or a list of them.
            By default: the model's ``stages()`` or ``objectives()`` if it has them, else
            :func:`nll_objective` (the mean NLL, or the model's own ``loss(x, c)``).
        stages: :class:`Stage` s to run one after another, instead of ``objective``.
        epochs: the passes over ``data`` (of each stage that does not set its own).
        batch_size: the mini-batch size (for tensor data); with several processes the global one.
        lr: the learning rate of objectives without their own.
        optimizer: a function from parameters to an optimizer, instead of Adam (objectives may set their own).
        schedule: ``None`` or ``"cosine"`` (each objective's rate decays to 0 over its stage).
        clip_grad: clip the gradient norm of each objective's parameters to this value.
        patience: end a stage after this many epochs without a better validation loss.
        restore_best: end each stage with the weights of its best validation epoch.
        seed: seed of the run (initialization is the caller's; shuffling and any randomness
            in the objectives are the run's); None to not reseed.
        checkpoint_dir: write ``last.pt`` there every ``checkpoint_every`` steps and at the end
            of every epoch, atomically (rank 0 only).
        checkpoint_every: the checkpoint period in steps (None: only at epoch ends).
        resume: continue from ``checkpoint_dir/last.pt`` exactly where it stopped.
        progress: show a progress bar with the loss and validation loss (rank 0 only).
        callback: called as ``callback(step, loss)`` after every batch, on every rank. Every module
            of the model with an ``after_step()`` method has it called after every batch on which an
            optimizer stepped (the moving average of a diffusion model's weights).
        state: more objects to checkpoint and resume, by name: anything with ``state_dict()`` and
            ``load_state_dict()`` (replay buffers, MCMC chains); each process saves its own. Loss
            objects with these methods are saved too; the model's buffers and a module's
            ``get_extra_state()`` are in its ``state_dict`` already.

    Several processes: under ``torchrun`` (or with a process group already up) every rank
    draws the same shuffle and takes its contiguous share of every global batch; each rank's
    mean loss is weighted by its share of the batch, so the gradients ``DistributedDataParallel``
    averages are those of one process on the whole batch: with a deterministic objective the
    run is the 1-process run (up to float rounding). The objectives' own randomness (a VAE's
    samples, a diffusion model's times) comes from each rank's own stream, so such runs match
    the 1-process run in distribution only. Module buffers follow rank 0 (DDP's default).
    Validation is split across ranks; rank 0 writes the checkpoints, which record the world size:
    resuming on another world size is refused. A rank that dies makes the others fail (torchrun
    stops them; a collective times out after ``GENDIST_DIST_TIMEOUT`` seconds otherwise).

    Returns:
        The :class:`History`: every step's loss, every epoch's validation loss.

    Example:
        >>> from gendist.flows import MAF
        >>> flow = MAF(2, transforms=1, hidden=(8,))
        >>> h = fit(flow, torch.randn(64, 2), valid=torch.randn(32, 2), epochs=2, progress=False)
        >>> len(h.step_loss), len(h.epoch_valid)
        (2, 2)
        >>> two = [Objective("a", nll_objective, parameters=lambda m: m.transforms[0].parameters(), lr=1e-2),
        ...        Objective("all", nll_objective, every=2)]
        >>> h = fit(flow, torch.randn(64, 2), objective=two, epochs=2, batch_size=16, progress=False)
        >>> len(h.losses["a"]), len(h.losses["all"])
        (8, 4)
    """
    B.check_data("data", data)
    if valid is not None:
        B.check_data("valid", valid)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"fit: epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if schedule not in (None, "cosine"):
        raise ValueError(f"fit: schedule must be None or 'cosine', got {schedule!r}")
    extra = dict(state or {})
    bad = [k for k, v in extra.items() if not isinstance(v, Stateful)]
    if bad:
        raise TypeError(f"fit: `state` entries {bad} have no state_dict()/load_state_dict()")
    plan = resolve_stages(model, objective, stages, epochs)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")

    D.init_from_env(device)
    rank, world = D.rank(), D.world_size()
    if world > 1:
        global_batch = data.batch_size if isinstance(data, DataLoader) else batch_size
        if global_batch is not None and global_batch % world:
            raise ValueError(
                f"fit: batch_size={global_batch} (the global batch) is not divisible by the world size {world}: "
                f"each of the {world} processes takes batch_size / {world} examples of every batch"
            )
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    if resume:
        missing = D.all_reduce_sum([ckpt is None or not ckpt.is_file()])[0]
        if missing:
            raise FileNotFoundError(f"fit: resume=True but there is no checkpoint {ckpt}"
                                    + (f" (on {int(missing)} of {world} processes)" if world > 1 else ""))
    if ckpt is not None and D.is_main():
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    per_epoch = B.steps_per_epoch(data, batch_size)
    owned = {id(p) for p in model.parameters()}
    several = len(plan) > 1
    runs: list[list[_Run]] = []
    for stage, objectives, n_epochs in plan:
        group = []
        for obj in objectives:
            key = f"{stage.name}/{obj.name}" if several else obj.name
            params = obj.trainable(model)
            if not params:
                raise ValueError(f"fit: objective {key!r} has no parameters that require a gradient")
            if any(id(p) not in owned for p in params):
                raise ValueError(f"fit: objective {key!r} trains parameters that are not the model's "
                                 "(they would be neither synchronized nor checkpointed)")
            opt = _optimizer(obj, params, optimizer, lr)
            steps = max(1, n_epochs * per_epoch // obj.every * obj.steps)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine" else None
            clip = obj.clip_grad if obj.clip_grad is not None else clip_grad
            group.append(_Run(key, obj, params, opt, sched, clip))
        runs.append(group)
    all_runs = [r for group in runs for r in group]
    trainable = [p for p in model.parameters() if p.requires_grad]
    for r in all_runs:  # the objects checkpointed per rank: `state` and stateful losses
        if isinstance(r.objective.loss, Stateful):
            extra.setdefault(f"objective:{r.key}", r.objective.loss)
    # per-step updates of the model or of any module inside it (a diffusion model's EMA, also when wrapped)
    hooks = [h for h in (getattr(m, "after_step", None) for m in model.modules()) if callable(h)]
    cuda = [device] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=cuda):  # the caller's RNG is left as it was
        history, best_state, skip = History(), None, 0
        # the shuffle: one stream, the same on every rank. In one process it is torch's global stream,
        # which the objectives draw from too, as gendist always did: a run's numbers do not depend on
        # the version. Several processes need it apart, since each rank's objectives draw their own noise.
        shared = world == 1
        shuffle = torch.default_generator if shared else torch.Generator()
        replay: Tensor | None = None  # the shuffle stream at the start of the epoch a resumed run stopped in
        if resume:
            saved = load_checkpoint(ckpt)
            done, best_state, skip = C.restore(saved, ckpt, model, all_runs, extra, world, rank)
            history = History(**done)
            replay = saved["shuffle_rng"]
        elif shared:
            if seed is not None:
                torch.manual_seed(seed)
        elif seed is None:
            shuffle.manual_seed(D.broadcast_object(int(torch.randint(0, 2**62, ()))))
        else:
            shuffle.manual_seed(seed)
            torch.manual_seed(_rank_seed(seed, rank))  # the objectives' randomness: one stream per rank

        step_module: nn.Module = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else None
            # one objective on all the parameters: every parameter gets a gradient (else DDP says so, below);
            # several objectives or parameter groups leave some without one, which DDP must look for
            simple = len(all_runs) == 1 and all_runs[0].objective.parameters is None
            step_module = DistributedDataParallel(_Step(model), device_ids=ids, find_unused_parameters=not simple)

        def loss_of(obj: Objective, batch: Batch) -> Tensor:
            if world == 1:
                return obj.loss(model, batch)
            try:
                return step_module(batch, obj.loss)
            except RuntimeError as e:
                if "find_unused_parameters" not in str(e):
                    raise
                raise RuntimeError(
                    "fit: some trainable parameters of the model got no gradient from the loss, which "
                    "DistributedDataParallel does not allow for a single objective on all parameters; give "
                    "objective=Objective(name, loss, parameters=...) naming those it trains, or freeze the others"
                ) from e

        def save(batch_in_epoch: int, shuffle_at_epoch: Tensor) -> None:
            if ckpt is None:
                return
            ranks = D.gather_object(C.rank_state(extra, device))  # every rank's own streams and state
            if D.is_main():
                content = C.payload(world=world, stages=[s.name for s, _, _ in plan], model=model, runs=all_runs,
                                    history=asdict(history), batch=batch_in_epoch, shuffle=shuffle_at_epoch,
                                    ranks=ranks, best=best_state)
                atomic_write(ckpt, lambda tmp: torch.save(content, tmp))
            D.barrier()

        def train_step(group: list[_Run], batch: Batch) -> float:
            local, weight = B.local_share(batch, rank, world)
            total, stepped = 0.0, False
            for r in group:
                if not r.objective.active(history.stage_step):
                    continue
                for _ in range(r.objective.steps):
                    loss = loss_of(r.objective, local)
                    if world > 1:  # DDP averages over ranks: scale each rank's mean by world * n_rank / n
                        value = D.all_reduce_sum([float(loss.detach()) * weight])[0]
                        loss = loss * (world * weight)
                    else:
                        value = loss.item()
                    if not math.isfinite(value):
                        raise FloatingPointError(
                            f"fit: the loss of objective {r.key!r} became {value} at step {history.step}; "
                            "lower the learning rate or set clip_grad"
                        )
                    for p in trainable:
                        p.grad = None
                    loss.backward()
                    if r.clip is not None:
                        nn.utils.clip_grad_norm_(r.params, r.clip)
                    r.opt.step()
                    if r.sched is not None:
                        r.sched.step()
                    history.losses.setdefault(r.key, []).append(value)
                total += value
                stepped = True
            if stepped:
                for hook in hooks:
                    hook()
            return total

        total_steps = sum(n for _, _, n in plan) * per_epoch
        bar = _bar(progress and D.is_main(), total_steps, history.step)
        start = time.perf_counter() - history.seconds
        model.train()
        entered = -1
        while True:
            stage, _, n_epochs = plan[history.stage]
            if history.stage_stopped or history.stage_epoch >= n_epochs:  # this stage is done
                if history.stage + 1 == len(plan):
                    break
                if restore_best and best_state is not None:
                    model.load_state_dict(best_state)
                history.stage += 1
                history.stage_epoch = history.stage_step = 0
                history.stage_stopped = False
                history.best_valid, history.best_epoch, best_state = math.inf, -1, None
                continue
            if entered != history.stage and stage.setup is not None:
                stage.setup(model)
            entered = history.stage
            group = runs[history.stage]
            # the shuffle of an epoch is drawn from the shuffle stream at its start: a run resumed
            # mid-epoch replays that draw (the checkpoint holds the stream's state then) and skips the batches done
            now = None
            if replay is not None:
                now = shuffle.get_state()
                shuffle.set_state(replay)
                replay = None
            at_epoch = shuffle.get_state()
            todo = B.epoch(data, batch_size, skip, shuffle, shared)
            if now is not None and shared and skip:  # the objectives' stream goes on from where it stopped
                shuffle.set_state(now)
            for b, batch in enumerate(todo, start=skip):
                value = train_step(group, batch)
                history.step += 1
                history.stage_step += 1
                history.step_loss.append(value)
                history.seconds = time.perf_counter() - start
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4f}", valid=_fmt(history.epoch_valid))
                if callback is not None:
                    callback(history.step, value)
                if checkpoint_every and history.step % checkpoint_every == 0:
                    save(b + 1, at_epoch)
            skip = 0
            history.epoch += 1
            history.stage_epoch += 1
            if valid is not None and any(r.objective.validate for r in group):
                scores = _evaluate(model, group, valid, batch_size)
                for k, s in scores.items():
                    history.valid.setdefault(k, []).append(s)
                v = sum(scores.values())
                history.epoch_valid.append(v)
                if v < history.best_valid:
                    history.best_valid, history.best_epoch = v, history.epoch - 1
                    best_state = copy.deepcopy(model.state_dict())
                elif patience is not None and history.epoch - 1 - history.best_epoch >= patience:
                    history.stopped_early = history.stage_stopped = True
            history.seconds = time.perf_counter() - start
            save(0, shuffle.get_state())
        if bar is not None:
            bar.close()
        if restore_best and best_state is not None:
            model.load_state_dict(best_state)
    return history


def _fmt(values: list[float]) -> str:
    """The last value, for the progress bar."""
    return f"{values[-1]:.4f}" if values else "-"


def _bar(progress: bool, total: int, done: int) -> Any:
    """A tqdm progress bar, or None."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="fit", dynamic_ncols=True, leave=False)
