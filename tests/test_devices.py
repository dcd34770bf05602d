"""Devices: every path that runs on a CPU, and CUDA where there is one."""

import io
import pickle

import numpy as np
import pytest
import torch

import skae
from skae import AutoencoderTransformer
from skae._data import resolve_device

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Calls that initialise CUDA or touch a device, none of which a CPU-only run
# may make.
CUDA_CALLS = [
    "_lazy_init",
    "init",
    "current_device",
    "set_device",
    "synchronize",
    "get_rng_state",
    "get_rng_state_all",
    "set_rng_state",
    "set_rng_state_all",
    "empty_cache",
    "mem_get_info",
]


def small_autoencoder(**params):
    return AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(16,), max_iter=20, random_state=0
    ).set_params(**params)


def storage_locations(obj, monkeypatch):
    """Device tags torch writes for every tensor storage while saving ``obj``."""
    seen = []
    tag = torch.serialization.location_tag

    def recording_tag(storage):
        seen.append(tag(storage))
        return seen[-1]

    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", recording_tag)
        torch.save(obj, io.BytesIO())
    return seen


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CUDA, where any call that would use it fails the test."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def forbidden(name):
        def call(*args, **kwargs):
            raise AssertionError(f"torch.cuda.{name} called without CUDA")

        return call

    for name in CUDA_CALLS:
        monkeypatch.setattr(torch.cuda, name, forbidden(name))


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("cpu", "cpu"),
        (torch.device("cpu"), "cpu"),
        ("auto", "cpu"),
    ],
)
def test_device_strings_without_cuda(no_cuda, device, expected):
    assert resolve_device(device) == torch.device(expected)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1", torch.device("cuda")])
def test_cuda_requested_without_cuda_names_the_fix(no_cuda, device):
    with pytest.raises(ValueError, match=r"no CUDA device.*device='auto'"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", "mps", "meta"])
def test_devices_skae_cannot_use_are_refused(device):
    with pytest.raises(ValueError, match="device="):
        resolve_device(device)


def test_auto_without_cuda_makes_no_cuda_call(no_cuda, small_data):
    ae = small_autoencoder(device="auto").fit(small_data)
    codes = ae.transform(small_data)
    ae.inverse_transform(codes)
    ae.score_samples(small_data)
    ae.partial_fit(small_data)
    assert not torch.cuda.is_initialized()
    reference = small_autoencoder(device="cpu").fit(small_data)
    np.testing.assert_array_equal(codes, reference.transform(small_data))


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "auto"])
def test_cpu_spellings_give_identical_models(no_cuda, small_data, device):
    reference = small_autoencoder(device="cpu").fit(small_data)
    ae = small_autoencoder(device=device).fit(small_data)
    np.testing.assert_array_equal(
        ae.transform(small_data), reference.transform(small_data)
    )
    assert ae.loss_curve_ == reference.loss_curve_


def test_cuda_fit_without_cuda_leaves_fitted_model(no_cuda, small_data):
    ae = small_autoencoder().fit(small_data)
    codes = ae.transform(small_data)
    state = {key: value.clone() for key, value in ae.encoder_.state_dict().items()}
    ae.set_params(device="cuda")
    for call in (ae.fit, ae.partial_fit, ae.transform, ae.score_samples):
        with pytest.raises(ValueError, match="no CUDA device"):
            call(small_data)
    ae.set_params(device="auto")
    np.testing.assert_array_equal(ae.transform(small_data), codes)
    for key, value in ae.encoder_.state_dict().items():
        assert torch.equal(value, state[key])


def test_pickled_state_holds_no_torch_storage(small_data, monkeypatch):
    """Weights and solver state pickle as NumPy arrays, wherever they trained."""
    ae = small_autoencoder().fit(small_data)
    ae.partial_fit(small_data)
    assert storage_locations(ae, monkeypatch) == []
    buffer = io.BytesIO()
    torch.save(ae, buffer)
    # No tensor to map: a pickle from a GPU machine loads on one without CUDA.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    np.testing.assert_array_equal(
        loaded.transform(small_data), ae.transform(small_data)
    )
    assert all(
        tensor.device.type == "cpu" for tensor in loaded.encoder_.state_dict().values()
    )


def test_model_saved_for_cuda_runs_on_cpu_after_set_params(
    no_cuda, small_data, tmp_path
):
    ae = small_autoencoder().fit(small_data)
    expected = ae.transform(small_data)
    ae.set_params(device="cuda")
    path = tmp_path / "model.safetensors"
    skae.save(ae, path)
    loaded = skae.load(path)
    assert loaded.device == "cuda"
    with pytest.raises(ValueError, match="no CUDA device"):
        loaded.transform(small_data)
    loaded.set_params(device="auto")
    np.testing.assert_array_equal(loaded.transform(small_data), expected)


def test_pickle_round_trip_keeps_device_choice(small_data):
    ae = small_autoencoder(device=torch.device("cpu")).fit(small_data)
    loaded = pickle.loads(pickle.dumps(ae))
    assert loaded.device == torch.device("cpu")
    np.testing.assert_array_equal(
        loaded.transform(small_data), ae.transform(small_data)
    )


@cuda
@needs_cuda
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_cuda_fit_leaves_modules_on_cpu(small_data, device, monkeypatch):
    ae = small_autoencoder(device=device).fit(small_data)
    assert resolve_device(device).type == "cuda"
    ae.partial_fit(small_data)
    assert set(storage_locations(ae, monkeypatch)) == {"cpu"}
    assert all(p.device.type == "cpu" for p in ae.encoder_.parameters())


@cuda
@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_and_cpu_inference_agree(small_data, dtype):
    X = small_data.astype(dtype)
    ae = small_autoencoder(device="cuda").fit(X)
    on_cuda = ae.transform(X)
    assert on_cuda.dtype == dtype
    on_cpu = ae.set_params(device="cpu").transform(X)
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        ae.set_params(device="cuda").score_samples(X),
        ae.set_params(device="cpu").score_samples(X),
        rtol=1e-4,
        atol=1e-6,
    )


@cuda
@needs_cuda
def test_cuda_fit_leaves_cuda_random_state_alone(small_data):
    before = torch.cuda.get_rng_state()
    small_autoencoder(device="cuda").fit(small_data)
    assert torch.equal(torch.cuda.get_rng_state(), before)


@cuda
@needs_cuda
def test_cuda_fit_is_reproducible(small_data):
    first = small_autoencoder(device="cuda").fit(small_data)
    second = small_autoencoder(device="cuda").fit(small_data)
    np.testing.assert_allclose(
        first.transform(small_data), second.transform(small_data), rtol=1e-5
    )
