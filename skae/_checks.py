# SPDX-License-Identifier: BSD-3-Clause
"""Checks of values every layer of skae validates alike; imports nothing of skae."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

# The dtypes skae computes in: other input is converted to float64, as
# scikit-learn's estimators do, and float32 stays float32.
FLOAT_DTYPES = [np.float64, np.float32]


def is_positive_int(value: Any) -> bool:
    """Tell whether value is an int (NumPy's included, bool excluded) of at least 1."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def positive_ints(values: Any, name: str) -> tuple[int, ...]:
    """Check a sequence of positive ints (layer widths, an image shape)."""
    sizes = np.atleast_1d(np.asarray(values, dtype=object))
    if sizes.ndim != 1 or not all(is_positive_int(size) for size in sizes):
        raise ValueError(f"{name} must be a sequence of positive ints, got {values!r}.")
    return tuple(int(size) for size in sizes)
