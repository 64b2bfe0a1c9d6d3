"""Tiny real networks for tests, with weights set so that their evidence is known."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class BlobClassifier(nn.Module):
    """Two convolutions and a sum: class 0's logit grows with bright blobs anywhere.

    Class 1's logit is the negative of class 0's, so the evidence for class 0 sits at the blob.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv3d(4, 2, 3, padding=1)
        with torch.no_grad():
            self.conv1.weight.fill_(1.0 / 27)
            self.conv1.bias.copy_(torch.tensor([-1.0, -1.5, -0.5, -2.0]))
            self.conv2.weight.fill_(0.0)
            self.conv2.weight[0, :, 1, 1, 1] = 1.0
            self.conv2.weight[1, :, 1, 1, 1] = -1.0
            self.conv2.bias.fill_(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.conv1(x))
        b = torch.relu(self.conv2(a))
        s = b.flatten(2).sum(-1)
        return torch.stack([s[:, 0] - s[:, 1], s[:, 1] - s[:, 0]], dim=1)


def save_torchscript(model: nn.Module, path: Path, script: bool = True) -> Path:
    """Save ``model`` as TorchScript (scripted or traced)."""
    model = model.eval()
    ts = torch.jit.script(model) if script else torch.jit.trace(model, torch.zeros(1, 1, 8, 8, 8))
    ts.save(str(path))
    return path


def small_densenet(out_channels: int = 2, seed: int = 0) -> nn.Module:
    """A real MONAI DenseNet (3D), small enough for CPU tests."""
    from monai.networks.nets import DenseNet

    torch.manual_seed(seed)
    return DenseNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=out_channels,
        init_features=8,
        growth_rate=4,
        block_config=(2, 2),
    ).eval()
