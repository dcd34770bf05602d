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

import math
import statistics
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# torch's default random generator is one per process: a fit seeds it, then
# draws weight initialisation, dropout and input noise from it. Fits in threads
# of one process take turns with it, or they would draw from each other's
# streams (and could not put the caller's state back); inference runs freely.
_global_rng_lock = threading.RLock()


@contextmanager
def own_global_rng(cuda_devices: Sequence[int] = ()) -> Iterator[None]:
    """Hold torch's global generators for the block, and put their state back.

    Any block that saves and restores them (``torch.random.fork_rng``) must
    hold this too: restoring in one thread would rewind the stream another
    thread's fit is drawing from.
    """
    with _global_rng_lock, torch.random.fork_rng(devices=list(cuda_devices)):
        yield


_lock = threading.Lock()
# Thread identifier -> nesting depth, for threads inside ``torch_thread_budget``.
_depths: dict[int, int] = {}
# torch's thread count in the first thread of the current crowd.
_budget = 1


def thread_share(n_threads: int, n_callers: int) -> int:
    """Threads each of ``n_callers`` concurrent callers may use, at least one."""
    return max(1, n_threads // max(1, n_callers))


@contextmanager
def torch_thread_budget() -> Iterator[int]:
    """Run the block on this thread's share of torch's intra-op threads.

    The share is the budget divided by the number of threads inside this
    context when the block starts; nested use in one thread counts once.
    Yields the share: the block may use fewer threads, and the count it
    found is put back when it ends.
    """
    global _budget
    ident = threading.get_ident()
    # Recording this thread's depth happens inside the try, and the finally
    # undoes only a record it finds: an interrupt (Ctrl-C) at any point before
    # the block leaves no stale entry, which would halve every later share.
    depth = budget = share = restore = -1
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
        restore = budget if managed else current
        if managed and share != current:
            torch.set_num_threads(share)
        yield share if managed else current
    finally:
        if restore > 0 and (managed or torch.get_num_threads() != restore):
            torch.set_num_threads(restore)
        with _lock:
            if depth >= 0 and _depths.get(ident) == depth + 1:
                if depth == 0:
                    del _depths[ident]
                else:
                    _depths[ident] = depth


# -- how many of its threads a call uses ------------------------------------------

# Multiply-adds per step (one training batch, or one inference batch) below
# which a step runs on one thread, always. A training step counts its forward
# pass three times (the backward pass costs about two more), an inference step
# once. Waking a team of threads costs more than it saves on steps this small,
# and on a busy machine a team whose second thread shares a core waits on it
# at every step: the default network runs on one thread on the digits and is
# timed on MNIST. A fixed rule, not a timing, so small fits stay bit-identical.
SMALL_STEP = 150_000_000
# Multiply-adds of a training step, as multiples of its forward pass.
TRAINING_STEP_FACTOR = 3

# Open fixed_threads blocks, oldest first: (thread identifier, count). Each
# block removes its own entry, so blocks may close in any order.
_pins: list[tuple[int, int]] = []
_pins_lock = threading.Lock()


@contextmanager
def fixed_threads(n_threads: int) -> Iterator[None]:
    """Pin the number of torch threads every skae fit and inference uses.

    Inside the block, skae does not choose a thread count by timing: each fit,
    ``transform``, ``inverse_transform`` and ``score_samples`` runs on
    ``n_threads`` torch intra-op threads, or on fewer when its ceiling is
    lower (``torch.get_num_threads()`` of the calling thread, divided among
    concurrent skae calls in threads of one process). Fits with the same
    ``random_state``, data and thread count are then bit-identical.

    A block holds for the thread that entered it and, unless they entered
    blocks of their own, for the other threads of the process too, so it
    reaches joblib's threading workers: a thread follows its own innermost
    block, else the most recently entered block of any thread. Blocks nest
    and may end in any order, in any threads; when the last one ends, skae
    chooses by timing again.

    Read more in the :ref:`User Guide <threads>`.

    Parameters
    ----------
    n_threads : int
        Threads per call, at least 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer, fixed_threads
    >>> X = np.random.RandomState(0).normal(size=(100, 8))
    >>> with fixed_threads(1):
    ...     ae = AutoencoderTransformer(max_iter=2, random_state=0).fit(X)
    ...     codes = ae.transform(X)
    >>> codes.shape
    (100, 2)
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, int):
        raise TypeError(f"n_threads must be an int, got {n_threads!r}.")
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, got {n_threads}.")
    # A distinct entry per block, even for equal counts in one thread.
    pin = (threading.get_ident(), int(n_threads))
    with _pins_lock:
        _pins.append(pin)
    try:
        yield
    finally:
        with _pins_lock:
            # The last equal entry is this block's: inner blocks end first.
            index = len(_pins) - 1 - _pins[::-1].index(pin)
            del _pins[index]


def pinned_threads() -> int | None:
    """Return the count :func:`fixed_threads` pins for this thread, or None."""
    ident = threading.get_ident()
    with _pins_lock:
        own = [count for thread, count in _pins if thread == ident]
        if own:
            return own[-1]
        return _pins[-1][1] if _pins else None


def multiply_adds_per_row(module: nn.Module, rows: torch.Tensor) -> float:
    """Multiply-adds of ``module`` per input row, counted on ``rows``.

    Linear and convolutional layers are counted from the shapes they see in
    one forward pass, in evaluation mode and without gradients, so nothing is
    trained or drawn from a random generator; other layers count as free.
    The count is remembered for the module and the shape of its rows.
    """
    shape = tuple(rows.shape[1:])
    known = _multiply_adds.setdefault(module, {})
    if shape not in known:
        known[shape] = _count_multiply_adds(module, rows)
    return known[shape]


# Module -> {row shape: multiply-adds per row}; the count needs a forward pass.
_multiply_adds: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], float]] = (
    weakref.WeakKeyDictionary()
)


def _count_multiply_adds(module: nn.Module, rows: torch.Tensor) -> float:
    total = 0.0

    def count(layer: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += output.numel() * layer.in_features
        elif isinstance(layer, nn.Conv2d):
            kernel = math.prod(layer.kernel_size)
            total += output.numel() * kernel * layer.in_channels // layer.groups
        elif isinstance(layer, nn.ConvTranspose2d):
            kernel = math.prod(layer.kernel_size)
            total += inputs[0].numel() * kernel * layer.out_channels // layer.groups

    layers = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    hooks = [
        m.register_forward_hook(count)
        for m in module.modules()
        if isinstance(m, layers)
    ]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(rows)
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    return total / max(1, rows.shape[0])


class ThreadChooser:
    """Set torch's thread count for each of a run of similar steps.

    Used as ``with chooser:`` around each step; the count to start from is set
    when the chooser is made. A fixed chooser holds one count. Otherwise it
    times a few steps at each candidate count, fewest threads first (after one
    untimed step at that count, which wakes its threads), runs at the fastest
    for ``n_exploit`` steps, then measures again, so a machine that becomes
    busy, or quiet, is followed. A candidate with a step more than twice as
    slow as the best so far is dropped at once: on a busy machine one step on
    too many threads can cost dozens of normal ones.

    Parameters
    ----------
    candidates : sequence of int
        Thread counts to try, fewest first; one count fixes it.
    start : int or None, default=None
        Count to run at before the first measurement; ``None`` measures first.
    n_timed : int, default=3
        Timed steps per candidate; their median is the candidate's time.
    n_exploit : int or None, default=None
        Steps between measurements; ``None``: 25 times a measurement's steps.
    """

    def __init__(
        self,
        candidates: Sequence[int],
        start: int | None = None,
        n_timed: int = 3,
        n_exploit: int | None = None,
    ) -> None:
        self.candidates = list(candidates)
        self.n_timed = n_timed
        self.n_exploit = (
            25 * (n_timed + 1) * len(self.candidates)
            if n_exploit is None
            else n_exploit
        )
        self.current = self.candidates[0] if start is None else start
        self._times: dict[int, list[float]] = {}
        # (count, timed) of the steps of a measurement still to run.
        self._queue: list[tuple[int, bool]] = []
        self._exploited = 0
        self._started = 0.0
        self._timed = False
        if start is None and len(self.candidates) > 1:
            self._plan_measurement()
        if torch.get_num_threads() != self.current:
            torch.set_num_threads(self.current)

    def _plan_measurement(self) -> None:
        self._times = {count: [] for count in self.candidates}
        self._queue = [
            (count, timed)
            for count in self.candidates
            for timed in [False] + [True] * self.n_timed
        ]

    def __enter__(self) -> None:
        if self._queue:
            self.current, self._timed = self._queue.pop(0)
            self._started = time.perf_counter()
        else:
            self._exploited += 1
        if torch.get_num_threads() != self.current:
            torch.set_num_threads(self.current)

    def __exit__(self, *exc_info: object) -> None:
        if self._started:
            self._measured(time.perf_counter() - self._started)
        elif len(self.candidates) > 1 and self._exploited >= self.n_exploit:
            self._plan_measurement()

    def _measured(self, seconds: float) -> None:
        self._started = 0.0
        others = [
            statistics.median(times)
            for count, times in self._times.items()
            if times and count != self.current
        ]
        too_slow = bool(others) and seconds > 2 * min(others)
        if self._timed or too_slow:
            self._times[self.current].append(seconds)
        if too_slow:
            self._queue = [slot for slot in self._queue if slot[0] != self.current]
        if not self._queue:
            self.current = min(
                (count for count, times in self._times.items() if times),
                key=lambda count: statistics.median(self._times[count]),
            )
            _remember(self.current)
            self._exploited = 0


# The latest measured choice and when it was made: inference starts from it.
_latest: tuple[float, int] | None = None
_REMEMBER_SECONDS = 60.0


def _remember(n_threads: int) -> None:
    global _latest
    _latest = (time.monotonic(), n_threads)


def _recent_choice(ceiling: int) -> int:
    if _latest is not None and time.monotonic() - _latest[0] < _REMEMBER_SECONDS:
        return min(_latest[1], ceiling)
    return ceiling


def is_small_step(
    module: nn.Module,
    rows: torch.Tensor,
    rows_per_step: int,
    *,
    training: bool,
    speedup: float = 1.0,
) -> bool:
    """Whether a step of ``rows_per_step`` rows is under :data:`SMALL_STEP`.

    Counted in multiply-adds: the forward pass's, times
    :data:`TRAINING_STEP_FACTOR` in training, over ``speedup``.
    """
    passes = TRAINING_STEP_FACTOR if training else 1
    work = multiply_adds_per_row(module, rows) * rows_per_step * passes / speedup
    return work < SMALL_STEP


def choose_threads(
    module: nn.Module,
    rows: torch.Tensor,
    rows_per_step: int,
    ceiling: int,
    *,
    training: bool,
    speedup: float = 1.0,
) -> ThreadChooser:
    """Decide how a call's steps pick their thread count.

    A pinned count (:func:`fixed_threads`) or a ceiling of one thread fixes
    it; so does a step of fewer than :data:`SMALL_STEP` multiply-adds (the
    forward pass's, times :data:`TRAINING_STEP_FACTOR` in training, over
    ``speedup`` for steps that run that much faster, as bfloat16 ones), at one
    thread. Larger steps off the CPU keep the ceiling. Larger CPU steps are
    timed: training measures from its first step, inference starts from the
    latest choice measured in this process (or the ceiling) and measures once
    it has run many batches.
    """
    pinned = pinned_threads()
    if pinned is not None:
        return ThreadChooser([min(pinned, ceiling)])
    if ceiling == 1 or rows.device.type != "cpu":
        return ThreadChooser([ceiling])
    if is_small_step(module, rows, rows_per_step, training=training, speedup=speedup):
        return ThreadChooser([1])
    candidates = sorted({ceiling, *(2**i for i in range(ceiling.bit_length()))})
    candidates = [count for count in candidates if count <= ceiling]
    if training:
        return ThreadChooser(candidates)
    # A measurement costs eight batches: worth it only on long inputs, once per
    # 64 batches (65,536 rows at skae's inference batch size).
    return ThreadChooser(candidates, start=_recent_choice(ceiling), n_exploit=64)
