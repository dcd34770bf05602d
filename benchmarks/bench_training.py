"""Speed and quality of AutoencoderTransformer against a hand-written loop and PCA.

Run from the repository root::

    python benchmarks/bench_training.py            # MNIST if present, else synthetic
    python benchmarks/bench_training.py --quick    # fewer repeats, for a smoke test
    python benchmarks/bench_training.py --overhead-only   # part 1 only

Everything runs in one process on the same data (MNIST from
``../shared/data/mnist.npz``, else a synthetic stand-in of the same shape):

1. Overhead: skae and a minimal hand-written PyTorch loop train the same
   network (784-256-128-32, ReLU, MSE, Adam 1e-3, batch 256) for the same
   epochs; fit and transform times are compared (median of interleaved
   repeats). The hand-written loop has a sigmoid output on [0, 1] pixels, as
   tutorials write it; skae's output is linear on standardised pixels, and
   its network adds PCA's linear path beside the layers (``init='pca'``).
   ``transform`` is also timed against skae's own trained encoder called by
   hand on pre-standardised rows: the overhead of skae alone, per run.
2. Time to quality: seconds of training until the MNIST test MSE first drops
   below PCA's at k=32, for the hand-written loop (its clock stopped while it
   is evaluated after each epoch) and for skae with default settings (only
   ``n_components=32`` and ``random_state``). skae's is the wall time of its
   shortest whole fit whose model beats PCA: default fits stopped through
   :func:`skae.epoch_callback` after 1, 2, ... epochs, each ending as early
   stopping ends it (the best held-out epoch, then the refit on every row).
3. The full default fit: wall time and test MSE against PCA's.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from skae import AutoencoderTransformer, epoch_callback

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
K = 32
# The tutorial settings every loop of part 1 trains with: batch, Adam's rate
# and the hidden widths (the encoder's; the decoder mirrors them).
BATCH_SIZE = 256
LEARNING_RATE = 1e-3
HIDDEN = (256, 128)
# MNIST: 28 x 28 pixels of 0..255, 60,000 training and 10,000 test images.
N_PIXELS, PIXEL_MAX = 784, 255
N_TRAIN, N_TEST = 60000, 10000


def load_data() -> tuple[np.ndarray, np.ndarray, str]:
    if DATA.exists():
        with np.load(DATA) as data:
            X_train = data["x_train"].reshape(N_TRAIN, -1) / np.float32(PIXEL_MAX)
            X_test = data["x_test"].reshape(N_TEST, -1) / np.float32(PIXEL_MAX)
        return X_train, X_test, "MNIST"
    # Synthetic stand-in: images of a few smooth strokes, values in [0, 1].
    rng = np.random.default_rng(0)
    basis = rng.random((64, N_PIXELS)).astype(np.float32) ** 8
    codes = rng.random((N_TRAIN + N_TEST, 64)).astype(np.float32) ** 4
    X = np.clip(codes @ basis, 0, 1)
    return X[:N_TRAIN], X[N_TRAIN:], f"synthetic {len(X)} x {N_PIXELS}"


def peak_rss_reset() -> int:
    """Reset the process's peak RSS and return the current RSS in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def peak_rss_since(baseline: int) -> float:
    """Peak RSS beyond ``baseline`` since the last reset, in MiB."""
    return (_status_kib("VmHWM") * 1024 - baseline) / 2**20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


# -- the hand-written baseline ----------------------------------------------------


def hand_written_network() -> tuple[nn.Module, nn.Module]:
    wide, narrow = HIDDEN
    encoder = nn.Sequential(
        nn.Linear(N_PIXELS, wide),
        nn.ReLU(),
        nn.Linear(wide, narrow),
        nn.ReLU(),
        nn.Linear(narrow, K),
    )
    decoder = nn.Sequential(
        nn.Linear(K, narrow),
        nn.ReLU(),
        nn.Linear(narrow, wide),
        nn.ReLU(),
        nn.Linear(wide, N_PIXELS),
        nn.Sigmoid(),
    )
    return encoder, decoder


