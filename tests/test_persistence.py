"""Persistence: pickle and joblib, and the safe format of skae.save / skae.load."""

import copy
import functools
import json
import os
import pickle
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn

import skae
from skae import AutoencoderTransformer, load, save
from skae._file_format import checksum as _checksum
from skae._fitted_state import RENAMED_FIELDS
from skae._persistence import LOADABLE_CLASSES
from skae._writing import fcntl, temporary_prefix
from tests.helpers import assert_same, low_rank_data


@pytest.fixture(scope="module")
def data():
    return low_rank_data(60, 6, rank=2, noise=0.1)


def tiny(**params):
    defaults = {"n_components": 2, "hidden_layer_sizes": (8,), "max_iter": 5}
    return AutoencoderTransformer(**{**defaults, "random_state": 0, **params})


@pytest.fixture(scope="module")
def fitted(data):
    """A fitted model shared by tests that do not change it."""
    return tiny().fit(data)


@pytest.fixture
def saved(fitted, tmp_path):
    path = tmp_path / "model.safetensors"
    save(fitted, path)
    return path


def assert_round_trip(restored, original, X):
    assert type(restored) is type(original)
    assert_same(restored.get_params(deep=False), original.get_params(deep=False))
    assert sorted(vars(restored)) == sorted(vars(original))
    for name, value in vars(original).items():
        assert_same(getattr(restored, name), value, name)
    if not any(name.endswith("_") for name in vars(original)):
        return
    for method in ("transform", "score_samples", "decision_function", "predict"):
        if hasattr(original, method):
            expected = getattr(original, method)(X)
            np.testing.assert_array_equal(getattr(restored, method)(X), expected)
    if hasattr(original, "inverse_transform"):
        codes = original.transform(X)
        np.testing.assert_array_equal(
            restored.inverse_transform(codes), original.inverse_transform(codes)
        )


# -- skae.save / skae.load ---------------------------------------------------------


ROUND_TRIP_CASES = {
    "defaults": ({}, "array"),
    "early-stopping-batch-norm-dropout": (
        {"early_stopping": True, "batch_norm": True, "dropout": 0.2, "solver": "sgd"},
        "frame",
    ),
    "random-state-object-device-pandas-output": (
        {
            "random_state": np.random.RandomState(3),
            "device": torch.device("cpu"),
            "hidden_layer_sizes": [8, 4],
            "alpha": 1e-3,
        },
        "pandas-output",
    ),
    "linear-float32-adamw": ({"hidden_layer_sizes": (), "solver": "adamw"}, "float32"),
    "denoising-sparse": (
        {"noise": "mask", "noise_level": 0.2, "sparsity": 0.1},
        "array",
    ),
}


@pytest.mark.parametrize("case", ROUND_TRIP_CASES, ids=str)
def test_round_trip_is_bit_for_bit(case, data, tmp_path):
    params, kind = ROUND_TRIP_CASES[case]
    if any(name not in AutoencoderTransformer().get_params() for name in params):
        pytest.skip("parameter not available in this skae")
    X = data.astype(np.float32) if kind == "float32" else data
    if kind == "frame":
        X = pd.DataFrame(data, columns=[f"pixel {i}" for i in range(6)])
    original = tiny(**params)
    if kind == "pandas-output":
        original.set_output(transform="pandas")
    original.fit(X)
    save(original, tmp_path / "model.safetensors")
    restored = load(tmp_path / "model.safetensors")
    assert_round_trip(restored, original, X)


def small_instance(cls):
    """A quick-to-fit instance of any skae estimator."""
    params = cls().get_params(deep=False)
    if "estimator" in params:  # a meta-estimator around an autoencoder
        return cls(tiny(max_iter=3))
    return cls(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)


def test_every_public_estimator_is_loadable():
    public = {
        name
        for name in skae.__all__
        if isinstance(getattr(skae, name), type)
        and issubclass(getattr(skae, name), BaseEstimator)
    }
    assert set(LOADABLE_CLASSES) == public
    assert all(getattr(skae, name) is cls for name, cls in LOADABLE_CLASSES.items())


@pytest.mark.parametrize("name", list(LOADABLE_CLASSES))
def test_every_skae_estimator_round_trips(name, data, tmp_path):
    """Estimators added to skae later are covered without a new test."""
    original = small_instance(LOADABLE_CLASSES[name]).fit(data)
    save(original, str(tmp_path / "model"))
    assert_round_trip(load(str(tmp_path / "model")), original, data)


