"""Shared pytest setup: replayable hypothesis runs and quiet torchao imports."""

import os
import warnings

from hypothesis import HealthCheck, settings

warnings.filterwarnings("ignore")

# derandomize: every run draws the same examples, so a failure replays as is.
settings.register_profile(
    "quantkit",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("QUANTKIT_HYPOTHESIS_EXAMPLES", "60")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("quantkit")
