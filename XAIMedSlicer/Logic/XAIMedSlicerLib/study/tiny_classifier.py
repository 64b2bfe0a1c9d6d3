"""A tiny 3D lesion detector, trained in seconds inside the benchmark where no project classifier exists.

The network knows the dataset's lesion-free scan (a fixed buffer, like an atlas) and looks at the
difference: three 3x3x3 convolutions (the second with stride 2) with ReLU, global max pooling and a
linear layer to two logits (no lesion, lesion). Without the reference, a network this small does not
learn the task in the benchmark's time budget. Training is seeded (weights and batch order).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..geometry.volume import Volume
from .benchmark_data import Case, to_input

GRADCAM_LAYER = "features.4"  # the last convolution
GAIN = 10.0  # differences of 0.1 become signals of order 1: training then takes a few dozen steps


class TinyLesionNet(nn.Module):
    """GAIN (x - reference) - conv(8) - conv(16, stride 2) - conv(16) - global max - linear(2)."""

    def __init__(self, reference: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("reference", reference.detach().clone().float())
        self.features = nn.Sequential(
            nn.Conv3d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv3d(8, 16, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.Conv3d(16, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool3d(1)
        self.classifier = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(GAIN * (x - self.reference))).flatten(1))


def stack(cases: list[Case]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (N, 1, X, Y, Z) and labels (N,)."""
    return torch.cat([to_input(c.image) for c in cases]), torch.tensor([c.label for c in cases])


@torch.no_grad()
def accuracy(model: nn.Module, cases: list[Case], batch: int = 16) -> float:
    """Share of cases whose predicted class is their label."""
    x, y = stack(cases)
    pred = torch.cat([model(x[s : s + batch]).argmax(1) for s in range(0, len(x), batch)])
    return float((pred == y).float().mean())


def train_classifier(
    train: list[Case],
    reference: Volume,
    *,
    epochs: int,
    seed: int,
    batch: int = 8,
    lr: float = 3e-3,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[TinyLesionNet, dict]:
    """Train a TinyLesionNet on ``train`` (seeded); returns it in eval mode with the final training loss."""
    torch.manual_seed(seed)
    model = TinyLesionNet(to_input(reference))
    x, y = stack(train)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for s in range(0, len(x), batch):
            idx = order[s : s + batch]
            xb = x[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
        if progress:
            progress((epoch + 1) / epochs, f"training epoch {epoch + 1}/{epochs}, loss {losses[-1]:.3f}")
    model.eval()
    return model, {"epochs": epochs, "train_cases": len(train), "final_loss": float(np.round(losses[-1], 6))}
