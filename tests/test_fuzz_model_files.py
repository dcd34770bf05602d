"""Mutated model files of every estimator: no crash, no hang, no raw exception.

The fuzzer (``tests/fuzzing.py``) runs in a fresh process on one thread and
forks a child with a memory limit and a timeout for each file, so that a
crash fails this test instead of ending the run. The default suite runs a few
hundred files; the slow campaign, the thousands the documentation reports.
"""

import sys

import pytest

from tests.fuzzing import BAD, GOOD, run_campaign_process

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="forks, and reads /proc"
)


def check(report, n_cases):
    counts = report["counts"]
    assert sum(counts.values()) == n_cases
    assert report["bad"] == [], "\n".join(
        f"case {case['case']} ({case['file']}, {case['kind']}): {case['outcome']}: "
        f"{case['detail']}"
        for case in report["bad"]
    )
    assert all(counts[outcome] == 0 for outcome in BAD)
    # The mutations reach past the first checks: some files load and work.
    assert counts[GOOD[2]] >= n_cases // 20
    assert counts[GOOD[0]] >= n_cases // 2


def test_mutated_model_files_are_refused_cleanly_or_work():
    check(run_campaign_process(300, seed=0, timeout=600), 300)


@pytest.mark.slow
def test_fuzz_campaign_of_3400_files():
    check(run_campaign_process(3400, seed=1, timeout=3600), 3400)
