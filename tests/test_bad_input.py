"""Bad and unusual input: a correct result or a clear error, never a changed model.

Rejected input must raise an error that names the problem and leave every
attribute of the model as it was, values and identities, whichever of fit,
partial_fit, transform, inverse_transform and score it reaches; accepted input
must give exactly what its plain float equivalent gives. Checks that
scikit-learn makes for skae run once each; what skae decides runs through
every method it concerns.
"""

import copy
import functools
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)
from torch import nn

import skae
from skae import AutoencoderTransformer, VariationalAutoencoder
from tests.helpers import assert_unchanged, snapshot

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
]

N_FEATURES, N_COMPONENTS = 5, 2
METHODS = ("fit", "partial_fit", "transform", "inverse_transform", "score")
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]


def make_model(**params):
    defaults = {"n_components": N_COMPONENTS, "hidden_layer_sizes": (4,)}
    return AutoencoderTransformer(
        **{
            **defaults,
            "max_iter": 3,
            "early_stopping": False,
            "random_state": 0,
            **params,
        }
    )


def data(n_columns=N_FEATURES, n_rows=20, seed=1):
    return np.random.RandomState(seed).normal(size=(n_rows, n_columns))


def frame(X, columns=None):
    n_columns = X.shape[1]
    if columns is None:
        columns = COLUMNS if n_columns == N_FEATURES else [f"c{i}" for i in range(2)]
    return pd.DataFrame(X, columns=columns)


@pytest.fixture(scope="module")
def fitted_models():
    """Models fitted on an array and on a DataFrame, with their outputs.

    Tests work on deep copies, so one that changes a model cannot hide another.
    """
    X = data(n_rows=40, seed=0)
    models = {False: make_model().fit(X), True: make_model().fit(frame(X))}
    return {key: (model, outputs(model, key)) for key, model in models.items()}


def fitted_copy(fitted_models, on_frame=False):
    model, expected = fitted_models[on_frame]
    return copy.deepcopy(model), expected


def n_columns_for(method):
    return N_COMPONENTS if method == "inverse_transform" else N_FEATURES


# -- "unchanged" means every attribute, by identity and by value ---------------------


def outputs(model, on_frame):
    X = data(seed=5)
    X = frame(X) if on_frame else X
    codes = model.transform(X)
    return codes, model.inverse_transform(codes), model.score_samples(X)


def assert_same_outputs(model, expected, on_frame):
    for new, old in zip(outputs(model, on_frame), expected, strict=True):
        np.testing.assert_array_equal(new, old)


# -- rejected input ------------------------------------------------------------------


def with_value(value, dtype=np.float64):
    def build(n_columns):
        X = data(n_columns).astype(dtype)
        X[3, 1] = value
        return X

    return build


