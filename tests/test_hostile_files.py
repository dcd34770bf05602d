"""skae.load on files crafted to hurt: bounded work, consistent state, clear errors.

Every file here is built by the tests: a real model file, re-written with its
JSON document or tensors edited (and the checksum recomputed, as an attacker
would), or a safetensors file assembled byte by byte.
"""

import copy
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from skae import AutoencoderOutlierDetector, AutoencoderTransformer, load, save
from skae._file_format import FORMAT_VERSION
from skae._file_format import checksum as _checksum


@pytest.fixture(scope="module")
def frame():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 5))
    return pd.DataFrame(X, columns=[f"feature {i}" for i in range(5)])


@pytest.fixture(scope="module")
def fitted(frame):
    """One code column, named features: every fitted attribute is present."""
    return AutoencoderTransformer(
        n_components=1,
        init="random",
        hidden_layer_sizes=(8,),
        max_iter=3,
        early_stopping=False,
        random_state=0,
    ).fit(frame)


@pytest.fixture
def saved(fitted, tmp_path):
    path = tmp_path / "model.safetensors"
    save(fitted, path)
    return path


def read_model(path):
    with safe_open(path, framework="pt", device="cpu") as file:
        tensors = {key: file.get_tensor(key) for key in file.keys()}
        document = json.loads(file.metadata()["skae.model"])
    return document, tensors


def write_model(path, document, tensors):
    """Write a model file with a valid checksum, as an attacker can."""
    metadata = {"skae.format": str(FORMAT_VERSION), "skae.model": json.dumps(document)}
    metadata["skae.sha256"] = _checksum(metadata, tensors)
    save_file(tensors, path, metadata=metadata)


def edit(path, change):
    """Re-write a model file after ``change(document, tensors)``."""
    document, tensors = read_model(path)
    change(document, tensors)
    write_model(path, document, tensors)
    return path


def architecture_entry(document, name):
    for pair in document["attributes"]["architecture"]["__dict__"]:
        if pair[0] == name:
            return pair
    raise KeyError(name)


