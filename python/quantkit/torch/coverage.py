"""The applied-scheme table: what ``prepare`` did to every module that holds a weight
matrix, and what calibration reached.

Every such module appears: with its scheme (in the vocabulary of recipe files and
``quantkit schemes``) and the rule that chose it, or "kept float" with the reason
(skipped by a rule, left out by ``filter_fn``, an unsupported type, a module whose
forward never calls it). After :func:`quantkit.torch.calibrate`, each row with
calibrated inputs also says how many batches and tokens its quantizer saw.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import asdict, dataclass, field

from torch import nn


@dataclass
class CoverageRow:
    module: str
    kind: str  # the module's type name
    scheme: str | None  # None: kept float
    reason: str  # the rule that chose the scheme, or why the module stays float
    batches: int | None = None  # calibration batches its input quantizer saw
    tokens: int | None = None  # calibration tokens (rows of its input) it saw


@dataclass
class Coverage:
    rows: list[CoverageRow] = field(default_factory=list)
    # what quantize_'s algorithms reported, by name ("GPTQ": per-layer reports, ...)
    algorithms: dict = field(default_factory=dict)

    def quantized(self) -> dict[str, str]:
        """module name → scheme name, for the modules that were quantized."""
        return {r.module: r.scheme for r in self.rows if r.scheme is not None}

    def kept(self) -> dict[str, str]:
        """module name → reason, for the modules kept in float."""
        return {r.module: r.reason for r in self.rows if r.scheme is None}

    def to_json(self) -> str:
        return json.dumps([asdict(r) for r in self.rows], indent=1)

    def table(self) -> str:
        calibrated = any(r.batches is not None for r in self.rows)
        width = max([len("module"), *(len(r.module) for r in self.rows)])
        head = f"{'module':<{width}}  {'type':<18} {'scheme':<26} "
        head += ("batches  tokens   " if calibrated else "") + "why"
        lines = [head]
        for r in self.rows:
            line = f"{r.module:<{width}}  {r.kind:<18} {r.scheme or 'kept float':<26} "
            if calibrated:
                seen = f"{r.batches:>7}  {r.tokens:>7}  " if r.batches is not None else " " * 18
                line += seen
            lines.append(line + r.reason)
        n = sum(r.scheme is not None for r in self.rows)
        lines.append(f"{n} of {len(self.rows)} modules with weight matrices quantized")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


_COVERAGE: weakref.WeakKeyDictionary[nn.Module, Coverage] = weakref.WeakKeyDictionary()


def coverage(model: nn.Module) -> Coverage:
    """The applied-scheme table of a model ``prepare`` (or ``quantize_``) changed."""
    report = _COVERAGE.get(model)
    if report is None:
        raise ValueError(
            "coverage: this model was not prepared by quantkit.torch.prepare / quantize_ "
            "in this process"
        )
    return report


def record(model: nn.Module, report: Coverage) -> None:
    _COVERAGE[model] = report


def record_calibration(model: nn.Module, seen: dict[str, tuple[int, int]]) -> None:
    """Adds (batches, tokens) per module name to the model's table, if it has one."""
    report = _COVERAGE.get(model)
    if report is None:
        return
    for row in report.rows:
        if row.module in seen:
            row.batches, row.tokens = seen[row.module]