def matrix(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(X)


FIT_ANEW = ("partial_fit", "transform", "inverse_transform", "score")
# scikit-learn's validate_data and check_array decide these, with their own
# messages: each is checked once, through fit on a fitted model, which must
# survive it. What skae decides runs through every method it concerns: NaN and
# infinity, which inference refuses batch by batch itself; widths and feature
# names checked against the fitted model; the code width of inverse_transform.
ONCE = ("fit",)

# name: (input for a method, given its expected width; error; message; methods;
#        whether the model was fitted on a DataFrame)
REJECTED = {
    "nan": (with_value(np.nan), ValueError, "contains NaN", METHODS, False),
    "nan-float32": (
        with_value(np.nan, np.float32),
        ValueError,
        "contains NaN",
        METHODS,
        False,
    ),
    "plus-inf": (with_value(np.inf), ValueError, "contains infinity", METHODS, False),
    "minus-inf": (with_value(-np.inf), ValueError, "contains infinity", METHODS, False),
    "inf-in-list": (
        lambda n: with_value(np.inf)(n).tolist(),
        ValueError,
        "contains infinity",
        ONCE,
        False,
    ),
    "none-in-object-array": (
        with_value(None, object),
        ValueError,
        "contains NaN",
        ONCE,
        False,
    ),
    "strings": (
        lambda n: np.full((4, n), "a", dtype=object),
        ValueError,
        "could not convert string to float",
        ONCE,
        False,
    ),
    "unicode-array": (
        lambda n: np.full((4, n), "x"),
        ValueError,
        "could not convert string to float",
        ONCE,
        False,
    ),
    "one-string-cell": (
        with_value("3,5", object),
        ValueError,
        "could not convert string to float: '3,5'",
        ONCE,
        False,
    ),
    "complex128": (
        lambda n: data(n) + 1j,
        ValueError,
        "Complex data not supported",
        ONCE,
        False,
    ),
    "complex64": (
        lambda n: (data(n) + 1j).astype(np.complex64),
        ValueError,
        "Complex data not supported",
        ONCE,
        False,
    ),
    "np-matrix": (
        lambda n: matrix(data(n)),
        TypeError,
        r"np\.matrix is not supported",
        ONCE,
        False,
    ),
    "zero-samples": (
        lambda n: np.empty((0, n)),
        ValueError,
        r"0 sample\(s\)",
        ONCE,
        False,
    ),
    "zero-features": (
        lambda n: np.empty((10, 0)),
        ValueError,
        r"0 feature\(s\)",
        ONCE,
        False,
    ),
    "three-dimensional": (
        lambda n: data(n).reshape(4, 5, n),
        ValueError,
        "Found array with dim 3",
        ONCE,
        False,
    ),
    "one-dimensional": (
        lambda n: data(n)[:, 0],
        ValueError,
        r"Expected 2D array, got 1D array(?s:.*)reshape\(-1, 1\)",
        ONCE,
        False,
    ),
    "scalar": (
        lambda n: 3.0,
        ValueError,
        "Expected 2D array, got scalar array",
        ONCE,
        False,
    ),
    "none": (
        lambda n: None,
        ValueError,
        "Expected 2D array, got scalar array",
        ONCE,
        False,
    ),
    "ragged-lists": (
        lambda n: [[1.0] * n, [1.0] * (n - 1)],
        ValueError,
        "inhomogeneous shape",
        ONCE,
        False,
    ),
    "dict": (
        lambda n: {"a": [1.0, 2.0]},
        TypeError,
        "not 'dict'",
        ONCE,
        False,
    ),
    "pandas-series": (
        lambda n: pd.Series(data(n)[:, 0]),
        ValueError,
        "Expected a 2-dimensional container",
        ONCE,
        False,
    ),
    "one-column-too-many": (
        lambda n: data(n + 1),
        ValueError,
        r"X has 6 features, but AutoencoderTransformer is expecting 5|"
        r"inverse_transform expects 2 columns \(n_components=2\), got 3",
        FIT_ANEW,
        False,
    ),
    "one-column-too-few": (
        lambda n: data(n - 1),
        ValueError,
        r"X has 4 features, but AutoencoderTransformer is expecting 5|"
        r"inverse_transform expects 2 columns \(n_components=2\), got 1",
        FIT_ANEW,
        False,
    ),
    "code-width-of-the-input": (
        lambda n: data(N_FEATURES),
        ValueError,
        r"inverse_transform expects 2 columns \(n_components=2\), got 5",
        ("inverse_transform",),
        False,
    ),
    "frame-with-renamed-columns": (
        lambda n: frame(data(n), columns=["f0", "f1", "f2", "f3", "g4"]),
        ValueError,
        r"feature names should match.*\n.*unseen at fit time:\n- g4",
        ("partial_fit", "transform", "score"),
        True,
    ),
    "frame-with-reordered-columns": (
        lambda n: frame(data(n))[COLUMNS[::-1]],
        ValueError,
        "Feature names must be in the same order",
        ("partial_fit",),
        True,
    ),
    "frame-with-a-text-column": (
        lambda n: frame(data(n)).assign(f2="x"),
        ValueError,
        "str|string",
        ONCE,
        True,
    ),
    "frame-with-missing-values": (
        lambda n: frame(data(n)).astype("Float64").mask(frame(data(n)) > 1.5),
        ValueError,
        "contains NaN",
        ("fit", "transform"),
        True,
    ),
    "frame-with-mixed-name-types": (
        lambda n: frame(data(n), columns=["f0", "f1", "f2", "f3", 4]),
        TypeError,
        "Feature names are only supported if all input features have string names",
        ONCE,
        True,
    ),
}


REJECTED_PARAMS = [
    pytest.param(case, method, id=f"{case}-{method}")
    for case, (_, _, _, methods, _) in REJECTED.items()
    for method in methods
]


@pytest.mark.parametrize(("case", "method"), REJECTED_PARAMS)
def test_rejected_input_leaves_fitted_model_unchanged(case, method, fitted_models):
    build, error, match, _, on_frame = REJECTED[case]
    model, expected = fitted_copy(fitted_models, on_frame)
    before = snapshot(model)
    bad = build(n_columns_for(method))
    with pytest.raises(error, match=match):
        getattr(model, method)(bad)
    assert_unchanged(model, before)
    assert_same_outputs(model, expected, on_frame)


@pytest.mark.parametrize("case", ["nan", "strings", "np-matrix"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_rejected_input_leaves_unfitted_model_unfitted(case, method):
    build, error, match, _, _ = REJECTED[case]
    model = make_model()
    before = snapshot(model)
    with pytest.raises(error, match=match):
        getattr(model, method)(build(N_FEATURES))
    assert_unchanged(model, before)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "warm_start"])
@pytest.mark.parametrize(
    ("shift", "match"), [(-0.5, "Negative values"), (0.5, "Values above 1")]
)
def test_data_outside_the_unit_interval_leave_a_cross_entropy_model_unchanged(
    method, shift, match
):
    """Binary cross-entropy refuses X outside [0, 1] before training starts."""
    X = np.random.RandomState(0).uniform(size=(40, N_FEATURES))
    model = make_model(loss="binary_crossentropy", code_activation="relu").fit(X)
    expected = outputs(model, False)
    if method == "warm_start":
        model.set_params(warm_start=True)
        method = "fit"
    before = snapshot(model)
    with pytest.raises(ValueError, match=f"{match} in data passed to "):
        getattr(model, method)(X + shift)
    assert_unchanged(model, before)
    assert_same_outputs(model, expected, False)


# -- accepted input: exactly what the plain float equivalent gives -------------------


def read_only(dtype):
    def build(n_columns):
        X = data(n_columns).astype(dtype)
        X.setflags(write=False)
        return X

    return build


def sparse_data(n_columns):
    return np.where(np.abs(data(n_columns)) > 1, data(n_columns), 0.0)


def sparse(kind):
    return lambda n_columns: kind(sparse_data(n_columns))


def mixed_frame(n_columns):
    X = data(n_columns)
    if n_columns != N_FEATURES:
        return frame(X)
    return pd.DataFrame(
        {
            "f0": X[:, 0],
            "f1": (X[:, 1] * 10).astype(np.int64),
            "f2": X[:, 2] > 0,
            "f3": pd.array((X[:, 3] * 10).astype(np.int64), dtype="Int64"),
            "f4": X[:, 4].astype(np.float32),
        }
    )


def mixed_frame_as_floats(n_columns):
    converted = mixed_frame(n_columns)
    return frame(converted.astype(np.float64).to_numpy(), list(converted.columns))


# name: (input for a method, given its width; its float equivalent; fitted on frame)
ACCEPTED = {
    "booleans": (lambda n: data(n) > 0, lambda n: (data(n) > 0) * 1.0, False),
    "int64": (
        lambda n: (data(n) * 10).astype(np.int64),
        lambda n: (data(n) * 10).astype(np.int64) * 1.0,
        False,
    ),
    "uint8": (
        lambda n: np.abs(data(n) * 50).astype(np.uint8),
        lambda n: np.abs(data(n) * 50).astype(np.uint8) * 1.0,
        False,
    ),
    "float16": (
        lambda n: data(n).astype(np.float16),
        lambda n: data(n).astype(np.float16).astype(np.float64),
        False,
    ),
    "list-of-lists": (lambda n: data(n).tolist(), data, False),
    "tuple-of-tuples": (lambda n: tuple(map(tuple, data(n))), data, False),
    "object-array-of-floats": (lambda n: data(n).astype(object), data, False),
    "numpy-scalars-in-lists": (
        lambda n: [[np.float32(v) for v in row] for row in data(n).astype(np.float32)],
        lambda n: data(n).astype(np.float32).astype(np.float64),
        False,
    ),
    "fortran-order": (lambda n: np.asfortranarray(data(n)), data, False),
    "strided-columns": (lambda n: np.repeat(data(n), 2, axis=1)[:, ::2], data, False),
    "reversed-rows-view": (
        lambda n: data(n)[::-1],
        lambda n: np.ascontiguousarray(data(n)[::-1]),
        False,
    ),
    "read-only-float64": (read_only(np.float64), data, False),
    "read-only-float32": (
        read_only(np.float32),
        lambda n: data(n).astype(np.float32),
        False,
    ),
    "torch-tensor": (lambda n: torch.from_numpy(data(n)), data, False),
    "sparse-csr-matrix": (sparse(sp.csr_matrix), sparse_data, False),
    "sparse-csc-array": (sparse(sp.csc_array), sparse_data, False),
    "sparse-coo-matrix": (sparse(sp.coo_matrix), sparse_data, False),
    "frame-float64": (lambda n: frame(data(n)), lambda n: frame(data(n)), True),
    "frame-float32": (
        lambda n: frame(data(n).astype(np.float32)),
        lambda n: frame(data(n).astype(np.float32)),
        True,
    ),
    "frame-mixed-dtypes": (mixed_frame, mixed_frame_as_floats, True),
    "frame-nullable-dtypes-without-missing-values": (
        lambda n: frame(data(n)).astype("Float64"),
        lambda n: frame(data(n)),
        True,
    ),
}

# NumPy sums the columns of a Fortran-ordered array in another order, so the
# mean fit computes can differ in its last bit, and training with it.
LAYOUT_SENSITIVE = {"fortran-order"}
# Sparse X gives the same model, but its scale's variance is summed in another
# order: losses in squared units of the data agree to float64 rounding.
SPARSE = {"sparse-csr-matrix", "sparse-csc-array", "sparse-coo-matrix"}

# Conversions are scikit-learn's: each case runs through training and through
# inference; these run through every method, as they meet skae's own choices
# (writeable copies, float32 kept, frames' feature names).
EVERY_METHOD = {"read-only-float32", "frame-mixed-dtypes", "sparse-csr-matrix"}

ACCEPTED_PARAMS = [
    pytest.param(case, method, id=f"{case}-{method}")
    for case in ACCEPTED
    for method in (METHODS if case in EVERY_METHOD else ("fit", "transform"))
]


def assert_same_result(new, old):
    if isinstance(old, float):
        assert new == old
    else:
        assert type(new) is type(old)
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old))
        assert np.asarray(new).dtype == np.asarray(old).dtype


