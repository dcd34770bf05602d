"""Property tests: the estimator's contract over shapes, dtypes and parameters.

Hypothesis draws small data sets and parameter sets; each property holds for
every draw. Example counts are bounded so the file runs in well under a minute.
"""

import copy
import functools
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import skae
from skae import AutoencoderTransformer, load, save
from tests.helpers import assert_unchanged, snapshot

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
]

CONSTRAINTS = AutoencoderTransformer._parameter_constraints
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def options(name):
    """The string options a parameter accepts, read from its constraints."""
    (rule,) = [rule for rule in CONSTRAINTS[name] if hasattr(rule, "options")]
    return sorted(rule.options)


DTYPES = [np.float64, np.float32, np.int64, np.bool_]
# AutoencoderTransformer and skae's public subclasses (VariationalAutoencoder...).
AUTOENCODERS = [
    value
    for value in map(functools.partial(getattr, skae), skae.__all__)
    if isinstance(value, type) and issubclass(value, AutoencoderTransformer)
]


def build(cls, params):
    """An estimator of ``cls`` with the drawn parameters it has."""
    accepted = cls().get_params()
    return cls(**{name: value for name, value in params.items() if name in accepted})


@st.composite
def data_sets(draw, min_samples=2, max_samples=24, max_features=6):
    n_samples = draw(st.integers(min_samples, max_samples))
    n_features = draw(st.integers(1, max_features))
    dtype = draw(st.sampled_from(DTYPES))
    if dtype == np.bool_:
        elements = st.booleans()
    elif dtype == np.int64:
        elements = st.integers(-1000, 1000)
    else:
        elements = st.floats(-1e3, 1e3, width=32 if dtype == np.float32 else 64)
    return draw(hnp.arrays(dtype, (n_samples, n_features), elements=elements))


@st.composite
def parameter_sets(draw):
    return {
        "n_components": draw(st.integers(1, 4)),
        "hidden_layer_sizes": tuple(
            draw(st.lists(st.integers(1, 6), min_size=0, max_size=2))
        ),
        "activation": draw(st.sampled_from(options("activation"))),
        "solver": draw(st.sampled_from(options("solver"))),
        "batch_size": draw(st.one_of(st.just("auto"), st.integers(2, 30))),
        "dropout": draw(st.sampled_from([0.0, 0.25])),
        "batch_norm": draw(st.booleans()),
        "noise": draw(st.sampled_from([None, *options("noise")])),
        "sparsity": draw(st.sampled_from([0.0, 0.1])),
        "alpha": draw(st.sampled_from([0.0, 1e-3])),
        "max_iter": draw(st.integers(1, 3)),
        "random_state": draw(st.integers(0, 2**31)),
    }


def output_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


@PROPERTY
@given(cls=st.sampled_from(AUTOENCODERS), X=data_sets(), params=parameter_sets())
def test_fit_transform_contract(cls, X, params):
    """Shapes, dtypes, finite outputs, scores and reproducibility, whatever the draw."""
    X_before = X.copy()
    n_samples, n_features = X.shape
    if (
        params["n_components"] > n_features
        and params["noise"] is None
        and not params["sparsity"]
    ):
        with pytest.raises(ValueError, match="exceeds n_features"):
            build(cls, params).fit(X)
        return
    model = build(cls, params).fit(X)
    codes = model.transform(X)
    assert codes.shape == (n_samples, params["n_components"])
    assert codes.dtype == output_dtype(X)
    assert np.isfinite(codes).all()
    X_back = model.inverse_transform(codes)
    assert X_back.shape == (n_samples, n_features)
    assert X_back.dtype == output_dtype(X)
    assert np.isfinite(X_back).all()
    scores = model.score_samples(X)
    assert scores.shape == (n_samples,)
    assert np.isfinite(scores).all() and (scores <= 0).all()
    assert model.score(X) == pytest.approx(scores.mean(), rel=1e-12)
    assert model.n_iter_ == len(model.loss_curve_) <= params["max_iter"]
    np.testing.assert_array_equal(X, X_before)
    again = build(cls, params).fit(X)
    np.testing.assert_array_equal(again.transform(X), codes)