def test_unfitted_estimator_round_trips(tmp_path):
    original = AutoencoderTransformer(
        n_components=5, hidden_layer_sizes=(32, 16), device="cpu"
    ).set_output(transform="pandas")
    save(original, tmp_path / "model.safetensors")
    restored = load(tmp_path / "model.safetensors")
    assert_round_trip(restored, original, None)
    with pytest.raises(NotFittedError):
        check_is_fitted(restored)


def test_loaded_model_continues_training_identically(fitted, data, saved):
    """Weights and optimiser state (Adam's moments) come back exactly."""
    original = copy.deepcopy(fitted)
    restored = load(saved)
    for model in (original, restored):
        model.partial_fit(data)
        model.set_params(warm_start=True, max_iter=2, early_stopping=False).fit(data)
    assert_round_trip(restored, original, data)
    assert restored.n_iter_ == fitted.n_iter_ + 3


def test_load_keeps_params_changed_after_fit(data, tmp_path):
    """The network is rebuilt with the shape it was trained with."""
    original = tiny().fit(data).set_params(n_components=4, hidden_layer_sizes=(3,))
    save(original, tmp_path / "model.safetensors")
    restored = load(tmp_path / "model.safetensors")
    assert_round_trip(restored, original, data)
    assert restored.transform(data).shape == (60, 2)
    with pytest.raises(ValueError, match="Cannot continue training after changing"):
        restored.set_params(warm_start=True).fit(data)


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, skae.VariationalAutoencoder])
def test_float64_default_dtype_changes_neither_loading_nor_training(
    cls, fitted, data, saved, float64_default, tmp_path
):
    """skae trains in float32 whatever torch's default dtype says."""
    restored = load(saved)
    np.testing.assert_array_equal(restored.transform(data), fitted.transform(data))
    restored.partial_fit(data)
    model = small_instance(cls).fit(data)
    assert next(model._network.parameters()).dtype == torch.float32
    save(model, tmp_path / "model.safetensors")
    assert_round_trip(load(tmp_path / "model.safetensors"), model, data)


RNG_CASES = {
    "dense": {},
    "dropout, batch norm, sigmoid": {
        "dropout": 0.2,
        "batch_norm": True,
        "loss": "binary_crossentropy",
    },
    "convolutional": {"conv_channels": (2,), "image_shape": (1, 2, 5)},
}


@pytest.mark.parametrize("params", list(RNG_CASES.values()), ids=list(RNG_CASES))
@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VariationalAutoencoder"])
def test_fit_and_load_leave_global_torch_rng_alone(name, params, tmp_path):
    """Neither draws from the caller's stream: fits in other threads draw from it."""
    X = np.random.default_rng(0).uniform(size=(40, 10))
    state = torch.random.get_rng_state()
    model = small_instance(LOADABLE_CLASSES[name]).set_params(**params).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    save(model, tmp_path / "model.safetensors")
    load(tmp_path / "model.safetensors")
    assert torch.equal(torch.random.get_rng_state(), state)


def test_loaded_weights_are_on_cpu(saved):
    restored = load(saved)
    for module in (restored.encoder_, restored.decoder_, restored._network):
        for tensor in (*module.parameters(), *module.buffers()):
            assert tensor.device.type == "cpu"


def test_version_mismatch_warns(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    old = {"skae": "0.0.1", "torch": "2.0.0+cu118", "scikit-learn": "1.6.0"}
    monkeypatch.setattr("skae._persistence._versions", lambda: old)
    save(fitted, path)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match=r"saved with skae 0\.0\.1 .*torch 2\.0\.0"):
        restored = load(path)
    np.testing.assert_array_equal(restored.mean_, fitted.mean_)


def test_matching_versions_and_other_builds_do_not_warn(fitted, tmp_path, monkeypatch):
    """torch 2.13.0+cu124 and 2.13.0+cpu are one release: a GPU model moves freely."""
    path = tmp_path / "model.safetensors"
    versions = skae._persistence._versions()
    release = versions["torch"].split("+")[0]
    other_build = {**versions, "torch": f"{release}+cu124"}
    monkeypatch.setattr("skae._persistence._versions", lambda: other_build)
    save(fitted, path)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(path)


def linear_network(n_features, n_outputs):
    """A custom network factory: code, which skae.save does not store."""
    return nn.Linear(n_features, n_outputs), nn.Linear(2, n_features)


