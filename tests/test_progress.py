import io
import subprocess
import sys
import textwrap

import pytest

from skae import AutoencoderTransformer, _progress
from skae._progress import progress_wanted


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def interactive(monkeypatch):
    """An interactive terminal's environment: no CI variable, a real TERM."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(_progress, "DELAY_SECONDS", 0.0)
    monkeypatch.setattr(_progress, "REFRESH_SECONDS", 0.0)


def fit_with_stderr(monkeypatch, stream, small_data, **params):
    monkeypatch.setattr(sys, "stderr", stream)
    model = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=4,
        early_stopping=False,
        random_state=0,
        **params,
    )
    return model.fit(small_data)


@pytest.mark.parametrize(
    ("stream", "env", "wanted"),
    [
        (Terminal(), {}, True),
        (io.StringIO(), {}, False),
        (Terminal(), {"CI": "true"}, False),
        (Terminal(), {"TERM": "dumb"}, False),
        (object(), {}, False),
    ],
    ids=["terminal", "pipe", "ci", "dumb-terminal", "no-isatty"],
)
def test_progress_wanted_only_on_an_interactive_terminal(
    interactive, monkeypatch, stream, env, wanted
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert progress_wanted(stream) is wanted


def test_fit_draws_an_epoch_bar_on_a_terminal(interactive, monkeypatch, small_data):
    terminal = Terminal()
    fit_with_stderr(monkeypatch, terminal, small_data)
    drawn = terminal.getvalue()
    assert "4/4" in drawn and "epoch" in drawn and "loss " in drawn
    # The bar is transient: erased when the fit ends.
    assert drawn.endswith("\r")


def test_fit_is_silent_in_a_pipe(interactive, monkeypatch, small_data):
    pipe = io.StringIO()
    fit_with_stderr(monkeypatch, pipe, small_data)
    assert pipe.getvalue() == ""


def test_fit_is_silent_on_a_ci_terminal(interactive, monkeypatch, small_data):
    monkeypatch.setenv("CI", "1")
    terminal = Terminal()
    fit_with_stderr(monkeypatch, terminal, small_data)
    assert terminal.getvalue() == ""


def test_quick_fit_stays_quiet_on_a_terminal(monkeypatch, small_data):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(_progress, "DELAY_SECONDS", 60.0)
    terminal = Terminal()
    fit_with_stderr(monkeypatch, terminal, small_data)
    assert terminal.getvalue() == ""


def test_verbose_prints_sklearn_lines_instead_of_a_bar(
    interactive, monkeypatch, capsys, small_data
):
    terminal = Terminal()
    fit_with_stderr(monkeypatch, terminal, small_data, verbose=1)
    out = capsys.readouterr().out
    assert [line.split(",")[0] for line in out.splitlines()] == [
        f"Iteration {epoch}" for epoch in range(1, 5)
    ]
    assert terminal.getvalue() == ""


def test_fit_writes_nothing_to_a_piped_stderr():
    """A real child process whose stderr is a pipe, as under a log collector."""
    script = textwrap.dedent(
        """
        import numpy as np
        from skae import _progress, AutoencoderTransformer
        _progress.DELAY_SECONDS = 0.0
        X = np.random.RandomState(0).normal(size=(60, 5))
        AutoencoderTransformer(2, hidden_layer_sizes=(4,), max_iter=3).fit(X)
        print("fitted")
        """
    )
    env = {"PATH": "", "TERM": "xterm"}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "PYTHONPATH": ":".join(sys.path), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fitted\n"
    assert result.stderr == ""