@PROPERTY
@given(
    X=data_sets(min_samples=4),
    solver=st.sampled_from(options("solver")),
    exponent=st.integers(-3, 36),
    max_iter=st.integers(1, 4),
    n_partial_fits=st.integers(0, 3),
)
def test_no_nan_comes_out_whatever_the_learning_rate(
    X, solver, exponent, max_iter, n_partial_fits
):
    """Training diverges with a clear error, or outputs are finite or refused.

    A model that survived huge steps may hold huge weights: its outputs can then
    overflow float32, which must be a clear error too, never inf or NaN.
    """
    n_components = min(2, X.shape[1])
    model = AutoencoderTransformer(
        n_components=n_components,
        hidden_layer_sizes=(4,),
        solver=solver,
        learning_rate_init=10.0**exponent,
        max_iter=max_iter,
        random_state=0,
    )
    try:
        model.fit(X)
        for _ in range(n_partial_fits):
            model.partial_fit(X)
    except ValueError as error:
        assert str(error).startswith("Training diverged")
        if not hasattr(model, "encoder_"):
            return

    def finite_or_refused(method, inputs):
        try:
            result = getattr(model, method)(inputs)
        except ValueError as error:
            assert str(error).startswith("The network overflowed")
            return None
        assert np.isfinite(result).all()
        return result

    codes = finite_or_refused("transform", X)
    if codes is None:
        codes = np.zeros((len(X), n_components))
    finite_or_refused("inverse_transform", codes)
    finite_or_refused("score_samples", X)


@functools.cache
def fitted_model(cls=AutoencoderTransformer):
    X = np.random.RandomState(0).normal(size=(30, 5))
    return cls(n_components=2, hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(
        X
    )


@PROPERTY
@given(
    cls=st.sampled_from(AUTOENCODERS),
    method=st.sampled_from(
        ["fit", "partial_fit", "transform", "inverse_transform", "score"]
    ),
    n_samples=st.integers(1, 12),
    row=st.integers(0, 11),
    column=st.integers(0, 4),
    bad=st.sampled_from([np.nan, np.inf, -np.inf, "text", 1j]),
)
def test_a_bad_cell_never_changes_a_fitted_model(
    cls, method, n_samples, row, column, bad
):
    model = copy.deepcopy(fitted_model(cls))
    before = snapshot(model)
    n_columns = 2 if method == "inverse_transform" else 5
    X = np.random.RandomState(1).normal(size=(n_samples, n_columns)).astype(object)
    X[row % n_samples, column % n_columns] = bad
    with pytest.raises((ValueError, TypeError), match=r"NaN|infinity|string|complex"):
        getattr(model, method)(X)
    assert_unchanged(model, before)


@PROPERTY
@given(
    cls=st.sampled_from(AUTOENCODERS),
    X=data_sets(max_samples=12),
    params=parameter_sets(),
)
def test_save_load_round_trip_is_exact(cls, X, params):
    if params["noise"] is None and not params["sparsity"]:
        # Wider codes are refused (test_fit_transform_contract).
        params = {**params, "n_components": min(params["n_components"], X.shape[1])}
    model = build(cls, params).fit(X)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        save(model, path)
        restored = load(path)
    assert restored.get_params() == model.get_params()
    codes = model.transform(X)
    np.testing.assert_array_equal(restored.transform(X), codes)
    np.testing.assert_array_equal(
        restored.inverse_transform(codes), model.inverse_transform(codes)
    )
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    assert restored.loss_curve_ == model.loss_curve_


@PROPERTY
@given(
    X=data_sets(min_samples=3, max_samples=12).filter(lambda X: X.dtype != np.float32),
    rows=st.lists(st.integers(0, 11), min_size=1, max_size=5),
)
def test_a_rows_codes_do_not_depend_on_the_other_rows(X, rows):
    """float64 input runs through a float64 network, row by row in effect."""
    model = fitted_model() if X.shape[1] == 5 else None
    if model is None:
        model = AutoencoderTransformer(
            n_components=min(2, X.shape[1]),
            hidden_layer_sizes=(4,),
            max_iter=2,
            random_state=0,
        ).fit(X)
    rows = [row % X.shape[0] for row in rows]
    np.testing.assert_allclose(
        model.transform(X[rows]), model.transform(X)[rows], rtol=1e-12, atol=1e-12
    )
