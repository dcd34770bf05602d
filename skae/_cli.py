# SPDX-License-Identifier: BSD-3-Clause
"""Entry point of the ``skae`` command line, which answers Ctrl-C from the start.

Exit statuses, as ``main(argv)`` returns them (the ``skae`` script exits with
them):

- 0: the table (and figures) were written; ``--help`` and ``--version`` exit
  with 0 too.
- 1: the data, a combination of options or the environment is unusable, or a
  step of the job failed; one line on stderr says what was wrong. Also when
  the reader of stdout goes away early (``skae compare | head``), silently.
- 2: argparse rejected the arguments (an unknown option, a malformed value);
  it prints its usage message and raises ``SystemExit(2)`` from ``main``.
- 130: interrupted (Ctrl-C), as shells report SIGINT, also while the command
  is still importing torch.

This module imports the standard library and the exit statuses only; the
command itself lives in :mod:`skae._command`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from skae._exit_status import EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skae`` command line.

    Parameters
    ----------
    argv : sequence of str, default=None
        Arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success; 1 when the data, a combination of options or the
        environment is unusable, or the job fails (a one-line message on
        stderr says why), and when stdout is closed early (nothing printed);
        130 when interrupted.

    Raises
    ------
    SystemExit
        With status 2 when argparse rejects the arguments (after printing its
        usage message), and 0 for ``--help`` and ``--version``.
    """
    try:
        # Seconds of importing torch, during which Ctrl-C is no traceback.
        from skae._command import run

        return run(argv)
    except KeyboardInterrupt:
        print("skae: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
