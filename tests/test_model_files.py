"""Model files written by earlier skae releases still load and give their outputs."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import skae
from tests.model_files.write_model_files import estimators, outputs

FILES = Path(__file__).resolve().parent / "model_files"

RELEASES = sorted(path.stem.split("-", 1)[1] for path in FILES.glob("expected-*.npz"))


def test_there_is_a_file_of_every_estimator_for_every_release():
    assert RELEASES, "no committed model files"
    for release in RELEASES:
        for name in estimators():
            assert (FILES / f"{name}-{release}.safetensors").is_file()


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("name", list(estimators()))
def test_model_file_of_an_earlier_release_loads_and_gives_its_outputs(name, release):
    with np.load(FILES / f"expected-{release}.npz") as saved:
        expected = dict(saved)
    with warnings.catch_warnings():
        # Files from another release warn that versions differ: expected here.
        warnings.filterwarnings("ignore", message=".* was saved with ")
        estimator = skae.load(FILES / f"{name}-{release}.safetensors")
    assert type(estimator).__name__ == name
    X = expected["X"]
    for method, values in outputs(name, estimator, X).items():
        np.testing.assert_allclose(
            values, expected[f"{name}.{method}"], rtol=1e-5, atol=1e-6
        )
    # The loaded model is a working one: it trains on.
    model = estimator.estimator_ if name == "AutoencoderOutlierDetector" else estimator
    n_iter = model.n_iter_
    model.partial_fit(X)
    assert model.n_iter_ == n_iter + 1


@pytest.mark.parametrize("release", RELEASES)
def test_format_1_checksum_still_guards_the_tensors(release, tmp_path):
    """Format 1 files, whose checksum covers their tensors only, keep that check."""
    content = bytearray(
        (FILES / f"AutoencoderTransformer-{release}.safetensors").read_bytes()
    )
    assert b'"skae.format":"1"' in content
    content[-3] ^= 0xFF  # a byte of tensor data, at the end of the file
    path = tmp_path / "corrupted.safetensors"
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="corrupted: its tensors do not match"):
        skae.load(path)
