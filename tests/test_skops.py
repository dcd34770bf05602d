"""Fitted skae estimators and pipelines through skops.io, pickle and copy."""

import copy
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from skae._fitted_state import RENAMED_FIELDS

sio = pytest.importorskip("skops.io")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SKAE_TYPES = [
    "skae._autoencoder.AutoencoderTransformer",
    "skae._outlier.AutoencoderOutlierDetector",
    "skae._variational.VariationalAutoencoder",
]


def tiny_network(n_features, n_outputs):
    """A user's own modules, as the ``network`` parameter takes them."""
    return nn.Linear(n_features, n_outputs), nn.Linear(n_outputs, n_features)


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(120, 6))


MODELS = {
    "dense": lambda: AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), batch_norm=True, max_iter=3
    ),
    "convolutional": lambda: AutoencoderTransformer(
        n_components=2, image_shape=(1, 1, -1), conv_channels=(2,), max_iter=2
    ),
    "variational": lambda: VariationalAutoencoder(n_components=2, max_iter=2),
    "custom-network": lambda: AutoencoderTransformer(
        n_components=2, network=tiny_network, max_iter=2
    ),
}


def output(model, X):
    if isinstance(model, AutoencoderOutlierDetector):
        return model.decision_function(X)
    return model.transform(X)


def skops_round_trip(obj, extra_trusted=()):
    data = sio.dumps(obj)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= {*SKAE_TYPES, *extra_trusted}, untrusted
    return sio.loads(data, trusted=untrusted), data


@pytest.mark.parametrize("name", MODELS)
def test_skops_round_trip_is_bit_for_bit(name, X):
    model = MODELS[name]().set_params(random_state=0).fit(X)
    extra = {f"{__name__}.tiny_network"}
    loaded, data = skops_round_trip(model, extra)
    assert_array_equal(loaded.transform(X), model.transform(X))
    codes = model.transform(X)
    assert_array_equal(loaded.inverse_transform(codes), model.inverse_transform(codes))
    assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    # Nothing of torch in the file: the network travels as arrays.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "torch" not in archive.read("schema.json").decode()


def test_skops_pipeline_and_column_transformer(X):
    autoencoder = AutoencoderTransformer(n_components=2, max_iter=2, random_state=0)
    detector = AutoencoderOutlierDetector(
        VariationalAutoencoder(n_components=2, max_iter=2, random_state=0)
    )
    columns = ColumnTransformer(
        [
            ("codes", autoencoder, [0, 1, 2, 3]),
            ("scaled", StandardScaler(), [4, 5]),
        ]
    )
    for pipeline in (make_pipeline(StandardScaler(), autoencoder), columns):
        pipeline.fit(X)
        loaded, _ = skops_round_trip(pipeline)
        assert_array_equal(loaded.transform(X), pipeline.transform(X))
    pipeline = make_pipeline(StandardScaler(), detector).fit(X)
    loaded, _ = skops_round_trip(pipeline)
    assert_array_equal(loaded.decision_function(X), pipeline.decision_function(X))
    assert_array_equal(loaded.predict(X), pipeline.predict(X))


def test_skops_refuses_untrusted_skae_types_by_default(X):
    model = AutoencoderTransformer(n_components=2, max_iter=1).fit(X)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(sio.dumps(model))


def test_skops_unfitted_model_round_trip():
    model = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(4, 2))
    loaded, _ = skops_round_trip(model)
    assert loaded.get_params() == model.get_params()
    assert not hasattr(loaded, "n_features_in_")


def _edit_schema(data, edit):
    """Rewrite the schema of a skops file with ``edit(schema)``."""
    source, target = io.BytesIO(data), io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            content = old.read(item)
            if item.filename == "schema.json":
                schema = json.loads(content)
                edit(schema)
                content = json.dumps(schema).encode()
            new.writestr(item, content)
    return target.getvalue()


