r"""Translation and text to image on the 8x8 digits: Pix2Pix, CycleGAN and TextToImage, scored by a digit classifier.

Data (``gendist.data``): the 1200/300 train/test split of the 8x8 digits and their "thicken" (or ``--kind
invert``) copies, levels :math:`0..16` seen by the models as :math:`x / 8 - 1 \in [-1, 1]` (``tanh`` outputs).

- Pix2Pix trains on the paired train split ``(target, source)``; on the test split we measure the mean
  :math:`\lvert G(x) - y \rvert` to the paired target in levels, and class preservation: the share of
  translations a digit classifier puts in the source's class.
- CycleGAN trains on unpaired halves of the train split (``digit_pairs(unpaired=True)``: no image on both
  sides); on the test split: the cycle error :math:`\lvert F(G(a)) - a \rvert` in levels, class preservation of
  :math:`G(a)` (and of :math:`F(b)` for the test targets :math:`b`), and, since the transform is known, the
  distance of :math:`G(a)` to the true target.
- TextToImage trains on the train images with their captions (``digit_captions``: "a thick three slanted
  right"); for each test caption it draws one image, and we measure the caption-match share: the classifier's
  class equals the caption's digit (and the thickness and slant bins of the image equal the caption's); and
  the diversity: the mean :math:`\lvert x_1 - x_2 \rvert` (levels) of two images drawn for one caption,
  beside that of pairs of real test images with the same caption.

The classifier (``gendist.metrics.train_feature_classifier``, 30 epochs) learns the train split's labels on the
source and the target domain together; its test accuracy on real images of each domain is the ceiling of the
class-preservation shares (chance: 0.1). Baselines in the JSON: the identity map (translation = source).

Everything is resumable: the classifier and each finished model are kept in ``--out``, an interrupted fit
resumes from its checkpoint (``fit(..., checkpoint_dir, resume=True)``); a finished model's metrics are read
back, not recomputed (``--fresh`` starts over).

Measured (seed 0, ``--kind thicken``, defaults, CPU with 2 threads on a shared machine; deterministic, the
same numbers on a rerun): classifier accuracy 0.987 on test sources, 0.977 on test targets; the identity map's
L1 to the target is 2.435 levels.

==========  =====  =======  ========  ==========  ===========  ===========================  ===========
model       steps  train s  L1 (lv)   class kept  cycle (lv)   caption: class/thick/slant   diversity
==========  =====  =======  ========  ==========  ===========  ===========================  ===========
pix2pix       570       46     0.692       0.980  -            -                            -
cyclegan      570      128     1.412       0.970  0.629        -                            -
t2i           760      105  -         -           -            0.997 / 0.403 / 0.907        1.585 (2.402)
==========  =====  =======  ========  ==========  ===========  ===========================  ===========

(lv: levels of 0..16. L1: mean distance to the paired target; cycle: mean :math:`\lvert F(G(a)) - a \rvert`;
diversity: mean :math:`\lvert x_1 - x_2 \rvert` of two images for one caption, in brackets that of real
test images sharing a caption.) CycleGAN's reverse translation :math:`F(b)` keeps the class of 0.953 of the
test targets; for text to image, chance is 0.1 for the class and about 1/3 for each attribute bin.

With ``--kind invert`` (the identity map's L1 is 12.68 levels; classifier 0.993 on inverted test digits)
Pix2Pix reaches 0.430 levels and keeps 0.993 of the classes in 570 steps; CycleGAN does not: its cycle
error is small (0.803 levels) and its translations look like inverted digits, but of another class (0.017
kept, L1 6.22 levels): unpaired, a class-permuting inversion that :math:`F` undoes is as cycle-consistent as the
inversion itself, and the identity term only constrains :math:`G` on images that are already inverted. (On
``thicken`` the true map is near the identity, which the identity term favours.)

Run (a few minutes of training per model on 2 busy CPU cores; see the table it prints):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gan_translation.py --out runs/gan-translation
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gan_translation.py --models cyclegan --kind invert
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from gendist.config import config
from gendist.data import digit_captions, digit_pairs, load_digits, slant, stroke_thickness, tokenize
from gendist.gan import CycleGAN, Pix2Pix, TextToImage
from gendist.inference import fit
from gendist.metrics import FeatureClassifier, train_feature_classifier

SHAPE = (1, 8, 8)
MODELS = ("pix2pix", "cyclegan", "t2i")
MAX_LEN = 5
LR = {"pix2pix": 2e-4, "cyclegan": 2e-4, "t2i": 1e-3}  # the papers' 2e-4; text to image learns its classes faster


def to_model(x: torch.Tensor) -> torch.Tensor:
    return (x / 8 - 1).reshape(-1, *SHAPE)


def to_levels(y: torch.Tensor) -> torch.Tensor:
    return ((y.reshape(y.shape[0], -1) + 1) * 8).clamp(0, 16)


def classifier(args: argparse.Namespace, out: Path) -> FeatureClassifier:
    path = out / "classifier.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        net = FeatureClassifier(SHAPE, 10)
        net.load_state_dict(saved["state"])
        net.accuracy = saved["accuracy"]
        return net.eval()
    source, target, y = digit_pairs("train", args.kind, labels=True)
    test_source, test_target, test_y = digit_pairs("test", args.kind, labels=True)
    start = time.perf_counter()
    net = train_feature_classifier(torch.cat([source, target]), torch.cat([y, y]), SHAPE, classes=10, seed=args.seed,
                                   valid=(torch.cat([test_source, test_target]), torch.cat([test_y, test_y])))
    with torch.no_grad():
        accuracy = {"both": net.accuracy,
                    "source": (net(test_source).argmax(1) == test_y).double().mean().item(),
                    "target": (net(test_target).argmax(1) == test_y).double().mean().item(),
                    "seconds": round(time.perf_counter() - start, 1)}
    net.accuracy = accuracy
    torch.save({"state": net.state_dict(), "accuracy": accuracy}, path)
    return net


def share(net: FeatureClassifier, levels: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (net(levels.cpu().float()).argmax(1) == y.cpu()).double().mean().item()


def build(name: str, args: argparse.Namespace) -> torch.nn.Module:
    channels = args.channels or {"pix2pix": 32, "cyclegan": 16, "t2i": 32}[name]
    rate = args.lr or LR[name]
    lr = dict(lr_generator=rate, lr_critic=rate)
    if name == "pix2pix":
        return Pix2Pix(SHAPE, channels=channels, l1=args.l1, **lr)
    if name == "cyclegan":
        return CycleGAN(SHAPE, channels=channels, cycle=args.cycle, identity=args.identity, **lr)
    kl = {} if args.kl is None else {"kl": args.kl}
    return TextToImage(SHAPE, max_len=MAX_LEN, channels=channels, **kl, **lr)


def train_data(name: str, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "pix2pix":
        source, target = digit_pairs("train", args.kind)
        return to_model(target), to_model(source).flatten(1)
    if name == "cyclegan":
        a, b = digit_pairs("train", args.kind, unpaired=True, seed=args.seed)
        return to_model(a), to_model(b)
    x, y = load_digits("train", labels=True)
    return to_model(x), tokenize(digit_captions(x, y), max_len=MAX_LEN).float()


def evaluate(name: str, model: torch.nn.Module, net: FeatureClassifier, args: argparse.Namespace,
             device: torch.device) -> dict[str, Any]:
    model.eval()
    torch.manual_seed(args.seed + 1)
    if name == "t2i":
        x, y = load_digits("test", labels=True)
        captions = digit_captions(x, y)
        tokens = tokenize(captions, max_len=MAX_LEN).float().to(device)
        with torch.no_grad():
            draws = model(tokens).sample((2,))
        images, other = to_levels(draws[0]).cpu(), to_levels(draws[1]).cpu()
        thick, lean = stroke_thickness(x, bins=True), slant(x, bins=True)
        groups: dict[str, list[int]] = {}
        for i, caption in enumerate(captions):
            groups.setdefault(caption, []).append(i)
        gaps = [(x[i] - x[j]).abs().mean().item() for g in groups.values() for k, i in enumerate(g) for j in g[k + 1:]]
        return {"caption_class_match": share(net, images, y),
                "diversity_levels": (images - other).abs().mean().item(),
                "real_diversity_levels": sum(gaps) / len(gaps),
                "caption_thickness_match": (stroke_thickness(images, bins=True) == thick).double().mean().item(),
                "caption_slant_match": (slant(images, bins=True) == lean).double().mean().item(),
                "real_class_match": share(net, x, y), "chance_class_match": 0.1,
                "example_captions": captions[:3]}
    source, target, y = digit_pairs("test", args.kind, labels=True)
    a = to_model(source).flatten(1).to(device)
    with torch.no_grad():
        fake = to_levels(model(a).sample()).cpu()
        result = {"l1_to_target_levels": (fake - target).abs().mean().item(),
                  "class_preservation": share(net, fake, y),
                  "identity_l1_to_target_levels": (source - target).abs().mean().item(),
                  "real_target_accuracy": share(net, target, y)}
        if name == "cyclegan":
            b = to_model(target).flatten(1).to(device)
            back = to_levels(model.reverse(model.to_b(a).flatten(1)).sample()).cpu()
            fake_a = to_levels(model.reverse(b).sample()).cpu()
            result.update({"cycle_error_levels": (back - source).abs().mean().item(),
                           "reverse_class_preservation": share(net, fake_a, y),
                           "reverse_l1_to_source_levels": (fake_a - source).abs().mean().item()})
    return result


def run(name: str, args: argparse.Namespace, net: FeatureClassifier, out: Path, device: torch.device
        ) -> dict[str, Any]:
    path = out / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.manual_seed(args.seed)
    model = build(name, args).to(device)
    data = tuple(t.to(device) for t in train_data(name, args))
    weights = out / f"{name}.pt"
    ckpt = out / f"{name}-checkpoint"
    epochs = args.epochs or {"pix2pix": 30, "cyclegan": 30, "t2i": 40}[name]
    batch = args.batch or {"pix2pix": 64, "cyclegan": 32, "t2i": 64}[name]
    start = time.perf_counter()
    if weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        history = None
    else:
        history = fit(model, data, epochs=epochs, batch_size=batch, lr=args.lr or LR[name], seed=args.seed,
                      checkpoint_dir=ckpt, resume=(ckpt / "last.pt").exists(), progress=False)
        torch.save(model.state_dict(), weights)
    result: dict[str, Any] = {"model": name, "kind": args.kind, "epochs": epochs, "batch": batch,
                              "parameters": sum(p.numel() for p in model.parameters()), "config": config(model)}
    if history is not None:
        result.update(train_seconds=round(history.seconds, 1), steps=history.step,
                      last_losses={k: round(sum(v[-20:]) / len(v[-20:]), 4) for k, v in history.losses.items()})
    result.update(evaluate(name, model, net, args, device))
    result["eval_seconds"] = round(time.perf_counter() - start - result.get("train_seconds", 0.0), 1)
    path.write_text(json.dumps(result, indent=2))
    print(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'config'})}", flush=True)
    return result


def table(results: dict[str, dict[str, Any]], net: FeatureClassifier) -> str:
    def f(value: Any, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    acc = net.accuracy or {}
    rows = [f"classifier test accuracy: source {f(acc.get('source'))}, target {f(acc.get('target'))}", "",
            "| model | steps | train s | L1 to target (levels) | class kept | cycle error (levels) | "
            "caption match (class / thickness / slant) | diversity (levels; real) |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        match = "-" if name != "t2i" else (f"{f(r['caption_class_match'])} / {f(r['caption_thickness_match'])} / "
                                           f"{f(r['caption_slant_match'])}")
        rows.append(f"| {name} | {f(r.get('steps'))} | {f(r.get('train_seconds'), 0)} | "
                    f"{f(r.get('l1_to_target_levels'))} | {f(r.get('class_preservation'))} | "
                    f"{f(r.get('cycle_error_levels'))} | {match} | {f(r.get('diversity_levels'))}; "
                    f"{f(r.get('real_diversity_levels'))} |")
    some = next((r for r in results.values() if "identity_l1_to_target_levels" in r), None)
    if some is not None:
        rows += ["", f"identity map (translation = source): L1 to target {f(some['identity_l1_to_target_levels'])} "
                     f"levels"]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--kind", default="thicken", choices=["thicken", "invert"], help="the translation pairs")
    p.add_argument("--epochs", type=int, default=0, help="0: each model's default (30, 30, 40)")
    p.add_argument("--batch", type=int, default=0, help="0: each model's default (64, 32, 64)")
    p.add_argument("--channels", type=int, default=0, help="0: each model's default (32, 16, 32)")
    p.add_argument("--lr", type=float, default=0.0,
                   help="Adam's rate for both players (betas 0.5, 0.999); 0: each model's (2e-4, 2e-4, 1e-3)")
    p.add_argument("--l1", type=float, default=100.0, help="Pix2Pix's L1 weight")
    p.add_argument("--cycle", type=float, default=10.0, help="CycleGAN's cycle weight")
    p.add_argument("--identity", type=float, default=0.5, help="CycleGAN's identity weight (relative to --cycle)")
    p.add_argument("--kl", type=float, default=None,
                   help="TextToImage's conditioning-augmentation KL weight (default: the recipe's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fresh", action="store_true", help="delete --out's earlier results first")
    p.add_argument("--out", default="runs/gan-translation")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        p.error(f"unknown models {unknown}; choose among {MODELS}")
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    net = classifier(args, out)
    results = {name: run(name, args, net, out, device) for name in names}
    (out / "summary.json").write_text(json.dumps({"classifier": net.accuracy, "args": vars(args),
                                                  "results": results}, indent=2))
    print(table(results, net))


if __name__ == "__main__":
    main()