@pytest.mark.parametrize(("case", "method"), ACCEPTED_PARAMS)
def test_accepted_input_gives_the_float_result(case, method, fitted_models):
    build, equivalent, on_frame = ACCEPTED[case]
    n_columns = n_columns_for(method)
    with warnings.catch_warnings():
        # Unusual input must not make skae or torch complain either.
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        if method in ("fit", "partial_fit"):
            model = getattr(make_model(), method)(build(n_columns))
            reference = getattr(make_model(), method)(equivalent(n_columns))
            X = equivalent(N_FEATURES)
            if case in LAYOUT_SENSITIVE:
                np.testing.assert_allclose(model.transform(X), reference.transform(X))
                np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_)
            else:
                assert_same_result(model.transform(X), reference.transform(X))
                if case in SPARSE:
                    np.testing.assert_allclose(
                        model.loss_curve_, reference.loss_curve_, rtol=1e-13
                    )
                else:
                    assert model.loss_curve_ == reference.loss_curve_
        else:
            model, _ = fitted_copy(fitted_models, on_frame)
            before = snapshot(model)
            result = getattr(model, method)(build(n_columns))
            assert_same_result(result, getattr(model, method)(equivalent(n_columns)))
            assert_unchanged(model, before)


READ_ONLY_SCRIPT = """
import warnings
import numpy as np
import pandas as pd
import torch
from skae import AutoencoderTransformer
torch.set_num_threads(1)
warnings.filterwarnings("error", message=".*not writable")
X = np.random.RandomState(0).normal(size=(30, 4))
X.setflags(write=False)
frame = pd.DataFrame(X.copy(), columns=list("abcd"))
assert not np.asarray(frame).flags.writeable  # pandas' copy-on-write
for inputs in (X, X.astype(np.float32), frame):
    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(4,), max_iter=2, random_state=0
    )
    model.partial_fit(inputs).fit(inputs)
    codes = model.transform(inputs)
    codes.setflags(write=False)
    model.inverse_transform(codes)
    model.score(inputs)
print("ok")
"""


