# SPDX-License-Identifier: BSD-3-Clause
"""Figures for a comparison of reducers, written straight to image files.

matplotlib is an optional dependency (``pip install "skae[plot]"``), imported
only when a figure is drawn. Figures are built with
:class:`matplotlib.figure.Figure` rather than pyplot, so drawing needs no
display, never changes the caller's backend and leaves no open figures behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skae._writing import replace_file

MISSING_MATPLOTLIB = (
    'skae\'s figures need matplotlib: pip install "skae[plot]" '
    "(or pip install matplotlib)."
)
# Beyond this many distinct labels a scatter gets a colour bar, not a legend.
MAX_LEGEND_LABELS = 20
DPI = 120
# Inches of one panel of a line plot (error against k, loss curves): room for
# the axis labels and a legend of a few lines without crowding the lines.
PANEL_WIDTH, PANEL_HEIGHT = 5.2, 4.2
# Inches of one square panel of 2-D codes.
EMBEDDING_PANEL = 4.6
# Scatter points small and translucent, so that thousands of codes show where
# they crowd instead of merging into a blot.
POINT_SIZE, POINT_ALPHA = 6, 0.7
# Grid lines faint enough not to compete with the data.
GRID_ALPHA = 0.3


def check_matplotlib() -> None:
    """Raise an ImportError that says how to install matplotlib if it is missing.

    Raises
    ------
    ImportError
        If matplotlib cannot be imported.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc


