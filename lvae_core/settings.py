"""The book's fast mode: ``LVAE_FAST=1`` selects smaller data, fewer epochs and fewer
importance samples (used by the tests and CI); without it chapters run for real."""
from __future__ import annotations

import os


def fast_mode() -> bool:
    """True when the environment variable ``LVAE_FAST`` is set to 1 (or true/yes)."""
    return os.environ.get("LVAE_FAST", "").strip().lower() in ("1", "true", "yes")


def pick(full, fast):
    """``fast`` in fast mode, ``full`` otherwise: ``epochs = pick(50, 2)``."""
    return fast if fast_mode() else full