def test_read_only_input_raises_no_torch_warning():
    """torch warns once per process on read-only memory: check in a fresh one."""
    result = subprocess.run(
        [sys.executable, "-W", "ignore::FutureWarning", "-c", READ_ONLY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


# -- unusual sizes and magnitudes ------------------------------------------------------


def test_one_sample(fitted_models):
    X = data(n_rows=1)
    for method in ("fit", "partial_fit"):
        model = getattr(make_model(), method)(X)
        assert np.isfinite(model.transform(X)).all()
        assert model.mean_.tolist() == X[0].tolist()
        assert model.scale_ == 1.0
    model, _ = fitted_copy(fitted_models)
    many = data(n_rows=9)
    # float64 rows run through a float64 network: a row's result is its own.
    np.testing.assert_allclose(model.transform(many[:1]), model.transform(many)[:1])
    codes = model.transform(many)
    np.testing.assert_allclose(
        model.inverse_transform(codes[:1]), model.inverse_transform(codes)[:1]
    )
    assert model.score(many[:1]) == pytest.approx(model.score_samples(many)[0])


@pytest.mark.parametrize(
    "constant_columns", [[0], [1, 3], list(range(N_FEATURES))], ids=str
)
def test_constant_columns(constant_columns):
    X = data()
    X[:, constant_columns] = 7.0
    model = make_model().fit(X)
    assert np.isfinite(model.scale_) and model.scale_ > 0
    codes = model.transform(X)
    assert np.isfinite(codes).all()
    assert np.isfinite(model.inverse_transform(codes)).all()
    assert np.isfinite(model.score(X))
    model.partial_fit(X)
    assert np.isfinite(model.transform(X)).all()


@pytest.mark.parametrize("magnitude", [1e-30, 1e-10, 1e10, 1e30], ids=str)
def test_extreme_but_representable_magnitudes(magnitude):
    """Standardisation brings them back to order one; outputs follow their units."""
    X = data() * magnitude
    model = make_model().fit(X)
    assert model.scale_ == pytest.approx(magnitude, rel=0.5)
    codes = model.transform(X)
    X_back = model.inverse_transform(codes)
    assert np.isfinite(codes).all() and np.isfinite(X_back).all()
    assert np.abs(codes).max() < 1e3
    assert np.abs(X_back).max() < 1e3 * magnitude
    assert np.isfinite(model.score(X))
    np.testing.assert_array_equal(model.transform(X), codes)


@pytest.mark.parametrize("magnitude", [1e-50, 1e-140], ids=str)
def test_variation_below_float32_precision_is_constant_data(magnitude):
    """Too small for the float32 network to divide by: scaled by 1, as zero is."""
    X = 1.0 + data() * magnitude
    model = make_model().fit(X)
    assert model.scale_ == 1.0
    np.testing.assert_array_equal(model.mean_, X.mean(axis=0))
    codes = model.transform(X)
    assert np.isfinite(codes).all()
    assert np.isfinite(model.inverse_transform(codes)).all()
    assert np.isfinite(model.score(X))


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VariationalAutoencoder])
def test_rounding_noise_of_a_constant_column_is_no_variation(cls):
    """float64 rounding leaves a variance of about 1e-41 here: still constant data."""
    X = np.full((22, 2), 1.80372278e-05)
    assert 0 < X.var(axis=0).max() < 1e-40
    model = cls(n_components=2, hidden_layer_sizes=(), max_iter=1, random_state=0)
    model.fit(X)
    assert model.scale_ == 1.0
    assert np.isfinite(model.transform(X)).all()


