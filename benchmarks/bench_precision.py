"""Default fit of MNIST in bfloat16 mixed precision against float32.

Run from the repository root::

    python benchmarks/bench_precision.py              # MNIST 60,000 x 784, k = 32
    python benchmarks/bench_precision.py --repeats 3  # interleaved repeats
    python benchmarks/bench_precision.py --inference  # bfloat16 inference too

Fits ``AutoencoderTransformer(n_components=32, random_state=0)`` with
``precision='auto'`` and ``precision='float32'`` in turn, in one process, and
prints each fit's seconds and test MSE, PCA's test MSE and the ratios, after
the speed of one matrix product of a training step's shape in each precision
(which bounds what bfloat16 can give). On a
machine without native bfloat16, 'auto' is float32 and the ratios are about 1.
Reads ``../shared/data/mnist.npz`` beside the repository.

``--inference`` also measures what bfloat16 inference would give: the float32
model's encoder and decoder run under bfloat16 autocast on the 10,000 test
rows (the median of seven interleaved timings each), against float32: time,
the codes' relative error, and the test MSE of the reconstructions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae._data import native_bfloat16
from skae._inference import inference_module

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
PIXEL_MAX = 255


def mse(model, X: np.ndarray) -> float:
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--inference", action="store_true")
    args = parser.parse_args()
    with np.load(DATA) as data:
        X_train = data["x_train"][: args.n_train].reshape(-1, 784) / np.float32(
            PIXEL_MAX
        )
        X_test = data["x_test"].reshape(-1, 784) / np.float32(PIXEL_MAX)
    pca = PCA(n_components=32).fit(X_train)
    pca_error = mse(pca, X_test)
    print(f"native bfloat16: {native_bfloat16(torch.device('cpu'))}")
    print(matmul_speeds())
    print(f"PCA test MSE: {pca_error:.5f}")
    seconds: dict[str, list[float]] = {"auto": [], "float32": []}
    errors: dict[str, float] = {}
    for _ in range(args.repeats):
        for precision in seconds:
            model = AutoencoderTransformer(
                n_components=32, random_state=0, precision=precision
            )
            start = time.perf_counter()
            model.fit(X_train)
            seconds[precision].append(time.perf_counter() - start)
            errors[precision] = mse(model, X_test)
            print(
                f"precision={precision!r}: fit {seconds[precision][-1]:.1f} s, "
                f"test MSE {errors[precision]:.5f} "
                f"({errors[precision] / pca_error:.3f} x PCA), "
                f"{model.n_iter_} epochs",
                flush=True,
            )
    auto, float32 = (statistics.median(seconds[p]) for p in ("auto", "float32"))
    print(
        f"auto / float32: fit time {auto / float32:.2f}, "
        f"test MSE {errors['auto'] / errors['float32']:.4f}"
    )
    if args.inference:
        inference(model, X_test)


def matmul_speeds() -> str:
    """The bound on any speed-up: matrix products of a training step's shape.

    A batch of 256 rows through the default network's widest layer
    (784 x 256), in float32 and in bfloat16, at torch's thread count.
    """
    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(256, 784, dtype=dtype), torch.randn(784, 256, dtype=dtype)
        for _ in range(20):
            a @ b
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(100):
                a @ b
            timings.append((time.perf_counter() - start) / 100)
        rates[dtype] = 2 * 256 * 784 * 256 / statistics.median(timings) / 1e9
    f32, b16 = rates[torch.float32], rates[torch.bfloat16]
    return (
        f"matrix product 256 x 784 x 256: float32 {f32:.0f} GFLOP/s, "
        f"bfloat16 {b16:.0f} GFLOP/s ({b16 / f32:.1f} x)"
    )


def inference(model: AutoencoderTransformer, X_test: np.ndarray) -> None:
    """Time the fitted float32 modules in float32 and under bfloat16 autocast."""
    cpu = torch.device("cpu")
    encoder = inference_module(model.encoder_, cpu, torch.float32)
    decoder = inference_module(model.decoder_, cpu, torch.float32)
    X = torch.from_numpy(np.ascontiguousarray(X_test, dtype=np.float32))
    seconds: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    outputs = {}
    with torch.inference_mode():
        for _ in range(7):
            for precision in seconds:
                with torch.autocast(
                    "cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"
                ):
                    start = time.perf_counter()
                    codes = torch.cat([encoder(b) for b in X.split(1024)])
                    seconds[precision].append(time.perf_counter() - start)
                    back = torch.cat([decoder(c) for c in codes.split(1024)])
                outputs[precision] = codes.float(), back.float()
    (codes, back), (codes16, back16) = outputs["float32"], outputs["bfloat16"]
    f32, b16 = (statistics.median(seconds[p]) for p in seconds)
    code_error = float(torch.linalg.norm(codes16 - codes) / torch.linalg.norm(codes))
    mse32 = float(torch.mean((back - X) ** 2))
    mse16 = float(torch.mean((back16 - X) ** 2))
    print(
        f"inference, encoder on {len(X)} rows: float32 {1000 * f32:.1f} ms, "
        f"bfloat16 {1000 * b16:.1f} ms ({b16 / f32:.2f} x); codes' relative error "
        f"{code_error:.2e}; test MSE {mse32:.5f} float32, {mse16:.5f} bfloat16 "
        f"({mse16 / mse32:.4f} x)"
    )


if __name__ == "__main__":
    main()
