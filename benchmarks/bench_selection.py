"""How the rule choosing between the PCA start and training does, by threshold.

Run from the repository root (statsmodels, from the ``bench`` extra, adds its
tables)::

    python benchmarks/bench_selection.py            # split seeds 0 and 1
    python benchmarks/bench_selection.py --seeds 0

Every fit of ``AutoencoderTransformer(n_components=k, random_state=0)`` on the
small tables and the panel of ``bench_vs_pca.py`` (without the image sets, whose
advantage is far beyond any threshold) and on statsmodels' tables of 101 to
6,000 rows (75/25 split, standardised, k = 2, a quarter and half the columns)
is made with the choice forced to training, and records the held-out rows'
errors of the start and of the best epoch. A rule then decides, fit by fit,
whether the trained network or the PCA start (PCA on all the training rows)
is kept, and the table gives the test error of the kept models over PCA's:
the geometric mean and the worst ratio of each group, and the cases above
1.001. The rules: the mean per-row fall in error must exceed z standard errors
of the falls; skae's rule asks 3, or 2 for a fall of half the start's error or
more.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
from bench_vs_pca import panel, row_errors, small_panel, statsmodels_tables
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skae._fitting as fitting
from skae import AutoencoderTransformer
from skae._fitting import trained_beats_start

MIN_ROWS, MAX_ROWS = 101, 6000


def mid_tables(seed: int) -> Iterator[tuple[str, list, list[int]]]:
    """Yield statsmodels' mid-size tables as (name, [(X_train, X_test)], ks)."""
    for name, X in statsmodels_tables(MIN_ROWS, MAX_ROWS):
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=seed)
        varying = X_train.std(axis=0) > 0
        scaler = StandardScaler().fit(X_train[:, varying])
        X_train = scaler.transform(X_train[:, varying])
        X_test = scaler.transform(X_test[:, varying])
        d = X_train.shape[1]
        ks = sorted({k for k in (2, d // 4, d // 2) if 1 <= k < d})
        yield name, [(X_train, X_test)], ks


def groups(seed: int) -> Iterator[tuple[str, str, list, list[int]]]:
    for name, folds, ks in small_panel(seed):
        yield "small tables", name, folds, ks
    for name, X_train, X_test, ks in panel(mnist=False, seed=seed):
        if X_train.shape[1] <= 100:  # the image sets win by far
            yield "panel", name, [(X_train, X_test)], ks
    for name, splits, ks in mid_tables(seed):
        yield "mid-size tables", name, splits, ks


def record_fit(X_train: np.ndarray, X_test: np.ndarray, k: int) -> dict:
    """Fit with the trained network kept; return what any rule needs."""
    judged: dict = {}

    def keep_trained(start_errors: torch.Tensor, trained_errors: torch.Tensor):
        judged["start"], judged["trained"] = start_errors, trained_errors
        return True

    rule, fitting.trained_beats_start = (
        fitting.trained_beats_start,
        keep_trained,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = AutoencoderTransformer(n_components=k, random_state=0)
            model.fit(X_train)
    finally:
        fitting.trained_beats_start = rule
    return {
        **judged,
        "trained_test": row_errors(model, X_test).sum(),
        "pca_test": row_errors(PCA(n_components=k).fit(X_train), X_test).sum(),
    }


def z_rule(z: float) -> Callable[[torch.Tensor, torch.Tensor], bool]:
    def rule(start: torch.Tensor, trained: torch.Tensor) -> bool:
        falls = start.double() - trained.double()
        return bool(falls.mean() > z * falls.std() / len(falls) ** 0.5)

    return rule


RULES = {
    "any fall": z_rule(0.0),
    "1 standard error": z_rule(1.0),
    "2 standard errors": z_rule(2.0),
    "3 standard errors": z_rule(3.0),
    "skae: 3, or 2 for half the error": trained_beats_start,
}


def ratio(fits: list[dict], rule: Callable) -> float:
    kept = sum(
        fit["trained_test"]
        if "start" not in fit or rule(fit["start"], fit["trained"])
        else fit["pca_test"]
        for fit in fits
    )
    return kept / sum(fit["pca_test"] for fit in fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    cases: dict[str, list[list[dict]]] = {}
    for seed in args.seeds:
        for group, name, splits, ks in groups(seed):
            for k in ks:
                fits = [record_fit(X_train, X_test, k) for X_train, X_test in splits]
                cases.setdefault(group, []).append(fits)
                print(
                    f"{group}, {name}, seed {seed}, k={k}: trained / PCA "
                    f"{ratio(fits, RULES['any fall']):.3f}",
                    flush=True,
                )
    print()
    print(
        "| rule | "
        + " | ".join(f"{g} ({len(c)} cases)" for g, c in cases.items())
        + " |"
    )
    print("|---|" + "---|" * len(cases))
    for rule_name, rule in RULES.items():
        cells = []
        for group_cases in cases.values():
            ratios = np.array([ratio(fits, rule) for fits in group_cases])
            cells.append(
                f"{np.exp(np.mean(np.log(ratios))):.3f} / {ratios.max():.3f} / "
                f"{int((ratios > 1.001).sum())}"
            )
        print(f"| {rule_name} | " + " | ".join(cells) + " |")
    print()
    print("cells: geometric mean / worst / cases above 1.001 of test MSE over PCA's")


if __name__ == "__main__":
    main()