def test_save_refuses_code(data, tmp_path):
    path = tmp_path / "model.safetensors"
    save(tiny(), path)
    before = path.read_bytes()
    model = tiny(network=linear_network)
    with pytest.raises(TypeError, match=r"parameter 'network'.* is a callable"):
        save(model, path)
    with pytest.raises(TypeError, match=r"parameter 'network'.* is a callable"):
        save(model.fit(data), path)
    # A failed save leaves an existing file as it was, and no temporary file.
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    # Pickle keeps such a model.
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.transform(data), model.transform(data))


@pytest.fixture(scope="module")
def detector(data):
    from skae import AutoencoderOutlierDetector

    return AutoencoderOutlierDetector(tiny(), contamination=0.2).fit(data)


def test_nested_estimators_round_trip(detector, data, tmp_path):
    """The outlier detector's autoencoder, fitted or not, is stored inside it."""
    save(detector, tmp_path / "detector.safetensors")
    restored = load(tmp_path / "detector.safetensors")
    assert_round_trip(restored, detector, data)
    assert restored.estimator_ is not restored.estimator
    assert not hasattr(restored.estimator, "encoder_")


def test_tampered_nested_estimator_is_a_clear_error(detector, tmp_path):
    path = tmp_path / "detector.safetensors"
    save(detector, path)
    rewrite(
        path,
        edit_document=set_in(
            "attributes", "estimator_", "__estimator__", "class", "Pipeline"
        ),
    )
    with pytest.raises(ValueError, match="unknown estimator class 'Pipeline'"):
        load(path)


def test_save_refuses_non_skae_classes(fitted, tmp_path):
    class MyAutoencoder(AutoencoderTransformer):
        pass

    with pytest.raises(TypeError, match=r"stores skae's own estimators.*MyAutoencoder"):
        save(MyAutoencoder(), tmp_path / "model.safetensors")
    with pytest.raises(TypeError, match="stores skae's own estimators"):
        save(object(), tmp_path / "model.safetensors")
    assert "MyAutoencoder" not in LOADABLE_CLASSES
    from skae import AutoencoderOutlierDetector

    detector = AutoencoderOutlierDetector(PCA(2))
    with pytest.raises(TypeError, match=r"got parameter 'estimator' .*\.PCA\."):
        save(detector, tmp_path / "model.safetensors")


def test_save_refuses_attributes_that_are_not_data(fitted, tmp_path):
    model = copy.deepcopy(fitted)
    model.best_loss_ = print
    with pytest.raises(TypeError, match=r"attribute 'best_loss_'.* is a callable"):
        save(model, tmp_path / "model.safetensors")


def test_save_and_pickle_refuse_attributes_the_state_does_not_declare(fitted, tmp_path):
    """A file or pickle holding them would be refused as it loads."""
    model = copy.deepcopy(fitted)
    model.note_ = "mine"
    match = r"attributes \['note_'\] that its fitted state does not declare"
    with pytest.raises(TypeError, match=match):
        save(model, tmp_path / "model.safetensors")
    with pytest.raises(TypeError, match=match):
        pickle.dumps(model)


def test_saved_file_has_the_usual_permissions(fitted, tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    save(fitted, tmp_path / "model.safetensors")
    assert (tmp_path / "model.safetensors").stat().st_mode == plain.stat().st_mode


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o600, 0o640], ids=oct)
def test_resaving_keeps_the_files_permission_bits(mode, fitted, saved):
    saved.chmod(mode)
    save(fitted, saved)
    assert stat.S_IMODE(saved.stat().st_mode) == mode


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX")
def test_saving_to_a_link_replaces_the_file_it_points_to(fitted, data, tmp_path):
    target = tmp_path / "models" / "model.safetensors"
    target.parent.mkdir()
    target.write_bytes(b"an older model")
    target.chmod(0o600)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(target)
    save(fitted, link)
    assert link.is_symlink() and link.resolve() == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert_round_trip(load(target), fitted, data)
    assert sorted(path.name for path in target.parent.iterdir()) == [target.name]


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX")
def test_saving_to_a_loop_of_links_is_refused(fitted, tmp_path):
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    first.symlink_to(second)
    second.symlink_to(first)
    with pytest.raises(ValueError, match="is a loop of symbolic links"):
        save(fitted, first)
    assert sorted(path.name for path in tmp_path.iterdir()) == [first.name, second.name]


