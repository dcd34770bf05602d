# SPDX-License-Identifier: BSD-3-Clause
"""The ``skae`` command line: ``skae compare`` pits an autoencoder against PCA.

:func:`skae._cli.main`, the command's entry point, imports this module (and
with it torch) once it can answer Ctrl-C; the exit statuses are listed there.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from tqdm import tqdm

from skae import __version__
from skae._autoencoder import AutoencoderTransformer
from skae._compare import (
    DEFAULT_N_COMPONENTS,
    DEFAULT_TEST_SIZE,
    Comparison,
    check_n_components,
    run_comparison,
)
from skae._datasets import Dataset, load_dataset
from skae._exit_status import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from skae._model_file import file_kind
from skae._parameters import AUTO_MAX_EPOCHS, AUTO_MIN_EPOCHS, AUTO_STEPS
from skae._progress import progress_bar, progress_wanted
from skae._writing import replace_file

DEFAULT_EPOCHS = "auto"
DEFAULT_N_SAMPLES = 5000
DEFAULT_OUTPUT = "skae-compare"
# The share of variance whose code sizes the default run reports.
DEFAULT_VARIANCE = 0.9
# _one_line shortens longer error messages to this many characters.
MAX_MESSAGE_LENGTH = 300
# The autoencoder holds out part of its training samples to stop early.
MIN_TRAIN_SAMPLES = 2
GALLERY_SIZE = 10
FILES = {
    "table": "comparison.csv",
    "error": "reconstruction_error.png",
    "gallery": "gallery.png",
    "embedding": "embedding.png",
    "loss": "loss_curves.png",
}
# How the table is printed; the CSV keeps full precision.
FORMATTERS = {
    "test_mse": "{:.5f}".format,
    "test_r2": "{:.3f}".format,
    "fit_seconds": "{:.2f}".format,
    "transform_seconds": "{:.4f}".format,
    "test_accuracy": "{:.3f}".format,
}

COMPARE_DESCRIPTION = """\
Compare an autoencoder with PCA: for each code size k, fit both on a training
split, then measure on the test split the reconstruction error (MSE, R²), the
fit and transform times and, when there are labels, the accuracy of a logistic
regression trained on the codes. Prints the table and writes it, with figures,
to the output folder.
"""
COMPARE_EPILOG = f"""\
files written to the output folder:
  {FILES["table"]:<26} the table
  {FILES["error"]:<26} test error (and accuracy) against k
  {FILES["gallery"]:<26} test images and reconstructions (image data only)
  {FILES["embedding"]:<26} 2-D codes of the test samples, coloured by label
  {FILES["loss"]:<26} the autoencoder's training and validation loss

examples:
  skae compare
  skae compare --data mnist.npz --n-samples 10000 -k 8 16 32 --epochs 50
  skae compare --data measurements.csv --target species --output results