def raw_safetensors(header, data=b""):
    """A safetensors file assembled by hand: header length, header, bytes."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


# -- 1. every claimed size is checked before anything is allocated ----------------


def huge_strings(document, tensors, n_strings=1):
    names = document["attributes"]["feature_names_in_"]["__strings__"]
    names[0] = "<U536870911"
    names[1] = [n_strings]
    names[2] = ["x"] * n_strings


def wide_hidden_layer(document, tensors):
    architecture_entry(document, "hidden_layer_sizes")[1] = {"__tuple__": [2_000_000]}


def many_hidden_layers(document, tensors):
    architecture_entry(document, "hidden_layer_sizes")[1] = {"__tuple__": [8] * 10**5}


def many_hidden_layers_as_array(document, tensors):
    key = "tensor.layers"
    tensors[key] = torch.full((10**5,), 8)
    architecture_entry(document, "hidden_layer_sizes")[1] = {"__ndarray__": key}


def huge_code(document, tensors):
    document["params"]["n_components"] = 10**100
    architecture_entry(document, "n_components")[1] = 10**100
    document["attributes"]["n_code_columns"] = 10**100


def another_code_size(document, tensors):
    """Claim 3 components for the network that codes 1."""
    document["params"]["n_components"] = 3
    architecture_entry(document, "n_components")[1] = 3


def many_containers(document, tensors):
    document["attributes"]["pad"] = [[] for _ in range(200_000)]


def deep_tuple(document, tensors):
    value = 1
    for _ in range(300):
        value = {"__tuple__": [value]}
    document["params"]["hidden_layer_sizes"] = value


CLAIMS = {
    "string-dtype-of-2-GB": (huge_strings, r"need 2147483644 bytes, far more"),
    "30-strings-of-2-GB": (
        lambda d, t: huge_strings(d, t, n_strings=30),
        "far more than the file holds",
    ),
    "2-million-wide-layer": (wide_hidden_layer, "weights do not fit the network"),
    "100000-layers": (
        many_hidden_layers,
        "claims 100000 entries in hidden_layer_sizes, for 8 weight tensors",
    ),
    "100000-layers-in-an-array": (
        many_hidden_layers_as_array,
        "claims 100000 entries in hidden_layer_sizes",
    ),
    "code-of-10**100": (huge_code, "architecture is invalid"),
    "200000-json-arrays": (many_containers, "more than the 100000"),
    "300-deep-tuple": (deep_tuple, "nested more than 64 deep"),
}


@pytest.mark.parametrize("case", CLAIMS, ids=str)
def test_claimed_sizes_are_refused_before_allocating(case, saved):
    change, match = CLAIMS[case]
    edit(saved, change)
    with pytest.raises(ValueError, match=match) as error:
        load(saved)
    # Short and on one line, whatever the file holds.
    assert len(str(error.value)) < 500
    assert "\n" not in str(error.value)


BAD_HEADERS = {
    "header-longer-than-file": (
        struct.pack("<Q", 10**9) + b"{}",
        "claims a 1000000000-byte header, but the file has 10 bytes",
    ),
    "tensor-of-a-trillion-values": (
        raw_safetensors(
            {"t": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4]}},
            b"\0" * 4,
        ),
        "needs 4000000000000 bytes, its byte range holds 4",
    ),
    "byte-range-beyond-file": (
        raw_safetensors(
            {"t": {"dtype": "U8", "shape": [10**9], "data_offsets": [0, 10**9]}},
            b"\0" * 4,
        ),
        "tensors need 1000000000 bytes, the file holds 4",
    ),
    "overlapping-tensors": (
        raw_safetensors(
            {
                "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                "b": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
        ),
        "starts at byte 0 of the data, expected 4",
    ),
    "unknown-dtype": (
        raw_safetensors({"t": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}),
        "invalid entry for tensor 't'",
    ),
    "dtype-that-is-a-list": (
        raw_safetensors(
            {"t": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
        "invalid entry for tensor 't'",
    ),
    "dtype-that-is-an-object": (
        raw_safetensors(
            {"t": {"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]}},
            b"\0" * 4,
        ),
        "invalid entry for tensor 't'",
    ),
    "negative-shape": (
        raw_safetensors({"t": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}),
        "invalid entry for tensor 't'",
    ),
    "invalid-booleans": (
        raw_safetensors(
            {"t": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07"
        ),
        "tensor 't' holds invalid booleans",
    ),
    "metadata-not-strings": (
        raw_safetensors({"__metadata__": {"skae.format": 1}}),
        "its metadata are not strings",
    ),
    "shape-of-4200-digits": (
        raw_safetensors(
            {"t": {"dtype": "F32", "shape": [10**4200], "data_offsets": [0, 4]}},
            b"\0" * 4,
        ),
        r"needs about 1e4200 bytes, its byte range holds 4\. ",
    ),
    "offset-of-4000-digits": (
        raw_safetensors(
            {
                "t": {
                    "dtype": "U8",
                    "shape": [1],
                    "data_offsets": [10**4000, 10**4000 + 1],
                }
            },
            b"\0",
        ),
        r"starts at byte about 1e4000 of the data",
    ),
}


@pytest.mark.parametrize("case", BAD_HEADERS, ids=str)
def test_bad_safetensors_headers_are_refused(case, tmp_path):
    content, match = BAD_HEADERS[case]
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        load(path)
    assert len(str(error.value)) < 500


# -- 2. regular files only --------------------------------------------------------


def load_within(path, seconds=20):
    """Call load in a thread: a test must fail, not hang, if load blocks."""
    outcome = {}

    def run():
        try:
            outcome["value"] = load(path)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load({path}) blocked"
    return outcome


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    link = tmp_path / "link.safetensors"
    link.symlink_to(fifo)
    for path in (fifo, link):
        error = load_within(path)["error"]
        assert isinstance(error, ValueError)
        assert "is a named pipe (FIFO), not a regular file" in str(error)


def test_folders_and_devices_are_refused(tmp_path):
    with pytest.raises(ValueError, match="is a folder, not a regular file"):
        load(tmp_path)
    if os.path.exists(os.devnull) and os.name == "posix":
        with pytest.raises(ValueError, match="is a character device"):
            load(os.devnull)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX")
def test_loop_of_symbolic_links_is_refused(tmp_path):
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    first.symlink_to(second)
    second.symlink_to(first)
    with pytest.raises(ValueError, match="is a loop of symbolic links, not a regular"):
        load(first)


def test_link_to_a_model_file_loads(fitted, saved, frame, tmp_path):
    link = tmp_path / "link.safetensors"
    link.symlink_to(saved)
    np.testing.assert_array_equal(load(link).transform(frame), fitted.transform(frame))


# -- 3. the fitted state must agree with the network and the parameters ------------


def set_attribute(name, value):
    def change(document, tensors):
        document["attributes"][name] = value

    return change


def drop_attribute(name):
    def change(document, tensors):
        del document["attributes"][name]

    return change


def network_tensor(document, tensors, name):
    return tensors[document["network"][name]]


def nan_weight(document, tensors):
    network_tensor(document, tensors, "encoder.0.weight")[0, 0] = float("nan")


def float64_weight(document, tensors):
    key = document["network"]["encoder.0.weight"]
    tensors[key] = tensors[key].double()


def shared_tensor(document, tensors):
    document["network"]["decoder.0.bias"] = document["network"]["encoder.0.bias"]


def drop_conv_channels(document, tensors):
    """An unused parameter: the network is the same, the recorded architecture not."""
    pairs = document["attributes"]["architecture"]["__dict__"]
    pairs.remove(architecture_entry(document, "conv_channels"))


def first_moment(document):
    """Tensor key of Adam's first moment of the first weight tensor."""
    pairs = document["attributes"]["solver_state"]["__dict__"]
    moments = dict((key, value) for key, value in pairs)["state"]["__dict__"]
    return moments[0][1]["__dict__"][1][1]["__tensor__"]