@pytest.mark.parametrize(
    "column",
    [np.full(20, 1e300), np.linspace(1e306, 1.7e307, 20)],
    ids=["constant-1e300", "near-1e307"],
)
def test_extreme_columns_are_refused_before_pca_sees_them(column):
    """No LinAlgError or SciPy message: the cause, named, before any training."""
    X = np.c_[data(), column]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a NumPy overflow warning
        with pytest.raises(ValueError, match=r"as large as .* Rescale X first"):
            make_model(init="pca").fit(X)


def test_huge_input_to_a_normal_model_stays_finite_in_float64(fitted_models):
    model, _ = fitted_copy(fitted_models)
    X = data() * 1e30
    codes = model.transform(X)
    assert np.isfinite(codes).all()
    assert np.isfinite(model.inverse_transform(codes)).all()
    assert np.isfinite(model.score(X))


@pytest.mark.parametrize(
    ("method", "magnitude"),
    [("fit", 1e39), ("fit", 1e150), ("fit", 1e300), ("partial_fit", 1e39)],
    ids=str,
)
def test_magnitudes_beyond_float32_cannot_be_trained_on(
    method, magnitude, fitted_models
):
    """The network trains in float32: refused up front, the model unchanged."""
    model, expected = fitted_copy(fitted_models)
    before = snapshot(model)
    X = data() * magnitude
    with pytest.raises(ValueError, match=r"X holds values as large as .* float32"):
        getattr(model, method)(X)
    assert_unchanged(model, before)
    assert_same_outputs(model, expected, False)


