"""Train the demo lesion classifier and write its weights and model card.

    python -m XAIMedSlicerLib.demo.train [--cases 1200] [--epochs 16] [--threads 2] [--out DIR]

Cases are made by :func:`cases.make_case` (seeds ``TRAIN_SEED_BASE + n``, lesion in every other case)
and preprocessed once by the package's MONAI pipeline, exactly as the explanation pipeline will
preprocess a full-resolution case. Each epoch then sees them under random augmentation: intensity
scale and shift, Gaussian noise, a left-right flip (the template is symmetric) and shifts of up to two
voxels. Accuracy is reported on a held-aside set of fresh cases (seeds ``HELD_OUT_SEED_BASE + n``,
lesion with probability 1/2), which training never sees.

The loss is cross-entropy plus two training-only aids: a lesion-map head (:class:`LesionMapHead`) that
gives the features a dense signal of where the lesion is, and, from half-way, a class-map loss
(:class:`ClassMapLocalisation`) that moves the "lesion" evidence onto the cells the lesion fills, so
that Grad-CAM points at it. The head is dropped afterwards and the logits are centred (probabilities
unchanged): the committed network is the plain MONAI DenseNet named in the card.

With the defaults (1200 cases, 16 epochs, 2 threads) it takes about 6 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..geometry.axes import kji_to_xyz
from ..io.atomic import atomic_path, write_json
from .cases import make_case
from .model import (
    ASSETS,
    CARD_NAME,
    GRADCAM_LAYER,
    PREPROCESSING,
    WEIGHTS_NAME,
    build_network,
    model_card,
    predict,
)

TRAIN_SEED_BASE = 1_000_000
HELD_OUT_SEED_BASE = 2_000_000
MAX_SHIFT = 2  # voxels
AUX_POS_WEIGHT = 10.0  # lesion cells are rare
CAM_WEIGHT = 1.0  # weight of the class-map localisation loss
CAM_START = 0.5  # ... which starts half-way, once the classifier has found the lesions (else it learns 0)
MAP_LAYER, MAP_CHANNELS = "features.denseblock1", 64  # where the training-only lesion-map head looks


def make_inputs(seeds, lesion=None, desc: str = "cases", masks: bool = False):
    """Preprocessed inputs (N, 1, X, Y, Z) as float16, labels, and (``masks``) lesion masks on the input grid.

    The masks are the cases' lesion masks resampled (nearest neighbour) onto the network-input grid.
    """
    from ..model.card import Preprocessing
    from ..preprocess.pipeline import map_to_model_grid, prepare_input

    pre = Preprocessing.from_dict(PREPROCESSING)
    xs, ys, ms = [], [], []
    for n, seed in enumerate(
        tqdm(seeds, desc=desc, unit="case", leave=False, disable=not sys.stderr.isatty())
    ):
        case = make_case(int(seed), lesion=None if lesion is None else bool(lesion[n]))
        prepared = prepare_input(case.image, pre)
        xs.append(prepared.tensor[0].to(torch.float16))
        ys.append(case.label)
        if masks:
            mask = kji_to_xyz(map_to_model_grid(case.lesion_mask, prepared.grid, "nearest").array)
            ms.append(torch.from_numpy(np.ascontiguousarray(mask) > 0)[None])
    y = torch.tensor(ys, dtype=torch.long)
    return (torch.stack(xs), y, torch.stack(ms)) if masks else (torch.stack(xs), y)


def augment(x: torch.Tensor, gen: torch.Generator, masks: torch.Tensor | None = None):
    """Random intensity scale/shift, noise, left-right flip and small shifts of a batch (B, 1, X, Y, Z).

    ``masks`` (B, 1, X, Y, Z) get the same flips and shifts; then ``(x, masks)`` is returned.
    """
    b = x.shape[0]
    x = x.float()
    scale = 0.9 + 0.2 * torch.rand(b, 1, 1, 1, 1, generator=gen)
    shift = -0.05 + 0.1 * torch.rand(b, 1, 1, 1, 1, generator=gen)
    sigma = 0.02 * torch.rand(b, 1, 1, 1, 1, generator=gen)
    x = x * scale + shift + sigma * torch.randn(x.shape, generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (b, 3), generator=gen).tolist()
    out = [_flip_shift(x, flip, offsets)]
    if masks is not None:
        out.append(_flip_shift(masks.float(), flip, offsets))
    return out[0] if masks is None else tuple(out)


def _flip_shift(x: torch.Tensor, flip: torch.Tensor, offsets: list) -> torch.Tensor:
    x = x.clone()
    x[flip] = torch.flip(x[flip], dims=(2,))
    m = MAX_SHIFT
    padded = F.pad(x, (m, m, m, m, m, m))
    sx, sy, sz = x.shape[2:]
    return torch.stack(
        [p[:, i : i + sx, j : j + sy, k : k + sz] for p, (i, j, k) in zip(padded, offsets, strict=True)]
    )


def keep_output(network: torch.nn.Module, layer: str, owner) -> None:
    """After each forward pass, ``owner.features`` holds the output of ``layer``."""
    module = dict(network.named_modules())[layer]
    module.register_forward_hook(lambda _m, _i, out: setattr(owner, "features", out))


class LesionMapHead(torch.nn.Module):
    """Training-only head: a 1x1x1 convolution on ``layer`` predicting which cells hold a lesion.

    It gives the convolutional features a dense learning signal (where the lesion is), so that the
    classifier learns within minutes on a CPU; it is discarded after training.
    """

    def __init__(self, network: torch.nn.Module, layer: str, channels: int) -> None:
        super().__init__()
        self.features = None
        keep_output(network, layer, self)
        self.conv = torch.nn.Conv3d(channels, 1, kernel_size=1)

    def loss(self, masks: torch.Tensor) -> torch.Tensor:
        """BCE between the predicted lesion map and the masks max-pooled onto the feature grid."""
        logits = self.conv(self.features)
        target = F.max_pool3d(masks, kernel_size=masks.shape[2] // logits.shape[2])
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(AUX_POS_WEIGHT))


class ClassMapLocalisation(torch.nn.Module):
    """Training-only loss: the share of the "lesion" class activation map that lies off the lesion.

    With global average pooling before the linear layer, ``logit(lesion) - logit(no lesion)`` is the
    mean over the cells of ``layer`` of the class activation map ``cam = (w_lesion - w_none) . features``,
    and Grad-CAM of "lesion" on that layer (after centring the logits) is ``relu(cam)`` up to a factor.
    For lesion cases this loss is ``sum(relu(cam) * (1 - coverage)) / sum(relu(cam))``, with ``coverage``
    the lesion's share of each cell: it is 0 when all positive evidence sits on cells the lesion fills.
    """

    def __init__(self, network: torch.nn.Module, layer: str) -> None:
        super().__init__()
        self.features = None
        keep_output(network, layer, self)
        self.linears = [last_linear(network)]  # a list: the layer stays the network's, not a submodule

    def loss(self, masks: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over the lesion cases of the batch (0 when it has none)."""
        weight = self.linears[0].weight
        cam = torch.relu(torch.einsum("bcxyz,c->bxyz", self.features, weight[1] - weight[0]))
        coverage = F.avg_pool3d(masks, kernel_size=masks.shape[2] // cam.shape[1])[:, 0]
        off = (cam * (1.0 - coverage)).flatten(1).sum(1) / (cam.flatten(1).sum(1) + 1e-6)
        lesion = labels == 1
        return off[lesion].mean() if lesion.any() else cam.sum() * 0.0


def last_linear(network: torch.nn.Module) -> torch.nn.Linear:
    """The network's final linear layer (the classifier)."""
    return [m for m in network.modules() if isinstance(m, torch.nn.Linear)][-1]


@torch.no_grad()
def centre_logits(network: torch.nn.Module) -> None:
    """Subtract the mean weight and bias of the two classes from the classifier.

    Every probability is unchanged, and the "lesion" logit alone carries the class activation map, so
    that Grad-CAM of "lesion" shows the evidence for a lesion against no lesion.
    """
    linear = last_linear(network)
    linear.weight.sub_(linear.weight.mean(dim=0, keepdim=True))
    linear.bias.sub_(linear.bias.mean())


def train(
    cases: int = 1200,
    epochs: int = 16,
    batch: int = 8,
    lr: float = 5e-3,
    seed: int = 0,
    held_out: int = 200,
    out_dir: Path = ASSETS,
    threads: int = 2,
    aux_weight: float = 1.0,
    cam_weight: float = CAM_WEIGHT,
) -> dict:
    """Train, evaluate on the held-aside cases, write weights and card into ``out_dir``; return the stats."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    start = time.perf_counter()
    seeds = TRAIN_SEED_BASE + np.arange(cases)
    x, y, masks = make_inputs(seeds, lesion=(np.arange(cases) % 2 == 1), desc="training cases", masks=True)
    made = time.perf_counter() - start
    print(f"made {cases} training cases in {made:.0f} s", flush=True)

    network = build_network()
    head = LesionMapHead(network, MAP_LAYER, MAP_CHANNELS)
    localisation = ClassMapLocalisation(network, GRADCAM_LAYER)
    params = list(network.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps = epochs * ((cases + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(cases, generator=gen)
        losses, correct = [], 0
        for s in range(0, cases, batch):
            idx = order[s : s + batch]
            xb, mb = augment(x[idx], gen, masks[idx])
            logits = network(xb)
            loss = F.cross_entropy(logits, y[idx])
            if aux_weight:
                loss = loss + aux_weight * head.loss(mb)
            if cam_weight and epoch >= CAM_START * epochs:
                loss = loss + cam_weight * localisation.loss(mb, y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == y[idx]).sum())
        print(
            f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}, training accuracy {correct / cases:.3f}, "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    centre_logits(network)
    seconds = time.perf_counter() - start

    hx, hy = make_inputs(HELD_OUT_SEED_BASE + np.arange(held_out), desc="held-aside cases")
    probs = predict(network, hx)
    accuracy = float((probs.argmax(1) == hy.numpy()).mean())
    print(
        f"held-aside accuracy {accuracy:.3f} on {held_out} cases ({int(hy.sum())} with a lesion)", flush=True
    )

    training = {
        "seed": seed,
        "cases": cases,
        "epochs": epochs,
        "seconds": round(seconds, 1),
        "held_out_accuracy": round(accuracy, 4),
        "held_out_cases": held_out,
        "train_seeds": f"{TRAIN_SEED_BASE}..{TRAIN_SEED_BASE + cases - 1}",
        "held_out_seeds": f"{HELD_OUT_SEED_BASE}..{HELD_OUT_SEED_BASE + held_out - 1}",
        "auxiliary_losses": {
            "lesion_map_bce": {"layer": MAP_LAYER, "weight": aux_weight},
            "class_map_off_lesion_share": {"layer": GRADCAM_LAYER, "weight": cam_weight},
        },
        "threads": threads,
        "cpu": _cpu_name(),
    }
    write_model(network, Path(out_dir), training)
    return training


def write_model(network: torch.nn.Module, out_dir: Path, training: dict) -> Path:
    """Write the safetensors weights, then the card with their hash (each atomically)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    weights = out_dir / WEIGHTS_NAME
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    card_path = out_dir / CARD_NAME
    write_json(card_path, model_card(digest, training))
    return card_path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m XAIMedSlicerLib.demo.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cases", type=int, default=1200, help="training cases (default 1200)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=int, default=200, help="held-aside evaluation cases (default 200)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--aux-weight", type=float, default=1.0, help="auxiliary lesion-map loss weight (0: off)"
    )
    parser.add_argument("--cam-weight", type=float, default=CAM_WEIGHT)
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder for the weights and card")
    args = parser.parse_args(argv)
    stats = train(
        args.cases,
        args.epochs,
        args.batch,
        args.lr,
        args.seed,
        args.held_out,
        args.out,
        args.threads,
        args.aux_weight,
        args.cam_weight,
    )
    print(
        f"wrote {args.out / CARD_NAME} ({stats['seconds']:.0f} s training, accuracy {stats['held_out_accuracy']:.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