def optimizer_moment_of_wrong_shape(document, tensors):
    tensors[first_moment(document)] = torch.zeros(3, 3)


def optimizer_moment_of_nan(document, tensors):
    tensors[first_moment(document)][0, 0] = float("nan")


EDITED_STATE = {
    "code-width-1-to-3": (
        set_attribute("n_code_columns", 3),
        "weights do not fit the network its parameters describe",
    ),
    "n_components-unlike-the-code": (
        another_code_size,
        "n_code_columns = 1 is not n_components = 3",
    ),
    "encoder-replaced": (set_attribute("encoder_", 1), "encoder_ = 1 does not match"),
    "n_iter-a-string": (set_attribute("n_iter_", "abc"), "n_iter_ = 'abc' is not a"),
    "n_iter-beyond-loss-curve": (
        set_attribute("n_iter_", 7),
        r"loss_curve_ = .* has 3 entries for n_iter_ = 7",
    ),
    "loss-curve-of-strings": (
        set_attribute("loss_curve_", ["a", "b", "c"]),
        "is not a list of finite losses",
    ),
    "best-loss-off-curve": (set_attribute("best_loss_", -1.0), "best_loss_ = -1.0"),
    "validation-scores-without-split": (
        set_attribute("best_validation_score_", 0.5),
        r"best_validation_score_ = 0.5 is set, but validation_scores_ is None",
    ),
    "negative-scale": (
        set_attribute("scale_", -1.0),
        "scale_ = -1.0 is not a positive",
    ),
    "scale-below-float32": (
        set_attribute("scale_", 1e-320),
        r"scale_ = 1e-320 is outside \[8.14e-08, 2e\+36\], the scales fit gives",
    ),
    "scale-of-1e300": (set_attribute("scale_", 1e300), "scale_ = 1e\\+300 is outside"),
    "scale-below-the-resolution-at-the-mean": (
        lambda document, tensors: tensors[
            document["attributes"]["mean_"]["__ndarray__"]
        ].fill_(1e20),
        "scale_ = .* is outside",
    ),
    "mean-of-1e300": (
        lambda document, tensors: tensors[
            document["attributes"]["mean_"]["__ndarray__"]
        ].fill_(1e300),
        "holds means beyond 1e\\+36",
    ),
    "negative-loss": (
        set_attribute("loss_curve_", [1.0, -1.0, 0.5]),
        "is not a list of finite losses",
    ),
    "positive-validation-score": (
        set_attribute("validation_scores_", [0.5]),
        "neither None nor a list of scores",
    ),
    "mean-of-nan": (
        lambda document, tensors: tensors[
            document["attributes"]["mean_"]["__ndarray__"]
        ].fill_(float("nan")),
        "mean_ = .* holds NaN or inf",
    ),
    "feature-names-of-numbers": (
        set_attribute("feature_names_in_", [1, 2, 3, 4, 5]),
        "feature_names_in_ = .* is not an object array",
    ),
    "unknown-attribute": (set_attribute("extra_", 1), r"attributes \['extra_'\]"),
    "missing-attribute": (drop_attribute("n_iter_"), "'n_iter_' is missing"),
    "architecture-not-the-parameters": (
        drop_conv_channels,
        r"its architecture sets .* where AutoencoderTransformer has",
    ),
    "unknown-activation": (
        lambda document, tensors: architecture_entry(
            document, "activation"
        ).__setitem__(1, "swish"),
        "architecture is invalid .*'activation' parameter",
    ),
    "nan-weight": (nan_weight, "weight 'encoder.0.weight' holds NaN or inf"),
    "float64-weight": (float64_weight, "weights do not fit the network"),
    "one-tensor-two-weights": (shared_tensor, r"tensor 'tensor\.\d+' is used twice"),
    "optimizer-moment-of-wrong-shape": (
        optimizer_moment_of_wrong_shape,
        r"weight tensor 0 'exp_avg' as torch.float32 of shape \(3, 3\)",
    ),
    "optimizer-moment-of-nan": (
        optimizer_moment_of_nan,
        "weight tensor 0 'exp_avg' with NaN or inf",
    ),
    "output-config": (
        set_attribute("output_config", {"__dict__": [["transform", "evil"]]}),
        "is not set_output's setting",
    ),
}