"""


def run(argv: Sequence[str] | None = None) -> int:
    """Run the ``skae`` command line; :func:`skae._cli.main` documents it."""
    args = build_parser().parse_args(argv)
    try:
        status = run_compare(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader (say, head) left: stay quiet, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"skae {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        # Anything else (torch failing to allocate a network, say) is one line
        # too: a traceback helps nobody who runs a command.
        message = f"{type(exc).__name__}: {_one_line(exc)}"
        print(f"skae {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"skae {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``skae`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser, with one subcommand per job.
    """
    parser = argparse.ArgumentParser(
        prog="skae", description="scikit-learn compatible autoencoders."
    )
    parser.add_argument("--version", action="version", version=f"skae {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare = commands.add_parser(
        "compare",
        help="compare an autoencoder with PCA on a data set",
        description=COMPARE_DESCRIPTION,
        epilog=COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument(
        "--data",
        default="digits",
        metavar="DATA",
        help="'digits' (scikit-learn's bundled 8x8 digits; the default) or a file: "
        "an MNIST-style .npz archive (x_train, y_train, optionally x_test, y_test), "
        "a .npy array (samples x features, or samples x height x width images) "
        "or a .csv table with a header row",
    )
    compare.add_argument(
        "--target",
        metavar="COLUMN",
        help="CSV column holding labels (removed from the features)",
    )
    compare.add_argument(
        "-k",
        "--n-components",
        nargs="+",
        type=_positive_int,
        metavar="K",
        help="code sizes to compare (default: "
        + " ".join(str(k) for k in DEFAULT_N_COMPONENTS)
        + ", those the data allow)",
    )
    compare.add_argument(
        "--epochs",
        type=_epoch_count,
        default=DEFAULT_EPOCHS,
        help="most epochs the autoencoder trains (max_iter), or 'auto' for about "
        f"{AUTO_STEPS} training steps within {AUTO_MIN_EPOCHS} to "
        f"{AUTO_MAX_EPOCHS} epochs; it stops earlier once its validation loss "
        "stops improving (default: %(default)s)",
    )
    compare.add_argument(
        "--n-samples",
        type=_sample_count,
        default=DEFAULT_N_SAMPLES,
        metavar="N",
        help="use a random subset of N samples, or 'all' (default: %(default)s)",
    )
    compare.add_argument(
        "--test-size",
        type=_fraction,
        default=DEFAULT_TEST_SIZE,
        metavar="FRACTION",
        help="share of the samples held out for testing (default: %(default)s)",
    )
    compare.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        metavar="DIR",
        help="folder for the table and figures, created if needed "
        "(default: %(default)s)",
    )
    compare.add_argument(
        "--variance",
        type=_variance,
        default=DEFAULT_VARIANCE,
        metavar="FRACTION",
        help="also fit each method with n_components=FRACTION, the smallest code "
        "explaining that share of the variance, and report its size; 'off' "
        "skips it (default: %(default)s)",
    )
    compare.add_argument(
        "--seed", type=int, default=0, help="random seed (default: %(default)s)"
    )
    compare.add_argument(
        "--no-plots",
        action="store_true",
        help="write only the table (no matplotlib needed)",
    )
    return parser


def run_compare(args: argparse.Namespace) -> int:
    """Run ``skae compare`` with parsed arguments; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of the ``compare`` subcommand.

    Returns
    -------
    status : int
        0 when the table and figures are written; failures raise.
    """
    if not args.no_plots:
        from skae._plotting import check_matplotlib

        check_matplotlib()
    data = load_dataset(
        args.data, n_samples=args.n_samples, target=args.target, random_state=args.seed
    )
    n_samples, n_features = data.X.shape
    # Fail now, not after a minute of training: the split's training size.
    n_train = n_samples - math.ceil(args.test_size * n_samples)
    if n_train < MIN_TRAIN_SAMPLES:
        raise ValueError(
            f"{n_samples} samples with --test-size {args.test_size} leave "
            f"{n_train} to train on, but the autoencoder needs at least "
            f"{MIN_TRAIN_SAMPLES} (one for its validation split); use more "
            "samples (--n-samples) or a smaller --test-size."
        )
    if args.n_components is None:
        # The defaults a small table can take; sizes it asks for are checked.
        limit = min(n_train, n_features)
        args.n_components = [k for k in DEFAULT_N_COMPONENTS if k <= limit] or [limit]
    check_n_components(args.n_components, (n_train, n_features))
    _prepare_output(args.output, ["table"] if args.no_plots else list(FILES))
    print(_describe(data, args))

    estimators = {
        "PCA": PCA(),
        "autoencoder": AutoencoderTransformer(
            max_iter=args.epochs, random_state=args.seed
        ),
    }
    settings = {
        "estimators": estimators,
        "test_size": args.test_size,
        "random_state": args.seed,
    }
    progress = FitProgress(sys.stderr)
    with warnings.catch_warnings():
        # Reported once below, per k, rather than as one warning per fit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = run_comparison(
            data.X,
            data.y,
            n_components=args.n_components,
            progress=progress,
            variance=args.variance,
            **settings,
        )
        embedding = result
        if not args.no_plots and 2 not in args.n_components and data.X.shape[1] >= 2:
            progress.prefix = "2-D embedding: "
            embedding = run_comparison(
                data.X, data.y, n_components=[2], progress=progress, **settings
            )
    progress.close()

    print()
    print(format_table(result.table))
    print()
    table = result.table
    if result.variance_table is not None:
        print(_variance_summary(result.variance_table))
        print()
        table = pd.concat([table, result.variance_table], ignore_index=True)
    written = [args.output / FILES["table"]]
    csv = table.to_csv(index=False).encode()
    replace_file(written[0], lambda file: file.write(csv), follow_links=False)
    if not args.no_plots:
        written += _write_figures(result, embedding, data, args.output)
    print("wrote " + ", ".join(str(path) for path in written))
    note = _convergence_note(result, args.epochs)
    if note:
        print(note)
    return EXIT_OK