@pytest.mark.parametrize("name", ["m" * 220, "m" * 255, "é" * 127], ids=len)
def test_longest_names_save_and_load(name, fitted, data, tmp_path):
    """The temporary name fits NAME_MAX (255 bytes) whatever the target's name."""
    save(fitted, tmp_path / name)
    assert_round_trip(load(tmp_path / name), fitted, data)
    assert [path.name for path in tmp_path.iterdir()] == [name]


def abandoned_temporary(path, token="0123456789abcdef"):
    """The file a save to ``path`` killed mid-write leaves behind."""
    temporary = path.with_name(temporary_prefix(path.name) + token)
    temporary.write_bytes(b"half a model")
    return temporary


@pytest.mark.skipif(fcntl is None, reason="only POSIX locks tell a live save")
def test_next_save_removes_temporaries_of_interrupted_saves(fitted, saved):
    abandoned = abandoned_temporary(saved)
    long_name = saved.with_name("m" * 250)
    abandoned_long = abandoned_temporary(long_name)
    other = abandoned_temporary(saved.with_name("other.safetensors"))
    in_progress = abandoned_temporary(saved, token="fedcba9876543210")
    with open(in_progress, "rb") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # as a save in another process holds it
        save(fitted, saved)
        save(fitted, long_name)
    assert abandoned.name.startswith(".skae-tmp.model.safetensors.")
    assert not abandoned.exists() and not abandoned_long.exists()
    # Another file's, and a save still writing: left alone.
    assert other.exists() and in_progress.exists()
    load(saved)


@pytest.mark.skipif(fcntl is None, reason="only POSIX locks tell a live save")
def test_kill_during_save_leaves_the_old_file_and_a_temporary_the_next_removes(
    fitted, saved, tmp_path
):
    before = saved.read_bytes()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from skae._writing import replace_file\n"
        "def write(file):\n"
        "    file.write(b'half a model')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "replace_file(Path(sys.argv[1]), write, follow_links=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(saved)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    try:
        assert child.stdout.readline() == b"writing\n"
    finally:
        child.kill()
        child.wait()
    leftovers = [path for path in tmp_path.iterdir() if path != saved]
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".skae-tmp.model.safetensors.")
    assert saved.read_bytes() == before
    save(fitted, saved)
    assert list(tmp_path.iterdir()) == [saved]


def header_and_document_containers(path):
    """JSON objects and arrays in a model file's header and in its document."""

    def count(value):
        if isinstance(value, dict):
            return 1 + sum(count(item) for item in value.values())
        if isinstance(value, list):
            return 1 + sum(count(item) for item in value)
        return 0

    content = path.read_bytes()
    length = int.from_bytes(content[:8], "little")
    header = json.loads(content[8 : 8 + length])
    return count(header), count(json.loads(header["__metadata__"]["skae.model"]))


def test_save_refuses_a_file_load_would_refuse_for_its_size(fitted, saved, monkeypatch):
    """Thousands of layers make a header load refuses: save refuses it first."""
    limit = max(header_and_document_containers(saved))
    monkeypatch.setattr("skae._model_file.MAX_JSON_CONTAINERS", limit)
    save(fitted, saved)
    load(saved)
    before = saved.read_bytes()
    monkeypatch.setattr("skae._model_file.MAX_JSON_CONTAINERS", limit - 1)
    with pytest.raises(ValueError, match="a model file may hold") as error:
        load(saved)
    assert "AutoencoderTransformer is too large" not in str(error.value)
    with pytest.raises(
        ValueError,
        match=rf"AutoencoderTransformer is too large for a skae model file: .* more "
        rf"than the {limit - 1} a model file may hold, so skae.load would refuse",
    ):
        save(fitted, saved)
    assert saved.read_bytes() == before


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.safetensors")


# -- tampered, truncated and foreign files -----------------------------------------


def rewrite(path, edit_document=None, edit_metadata=None, sign=True):
    """Re-save a model file with its JSON document or metadata edited.

    ``sign`` recomputes the checksum, as someone editing the file on purpose can.
    """
    with safe_open(path, framework="pt", device="cpu") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    if edit_document is not None:
        document = json.loads(metadata["skae.model"])
        edit_document(document)
        metadata["skae.model"] = json.dumps(document)
    if edit_metadata is not None:
        edit_metadata(metadata)
    if sign:
        metadata["skae.sha256"] = _checksum(metadata, tensors)
    save_file(tensors, path, metadata=metadata)