@pytest.mark.parametrize("case", EDITED_STATE, ids=str)
def test_edited_fitted_state_is_refused_at_load(case, saved):
    change, match = EDITED_STATE[case]
    edit(saved, change)
    with pytest.raises(ValueError, match=match):
        load(saved)


def test_untouched_file_passes_every_check(fitted, saved, frame):
    """The rules above are no stricter than a genuine fit."""
    restored = load(saved)
    np.testing.assert_array_equal(restored.transform(frame), fitted.transform(frame))
    assert list(restored.feature_names_in_) == list(frame.columns)


@pytest.mark.parametrize(
    "params",
    [
        {"early_stopping": True, "max_iter": 4},
        {"batch_norm": True, "dropout": 0.2},
        {"image_shape": (1, 1, -1), "conv_channels": (2,)},
    ],
    ids=["validation", "batch-norm", "convolutional"],
)
def test_every_kind_of_fit_passes_the_checks(params, frame, tmp_path):
    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(4,), max_iter=3, random_state=0
    ).set_params(**params)
    model.fit(frame).partial_fit(frame)
    save(model, tmp_path / "model.safetensors")
    restored = load(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(restored.transform(frame), model.transform(frame))


@pytest.fixture(scope="module")
def detector(frame):
    inner = AutoencoderTransformer(n_components=1, hidden_layer_sizes=(4,), max_iter=3)
    return AutoencoderOutlierDetector(inner.set_params(random_state=0)).fit(frame)


def claim_nine_features(document, tensors):
    set_attribute("n_features_in_", 9)(document, tensors)
    drop_attribute("feature_names_in_")(document, tensors)


@pytest.mark.parametrize(
    "change, match",
    [
        (set_attribute("offset_", float("nan")), "offset_ = nan is not a finite"),
        (claim_nine_features, "is not fitted to n_features_in_ = 9"),
        (drop_attribute("estimator_"), "'estimator_' is missing"),
    ],
    ids=["offset-nan", "inner-width", "inner-missing"],
)
def test_edited_detector_is_refused(change, match, detector, tmp_path):
    path = tmp_path / "detector.safetensors"
    save(detector, path)
    edit(path, change)
    with pytest.raises(ValueError, match=match):
        load(path)


# -- 3b. the optimiser state, which torch's fused kernels trust -------------------


def optimizer_pairs(document):
    """The decoded-looking view of the saved state: {name: JSON value}."""
    return dict(document["attributes"]["solver_state"]["__dict__"])


def moment_entries(document, index=0):
    """[key, value] pairs of the moments of weight tensor ``index``."""
    moments = optimizer_pairs(document)["state"]["__dict__"]
    return dict(moments)[index]["__dict__"]


def edit_moment(name, change):
    """Replace moment ``name`` of weight tensor 0 by change(tensor)."""

    def edited(document, tensors):
        key = dict(moment_entries(document))[name]["__tensor__"]
        tensors[key] = change(tensors[key])

    return edited


def edit_group(name, value):
    def edited(document, tensors):
        (group,) = optimizer_pairs(document)["param_groups"]
        pairs = group["__dict__"]
        pairs[:] = [pair for pair in pairs if pair[0] != name] + [[name, value]]

    return edited


def moment_as_number(document, tensors):
    moment_entries(document)[0][1] = 3.0  # the step count, not a tensor


def drop_moment(document, tensors):
    del moment_entries(document)[1]


def moment_for_missing_weight(document, tensors):
    optimizer_pairs(document)["state"]["__dict__"][0][0] = 99


def second_group(document, tensors):
    groups = optimizer_pairs(document)["param_groups"]
    groups.append(copy.deepcopy(groups[0]))


OPTIMIZER_STATE = {
    "0-d-first-moment": (
        edit_moment("exp_avg", lambda t: torch.zeros(())),
        r"'exp_avg' as torch.float32 of shape \(\) on cpu, where the solver keeps "
        r"torch.float32 of shape \(8, 5\)",
    ),
    "transposed-moment": (
        edit_moment("exp_avg_sq", lambda t: t.T.contiguous()),
        r"'exp_avg_sq' as torch.float32 of shape \(5, 8\)",
    ),
    "float64-moment": (
        edit_moment("exp_avg", lambda t: t.double()),
        "'exp_avg' as torch.float64",
    ),
    "step-of-shape-1": (edit_moment("step", lambda t: t.reshape(1)), "'step' as"),
    "step-as-int64": (edit_moment("step", lambda t: t.long()), "'step' as torch.int64"),
    "step-zero": (edit_moment("step", torch.zeros_like), "'step' = 0.0, not a whole"),
    "step-fractional": (
        edit_moment("step", lambda t: t + 0.5),
        "not a whole number of steps",
    ),
    "negative-second-moment": (
        edit_moment("exp_avg_sq", lambda t: t - 1),
        "a negative 'exp_avg_sq'",
    ),
    "infinite-second-moment": (
        edit_moment("exp_avg_sq", lambda t: t + float("inf")),
        "'exp_avg_sq' with NaN or inf",
    ),
    "step-as-a-number": (moment_as_number, "'step' as float, not a tensor"),
    "moment-missing": (drop_moment, "does not hold the moments of a solver"),
    "moment-of-a-tensor-the-network-lacks": (
        moment_for_missing_weight,
        "moments for a weight tensor 99 the network lacks",
    ),
    "two-parameter-groups": (second_group, "not an optimiser state of one"),
    "betas-as-a-list": (edit_group("betas", [0.9, 0.999]), "setting 'betas'"),
    "beta-above-one": (
        edit_group("betas", {"__tuple__": [0.9, 2.0]}),
        "setting 'betas'",
    ),
    "learning-rate-of-400-digits": (edit_group("lr", 10**400), "setting 'lr'"),
    "negative-learning-rate": (edit_group("lr", -1.0), "setting 'lr'"),
    "fused-as-a-string": (edit_group("fused", "yes"), "setting 'fused'"),
    "unknown-setting-a-list": (edit_group("extra", [1, 2]), "setting 'extra'"),
    "weights-listed-twice": (
        edit_group("params", [0, 0, 1, 2]),
        "does not list the network.s 8 weight tensors",
    ),
}


@pytest.mark.parametrize("case", OPTIMIZER_STATE, ids=str)
def test_edited_optimizer_state_is_refused_at_load(case, saved):
    """Each piece of a solver's state is one torch's kernels would trust."""
    change, match = OPTIMIZER_STATE[case]
    edit(saved, change)
    with pytest.raises(ValueError, match=match):
        load(saved)


def test_genuine_optimizer_state_of_every_solver_loads_and_resumes(frame, tmp_path):
    """The checks accept what each solver leaves, and training resumes from it."""
    for solver in ("adam", "adamw", "sgd"):
        model = AutoencoderTransformer(
            n_components=2, hidden_layer_sizes=(4,), solver=solver, max_iter=2
        ).set_params(random_state=0)
        model.fit(frame)
        path = tmp_path / f"{solver}.safetensors"
        save(model, path)
        restored = load(path)
        model.partial_fit(frame)
        restored.partial_fit(frame)
        np.testing.assert_array_equal(restored.transform(frame), model.transform(frame))


@pytest.mark.parametrize(
    ("buffer", "value", "match"),
    [
        ("running_var", -1.0, "running_var' holds a negative variance"),
        ("num_batches_tracked", -5, "num_batches_tracked' counts fewer than 0"),
    ],
)
def test_batch_statistics_training_cannot_produce_are_refused(
    buffer, value, match, frame, tmp_path
):
    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(4, 3), batch_norm=True, max_iter=2
    ).set_params(random_state=0)
    path = tmp_path / "model.safetensors"
    save(model.fit(frame), path)
    key = next(name for name in model._network.state_dict() if name.endswith(buffer))

    def change(document, tensors):
        network_tensor(document, tensors, key).fill_(value)

    edit(path, change)
    with pytest.raises(ValueError, match=match):
        load(path)


