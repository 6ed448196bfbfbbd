"""Where the repository is, and how to find ledgerd metric names in text."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\bledgerd_[a-z0-9_]+")


def metric_names(text: str) -> set[str]:
    return set(METRIC.findall(text))