def set_in(*keys_and_value):
    *keys, value = keys_and_value

    def edit(document):
        target = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def widen_hidden_layer(document):
    """Claim the network was trained with 9 hidden units instead of 8."""
    for pair in document["attributes"]["architecture"]["__dict__"]:
        if pair[0] == "hidden_layer_sizes":
            pair[1] = {"__tuple__": [9]}


TAMPERED_DOCUMENTS = {
    "class-not-from-skae": (set_in("class", "os.system"), "unknown estimator class"),
    "class-from-sklearn": (set_in("class", "PCA"), "unknown estimator class"),
    "invalid-parameter-value": (
        set_in("params", "n_components", -1),
        r"invalid parameter.*'n_components' parameter",
    ),
    "invalid-parameter-type": (
        set_in("params", "max_iter", "many"),
        r"invalid parameter.*'max_iter' parameter",
    ),
    "unknown-parameter": (set_in("params", "evil", 1), r"parameters \['evil'\]"),
    "unknown-tag": (
        set_in("params", "n_components", {"__import__": "os"}),
        "unexpected entry",
    ),
    "dunder-attribute": (
        set_in("attributes", "__class__", "x"),
        "forbidden attribute '__class__'",
    ),
    "method-attribute": (set_in("attributes", "fit", 1), "forbidden attribute 'fit'"),
    "class-setting-attribute": (
        set_in("attributes", "_parameter_constraints", 1),
        "forbidden attribute '_parameter_constraints'",
    ),
    "parameter-as-attribute": (
        set_in("attributes", "n_components", 9),
        "forbidden attribute 'n_components'",
    ),
    "weights-of-another-shape": (widen_hidden_layer, "weights do not fit the network"),
    "missing-tensor": (
        set_in("attributes", "mean_", {"__ndarray__": "tensor.999"}),
        "tensor 'tensor.999' is missing",
    ),
    "tensor-outside-state": (
        set_in("attributes", "mean_", {"__ndarray__": "/etc/passwd"}),
        "bad __ndarray__ entry",
    ),
    "object-scalar": (
        set_in("attributes", "n_iter_", {"__scalar__": ["|O", 1]}),
        "bad __scalar__ entry",
    ),
    "bad-device": (
        set_in("params", "device", {"__device__": "warp drive"}),
        "bad __device__ entry",
    ),
    "mean-of-wrong-length": (
        set_in("attributes", "n_features_in_", 4),
        "input scaling is invalid",
    ),
    "no-modules": (set_in("modules", []), "fitted attributes but no network"),
}


@pytest.mark.parametrize("case", TAMPERED_DOCUMENTS, ids=str)
def test_tampered_document_is_a_clear_error(case, saved):
    edit, match = TAMPERED_DOCUMENTS[case]
    rewrite(saved, edit_document=edit)
    with pytest.raises(ValueError, match=match):
        load(saved)


def test_tampered_json_syntax(saved):
    def corrupt(metadata):
        metadata["skae.model"] = metadata["skae.model"][:-10]

    rewrite(saved, edit_metadata=corrupt)
    with pytest.raises(ValueError, match="JSON document cannot be parsed"):
        load(saved)


def test_tampered_weights_fail_the_checksum(saved):
    content = bytearray(saved.read_bytes())
    content[-3] ^= 0xFF  # a byte of tensor data, at the end of the file
    saved.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="corrupted: its content does not match"):
        load(saved)


def test_a_flipped_digit_in_the_document_fails_the_checksum(saved):
    """One bit of scale_'s digits changes every output: it must not pass unseen."""
    content = bytearray(saved.read_bytes())
    key = b'scale_\\":'  # the document is a JSON string inside the header
    start = content.index(key) + len(key)
    digit = next(i for i in range(start, start + 30) if chr(content[i]) in "123456")
    content[digit] ^= 0x01  # "1" <-> "0", "2" <-> "3", ...
    saved.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="corrupted: its content does not match"):
        load(saved)


def test_an_edit_without_a_new_checksum_is_caught(saved):
    rewrite(saved, edit_document=set_in("params", "max_iter", 7), sign=False)
    with pytest.raises(ValueError, match="corrupted: its content does not match"):
        load(saved)


