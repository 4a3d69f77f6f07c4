r"""One training loop for every model with a training objective: ``fit``.

Mini-batches from tensors or a ``DataLoader``; Adam (or any optimizer) with an
optional learning-rate schedule and gradient clipping; validation every epoch
with early stopping and restore of the best weights; a progress bar; atomic
checkpoints; and exact resume: a run killed at any moment and resumed from its
last checkpoint produces the same loss curve as an uninterrupted one.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils.data import DataLoader

from gendist.io import atomic_write

__all__ = ["History", "fit", "nll_objective", "load_checkpoint"]

Batch = tuple[Tensor, ...]
Objective = Callable[[nn.Module, Batch], Tensor]


def nll_objective(model: nn.Module, batch: Batch) -> Tensor:
    r"""The mean negative log-likelihood :math:`-\frac{1}{N} \sum_n \log p(x_n \mid c_n)`.

    ``batch`` is ``(x,)`` or ``(x, c)``; the model is called as ``model(c)``.
    A model with its own training loss (a latent-variable model's negative
    ELBO or IWAE bound: a ``loss(x, c)`` method) is trained on that instead.
    """
    x = batch[0]
    c = batch[1] if len(batch) > 1 else None
    own = getattr(model, "loss", None)
    if callable(own):
        return own(x, c)
    return -model(c).log_prob(x).mean()


@dataclass
class History:
    r"""What a run did: the loss of every step and the validation loss of every epoch."""

    step_loss: list[float] = field(default_factory=list)
    epoch_valid: list[float] = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    best_valid: float = math.inf
    best_epoch: int = -1
    stopped_early: bool = False
    seconds: float = 0.0


def _batches(data: Tensor | Sequence[Tensor] | DataLoader, batch_size: int, shuffle: bool) -> Iterator[Batch]:
    """Iterate over one epoch; shuffling draws from the global torch RNG (saved by checkpoints)."""
    if isinstance(data, DataLoader):
        for batch in data:
            yield tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
        return
    tensors = (data,) if isinstance(data, Tensor) else tuple(data)
    n = len(tensors[0])
    order = torch.randperm(n) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield tuple(t[idx.to(t.device)] for t in tensors)


def _epoch(data: object, batch_size: int, skip: int) -> Iterator[Batch]:
    """One shuffled epoch whose shuffle is drawn now (not at the first ``next``), less ``skip`` batches."""
    batches = _batches(data, batch_size, shuffle=True)
    for _ in range(skip):
        next(batches)
    first = next(batches, None)
    return itertools.chain(() if first is None else (first,), batches)


def _check_data(name: str, data: object) -> None:
    if isinstance(data, DataLoader):
        return
    tensors = (data,) if isinstance(data, Tensor) else tuple(data) if isinstance(data, (list, tuple)) else None
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"fit: `{name}` must be a tensor, a tuple (x, c) of tensors or a DataLoader")
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"fit: the tensors of `{name}` have different lengths {[len(t) for t in tensors]}")
    if len(tensors[0]) == 0:
        raise ValueError(f"fit: `{name}` is empty")


def _evaluate(model: nn.Module, objective: Objective, data: object, batch_size: int) -> float:
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in _batches(data, batch_size, shuffle=False):
            n = len(batch[0])
            total += float(objective(model, batch)) * n
            count += n
    model.train(was_training)
    return total / count


def load_checkpoint(path: str | os.PathLike) -> dict:
    r"""Load a checkpoint written by :func:`fit` (``weights_only=True``: no arbitrary objects are unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # truncated or foreign files
        raise ValueError(f"{path} is not a readable gendist checkpoint ({type(e).__name__}: {e})") from e


def fit(
    model: nn.Module,
    data: Tensor | Sequence[Tensor] | DataLoader,
    *,
    valid: Tensor | Sequence[Tensor] | DataLoader | None = None,
    objective: Objective = nll_objective,
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
) -> History:
    r"""Train ``model`` by minimizing ``objective`` over mini-batches of ``data``.

    Arguments:
        model: the module to train (``model(c)`` returns a distribution for the
            default objective).
        data: training data: a tensor ``x``, a tuple ``(x, c)``, or a ``DataLoader``.
        valid: validation data of the same form, scored every epoch.
        objective: ``objective(model, batch) -> loss``; by default the mean NLL, or the
            model's own ``loss(x, c)`` where it has one (latent-variable models).
        epochs: the number of passes over ``data``.
        batch_size: the mini-batch size (for tensor data).
        lr: the learning rate of the default optimizer (Adam).
        optimizer: a function from parameters to an optimizer, instead of Adam.
        schedule: ``None`` or ``"cosine"`` (decay to 0 over all steps).
        clip_grad: clip the gradient norm to this value.
        patience: stop after this many epochs without a better validation loss.
        restore_best: end with the weights of the best validation epoch.
        seed: seed of the run (initialization is the caller's; shuffling and any
            randomness in the objective are the run's); None to not reseed.
        checkpoint_dir: write ``last.pt`` there every ``checkpoint_every`` steps
            and at the end, atomically.
        checkpoint_every: the checkpoint period in steps (None: only at the end).
        resume: continue from ``checkpoint_dir/last.pt`` exactly where it stopped.
        progress: show a progress bar with the loss and validation loss.
        callback: called as ``callback(step, loss)`` after every step. Every module of the
            model with an ``after_step()`` method (the model itself or one inside it) has it
            called after every optimizer step (the moving average of a diffusion model's weights).

    Returns:
        The :class:`History`: every step's loss, every epoch's validation loss.

    Example:
        >>> from gendist.flows import MAF
        >>> flow = MAF(2, transforms=1, hidden=(8,))
        >>> h = fit(flow, torch.randn(64, 2), valid=torch.randn(32, 2), epochs=2, progress=False)
        >>> len(h.step_loss), len(h.epoch_valid)
        (2, 2)
    """
    _check_data("data", data)
    if valid is not None:
        _check_data("valid", valid)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"fit: epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if schedule not in (None, "cosine"):
        raise ValueError(f"fit: schedule must be None or 'cosine', got {schedule!r}")
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    if resume and (ckpt is None or not ckpt.is_file()):
        raise FileNotFoundError(f"fit: resume=True but there is no checkpoint {ckpt}")
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    params = [p for p in model.parameters() if p.requires_grad]
    # per-step updates of the model or of any module inside it (a diffusion model's EMA, also when wrapped)
    hooks = [h for h in (getattr(m, "after_step", None) for m in model.modules()) if callable(h)]
    opt = optimizer(params) if optimizer is not None else torch.optim.Adam(params, lr=lr)
    per_epoch = _steps_per_epoch(data, batch_size)
    total_steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps) if schedule == "cosine" else None

    with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
        history, best_state, skip, epoch_rng = History(), None, 0, None
        if resume:
            state = load_checkpoint(ckpt)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if sched is not None and "scheduler" in state:
                sched.load_state_dict(state["scheduler"])
            history = History(**state["history"])
            best_state = state.get("best")
            skip = state["batch"]
            epoch_rng = state["epoch_rng"]
            torch.set_rng_state(state["rng"])
        elif seed is not None:
            torch.manual_seed(seed)

        def save(batch_in_epoch: int, rng_at_epoch: Tensor) -> None:
            if ckpt is None:
                return
            state = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "history": asdict(history),
                "batch": batch_in_epoch,
                "epoch_rng": rng_at_epoch,
                "rng": torch.get_rng_state(),
            }
            if sched is not None:
                state["scheduler"] = sched.state_dict()
            if best_state is not None:
                state["best"] = best_state
            atomic_write(ckpt, lambda tmp: torch.save(state, tmp))

        bar = _bar(progress, total_steps, history.step)
        start = time.perf_counter() - history.seconds
        model.train()
        while history.epoch < epochs and not history.stopped_early:
            # the shuffle of an epoch is drawn from the RNG state at its start: a run resumed
            # mid-epoch replays that draw, skips the batches done, then restores the RNG
            rng_now = torch.get_rng_state()
            if epoch_rng is not None:
                torch.set_rng_state(epoch_rng)
            at_epoch = torch.get_rng_state()
            batches = _epoch(data, batch_size, skip)
            if epoch_rng is not None and skip:
                torch.set_rng_state(rng_now)
            epoch_rng = None
            for b, batch in enumerate(batches, start=skip):
                loss = objective(model, batch)
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"fit: the loss became {value} at step {history.step}; lower the learning "
                        "rate or set clip_grad"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad is not None:
                    nn.utils.clip_grad_norm_(params, clip_grad)
                opt.step()
                for hook in hooks:
                    hook()
                if sched is not None:
                    sched.step()
                history.step += 1
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
            if valid is not None:
                v = _evaluate(model, objective, valid, batch_size)
                history.epoch_valid.append(v)
                if v < history.best_valid:
                    history.best_valid, history.best_epoch = v, history.epoch - 1
                    best_state = copy.deepcopy(model.state_dict())
                elif patience is not None and history.epoch - 1 - history.best_epoch >= patience:
                    history.stopped_early = True
            history.seconds = time.perf_counter() - start
            save(0, torch.get_rng_state())
        if bar is not None:
            bar.close()
        if restore_best and best_state is not None:
            model.load_state_dict(best_state)
    return history


def _steps_per_epoch(data: object, batch_size: int) -> int:
    if isinstance(data, DataLoader):
        return len(data)
    n = len(data) if isinstance(data, Tensor) else len(data[0])
    return math.ceil(n / batch_size)


def _fmt(values: list[float]) -> str:
    return f"{values[-1]:.4f}" if values else "-"


def _bar(progress: bool, total: int, done: int):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="fit", dynamic_ncols=True, leave=False)
