"""A small CNN on scikit-learn's bundled ``digits`` (8x8 images): float training,
then PTQ and QAT, measured as test accuracy.

Everything is seeded: the split, the initialization and the batch order, so a
run reproduces its table (on the same torch build).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from quantkit.torch import calibrate, convert, prepare, recipes
from torch import nn

EPOCHS = 30
QAT_EPOCHS = 15


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def load_data():
    """(train_x, train_y, test_x, test_y): 80 / 20 split, stratified, fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    idx = torch.arange(len(y)).numpy()
    train, test = train_test_split(idx, test_size=0.2, random_state=0, stratify=y.numpy())
    return x[train], y[train], x[test], y[test]


def train(model, x, y, epochs: int, lr: float, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, x, y) -> float:
    return (model(x).argmax(dim=1) == y).float().mean().item()


@dataclass(frozen=True)
class Variant:
    label: str
    recipe: recipes.Recipe | None
    qat: bool = False


VARIANTS = [
    Variant("fp32", None),
    Variant("PTQ W8A8 (static)", recipes.W8A8()),
    Variant("PTQ int4 per-channel", recipes.W4A16(None)),
    Variant("QAT int4 per-channel", recipes.W4A16(None), qat=True),
    Variant("QAT LSQ int4 weights, uint8 activations", recipes.LSQ(4, 8), qat=True),
    Variant("PTQ stretched 3-bit", recipes.Stretched(3, None)),
    Variant("QAT stretched 3-bit", recipes.Stretched(3, None), qat=True),
    Variant("PTQ stretched 2-bit", recipes.Stretched(2, None)),
    Variant("QAT stretched 2-bit", recipes.Stretched(2, None), qat=True),
]


@dataclass
class Result:
    label: str
    recipe: str
    accuracy: float
    seconds: float
    model: nn.Module


def run(
    variants: list[Variant] = VARIANTS, on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    torch.manual_seed(0)
    train_x, train_y, test_x, test_y = load_data()
    start = time.perf_counter()
    base = train(DigitsCNN(), train_x, train_y, EPOCHS, 3e-3, seed=1)
    base_seconds = time.perf_counter() - start
    results = []
    for variant in variants:
        start = time.perf_counter()
        model = copy.deepcopy(base)
        if variant.recipe is not None:
            prepare(model, variant.recipe)
            if variant.recipe.needs_calibration:
                calibrate(model, train_x.split(256))
            if variant.qat:
                train(model, train_x, train_y, QAT_EPOCHS, 1e-3, seed=2)
            convert(model)
        seconds = time.perf_counter() - start + (base_seconds if variant.recipe is None else 0)
        result = Result(
            variant.label,
            variant.recipe.describe() if variant.recipe else "float32",
            accuracy(model, test_x, test_y),
            seconds,
            model,
        )
        results.append(result)
        if on_result:
            on_result(result)
    return results
