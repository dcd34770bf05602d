# SPDX-License-Identifier: BSD-3-Clause
"""Progress bars for long fits: drawn on a terminal, silent anywhere else.

Pipes, log files, notebooks' captured streams and CI runners get nothing: a bar
there is a wall of carriage returns. Whether to draw is decided by the caller
(the estimator, the command line) with :func:`progress_wanted`; the training
loop only receives the answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

# A bar appears only once a fit has run this long, so quick fits stay quiet.
DELAY_SECONDS = 1.0
# At most ten redraws a second, however fast the epochs go.
REFRESH_SECONDS = 0.1


def progress_wanted(stream: TextIO) -> bool:
    """Whether a progress bar on ``stream`` would reach a person watching it.

    Parameters
    ----------
    stream : file-like
        Where the bar would be drawn.

    Returns
    -------
    wanted : bool
        True for an interactive terminal, False for a pipe, a file, a dumb
        terminal or a continuous-integration run (the ``CI`` variable set, as
        GitHub Actions, GitLab and most others do).
    """
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return False
    return not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    enabled: bool,
    unit: str = "epoch",
    **options: Any,
) -> tqdm:
    """Make a transient bar over ``iterable``, or over ``total=`` steps.

    Parameters
    ----------
    iterable : iterable, default=None
        Steps to iterate over; None to advance the bar with ``update``.
    enabled : bool
        False gives a bar that draws nothing, so callers need no branches.
    unit : str, default='epoch'
        What a step is.
    **options
        Further tqdm options, such as ``total``, ``desc``, ``leave`` or
        ``file`` (default: ``sys.stderr``).

    Returns
    -------
    bar : tqdm.tqdm
        Iterate over it or advance it with ``update``; ``close`` erases it.
    """
    settings: dict[str, Any] = {
        "leave": False,
        "delay": DELAY_SECONDS,
        "mininterval": REFRESH_SECONDS,
        **options,
    }
    return tqdm(
        iterable, unit=unit, disable=not enabled, dynamic_ncols=True, **settings
    )
