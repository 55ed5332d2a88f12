"""Small models for the workflow tests."""

import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """Embedding → Conv2d → Linear → ReLU → Linear: every module kind a recipe covers."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 64)
        self.conv = nn.Conv2d(4, 8, kernel_size=(1, 16), bias=True)  # 64 weights per channel
        self.fc1 = nn.Linear(8 * 16, 128)
        self.fc2 = nn.Linear(128, 32)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)  # [B, 16, 64]
        x = self.conv(x.view(-1, 16, 4, 16).transpose(1, 2))  # [B, 8, 16, 1]
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def tiny_batches():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 50, (4, 16), generator=g) for _ in range(3)]