def _attributes(schema):
    """The attribute nodes of the estimator at the top of a schema."""
    return schema["content"]["content"]


@pytest.mark.parametrize(
    ("attribute", "value", "match"),
    [
        ("n_iter_", '"many"', "n_iter_"),
        ("n_code_columns", "5", "do not fit the network"),
        ("scale_", "-1.0", "scale_"),
    ],
)
def test_skops_file_with_an_edited_state_is_refused(X, attribute, value, match):
    """The checks skae.load makes run on a skops file's state too."""
    model = AutoencoderTransformer(n_components=2, max_iter=2).fit(X)
    data = sio.dumps(model)

    def edit(schema):
        node = _attributes(schema)[attribute]
        assert node["__loader__"] == "JsonNode"
        node["content"] = value
        # skops shares the node of equal objects (small ints) by id.
        node["__id__"] = 1

    with pytest.raises(ValueError, match=match):
        sio.loads(_edit_schema(data, edit), trusted=SKAE_TYPES)


def test_skops_file_of_the_old_layout_loads_bit_for_bit(X):
    """skops files of skae before file format 3 store the old names: they load."""
    model = AutoencoderTransformer(n_components=2, max_iter=2, random_state=0)
    model.set_output(transform="pandas")
    model.fit(X).partial_fit(X)
    data = sio.dumps(model)

    def edit(schema):
        attributes = _attributes(schema)
        for old, new in RENAMED_FIELDS.items():
            attributes[old] = attributes.pop(new)

    old_data = _edit_schema(data, edit)
    loaded = sio.loads(old_data, trusted=SKAE_TYPES)
    assert_array_equal(
        loaded.partial_fit(X).transform(X), model.partial_fit(X).transform(X)
    )


def test_pickle_state_of_the_old_layout_loads():
    """The plain state renames as a file of format 2 does; both names are refused."""
    model = AutoencoderTransformer(n_components=2, max_iter=2)
    X = np.random.RandomState(0).normal(size=(40, 4))
    state = model.fit(X).__getstate__()
    old = {
        {new: old for old, new in RENAMED_FIELDS.items()}.get(key, key): value
        for key, value in state.items()
    }
    restored = AutoencoderTransformer.__new__(AutoencoderTransformer)
    restored.__setstate__(old)
    assert_array_equal(restored.transform(X), model.transform(X))
    with pytest.raises(ValueError, match="under both their old and their new names"):
        restored.__setstate__({**state, "_architecture": state["architecture"]})


def test_skops_file_with_edited_weights_is_refused(X):
    model = AutoencoderTransformer(n_components=2, max_iter=2).fit(X)
    state = model.__getstate__()
    name = next(iter(state["__skae_weights"]))
    state["__skae_weights"][name] = np.zeros((1, 1), dtype=np.float32)
    restored = AutoencoderTransformer.__new__(AutoencoderTransformer)
    with pytest.raises(ValueError, match="do not fit the network"):
        restored.__setstate__(state)
    assert vars(restored) == {}


@pytest.mark.parametrize("name", MODELS)
def test_pickle_and_deepcopy_are_bit_for_bit(name, X):
    """Pickling keeps working, custom network callables included."""
    model = MODELS[name]().set_params(random_state=0).fit(X)
    for copied in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert_array_equal(copied.transform(X), model.transform(X))
        assert copied.loss_curve_ == model.loss_curve_
    # The copy trains on as the original does.
    copied = copy.deepcopy(model)
    assert_array_equal(
        copied.partial_fit(X).transform(X), model.partial_fit(X).transform(X)
    )


def test_pickled_state_holds_no_torch_object(X):
    model = AutoencoderTransformer(
        n_components=2, max_iter=2, device=torch.device("cpu")
    ).fit(X)
    state = model.__getstate__()
    assert not [name for name, value in state.items() if "torch" in repr(type(value))]
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.device == model.device
    assert_array_equal(loaded.transform(X), model.transform(X))