def test_newer_file_format_asks_for_an_upgrade(saved):
    rewrite(saved, edit_metadata=lambda metadata: metadata.update({"skae.format": "5"}))
    with pytest.raises(ValueError, match=r"file format 5, newer .* upgrade skae"):
        load(saved)


def old_layout(document, *, keep_new=False):
    """Store the fields under the names files of formats 1 and 2 used."""
    attributes = document["attributes"]
    for old, new in RENAMED_FIELDS.items():
        if new in attributes:
            attributes[old] = attributes[new] if keep_new else attributes.pop(new)


def as_format(number):
    return lambda metadata: metadata.update({"skae.format": str(number)})


def test_format_2_file_of_the_old_layout_loads_bit_for_bit(data, tmp_path):
    """Every renamed field, solver moments and set_output's included, loads."""
    model = tiny().set_output(transform="pandas").fit(data).partial_fit(data)
    path = tmp_path / "model.safetensors"
    save(model, path)
    rewrite(path, edit_document=old_layout, edit_metadata=as_format(2))
    content = path.read_bytes()
    assert all(old.encode() in content for old in RENAMED_FIELDS)
    loaded = load(path)
    assert_round_trip(loaded, model, data)
    pd.testing.assert_frame_equal(
        loaded.partial_fit(data).transform(data),
        model.partial_fit(data).transform(data),
        check_exact=True,
    )


def test_a_field_stored_under_both_names_is_refused(saved):
    rewrite(
        saved,
        edit_document=functools.partial(old_layout, keep_new=True),
        edit_metadata=as_format(2),
    )
    with pytest.raises(ValueError, match="under both their old and their new names"):
        load(saved)


def test_format_3_file_with_the_old_names_is_refused(saved):
    """Only files of formats 1 and 2 are renamed: format 3 has one set of names."""
    rewrite(saved, edit_document=old_layout)
    with pytest.raises(
        ValueError, match="the fitted attribute 'architecture' is missing"
    ):
        load(saved)


def test_header_length_starting_like_a_pickle_still_loads(fitted, saved, data):
    """A header length whose first byte is 0x80, as a pickle's is, is no pickle."""
    for padding in range(256):
        pad = functools.partial(dict.update, pad="x" * padding)
        rewrite(saved, edit_metadata=pad)
        if saved.read_bytes()[0] == 0x80:
            break
    np.testing.assert_array_equal(load(saved).transform(data), fitted.transform(data))
    assert saved.read_bytes()[0] == 0x80


def test_safetensors_file_not_from_skae(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"weight": torch.ones(2, 2)}, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"not one written by skae\.save"):
        load(path)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.05, 0.5, 0.99])
def test_truncated_file_is_a_clear_error(saved, fraction):
    content = saved.read_bytes()
    saved.write_bytes(content[: int(len(content) * fraction)])
    match = "is empty" if fraction == 0 else "truncated, corrupted or of another kind"
    with pytest.raises(ValueError, match=match):
        load(saved)


def test_random_bytes_are_a_clear_error(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.RandomState(0).bytes(1000))
    with pytest.raises(ValueError, match="not a readable skae model file: it does not"):
        load(path)


def test_pickle_joblib_and_torch_files_are_refused(fitted, tmp_path):
    pickle_path = tmp_path / "model.pkl"
    pickle_path.write_bytes(pickle.dumps(fitted))
    joblib_path = tmp_path / "model.joblib"
    joblib.dump(fitted, joblib_path)
    torch_path = tmp_path / "model.pt"
    torch.save(fitted._network.state_dict(), torch_path)
    for path in (pickle_path, joblib_path):
        with pytest.raises(ValueError, match=r"is a pickle .*can run code"):
            load(path)
    with pytest.raises(ValueError, match="is a zip archive"):
        load(torch_path)


class Payload:
    """Unpickling this object creates a file: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_malicious_pickle_in_disguise_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match="is a pickle"):
        load(disguised)
    assert not marker.exists()
    # The payload is live: unpickling the same file does run it.
    with open(disguised, "rb") as file:
        pickle.load(file).close()
    assert marker.exists()


def test_pickle_payload_behind_a_safetensors_header_runs_no_code(saved, tmp_path):
    """Pickle bytes appended to, or put inside, a model file are never unpickled."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    saved.write_bytes(saved.read_bytes() + payload)
    with pytest.raises(ValueError, match="not a readable skae model file"):
        load(saved)

    def smuggle(metadata):
        metadata["skae.payload"] = payload.hex()

    clean = tmp_path / "clean.safetensors"
    save(tiny(), clean)
    rewrite(clean, edit_metadata=smuggle)
    load(clean)
    assert not marker.exists()