def format_table(table: pd.DataFrame) -> str:
    """Render a comparison table for the terminal.

    Parameters
    ----------
    table : pandas.DataFrame
        A table returned by :func:`skae.compare`.

    Returns
    -------
    text : str
        The table with rounded numbers and no index.
    """
    formatters = {
        column: format_ for column, format_ in FORMATTERS.items() if column in table
    }
    return table.to_string(index=False, formatters=formatters)


class FitProgress:
    """The bar of ``skae compare``, one step per fit: on a terminal only.

    Call it as ``progress(n_done, n_total, label)``: the callback of
    :func:`skae.compare`. Each autoencoder fit draws its own per-epoch bar
    beneath it.

    Parameters
    ----------
    stream : file-like
        Where the bar is drawn; nothing is written unless
        :func:`~skae._progress.progress_wanted` says a person is watching.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = progress_wanted(stream)
        self.prefix = ""
        self._bar: tqdm | None = None

    def __call__(self, n_done: int, n_total: int, label: str) -> None:
        """Move the bar to ``n_done`` of ``n_total`` fits, now fitting ``label``."""
        if self._bar is None or self._bar.total != n_total:
            self.close()
            self._bar = progress_bar(
                enabled=self.enabled,
                total=n_total,
                unit="fit",
                file=self.stream,
                delay=0,
            )
        step = label if n_done < n_total else "done"
        self._bar.set_description_str(f"{self.prefix}{step}", refresh=False)
        self._bar.update(n_done - self._bar.n)
        # Fits are seconds apart: redraw every one, whatever tqdm's throttle.
        self._bar.refresh()

    def close(self) -> None:
        """Erase the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _write_figures(
    result: Comparison, embedding: Comparison, data: Dataset, output: Path
) -> list[Path]:
    from skae._plotting import (
        plot_embedding,
        plot_gallery,
        plot_loss_curves,
        plot_reconstruction_error,
    )

    n_test = len(result.X_test)
    written = [
        plot_reconstruction_error(
            result.table,
            output / FILES["error"],
            title=f"{data.name}: reconstruction of {n_test} held-out samples",
        )
    ]
    ks = sorted(set(result.table["n_components"]))
    if data.image_size is not None:
        k = ks[(len(ks) - 1) // 2]
        rows = _gallery_rows(result.y_test, n_test)
        originals = result.X_test[rows]
        reconstructions = {}
        for (name, model_k), model in result.models.items():
            if model_k == k:
                X_back = model.inverse_transform(model.transform(originals))
                reconstructions[name] = X_back
        written.append(
            plot_gallery(
                originals,
                reconstructions,
                data.image_size,
                output / FILES["gallery"],
                title=f"{data.name}: test images and their reconstructions "
                f"from k = {k} components",
            )
        )
    codes = {
        name: model.transform(embedding.X_test)
        for (name, k), model in embedding.models.items()
        if k == 2
    }
    if codes:
        written.append(
            plot_embedding(
                codes,
                embedding.y_test,
                output / FILES["embedding"],
                title=f"{data.name}: 2-D codes of the {n_test} test samples",
            )
        )
    curves = {
        k: (
            model.loss_curve_,
            None
            if model.validation_scores_ is None
            else [-score for score in model.validation_scores_],
        )
        for (_, k), model in result.models.items()
        if isinstance(model, AutoencoderTransformer) and k in ks
    }
    if curves:
        written.append(
            plot_loss_curves(
                curves,
                output / FILES["loss"],
                title=f"{data.name}: autoencoder training, one line per code size",
            )
        )
    return written


def _gallery_rows(y_test: np.ndarray | None, n_test: int) -> np.ndarray:
    """Test rows to show: the first of each class, in class order, else the first."""
    if y_test is not None:
        classes, first = np.unique(y_test, return_index=True)
        if len(classes) > 1:
            return first[:GALLERY_SIZE]
    return np.arange(min(GALLERY_SIZE, n_test))


def _describe(data: Dataset, args: argparse.Namespace) -> str:
    n_samples, n_features = data.X.shape
    subset = f" (of {data.n_available})" if n_samples < data.n_available else ""
    labels = (
        "no labels" if data.y is None else f"{len(np.unique(data.y))} label classes"
    )
    ks = " ".join(str(k) for k in args.n_components)
    return (
        f"{data.name}: {n_samples}{subset} samples x {n_features} features, "
        f"{labels}; k = {ks}; autoencoder: max_iter={args.epochs}, "
        f"early stopping; seed {args.seed}"
    )


def _prepare_output(output: Path, kinds: list[str]) -> None:
    """Create the output folder and check, before any training, that it takes files.

    Each file is later written beside its name and renamed over it, so a
    symbolic link of that name is replaced, never written through; anything
    else but a writable regular file is refused here.
    """
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} is a file; give a folder path.")
    output.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as exc:
        raise ValueError(
            f"--output {output} is not writable ({exc.strerror}); choose another "
            "folder."
        ) from None
    for kind in kinds:
        path = output / FILES[kind]
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISREG(mode) and not os.access(path, os.W_OK):
            problem = "a read-only file"
        elif not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            # A named pipe would block the write until someone reads it.
            problem = file_kind(mode)
        else:
            continue
        raise ValueError(
            f"--output {output} holds {FILES[kind]}, which cannot be replaced "
            f"({problem}); remove it or choose another folder."
        )