@pytest.fixture(scope="module")
def tiny_scale_model():
    """Fitted on data of scale 1e-20: ordinary values overflow float32 after it."""
    model = make_model().fit((data() * 1e-20).astype(np.float32))
    return model, outputs(model, False)


@pytest.mark.parametrize("method", ["transform", "score", "score_samples"])
def test_overflow_after_standardisation_is_an_error_not_nan(method, tiny_scale_model):
    model = copy.deepcopy(tiny_scale_model[0])
    before = snapshot(model)
    X = (data() * 1e20).astype(np.float32)
    with pytest.raises(ValueError, match=r"network overflowed in float32.*as float64"):
        getattr(model, method)(X)
    assert_unchanged(model, before)
    # The advice works: float64 input runs through a float64 network.
    result = getattr(model, method)(X.astype(np.float64))
    assert np.isfinite(result).all()


def test_overflowing_codes_are_an_error_not_inf():
    """Decoding multiplies by scale_ (here 1e30): large codes overflow float32."""
    model = make_model().fit(data() * 1e30)
    before = snapshot(model)
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
    codes = (1e12 * signs).astype(np.float32)
    # The float64 network decodes them exactly; some exceed float32's range.
    decoded = model.inverse_transform(codes.astype(np.float64))
    assert np.isfinite(decoded).all()
    too_large = np.abs(decoded).max(axis=1) > np.finfo(np.float32).max
    assert too_large.any()
    with pytest.raises(ValueError, match="network overflowed in float32"):
        model.inverse_transform(codes[too_large])
    assert_unchanged(model, before)


def test_score_overflowing_float64_is_an_error_not_minus_inf(fitted_models):
    model, _ = fitted_copy(fitted_models)
    with pytest.raises(ValueError, match="network overflowed in float64"):
        model.score(data() * 1e300)


# -- divergence ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_divergence_is_detected_and_keeps_the_fitted_model(method, fitted_models):
    model, expected = fitted_copy(fitted_models)
    model.set_params(
        solver="sgd", learning_rate_init=1e8, batch_size=2, warm_start=True
    )
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"Training diverged: .*learning_rate_init"):
        getattr(model, method)(data() * 100)
    assert_unchanged(model, before)
    assert_same_outputs(model, expected, False)


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_divergence_in_the_very_last_step_is_detected(solver):
    """The last step's loss is measured before that step moves weights to inf.

    Adam's first step is ``learning_rate_init / 0.1`` in size: infinite here.
    """
    model = make_model(
        solver=solver, learning_rate_init=1e308, max_iter=1, batch_size=20
    )
    with pytest.raises(ValueError, match="became inf or NaN in the last step"):
        model.fit(data())
    assert not hasattr(model, "encoder_")
    with pytest.raises(ValueError, match="became inf or NaN in the last step"):
        model.partial_fit(data())
    assert not hasattr(model, "encoder_")


def test_moments_that_overflow_are_divergence_not_a_model_that_cannot_resume():
    """Squared gradients beyond float32 while the weights stay finite."""
    X = np.array([[1, 1], [1, 0], [1, 1], [1, 1]], dtype=np.float32)
    model = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(4,),
        learning_rate_init=1e4,
        max_iter=1,
        random_state=0,
    )
    with pytest.raises(ValueError, match="Training diverged"):
        model.fit(X)
        for _ in range(3):
            model.partial_fit(X)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("max_iter", [1, 4])
@pytest.mark.parametrize("learning_rate", [1e1, 1e3, 1e6, 1e12, 1e24, 1e36], ids=str)
def test_no_nan_ever_comes_out_whatever_the_learning_rate(
    solver, max_iter, learning_rate
):
    model = make_model(
        solver=solver, learning_rate_init=learning_rate, max_iter=max_iter
    )
    X = data(n_rows=30) * 10
    try:
        model.fit(X)
    except ValueError as error:
        assert str(error).startswith("Training diverged")
        assert not hasattr(model, "encoder_")
        return
    codes = model.transform(X)
    assert np.isfinite(codes).all()
    assert np.isfinite(model.inverse_transform(codes)).all()
    assert np.isfinite(model.score_samples(X)).all()


# -- invalid parameters ----------------------------------------------------------------