def _new_figure(**kwargs: Any) -> Any:
    check_matplotlib()
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _log_y(ax: Any) -> None:
    """Log-scale the y axis, with ticks written as plain numbers (0.02, not 2e-2)."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):  # type: ignore[misc]
        def __call__(self, value: float, pos: int | None = None) -> str:
            return f"{value:g}" if super().__call__(value, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    # LogFormatter labels a few minor ticks when the axis spans a decade or two.
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def _save(figure: Any, path: str | Path) -> Path:
    """Write the figure whole, in the format of ``path``'s suffix.

    A symbolic link at ``path`` is replaced by the figure, not written through.
    """
    path = Path(path)
    image_format = path.suffix[1:].lower() or None
    replace_file(
        path,
        lambda file: figure.savefig(file, dpi=DPI, format=image_format),
        follow_links=False,
    )
    return path


def plot_reconstruction_error(
    table: pd.DataFrame, path: str | Path, *, title: str = ""
) -> Path:
    """Plot test reconstruction error, and accuracy if present, against k.

    Parameters
    ----------
    table : pandas.DataFrame
        A table returned by :func:`skae.compare`.

    path : str or path-like
        Image file to write; its suffix sets the format.

    title : str, default=""
        Figure title.

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    panels = [("test_mse", "test reconstruction MSE (lower is better)")]
    if "test_accuracy" in table:
        panels.append(("test_accuracy", "test accuracy of a classifier on the codes"))
    figure = _new_figure(figsize=(PANEL_WIDTH * len(panels), PANEL_HEIGHT))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    ks = sorted(table["n_components"].unique())
    for ax, (column, label) in zip(axes, panels, strict=True):
        for method, rows in table.groupby("method", sort=False):
            rows = rows.sort_values("n_components")
            ax.plot(rows["n_components"], rows[column], marker="o", label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("number of components k")
        ax.set_ylabel(label)
        ax.grid(alpha=GRID_ALPHA)
        ax.legend()
    if (table["test_mse"] > 0).all():
        _log_y(axes[0])
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_gallery(
    originals: np.ndarray,
    reconstructions: Mapping[str, np.ndarray],
    image_size: tuple[int, int],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Show images in the first row and each method's reconstructions below.

    Parameters
    ----------
    originals : ndarray of shape (n_images, height * width)
        Flattened images.

    reconstructions : dict of str to ndarray of shape (n_images, height * width)
        Each method's reconstruction of ``originals``, by method name.

    image_size : tuple of int
        (height, width) of one single-channel image.

    path : str or path-like
        Image file to write.

    title : str, default=""
        Figure title.

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    rows = {"original": originals, **reconstructions}
    n_images = len(originals)
    # Share one grey scale, so that over- and undershoot stay visible.
    vmin, vmax = float(np.min(originals)), float(np.max(originals))
    figure = _new_figure(figsize=(1.0 * n_images + 1.4, 1.1 * len(rows) + 0.5))
    axes = figure.subplots(len(rows), n_images, squeeze=False)
    for row_axes, (name, images) in zip(axes, rows.items(), strict=True):
        for ax, image in zip(row_axes, images, strict=True):
            ax.imshow(
                np.reshape(image, image_size), cmap="gray_r", vmin=vmin, vmax=vmax
            )
            ax.set_xticks([])
            ax.set_yticks([])
        row_axes[0].set_ylabel(name, rotation=0, ha="right", va="center")
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_embedding(
    codes: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Scatter each method's 2-D codes side by side, coloured by label.

    Parameters
    ----------
    codes : dict of str to ndarray of shape (n_samples, 2)
        Each method's codes of the same samples, by method name.

    labels : ndarray of shape (n_samples,) or None
        Colours the points: a legend for up to 20 distinct labels, a colour
        bar for numeric labels beyond that. None draws one colour.

    path : str or path-like
        Image file to write.

    title : str, default=""
        Figure title.

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    figure = _new_figure(figsize=(EMBEDDING_PANEL * len(codes) + 1.2, EMBEDDING_PANEL))
    axes = figure.subplots(1, len(codes), squeeze=False)[0]
    classes = None if labels is None else np.unique(labels)
    discrete = classes is not None and (
        len(classes) <= MAX_LEGEND_LABELS
        or not np.issubdtype(np.asarray(labels).dtype, np.number)
    )
    for ax, (name, points) in zip(axes, codes.items(), strict=True):
        if labels is None:
            ax.scatter(points[:, 0], points[:, 1], s=POINT_SIZE, alpha=POINT_ALPHA)
        elif discrete:
            _scatter_classes(ax, points, labels, classes)
        else:
            artist = ax.scatter(
                points[:, 0],
                points[:, 1],
                c=labels,
                s=POINT_SIZE,
                alpha=POINT_ALPHA,
                cmap="viridis",
            )
        ax.set_title(name)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
    if labels is not None and discrete:
        figure.legend(
            *axes[0].get_legend_handles_labels(),
            title="label",
            loc="outside right center",
            markerscale=2.5,
            frameon=False,
        )
    elif labels is not None:
        figure.colorbar(artist, ax=axes, label="label")
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def _scatter_classes(
    ax: Any, points: np.ndarray, labels: np.ndarray, classes: np.ndarray
) -> None:
    from matplotlib import colormaps

    palette = "tab10" if len(classes) <= 10 else "tab20"

    colors = colormaps[palette].colors
    for index, label in enumerate(classes):
        mask = labels == label
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=POINT_SIZE,
            alpha=POINT_ALPHA,
            color=colors[index % len(colors)],
            label=str(label),
        )


def plot_loss_curves(
    curves: Mapping[int, tuple[Sequence[float], Sequence[float] | None]],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Plot training and validation loss per epoch, one line per code size.

    Parameters
    ----------
    curves : dict of int to (list of float, list of float or None)
        For each k, the training losses and the validation losses per epoch
        (None when the model was trained without a validation split).

    path : str or path-like
        Image file to write.

    title : str, default=""
        Figure title.

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    has_validation = any(valid is not None for _, valid in curves.values())
    n_panels = 2 if has_validation else 1
    figure = _new_figure(figsize=(PANEL_WIDTH * n_panels + 0.8, PANEL_HEIGHT))
    axes = figure.subplots(1, n_panels, squeeze=False, sharex=True, sharey=True)[0]
    from matplotlib import colormaps

    colors = colormaps["viridis"](np.linspace(0, 0.9, len(curves)))
    for color, (k, (train, valid)) in zip(colors, sorted(curves.items()), strict=True):
        # The model kept may have trained fewer epochs than were judged.
        axes[0].plot(range(1, len(train) + 1), train, color=color, label=f"k = {k}")
        if valid is not None:
            axes[1].plot(range(1, len(valid) + 1), valid, color=color, label=f"k = {k}")
    panel_titles = ["training loss", "validation loss (held-out training data)"]
    for ax, panel_title in zip(axes, panel_titles, strict=False):
        ax.set_title(panel_title)
        ax.set_xlabel("epoch")
        _log_y(ax)
        ax.grid(alpha=GRID_ALPHA)
    axes[0].set_ylabel("mean squared reconstruction error")
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        title="code size",
        loc="outside right center",
        frameon=False,
    )
    if title:
        figure.suptitle(title)
    return _save(figure, path)
