# SPDX-License-Identifier: BSD-3-Clause
"""Threads: concurrent skae calls in one process share torch's threads and RNG.

Process-based parallelism needs nothing from skae: joblib's loky and
multiprocessing backends start their workers with ``OMP_NUM_THREADS`` set to
``cores // n_jobs``, Dask's nanny sets it to 1, and torch reads it when a
worker starts. Threads of one process (joblib's threading backend, a
``ThreadPoolExecutor``, a Dask worker with several threads) get no such
limit: each runs torch's full intra-op thread count, ``n_jobs`` times over.

On CPU, torch's thread count is an OpenMP and an Intel MKL setting of the
calling thread; ``torch.set_num_threads`` changes those for the calling
thread only, but also makes its value the default for threads that have not
used torch yet. So the first thread inside skae fixes the budget (its own
thread count), every thread that joins lowers its own count to its share of
that budget, and puts the budget back when it leaves, which also restores
torch's default for new threads. A call that runs alone changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# torch's default random generator is one per process: a fit seeds it, then
# draws weight initialisation, dropout and input noise from it. Fits in threads
# of one process take turns with it, or they would draw from each other's
# streams (and could not put the caller's state back); inference runs freely.
global_rng_lock = threading.RLock()

_lock = threading.Lock()
# Thread identifier -> nesting depth, for threads inside ``torch_thread_budget``.
_depths: dict[int, int] = {}
# torch's thread count in the first thread of the current crowd.
_budget = 1


def thread_share(n_threads: int, n_callers: int) -> int:
    """Threads each of ``n_callers`` concurrent callers may use, at least one."""
    return max(1, n_threads // max(1, n_callers))


@contextmanager
def torch_thread_budget() -> Iterator[None]:
    """Run the block on this thread's share of torch's intra-op threads.

    The share is the budget divided by the number of threads inside this
    context when the block starts; nested use in one thread counts once.
    """
    global _budget
    ident = threading.get_ident()
    # Recording this thread's depth happens inside the try, and the finally
    # undoes only a record it finds: an interrupt (Ctrl-C) at any point before
    # the block leaves no stale entry, which would halve every later share.
    depth = budget = -1
    managed = False
    try:
        with _lock:
            depth = _depths.get(ident, 0)
            _depths[ident] = depth + 1
            if depth == 0 and len(_depths) == 1:
                _budget = torch.get_num_threads()
            budget, share = _budget, thread_share(_budget, len(_depths))
        current = torch.get_num_threads()
        # A thread may have first run torch while another was limited, and
        # taken that limit as its count: it leaves with the budget, too.
        managed = depth == 0 and not share == current == budget
        if managed and share != current:
            torch.set_num_threads(share)
        yield
    finally:
        if managed:
            torch.set_num_threads(budget)
        with _lock:
            if depth >= 0 and _depths.get(ident) == depth + 1:
                if depth == 0:
                    del _depths[ident]
                else:
                    _depths[ident] = depth