def _variance_summary(variance_table: pd.DataFrame) -> str:
    """Say how many components each method needed for the asked share of variance."""
    target = variance_table["target_r2"].iloc[0]
    needs = ", ".join(
        f"{row.method} {row.n_components} (test R² {row.test_r2:.3f})"
        for row in variance_table.itertuples()
    )
    return f"components for R² >= {target:g} (--variance): {needs}"


def _one_line(exc: BaseException) -> str:
    """Put the exception's message on one line of at most MAX_MESSAGE_LENGTH."""
    message = " ".join(str(exc).split()) or "no details"
    if len(message) <= MAX_MESSAGE_LENGTH:
        return message
    return message[: MAX_MESSAGE_LENGTH - len("...")] + "..."


def _convergence_note(result: Comparison, epochs: int | str) -> str:
    if epochs == "auto":
        return ""  # the planned budget is a choice, not a cap worth reporting
    capped = [
        k
        for (_, k), model in result.models.items()
        if isinstance(model, AutoencoderTransformer) and model.n_iter_ >= epochs
    ]
    if not capped:
        return ""
    ks = ", ".join(str(k) for k in capped)
    return (
        f"note: the autoencoder used all {_epochs(epochs)} without stopping early "
        f"for k = {ks}; a larger --epochs may lower its error."
    )


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _epoch_count(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def _sample_count(text: str) -> int | None:
    return None if text == "all" else _positive_int(text)


def _variance(text: str) -> float | None:
    return None if text == "off" else _fraction(text)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1, got {text!r}"
        )
    return value