# -- pickle and joblib ---------------------------------------------------------------


def all_tensors(model):
    """Every tensor of the fitted state: module weights and optimiser moments."""
    for value in vars(model).values():
        if isinstance(value, nn.Module):
            yield from value.parameters()
            yield from value.buffers()
    for entry in model._optimizer_state["state"].values():
        yield from (value for value in entry.values() if torch.is_tensor(value))


def test_fitted_state_rests_on_cpu(fitted):
    tensors = list(all_tensors(fitted))
    assert tensors
    assert all(tensor.device.type == "cpu" for tensor in tensors)


def test_gpu_model_unpickles_on_cpu_only_machine(fitted, data, tmp_path, monkeypatch):
    """A model trained with device='cuda' loads where torch sees no GPU."""
    gpu_model = clone(fitted).set_params(device="cpu").fit(data)
    gpu_model.set_params(device="cuda")  # as it was, on the GPU machine
    pickled = pickle.dumps(gpu_model)
    joblib.dump(gpu_model, tmp_path / "model.joblib")
    save(gpu_model, tmp_path / "model.safetensors")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    expected = fitted.transform(data)
    for restored in (
        pickle.loads(pickled),
        joblib.load(tmp_path / "model.joblib"),
        load(tmp_path / "model.safetensors"),
    ):
        assert all(tensor.device.type == "cpu" for tensor in all_tensors(restored))
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            restored.transform(data)
        restored.set_params(device="auto")
        np.testing.assert_array_equal(restored.transform(data), expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_trained_on_gpu_loads_on_cpu(data, tmp_path, monkeypatch):
    model = tiny(device="cuda").fit(data)
    expected = model.transform(data)
    pickled = pickle.dumps(model)
    save(model, tmp_path / "model.safetensors")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for restored in (pickle.loads(pickled), load(tmp_path / "model.safetensors")):
        assert all(tensor.device.type == "cpu" for tensor in all_tensors(restored))
        restored.set_params(device="cpu")
        np.testing.assert_allclose(restored.transform(data), expected, rtol=1e-5)


def test_bfloat16_trained_model_loads_bit_for_bit(data, tmp_path):
    """Mixed precision leaves float32 weights: the file and outputs are exact."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # emulated bfloat16 where not native
        model = tiny().set_params(precision="bfloat16").fit(data)
    assert {p.dtype for p in model._network.parameters()} == {torch.float32}
    save(model, tmp_path / "model.safetensors")
    restored = load(tmp_path / "model.safetensors")
    assert restored.precision == "bfloat16"
    np.testing.assert_array_equal(restored.transform(data), model.transform(data))


@pytest.mark.parametrize("name", sorted(LOADABLE_CLASSES))
def test_every_attribute_of_a_fitted_estimator_is_a_declared_field(name, data):
    """A model file stores the declared fields: no fitted attribute is left out."""
    cls = LOADABLE_CLASSES[name]
    if name == "AutoencoderOutlierDetector":
        model = cls(tiny())
    else:
        model = cls(n_components=2, hidden_layer_sizes=(8,), max_iter=2)
    model.fit(pd.DataFrame(data).add_prefix("x"))
    declared = {field.attribute for field in cls._state_fields}
    attributes = set(vars(model)) - set(model.get_params(deep=False))
    assert attributes - set(cls._state_modules) <= declared
    assert set(cls._state_modules) <= attributes


@pytest.mark.parametrize("name", sorted(LOADABLE_CLASSES))
def test_every_field_has_a_public_name_on_disk(name):
    """Files, pickles and skops files name no private attribute."""
    names = [field.name for field in LOADABLE_CLASSES[name]._state_fields]
    assert len(set(names)) == len(names)
    assert not [name for name in names if name.startswith("_")]
    assert not set(names) & set(RENAMED_FIELDS)


def test_the_state_declaration_sits_below_the_estimator_classes():
    """Nothing the estimators import to persist themselves imports them back."""
    below = ("_fitted_state", "_plain_state", "_encoding", "_file_format")
    faces = ("_base", "_autoencoder", "_variational", "_outlier", "_persistence")
    for module in below:
        source = (Path(skae.__file__).parent / f"{module}.py").read_text()
        for face in faces:
            assert f"skae.{face} import" not in source, (module, face)
