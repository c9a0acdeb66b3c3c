"""The old import path of the efficient-attention families: everything now lives in :mod:`helpers.models.efficient`."""

from __future__ import annotations

from .efficient import *  # noqa: F403
from .efficient import __all__  # noqa: F401