def hand_written_fit(X, epochs, X_test=None, target=None):
    """Train as a tutorial does; return (model, train seconds, seconds to target)."""
    torch.manual_seed(0)
    encoder, decoder = hand_written_network()
    model = nn.Sequential(encoder, decoder)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.MSELoss()
    X = torch.from_numpy(X)
    spent, reached = 0.0, None
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X))
        for i in range(0, len(X), BATCH_SIZE):
            batch = X[order[i : i + BATCH_SIZE]]
            loss = loss_fn(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        spent += time.perf_counter() - start
        if target is not None and reached is None:
            with torch.no_grad():
                X_t = torch.from_numpy(X_test)
                if loss_fn(model(X_t), X_t).item() < target:
                    reached = spent
    return model, spent, reached


def skorch_fit(X, epochs):
    """The same network and settings through skorch, where it is installed."""
    from skorch import NeuralNetRegressor

    torch.manual_seed(0)
    net = NeuralNetRegressor(
        nn.Sequential(*hand_written_network()),
        criterion=nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    return timed(net.fit, X, X)


def hand_written_transform(encoder, X):
    with torch.no_grad():
        return encoder(torch.from_numpy(X)).numpy()


def bare_module_call(ae, X):
    """skae's own trained encoder called by hand, on X standardised beforehand.

    Returns the timed function: the same network as ``ae.transform`` runs, so
    the two times differ only by what skae adds around the module.
    """
    network = ae._network.code_path()
    X_std = torch.from_numpy(((X - ae.mean_) / ae.scale_).astype(np.float32))

    def encode():
        with torch.no_grad():
            return network(X_std).numpy()

    return encode


# -- skae, stopped after a few epochs for time to quality ----------------------------


def fit_quietly(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return AutoencoderTransformer(**params).fit(X)


def skae_time_to_quality(X_train, X_test, target, budget, **params):
    """Wall time and epochs of the shortest fit whose test MSE is below ``target``.

    Fits stopped after 1, 2, ... epochs (at most ``budget``) by a callback;
    returns (None, None) if none reaches ``target``.
    """
    for epochs in range(1, budget + 1):
        with epoch_callback(lambda report, epochs=epochs: report.epoch >= epochs):
            ae, wall = timed(fit_quietly, X_train, **params)
        if -ae.score(X_test) < target:
            return wall, epochs
    return None, None


def interleaved_transforms(encoder, ae, X, repeats=7):
    """Median seconds of the hand-written encode and of skae's transform, alternating.

    The first call of each is included: it is what a user's pipeline pays once.
    """
    hand, skae = [], []
    for _ in range(repeats):
        hand.append(timed(hand_written_transform, encoder, X)[1])
        skae.append(timed(ae.transform, X)[1])
    return statistics.median(hand), statistics.median(skae)


def transform_overhead(ae, X, repeats=7):
    """Median over interleaved repeats of transform time / bare module time."""
    encode = bare_module_call(ae, X)
    ratios = []
    for _ in range(repeats):
        _, bare = timed(encode)
        _, skae = timed(ae.transform, X)
        ratios.append(skae / bare)
    return statistics.median(ratios)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, 1 epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per overhead run")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument(
        "--overhead-only", action="store_true", help="part 1 only (speed, no quality)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, epochs = (1, 1) if args.quick else (args.repeats, args.epochs)

    X_train, X_test, name = load_data()
    print(f"data: {name}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    # PCA reference.
    baseline = peak_rss_reset()
    pca, pca_fit = timed(PCA(K, random_state=0).fit, X_train)
    pca_codes, pca_transform = timed(pca.transform, X_test)
    pca_memory = peak_rss_since(baseline)
    pca_mse = float(np.mean((pca.inverse_transform(pca_codes) - X_test) ** 2))

    # 1. Overhead at identical settings, interleaved repeats.
    same = dict(
        n_components=K,
        # The hand-written network: random weights, ReLU, every row trained on.
        init="random",
        activation="relu",
        early_stopping=False,
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH_SIZE,
        learning_rate="constant",
        learning_rate_init=LEARNING_RATE,
        max_iter=epochs,
        tol=0,
        # The hand-written loop's arithmetic: float32 (precision='auto' would
        # train in bfloat16 where the CPU has it).
        precision="float32",
        random_state=0,
    )
    times = {"hand fit": [], "skae fit": [], "hand transform": [], "skae transform": []}
    transform_ratios, bare_ratios = [], []
    memory = {}
    for _ in range(repeats):
        baseline = peak_rss_reset()
        (model, hand_seconds, _), _ = timed(hand_written_fit, X_train, epochs)
        memory["hand"] = peak_rss_since(baseline)
        times["hand fit"].append(hand_seconds)

        baseline = peak_rss_reset()
        ae, seconds = timed(fit_quietly, X_train, **same)
        memory["skae"] = peak_rss_since(baseline)
        times["skae fit"].append(seconds)
        hand_seconds, skae_seconds = interleaved_transforms(model[0], ae, X_test)
        times["hand transform"].append(hand_seconds)
        times["skae transform"].append(skae_seconds)
        transform_ratios.append(skae_seconds / hand_seconds)
        bare_ratios.append(transform_overhead(ae, X_test))
    median = {key: statistics.median(values) for key, values in times.items()}
    try:
        # skorch has no transform and no memory probe here: fit time and MSE only.
        net, skorch_seconds = skorch_fit(X_train, epochs)
        with torch.no_grad():
            reconstruction = net.module_(torch.from_numpy(X_test)).numpy()
        skorch_mse = float(np.mean((reconstruction - X_test) ** 2))
        nan = float("nan")
        skorch_row = [("skorch, same settings", skorch_seconds, nan, skorch_mse, nan)]
    except ImportError:
        skorch_row = []
    hand_mse = float(
        np.mean((model(torch.from_numpy(X_test)).detach().numpy() - X_test) ** 2)
    )
    rows = [
        (
            "hand-written loop",
            median["hand fit"],
            median["hand transform"],
            hand_mse,
            memory["hand"],
        ),
        (
            "skae, same settings",
            median["skae fit"],
            median["skae transform"],
            -ae.score(X_test),
            memory["skae"],
        ),
        *skorch_row,
        ("PCA", pca_fit, pca_transform, pca_mse, pca_memory),
    ]
    n_fit, n_test = len(X_train) * epochs, len(X_test)
    print(f"\n1. Same network and settings, {epochs} epoch(s), median of {repeats}")
    print(
        f"{'method':22s} {'fit samples/s':>14s} {'transform samples/s':>20s} "
        f"{'test MSE':>9s} {'peak MiB':>9s}"
    )
    for label, fit_s, transform_s, mse, peak in rows:
        fit_rate = n_fit / fit_s if label != "PCA" else len(X_train) / fit_s
        print(
            f"{label:22s} {fit_rate:14,.0f} {n_test / transform_s:20,.0f} "
            f"{mse:9.5f} {peak:9.0f}"
        )
    fit_ratio = median["skae fit"] / median["hand fit"]
    transform_ratio = median["skae transform"] / median["hand transform"]
    print(
        f"ratio skae / hand-written: fit time {fit_ratio:.3f}, "
        f"transform time {transform_ratio:.3f}"
    )
    print(
        "transform / hand-written encode, each run: "
        + ", ".join(f"{ratio:.3f}" for ratio in transform_ratios)
    )
    print(
        "transform / the same network called by hand, each run: "
        + ", ".join(f"{ratio:.3f}" for ratio in bare_ratios)
    )

    if args.overhead_only:
        return

    # 2. Time to quality.
    budget = 3 if args.quick else 12
    _, _, hand_reached = hand_written_fit(X_train, budget, X_test, target=pca_mse)
    skae_reached, skae_epochs = skae_time_to_quality(
        X_train, X_test, pca_mse, budget, n_components=K, random_state=0
    )
    print(f"\n2. Seconds of training until test MSE < PCA's ({pca_mse:.5f}) at k={K}")
    print(f"hand-written loop: {_fmt(hand_reached)}")
    print(f"skae defaults:     {_fmt(skae_reached)}", end="")
    print(f" (a whole fit stopped after {skae_epochs} epochs)" if skae_epochs else "")
    if hand_reached and skae_reached:
        print(f"ratio skae / hand-written: {skae_reached / hand_reached:.3f}")

    # 3. The whole default fit.
    ae, wall = timed(fit_quietly, X_train, n_components=K, random_state=0)
    mse = -ae.score(X_test)
    print(
        f"\n3. Default fit on {len(X_train)} rows: {wall:.1f} s wall, "
        f"{ae.n_iter_} epochs, test MSE {mse:.5f} = {mse / pca_mse:.3f} x PCA's"
    )


def _fmt(seconds):
    return "not reached" if seconds is None else f"{seconds:.1f} s"


if __name__ == "__main__":
    main()