class NoType:
    """A value no parameter accepts."""

    def __repr__(self):
        return "NoType()"


def skae_autoencoders():
    """AutoencoderTransformer and skae's public subclasses of it."""
    return [
        value
        for value in map(functools.partial(getattr, skae), skae.__all__)
        if isinstance(value, type) and issubclass(value, AutoencoderTransformer)
    ]


def invalid_values_from_constraints():
    """Per parameter, a value of no valid type, and values invalid for each rule.

    Derived from ``_parameter_constraints``, so new parameters are covered, and
    so are the subclasses' own (theirs shared with the base are tested there).
    """
    base = AutoencoderTransformer._parameter_constraints
    cases = []
    for cls in skae_autoencoders():
        for name, rules in cls._parameter_constraints.items():
            if cls is not AutoencoderTransformer and base.get(name) == rules:
                continue
            values = [NoType()]
            for rule in map(make_constraint, rules):
                try:
                    value = generate_invalid_param_val(rule)
                except NotImplementedError:
                    continue
                if not any(make_constraint(r).is_satisfied_by(value) for r in rules):
                    values.append(value)
            cases += [
                pytest.param(cls, name, value, id=f"{cls.__name__}-{name}={value!r}")
                for value in values
            ]
    return cases


@pytest.fixture(scope="module")
def fitted_by_class(fitted_models):
    """A fitted model of each skae autoencoder class, with its outputs."""
    models = {AutoencoderTransformer: fitted_models[False]}
    for cls in skae_autoencoders():
        if cls not in models:
            model = cls(
                n_components=N_COMPONENTS,
                hidden_layer_sizes=(4,),
                max_iter=3,
                random_state=0,
            ).fit(data(n_rows=40, seed=0))
            models[cls] = (model, outputs(model, False))
    return models


def check_rejected_parameter(model, expected, params, error, match, method):
    original = {name: getattr(model, name) for name in params}
    model.set_params(**params)
    before = snapshot(model)
    with pytest.raises(error, match=match):
        getattr(model, method)(data())
    assert_unchanged(model, before)
    model.set_params(**original)
    assert_same_outputs(model, expected, False)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize(("cls", "name", "value"), invalid_values_from_constraints())
def test_invalid_parameter_names_itself(cls, name, value, method, fitted_by_class):
    model, expected = fitted_by_class[cls]
    model = copy.deepcopy(model)
    match = rf"The '{name}' parameter of {cls.__name__} must be .* Got "
    check_rejected_parameter(
        model, expected, {name: value}, InvalidParameterError, match, method
    )


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (VariationalAutoencoder, "kl_weight", 10**30),
        (AutoencoderTransformer, "sparsity", 10**30),
        (AutoencoderTransformer, "noise_level", 1e30),
        (AutoencoderTransformer, "tol", 10**400),
        (AutoencoderTransformer, "learning_rate_init", 10**400),
        (AutoencoderTransformer, "alpha", 10**400),
        (AutoencoderTransformer, "batch_size", 10**400),
        (AutoencoderTransformer, "max_iter", 10**400),
        (AutoencoderTransformer, "n_iter_no_change", 2**63),
    ],
    ids=str,
)
def test_numbers_no_float_or_int64_holds_are_refused_by_validation(cls, name, value):
    """Not an OverflowError later: each bound is in the parameter's message."""
    match = rf"The '{name}' parameter of {cls.__name__} must be .* in the range"
    with pytest.raises(InvalidParameterError, match=match):
        cls(
            **{name: value, "noise": "gaussian"}
            if name == "noise_level"
            else {name: value}
        ).fit(data())


def fixed_width_network(n_features, n_outputs):
    return nn.Linear(n_features, 3), nn.Linear(N_COMPONENTS, n_features)


def not_a_pair_network(n_features, n_outputs):
    return nn.Linear(n_features, n_outputs)


