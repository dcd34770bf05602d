"""Write the model files that tests/test_model_files.py loads with every later skae.

Run from the repository root, once per file-format release::

    python tests/model_files/write_model_files.py

Each estimator is fitted on a small fixed data set and saved with skae.save as
``<class>-<label>.safetensors``, beside ``expected-<label>.npz``, which holds
the data and the outputs the saved model gave: a later skae must load the file
and give the same outputs, or refuse it with a clear message. The label is the
skae version; files of a format that no release wrote are labelled by their
format instead, by this script run with the skae of the last commit writing
it::

    python tests/model_files/write_model_files.py format2
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import skae

HERE = Path(__file__).resolve().parent


def data() -> np.ndarray:
    rng = np.random.RandomState(0)
    return (rng.normal(size=(60, 3)) @ rng.normal(size=(3, 8))).astype(np.float32)


def estimators() -> dict[str, object]:
    small = {"hidden_layer_sizes": (6,), "max_iter": 5, "random_state": 0}
    return {
        "AutoencoderTransformer": skae.AutoencoderTransformer(3, **small),
        "VariationalAutoencoder": skae.VariationalAutoencoder(2, **small),
        "AutoencoderOutlierDetector": skae.AutoencoderOutlierDetector(
            skae.AutoencoderTransformer(2, **small), contamination=0.2
        ),
    }


def outputs(name: str, estimator: object, X: np.ndarray) -> dict[str, np.ndarray]:
    """What each estimator gives on X; the test compares these after loading."""
    if name == "AutoencoderOutlierDetector":
        return {"score_samples": estimator.score_samples(X)}
    codes = estimator.transform(X)
    return {"transform": codes, "inverse_transform": estimator.inverse_transform(codes)}


def main(label: str = skae.__version__) -> None:
    X = data()
    expected = {"X": X}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, estimator in estimators().items():
            estimator.fit(X)
            skae.save(estimator, HERE / f"{name}-{label}.safetensors")
            for method, values in outputs(name, estimator, X).items():
                expected[f"{name}.{method}"] = values
    np.savez(HERE / f"expected-{label}.npz", **expected)


if __name__ == "__main__":
    main(*sys.argv[1:])
