"""The skae command line: skae compare, its files, and its one-line errors."""

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from skae._cli import main
from skae._command import FILES, FitProgress
from tests.helpers import SHARED_DATA

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--n-samples", "160", "--epochs", "2"]


def run(capsys, *args):
    status = main(["compare", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_default_code_sizes_are_those_a_small_table_allows(capsys, tmp_path):
    rng = np.random.RandomState(0)
    pd.DataFrame(rng.normal(size=(12, 13))).to_csv(tmp_path / "t.csv", index=False)
    args = ["--data", str(tmp_path / "t.csv"), "--no-plots", "--variance", "off"]
    status, out, _ = run(capsys, *args, "--output", str(tmp_path / "out"))
    # 9 training rows: k = 16 and 32 cannot be fitted, 2, 4 and 8 are.
    assert status == 0 and "k = 2 4 8;" in out
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert sorted(set(table["n_components"])) == [2, 4, 8]


def written(folder):
    return sorted(path.name for path in folder.iterdir())


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 5_000


def test_digits_run_prints_table_and_writes_every_file(tmp_path, capsys):
    output = tmp_path / "out"
    status, out, err = run(capsys, *TINY, "-k", "2", "4", "--output", str(output))
    assert status == 0
    assert written(output) == sorted(FILES.values())
    table = pd.read_csv(output / FILES["table"])
    assert table[["method", "n_components"]].values.tolist()[:4] == [
        ["PCA", 2],
        ["PCA", 4],
        ["autoencoder", 2],
        ["autoencoder", 4],
    ]
    # Then each method asked for 90% of the variance (--variance's default).
    assert table["method"].tolist()[4:] == ["PCA", "autoencoder"]
    assert table["target_r2"].tolist()[4:] == [0.9, 0.9]
    assert table["target_r2"][:4].isna().all()
    pca_size, ae_size = table["n_components"][4:]
    assert f"R² >= 0.9 (--variance): PCA {pca_size} " in out
    assert f", autoencoder {ae_size} " in out
    assert table["test_accuracy"].between(0, 1).all()
    assert "digits: 160 (of 1797) samples x 64 features, 10 label classes" in out
    assert "test_mse" in out and "autoencoder" in out
    for name in ("error", "gallery", "embedding", "loss"):
        assert_png(output / FILES[name])
    # Two epochs cannot trigger early stopping.
    assert "used all 2 epochs without stopping early for k = 2, 4" in out
    # stderr is no terminal here, so no progress bar.
    assert err == ""


def test_embedding_fits_k2_models_when_k_list_lacks_2(tmp_path, capsys):
    output = tmp_path / "out"
    status, out, _ = run(
        capsys, *TINY, "-k", "3", "--variance", "off", "--output", str(output)
    )
    assert status == 0
    assert_png(output / FILES["embedding"])
    assert len(pd.read_csv(output / FILES["table"])) == 2
    assert "--variance" not in out


def test_no_plots_writes_only_the_table(tmp_path, capsys):
    status, out, _ = run(
        capsys, *TINY, "-k", "2", "--no-plots", "--output", str(tmp_path)
    )
    assert status == 0
    assert written(tmp_path) == [FILES["table"]]
    assert "autoencoder" in out


def test_same_seed_same_table(tmp_path, capsys):
    tables = []
    for name in ("a", "b"):
        args = [*TINY, "-k", "2", "--no-plots", "--seed", "3"]
        assert run(capsys, *args, "--output", str(tmp_path / name))[0] == 0
        table = pd.read_csv(tmp_path / name / FILES["table"])
        tables.append(table.drop(columns=["fit_seconds", "transform_seconds"]))
    pd.testing.assert_frame_equal(*tables)


def test_csv_with_target_column(tmp_path, capsys):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde"))
    frame["kind"] = np.where(frame["a"] > 0, "big", "small")
    frame.to_csv(tmp_path / "data.csv", index=False)
    output = tmp_path / "out"
    status, out, _ = run(
        capsys,
        "--data",
        str(tmp_path / "data.csv"),
        "--target",
        "kind",
        "-k",
        "2",
        "--epochs",
        "2",
        "--output",
        str(output),
    )
    assert status == 0
    assert "data.csv: 60 samples x 5 features, 2 label classes" in out
    # Not images: no gallery.
    assert FILES["gallery"] not in written(output)
    assert "test_accuracy" in pd.read_csv(output / FILES["table"])


def test_npy_images_without_labels(tmp_path, capsys):
    images = np.random.RandomState(0).randint(0, 256, size=(50, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    output = tmp_path / "out"
    status, out, _ = run(
        capsys,
        "--data",
        str(tmp_path / "images.npy"),
        "-k",
        "2",
        "--epochs",
        "1",
        "--output",
        str(output),
    )
    assert status == 0
    assert "images.npy: 50 samples x 36 features, no labels" in out
    assert FILES["gallery"] in written(output)
    assert "test_accuracy" not in pd.read_csv(output / FILES["table"])


def test_mnist_style_npz(tmp_path, capsys):
    rng = np.random.RandomState(0)
    np.savez(
        tmp_path / "tiny.npz",
        x_train=rng.randint(0, 256, size=(40, 5, 5), dtype=np.uint8),
        y_train=rng.randint(0, 3, size=40),
        x_test=rng.randint(0, 256, size=(20, 5, 5), dtype=np.uint8),
        y_test=rng.randint(0, 3, size=20),
    )
    status, out, _ = run(
        capsys,
        "--data",
        str(tmp_path / "tiny.npz"),
        "-k",
        "2",
        "--epochs",
        "1",
        "--no-plots",
        "--output",
        str(tmp_path / "out"),
    )
    assert status == 0
    assert "tiny.npz: 60 samples x 25 features, 3 label classes" in out


def test_shared_mnist_archive(tmp_path, capsys):
    path = SHARED_DATA / "mnist.npz"
    if not path.exists():
        pytest.skip(f"{path.name} not present beside the repository")
    output = tmp_path / "out"
    status, out, _ = run(
        capsys, "--data", str(path), *TINY, "-k", "2", "--output", str(output)
    )
    assert status == 0
    assert "mnist.npz: 160 (of 70000) samples x 784 features, 10 label" in out
    assert_png(output / FILES["gallery"])


def write_bytes(name, content):
    def make(folder):
        path = folder / name
        path.write_bytes(content)
        return path

    return make


def write_csv(text):
    return write_bytes("table.csv", text.encode())


def write_npy(array):
    def make(folder):
        np.save(folder / "data.npy", array)
        return folder / "data.npy"

    return make


def write_npz(**arrays):
    def make(folder):
        np.savez(folder / "data.npz", **arrays)
        return folder / "data.npz"

    return make


def write_npz_of_raw_bytes(folder):
    """A zip whose x_train is no .npy file: numpy gives its bytes, not an array."""
    path = folder / "data.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train", b"not an array")
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(3))
        archive.writestr("y_train.npy", buffer.getvalue())
    return path


@pytest.mark.parametrize(
    "make_data, extra, message",
    [
        (lambda folder: folder / "missing.csv", [], "no such file: .*missing.csv"),
        (lambda folder: "mnist", [], "'mnist' is neither the built-in"),
        (lambda folder: folder, [], "is a folder"),
        (write_bytes("data.txt", b"1,2\n"), [], "unsupported type '.txt'"),
        (write_bytes("data.npz", b"not a zip"), [], "not a valid .npz archive"),
        (write_bytes("data.npy", b"garbage"), [], "not a numeric .npy array"),
        (write_bytes("table.csv", b"\xff\xfe\x00\x81"), [], "cannot read .* as CSV"),
        (write_csv(""), [], "cannot read .* as CSV"),
        (
            write_csv("a,b,name\n1,2,x\n3,4,y\n"),
            [],
            "column 'name' of .* is not numeric \\(e.g. 'x'\\)",
        ),
        (write_csv("a,b\n1,\n3,4\n"), [], "missing or infinite values"),
        (write_csv("a,b\n1,2\n3,4\n"), ["--target", "c"], "has no column 'c'"),
        (lambda folder: "digits", ["--target", "c"], "not a CSV file"),
        (write_npz(images=np.zeros((3, 2))), [], "needs 'x_train' and 'y_train'"),
        (
            write_npz_of_raw_bytes,
            [],
            r"data.npz: its member 'x_train' is not a NumPy array \(.npy\) but raw",
        ),
        (
            write_npz(x_train=np.zeros((3, 2, 2)), y_train=np.zeros(2)),
            [],
            "3 images but labels of shape \\(2,\\)",
        ),
        (lambda folder: "digits", ["-k", "65"], "n_components=65 is too large"),
        (
            write_npy(np.ones((20, 3)) * (1 + 2j)),
            [],
            r"holds complex values \(complex128\); expected real numbers",
        ),
        (
            lambda folder: "digits",
            ["--n-samples", "1"],
            "1 samples with --test-size 0.25 leave 0 to train on, but the "
            "autoencoder needs at least 2",
        ),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path, capsys, make_data, extra, message):
    data = make_data(tmp_path)
    status, out, err = run(
        capsys, "--data", str(data), *extra, "--output", str(tmp_path / "out")
    )
    assert status == 1
    assert err.count("\n") == 1
    assert err.startswith("skae compare: error: ")
    assert "Traceback" not in err
    assert re.search(message, err)
    # The error comes before anything else, training included.
    assert out == ""


def make_fifo(folder):
    os.mkfifo(folder / "data.csv")
    return folder / "data.csv"


def make_loop(folder):
    (folder / "a.csv").symlink_to(folder / "b.csv")
    (folder / "b.csv").symlink_to(folder / "a.csv")
    return folder / "a.csv"


def link_to(target, name):
    def make(folder):
        (folder / name).symlink_to(target)
        return folder / name

    return make


@pytest.mark.skipif(os.name != "posix", reason="named pipes and devices are POSIX")
@pytest.mark.parametrize(
    "make_data, message",
    [
        (make_fifo, r"data.csv is a named pipe \(FIFO\); give the path of a data"),
        (lambda folder: "/dev/zero", "/dev/zero is a character device; give the"),
        (link_to("/dev/zero", "zero.npy"), "zero.npy is a character device"),
        (make_loop, "a.csv is a loop of symbolic links; give the path"),
        (link_to("gone.csv", "data.csv"), "data.csv is a symbolic link to a missing"),
    ],
    ids=["fifo", "dev-zero", "link-to-dev-zero", "link-loop", "dangling-link"],
)
def test_data_that_is_not_a_regular_file_is_named(tmp_path, capsys, make_data, message):
    data = make_data(tmp_path)
    status, out, err = run(capsys, "--data", str(data), "--output", str(tmp_path))
    assert (status, out) == (1, "")
    assert re.search(message, err) and err.count("\n") == 1


def run_within(seconds, capsys, *args):
    """Run the command in a thread: a test must fail, not hang, on a blocked write."""
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(status=main(list(args))))
    thread.daemon = True
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "skae compare blocked"
    out, err = capsys.readouterr()
    return outcome["status"], out, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_output_file_that_is_a_named_pipe_is_refused_before_training(tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    os.mkfifo(output / FILES["table"])
    try:
        status, out, err = run_within(
            120, capsys, "compare", *TINY, "--no-plots", "--output", str(output)
        )
    finally:
        # Lets a blocked writer go, should the check ever be lost.
        os.close(os.open(output / FILES["table"], os.O_RDONLY | os.O_NONBLOCK))
    assert status == 1 and out == ""
    assert (
        f"holds {FILES['table']}, which cannot be replaced (a named pipe (FIFO))" in err
    )


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX")
def test_linked_output_files_are_replaced_not_written_through(tmp_path, capsys):
    output, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    output.mkdir()
    elsewhere.mkdir()
    for name in (FILES["table"], FILES["loss"]):
        (elsewhere / name).write_text("keep me")
        (output / name).symlink_to(elsewhere / name)
    status, _, _ = run(
        capsys,
        *TINY,
        "-k",
        "2",
        "--variance",
        "off",
        "--no-plots",
        "--output",
        str(output),
    )
    assert status == 0
    assert pd.read_csv(output / FILES["table"])["method"].iloc[0] == "PCA"
    # Figures are written the same way.
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from skae._plotting import _save

    _save(Figure(figsize=(1, 1)), output / FILES["loss"])
    assert (output / FILES["loss"]).read_bytes()[:8] == PNG_SIGNATURE
    for name in (FILES["table"], FILES["loss"]):
        assert (elsewhere / name).read_text() == "keep me"
        assert not (output / name).is_symlink()
    assert written(output) == sorted([FILES["table"], FILES["loss"]])


def test_interrupt_while_starting_exits_with_130_without_traceback(tmp_path):
    """Ctrl-C while the command imports NumPy, pandas and torch (seconds)."""
    script = (
        "import sys, time\n"
        "class Announce:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy':\n"
        "            print('importing numpy', flush=True)\n"
        "            time.sleep(30)  # until the signal comes\n"
        "sys.meta_path.insert(0, Announce())\n"
        "import skae._cli\n"
        "sys.exit(skae._cli.main(['compare', '--help']))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert child.stdout.readline() == "importing numpy\n"
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert (child.returncode, err) == (130, "skae: interrupted\n")


def test_output_that_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    status, _, err = run(capsys, "--output", str(tmp_path / "taken"))
    assert status == 1
    assert "is a file; give a folder path" in err


def test_output_holding_an_unreplaceable_file_is_refused_before_training(
    tmp_path, capsys
):
    (tmp_path / "out" / FILES["table"]).mkdir(parents=True)
    status, out, err = run(capsys, *TINY, "--output", str(tmp_path / "out"))
    assert status == 1
    assert f"holds {FILES['table']}, which cannot be replaced" in err
    assert out == ""


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="needs a user that file permissions apply to",
)
def test_unwritable_output_is_refused_before_training(tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    output.chmod(0o500)
    try:
        status, out, err = run(capsys, *TINY, "--output", str(output))
    finally:
        output.chmod(0o700)
    assert status == 1
    assert "is not writable" in err
    assert out == ""


def test_any_failure_of_the_job_is_one_line(tmp_path, capsys, monkeypatch):
    """A fit too large to allocate: torch's long message, one line of it."""

    def out_of_memory(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not "
            "enough memory: you tried to allocate 40000000000 bytes.\n"
            + "frame #0: c10::ThrowEnforceNotMet\n"
            * 30
        )

    monkeypatch.setattr(PCA, "fit", out_of_memory)
    status, _, err = run(capsys, *TINY, "--no-plots", "--output", str(tmp_path))
    assert status == 1
    assert err.count("\n") == 1
    assert err.startswith("skae compare: error: RuntimeError: [enforce fail")
    assert "not enough memory" in err
    assert len(err) < 400

    monkeypatch.setattr(PCA, "fit", lambda *a, **k: 1 / 0)
    status, _, err = run(capsys, *TINY, "--no-plots", "--output", str(tmp_path))
    assert (status, err) == (
        1,
        "skae compare: error: ZeroDivisionError: division by zero\n",
    )


def test_missing_matplotlib_is_explained(tmp_path, capsys, monkeypatch):
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, _, err = run(capsys, "--output", str(tmp_path))
    assert status == 1
    assert 'pip install "skae[plot]"' in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["-k", "0"], ["-k", "two"], ["--epochs", "-1"], ["--test-size", "1.5"]],
)
def test_unusable_option_values_exit_with_usage(capsys, args):
    with pytest.raises(SystemExit) as excinfo:
        main(["compare", *args])
    assert excinfo.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_exit_with_0(capsys, option):
    with pytest.raises(SystemExit) as excinfo:
        main([option])
    assert excinfo.value.code == 0
    assert "skae" in capsys.readouterr().out


def test_interrupt_exits_with_130(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PCA, "fit", interrupted)
    status, _, err = run(capsys, *TINY, "--no-plots", "--output", str(tmp_path))
    assert (status, err) == (130, "skae compare: interrupted\n")


def test_closed_stdout_exits_with_1_silently(tmp_path):
    """The reader of stdout left (skae compare | head): status 1, no traceback."""
    script = (
        "import sys, skae._cli, skae._command\n"
        "def gone(args):\n"
        "    raise BrokenPipeError\n"
        "skae._command.run_compare = gone\n"
        "sys.exit(skae._cli.main(['compare']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parents[1]),
            "OMP_NUM_THREADS": "1",
        },
    )
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_fit_progress_draws_on_a_terminal_only(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = FitProgress(stream)
        progress(0, 4, "PCA, k=2")
        progress(2, 4, "autoencoder, k=2")
        progress(4, 4, "done")
        progress.close()
    drawn = terminal.getvalue()
    assert "PCA, k=2:   0%" in drawn
    assert "autoencoder, k=2:  50%" in drawn
    assert "2/4" in drawn and "4/4" in drawn
    # close() erases the bar, leaving the cursor at the start of its line.
    assert drawn.endswith("\r")
    assert pipe.getvalue() == ""


def test_fit_progress_is_silent_on_a_ci_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    terminal = Terminal()
    progress = FitProgress(terminal)
    progress(1, 2, "PCA, k=2")
    progress.close()
    assert terminal.getvalue() == ""


def test_installed_console_script():
    script = shutil.which("skae") or shutil.which(
        "skae", path=str(Path(sys.executable).parent)
    )
    if script is None:
        pytest.skip("the skae script is not installed (pip install -e .)")
    result = subprocess.run(
        [script, "compare", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "usage: skae compare" in result.stdout
    assert "--epochs" in result.stdout


def test_epochs_default_to_the_estimators_auto_budget():
    from skae._command import build_parser

    parser = build_parser()
    assert parser.parse_args(["compare"]).epochs == "auto"
    assert parser.parse_args(["compare", "--epochs", "auto"]).epochs == "auto"
    assert parser.parse_args(["compare", "--epochs", "7"]).epochs == 7


def test_loss_curves_draw_a_kept_model_shorter_than_its_judged_epochs(tmp_path):
    """With held-out rows, the model kept can train fewer epochs than were scored."""
    from skae._plotting import plot_loss_curves

    curves = {2: ([3.0, 2.5, 2.0], [3.5, 3.0, 3.1, 3.2, 3.3]), 4: ([2.0, 1.0], None)}
    assert_png(plot_loss_curves(curves, tmp_path / "loss.png"))
