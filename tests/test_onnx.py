"""ONNX export through skl2onnx: onnxruntime computes what transform computes."""

import sys

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skae import (
    AutoencoderTransformer,
    VariationalAutoencoder,
    register_onnx_converters,
)
from skae._networks import linear_paths

onnxruntime = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("onnx")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The bound; float32 rounding of the codes is about 1e-6.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def digits_rows():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module", autouse=True)
def converters():
    register_onnx_converters()


def run(model, X):
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def fitted(estimator, X, y=None):
    return estimator.fit(X, y)


def tiny_network(n_features, n_outputs):
    return (
        nn.Sequential(nn.Linear(n_features, 6), nn.Tanh(), nn.Linear(6, n_outputs)),
        nn.Sequential(nn.Linear(n_outputs, 6), nn.Tanh(), nn.Linear(6, n_features)),
    )


SMALL = {"hidden_layer_sizes": (16,), "max_iter": 2, "random_state": 0}
MODELS = {
    "dense": AutoencoderTransformer(8, **SMALL),
    "random-batch-norm-relu-codes": AutoencoderTransformer(
        4, init="random", batch_norm=True, dropout=0.2, code_activation="relu", **SMALL
    ),
    "convolutional": AutoencoderTransformer(
        4, image_shape=(1, 8, 8), conv_channels=(4, 8), batch_norm=True, **SMALL
    ),
    "custom-network": AutoencoderTransformer(3, network=tiny_network, max_iter=2),
    "variational": VariationalAutoencoder(4, **SMALL),
    "variational-convolutional": VariationalAutoencoder(
        2, image_shape=(1, 8, 8), conv_channels=(4,), **SMALL
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_codes_match_transform(name, digits_rows):
    X = digits_rows[0].astype(np.float32)
    model = fitted(MODELS[name], X)
    (codes,) = run(skl2onnx.to_onnx(model, X[:1]), X)
    assert codes.dtype == np.float32
    np.testing.assert_allclose(codes, model.transform(X), rtol=0, atol=TOLERANCE)


def test_pipeline_with_a_classifier_matches(digits_rows):
    X, y = digits_rows
    X = X.astype(np.float32)
    pipeline = fitted(
        make_pipeline(
            StandardScaler(),
            AutoencoderTransformer(8, **SMALL),
            LogisticRegression(max_iter=500),
        ),
        X,
        y,
    )
    onnx_model = skl2onnx.to_onnx(pipeline, X[:1], options={"zipmap": False})
    labels, probabilities = run(onnx_model, X)
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    np.testing.assert_allclose(
        probabilities, pipeline.predict_proba(X), rtol=0, atol=TOLERANCE
    )
    reducer = pipeline[:2]
    (codes,) = run(skl2onnx.to_onnx(reducer, X[:1]), X)
    np.testing.assert_allclose(codes, reducer.transform(X), rtol=0, atol=TOLERANCE)


def test_float64_input_gives_float64_codes(digits_rows):
    X = digits_rows[0]
    model = fitted(AutoencoderTransformer(4, **SMALL), X)
    (codes,) = run(skl2onnx.to_onnx(model, X[:1]), X)
    assert codes.dtype == np.float64
    np.testing.assert_allclose(codes, model.transform(X), rtol=0, atol=TOLERANCE)


def test_two_autoencoders_side_by_side_in_a_column_transformer(digits_rows):
    X = digits_rows[0].astype(np.float32)
    both = fitted(
        ColumnTransformer(
            [
                ("left", AutoencoderTransformer(2, **SMALL), list(range(32))),
                ("right", VariationalAutoencoder(2, **SMALL), list(range(32, 64))),
            ]
        ),
        X,
    )
    (codes,) = run(skl2onnx.to_onnx(both, X[:1]), X)
    np.testing.assert_allclose(codes, both.transform(X), rtol=0, atol=TOLERANCE)


def test_an_unfitted_model_is_refused(digits_rows):
    X = digits_rows[0].astype(np.float32)
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(AutoencoderTransformer(2), X[:1])


def test_a_width_other_than_the_fitted_one_is_refused(digits_rows):
    X = digits_rows[0].astype(np.float32)
    model = fitted(AutoencoderTransformer(2, **SMALL), X)
    with pytest.raises(ValueError, match=r"takes 64 features, but its input .* 10"):
        skl2onnx.to_onnx(model, X[:1, :10])


def test_without_skl2onnx_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match=r'pip install "skae\[onnx\]"'):
        register_onnx_converters()


def test_codes_of_rows_beyond_the_training_range_match_transform(digits_rows):
    """The residual's clipping of its input is part of the exported graph."""
    X, _ = digits_rows
    model = fitted(AutoencoderTransformer(4, **SMALL), X)
    far = (X[:20] * 5 - 40).astype(np.float32)
    onnx_model = skl2onnx.to_onnx(model, far[:1])
    np.testing.assert_allclose(
        run(onnx_model, far)[0], model.transform(far), rtol=TOLERANCE, atol=TOLERANCE
    )
    # The rows are far enough out for the clipping to change their codes.
    clipped = model.transform(far)
    for path in linear_paths(model._network):
        path.input_range.unbound()
    assert not np.allclose(model.transform(far), clipped, atol=1e-3)