INVALID_COMBINATIONS = {
    "negative-width": (
        {"hidden_layer_sizes": (8, -1)},
        ValueError,
        r"hidden_layer_sizes must be a sequence of positive ints, got \(8, -1\)",
    ),
    "float-width": (
        {"hidden_layer_sizes": (8.0,)},
        ValueError,
        "hidden_layer_sizes must be a sequence of positive ints",
    ),
    "nested-widths": (
        {"hidden_layer_sizes": [[8]]},
        ValueError,
        "hidden_layer_sizes must be a sequence of positive ints",
    ),
    "boolean-width": (
        {"hidden_layer_sizes": (True,)},
        ValueError,
        "hidden_layer_sizes must be a sequence of positive ints",
    ),
    "image-shape-of-other-size": (
        {"image_shape": (1, 2, 2)},
        ValueError,
        r"image_shape=\(1, 2, 2\) must be \(channels, height, width\) with a "
        r"product equal to n_features=5",
    ),
    "image-shape-of-two-numbers": (
        {"image_shape": (5, 1)},
        ValueError,
        r"image_shape=\(5, 1\) must be \(channels, height, width\)",
    ),
    "zero-channels": (
        {"image_shape": (1, 5, 1), "conv_channels": (0,)},
        ValueError,
        "conv_channels must be a sequence of positive ints",
    ),
    "unknown-device": (
        {"device": "tpu"},
        ValueError,
        "device='tpu' is not a valid torch device",
    ),
    "meta-device": (
        {"device": "meta"},
        ValueError,
        "device='meta' is a 'meta' device, where skae does not run",
    ),
    "network-of-wrong-width": (
        {"network": fixed_width_network},
        ValueError,
        "encoder returns 3 columns, expected 2",
    ),
    "network-not-returning-a-pair": (
        {"network": not_a_pair_network},
        TypeError,
        r"network must return a pair \(encoder, decoder\) of torch.nn.Module",
    ),
    "batch-norm-with-one-row-batches": (
        {"batch_norm": True, "batch_size": 1},
        ValueError,
        "batch_norm=True needs at least 2 samples per training batch, got batch_size=1",
    ),
    "batch-norm-with-one-training-row": (
        {"batch_norm": True, "early_stopping": True, "validation_fraction": 0.95},
        ValueError,
        r"batch_norm=True needs at least 2 samples per training batch, got "
        r"batch_size=\d+ and n_samples=1 to train",
    ),
    "validation-split-leaving-no-training-data": (
        {"early_stopping": True, "validation_fraction": 0.99},
        ValueError,
        "early_stopping=True cannot split n_samples=20 with validation_fraction=0.99",
    ),
}
if not torch.cuda.is_available():
    INVALID_COMBINATIONS["cuda-without-a-gpu"] = (
        {"device": "cuda"},
        ValueError,
        "device='cuda' asks for CUDA, but torch sees no CUDA device",
    )


@pytest.mark.parametrize("case", INVALID_COMBINATIONS)
def test_invalid_parameter_combination_is_a_clear_error(case, fitted_models):
    params, error, match = INVALID_COMBINATIONS[case]
    model, expected = fitted_copy(fitted_models)
    check_rejected_parameter(model, expected, params, error, match, "fit")
    if "early_stopping" in params:
        return  # partial_fit holds no data out
    fresh = make_model(**params)
    with pytest.raises(error, match=match):
        fresh.partial_fit(data())
    assert not hasattr(fresh, "encoder_")


def test_changing_the_architecture_before_partial_fit_is_a_clear_error(
    fitted_models,
):
    model, expected = fitted_copy(fitted_models)
    check_rejected_parameter(
        model,
        expected,
        {"n_components": 3, "hidden_layer_sizes": (6,)},
        ValueError,
        r"Cannot continue training after changing \['hidden_layer_sizes', "
        r"'n_components'\]",
        "partial_fit",
    )


def test_partial_fit_after_changing_the_solver_or_its_rate(fitted_models):
    """Moments carry over only within a solver; new hyperparameters apply."""
    model, _ = fitted_copy(fitted_models)
    steps = model._optimizer_state["state"][0]["step"].item()
    model.partial_fit(data())  # 20 rows: one batch, one step
    assert model._optimizer_state["state"][0]["step"].item() == steps + 1
    model.set_params(solver="sgd").partial_fit(data())
    assert "momentum_buffer" in model._optimizer_state["state"][0]
    model.set_params(solver="adam", learning_rate_init=0.5).partial_fit(data())
    assert model._optimizer_state["param_groups"][0]["lr"] == 0.5
    assert model._optimizer_state["state"][0]["step"].item() == 1  # a fresh Adam


def test_boolean_n_components_counts_as_one():
    """Integral parameters accept bools, as in scikit-learn; True means 1."""
    model = make_model(n_components=True).fit(data())
    assert model.transform(data()).shape == (20, 1)
    assert model.get_feature_names_out().tolist() == ["autoencodertransformer0"]
