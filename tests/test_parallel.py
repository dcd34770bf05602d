"""Parallel search with joblib, and torch's threads under it."""

import contextlib
import inspect
import os
import sys
import threading
from typing import ClassVar

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_val_score

import skae._threads
from skae import AutoencoderTransformer, fixed_threads, load, save
from skae._threads import thread_share, torch_thread_budget

BACKENDS = ["loky", "threading"]
# Workers may run torch on fewer threads than this process, which changes the
# order of floating-point sums, so scores need not agree to the last bit.
# Fits that share random streams differed by 2 to 13 percent.
SCORE_RTOL = 1e-3


def tiny_autoencoder(**params):
    return AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=10,
        learning_rate_init=0.01,
        random_state=0,
    ).set_params(**params)


def run_in_threads(n_threads, target):
    """Run ``target(index)`` in ``n_threads`` threads; return their results."""
    results = [None] * n_threads
    errors = []

    def run(index):
        try:
            results[index] = target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def torch_threads_in_new_thread():
    return run_in_threads(1, lambda _: torch.get_num_threads())[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_grid_search_n_jobs_2_matches_sequential(small_data, backend):
    def search(n_jobs):
        grid = GridSearchCV(
            tiny_autoencoder(),
            {"n_components": [1, 3], "hidden_layer_sizes": [(8,), (16,)]},
            cv=3,
            n_jobs=n_jobs,
        )
        with joblib.parallel_config(backend=backend):
            return grid.fit(small_data)

    sequential, parallel = search(1), search(2)
    assert parallel.best_params_ == sequential.best_params_
    assert parallel.best_params_["n_components"] == 3
    np.testing.assert_allclose(
        parallel.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=SCORE_RTOL,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_val_score_n_jobs_2_matches_sequential(small_data, backend):
    def scores(n_jobs):
        with joblib.parallel_config(backend=backend):
            return cross_val_score(
                tiny_autoencoder(n_components=3), small_data, cv=4, n_jobs=n_jobs
            )

    sequential, parallel = scores(1), scores(2)
    assert parallel.shape == (4,)
    assert np.all(parallel < 0)
    np.testing.assert_allclose(parallel, sequential, rtol=SCORE_RTOL)


# warnings.catch_warnings is not thread-safe: filter for the whole test.
def test_fits_in_threads_are_reproducible(small_data, torch_threads):
    """Concurrent fits draw from torch's global RNG in turn, as if alone."""
    torch.set_num_threads(1)  # no thread sharing, so no rounding differences
    params = [{"dropout": 0.2, "random_state": seed} for seed in range(4)]

    def fit(index):
        start_together.wait()
        return tiny_autoencoder(**params[index]).fit(small_data).loss_curve_

    start_together = threading.Barrier(1, timeout=30)
    alone = [fit(index) for index in range(len(params))]
    start_together = threading.Barrier(len(params), timeout=30)
    rng_before = torch.random.get_rng_state()
    together = run_in_threads(len(params), fit)
    assert together == alone
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_loading_in_a_thread_leaves_a_concurrent_fit_alone(
    small_data, tmp_path, torch_threads
):
    """A load in another thread leaves the RNG stream a fit draws from alone."""
    torch.set_num_threads(1)
    params = {"dropout": 0.2, "max_iter": 30}
    alone = tiny_autoencoder(**params).fit(small_data).loss_curve_
    path = tmp_path / "model.safetensors"
    save(tiny_autoencoder(max_iter=1).fit(small_data), path)
    fitting = threading.Event()

    def fit_or_load(index):
        if index == 0:
            fitting.set()
            try:
                return tiny_autoencoder(**params).fit(small_data).loss_curve_
            finally:
                fitting.clear()
        fitting.wait(timeout=30)
        while fitting.is_set():
            load(path)
        return None

    together, _ = run_in_threads(2, fit_or_load)
    assert together == alone


def fit_and_report_threads(X):
    """Fit in a loky worker; torch's thread count there, and the worker's pid."""
    tiny_autoencoder().fit(X)
    return torch.get_num_threads(), os.getpid()


def test_loky_workers_split_the_cores(small_data):
    """joblib gives each loky worker cores // n_jobs threads, and torch obeys."""
    expected = int(
        os.environ.get("OMP_NUM_THREADS", thread_share(joblib.cpu_count(), 2))
    )
    results = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(fit_and_report_threads)(small_data) for _ in range(4)
    )
    assert {threads for threads, _ in results} == {expected}
    assert os.getpid() not in {pid for _, pid in results}


@pytest.mark.parametrize("n_threads", [2, 3, 5])
def test_threads_entering_a_crowd_take_their_share(torch_threads, n_threads):
    """The k-th thread inside gets torch's threads divided by k, at least one."""
    entered = [threading.Event() for _ in range(n_threads)]
    all_inside = threading.Barrier(n_threads, timeout=30)

    def use_budget(index):
        if index > 0:
            assert entered[index - 1].wait(timeout=30)
        with torch_thread_budget():
            during = torch.get_num_threads()
            entered[index].set()
            all_inside.wait()
        return during, torch.get_num_threads()

    results = run_in_threads(n_threads, use_budget)
    expected = [thread_share(torch_threads, k) for k in range(1, n_threads + 1)]
    assert expected[:3] == [4, 2, 1][:n_threads]
    assert [during for during, _ in results] == expected
    assert [after for _, after in results] == [torch_threads] * n_threads
    assert torch.get_num_threads() == torch_threads
    assert torch_threads_in_new_thread() == torch_threads


def test_thread_alone_changes_nothing(torch_threads, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    with torch_thread_budget():
        assert torch.get_num_threads() == torch_threads
        with torch_thread_budget():
            assert torch.get_num_threads() == torch_threads
    assert calls == []


def test_budget_is_released_when_the_block_raises(torch_threads):
    ready = threading.Barrier(2, timeout=30)

    def fail_inside(_):
        with torch_thread_budget():
            ready.wait()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_in_threads(2, fail_inside)
    # Nobody is left inside: a thread alone gets all threads again.
    with torch_thread_budget():
        assert torch.get_num_threads() == torch_threads
    assert torch_threads_in_new_thread() == torch_threads


def lines_before_the_block():
    """Line numbers of torch_thread_budget from its first statement to its yield."""
    lines, first = inspect.getsourcelines(torch_thread_budget.__wrapped__)
    end = next(i for i, line in enumerate(lines) if line.strip().startswith("yield"))
    return range(first + 1, first + end + 1)


def interrupt_at(line):
    """Trace torch_thread_budget and raise KeyboardInterrupt once, at ``line``."""
    code = torch_thread_budget.__wrapped__.__code__
    fired = []

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == line and not fired:
            fired.append(line)
            raise KeyboardInterrupt
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code is code else None)
    return fired


def enter_interrupted(line, nested):
    """Enter torch_thread_budget, interrupted at ``line``; return whether it fired."""
    with contextlib.ExitStack() as outer:
        if nested:
            outer.enter_context(torch_thread_budget())
        fired = interrupt_at(line)
        try:
            with torch_thread_budget():
                pass
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        assert skae._threads._depths == ({threading.get_ident(): 1} if nested else {})
    return bool(fired)


@pytest.mark.parametrize("nested", [False, True], ids=["outer", "nested"])
@pytest.mark.parametrize("line", lines_before_the_block())
def test_interrupt_before_the_block_leaves_no_stale_entry(torch_threads, line, nested):
    """Ctrl-C at any line before the block: later calls still get every thread."""
    enter_interrupted(line, nested)
    assert skae._threads._depths == {}
    assert torch.get_num_threads() == torch_threads
    with torch_thread_budget():
        assert torch.get_num_threads() == torch_threads


def test_interrupts_reach_every_statement_before_the_block(torch_threads):
    """The test above interrupts statements, not only comments and blank lines."""
    fired = [
        line for line in lines_before_the_block() if enter_interrupted(line, False)
    ]
    assert len(fired) >= 10


class ThreadsSeen(torch.nn.Linear):
    """A linear layer that records torch's thread count at each batch it runs.

    One list for the class, as skae runs copies of the fitted modules.
    """

    seen: ClassVar[list[int]] = []

    def forward(self, x):
        ThreadsSeen.seen.append(torch.get_num_threads())
        return super().forward(x)


def test_estimator_runs_torch_within_the_budget(small_data, torch_threads):
    """fit, transform, inverse_transform and score_samples all take their share.

    Pinned to all of torch's threads, each call still runs on its share while
    another call holds the budget.
    """

    def network(n_features, n_outputs):
        return ThreadsSeen(n_features, n_outputs), ThreadsSeen(n_outputs, n_features)

    occupied, done = threading.Event(), threading.Event()

    def occupy_budget():
        with torch_thread_budget():
            occupied.set()
            done.wait(timeout=60)

    def threads_of(call):
        ThreadsSeen.seen.clear()
        call()
        return set(ThreadsSeen.seen)

    neighbour = threading.Thread(target=occupy_budget)
    neighbour.start()
    try:
        assert occupied.wait(timeout=30)
        with fixed_threads(torch_threads):
            ae = tiny_autoencoder(network=network, max_iter=2)
            calls = {"fit": threads_of(lambda: ae.fit(small_data))}
            codes = ae.transform(small_data)
            calls["transform"] = threads_of(lambda: ae.transform(small_data))
            calls["inverse_transform"] = threads_of(lambda: ae.inverse_transform(codes))
            calls["score_samples"] = threads_of(lambda: ae.score_samples(small_data))
    finally:
        done.set()
        neighbour.join()
    share = thread_share(torch_threads, 2)
    assert share < torch_threads
    assert calls == {name: {share} for name in calls}
    assert torch.get_num_threads() == torch_threads
    assert torch_threads_in_new_thread() == torch_threads
