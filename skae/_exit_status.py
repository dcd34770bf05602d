# SPDX-License-Identifier: BSD-3-Clause
"""Exit statuses of the ``skae`` command line (listed in :mod:`skae._cli`)."""

# 130 is 128 + SIGINT (2), what shells report for a command stopped by Ctrl-C.
EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130