# -- 4. no raw exceptions, short and clean messages -------------------------------


def set_param(name, value):
    def change(document, tensors):
        document["params"][name] = value

    return change


def mersenne_state(**changes):
    fields = ["MT19937", [0] * 624, 624, 0, 0.0]
    positions = {"keys": 1, "position": 2}
    for name, value in changes.items():
        fields[positions[name]] = value
    return {"__random_state__": fields}


RAW_EXCEPTIONS = {
    "scalar-10**100": (
        set_attribute("n_iter_", {"__scalar__": ["<i8", 10**100]}),
        "bad __scalar__ entry",
    ),
    "scalar-not-a-number": (
        set_attribute("n_iter_", {"__scalar__": ["<f8", [1, 2]]}),
        "bad __scalar__ entry",
    ),
    "scalar-of-strings": (
        set_attribute("n_iter_", {"__scalar__": ["<U3", "abc"]}),
        "dtype '<U3' is not allowed here",
    ),
    "random-key-out-of-range": (
        set_param("random_state", mersenne_state(keys=[2**40] * 624)),
        "bad __random_state__ entry",
    ),
    "random-position-out-of-range": (
        set_param("random_state", mersenne_state(position=10**6)),
        "not a Mersenne Twister state",
    ),
}


@pytest.mark.parametrize("case", RAW_EXCEPTIONS, ids=str)
def test_overflow_and_lookup_errors_become_value_errors(case, saved):
    change, match = RAW_EXCEPTIONS[case]
    edit(saved, change)
    with pytest.raises(ValueError, match=match):
        load(saved)


def test_valid_random_state_still_loads(saved, tmp_path):
    state = np.random.RandomState(3)
    model = AutoencoderTransformer(random_state=state)
    save(model, tmp_path / "unfitted.safetensors")
    restored = load(tmp_path / "unfitted.safetensors")
    assert restored.random_state.randint(10**6) == state.randint(10**6)


def test_memory_error_becomes_a_value_error(saved, monkeypatch):
    def exhausted(*args):
        raise MemoryError

    monkeypatch.setattr("skae._file_format.checksum", exhausted)
    with pytest.raises(ValueError, match="more memory than this machine can allocate"):
        load(saved)


def test_version_string_is_sanitised_in_the_warning(saved):
    def hostile_version(document, tensors):
        document["versions"]["skae"] = "9.9\n\x1b[31mRUN rm -rf /\x1b[0m" + "x" * 500

    edit(saved, hostile_version)
    with pytest.warns(UserWarning, match="saved with skae 9.9") as record:
        load(saved)
    message = str(record[0].message)
    assert "\x1b" not in message and "\n" not in message
    assert len(message) < 400


# -- peak memory of load on crafted files -----------------------------------------

MEASURE = textwrap.dedent(
    """
    import json, sys, warnings
    import skae

    def status_kib(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])

    def reset_peak():
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")

    try:
        reset_peak()
    except OSError:
        print("{}")  # the peak cannot be reset here
        sys.exit()
    results = {}
    for path in sys.argv[1:]:
        reset_peak()
        before = status_kib("VmRSS")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                skae.load(path)
        except ValueError:
            pass
        results[path] = status_kib("VmHWM") - before
    print(json.dumps(results))
    """
)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads peak memory from /proc"
)
def test_peak_memory_of_load_stays_near_the_file_size(fitted, tmp_path):
    """Load each crafted file in a fresh process; its peak stays within 8 MiB."""
    warm_up = tmp_path / "genuine.safetensors"
    save(fitted, warm_up)
    paths = [warm_up]
    for name, (change, _) in CLAIMS.items():
        path = tmp_path / f"{name}.safetensors"
        save(fitted, path)
        paths.append(edit(path, change))
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *map(str, [warm_up, *paths])],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    peaks_kib = json.loads(result.stdout)
    if not peaks_kib:
        pytest.skip("this kernel does not let a process reset its peak memory")
    for path in paths:
        size_kib = path.stat().st_size / 1024
        assert peaks_kib[str(path)] < size_kib + 8 * 1024, (path.name, peaks_kib)


def test_loaded_files_are_warning_free(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(saved)
