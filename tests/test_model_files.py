"""Model files written by earlier skae releases still load and give their outputs."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import skae
from skae._networks import UNBOUNDED, linear_paths
from tests.model_files.write_model_files import estimators, outputs

FILES = Path(__file__).resolve().parent / "model_files"

RELEASES = sorted(path.stem.split("-", 1)[1] for path in FILES.glob("expected-*.npz"))
# The file format each set of committed files is in; formats 2 and 3, which
# no release wrote, are labelled by their number. Formats 1 and 2 store
# fields under the private attributes' names; format 3 has no input ranges.
FORMATS = {"0.1.0": 1, "format2": 2, "format3": 3}


def test_there_is_a_file_of_every_estimator_for_every_release():
    assert RELEASES == sorted(FORMATS), "a set of files of no known format"
    for release in RELEASES:
        for name in estimators():
            content = (FILES / f"{name}-{release}.safetensors").read_bytes()
            assert f'"skae.format":"{FORMATS[release]}"'.encode() in content


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


@pytest.mark.parametrize(
    "release", [release for release, number in FORMATS.items() if number == 1]
)
def test_format_1_checksum_still_guards_the_tensors(release, tmp_path):
    """Format 1 files, whose checksum covers their tensors only, keep that check."""
    content = bytearray(
        (FILES / f"AutoencoderTransformer-{release}.safetensors").read_bytes()
    )
    content[-3] ^= 0xFF  # a byte of tensor data, at the end of the file
    path = tmp_path / "corrupted.safetensors"
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="corrupted: its tensors do not match"):
        skae.load(path)


@pytest.mark.parametrize(
    "release", [release for release, number in FORMATS.items() if number < 3]
)
def test_files_of_formats_1_and_2_are_saved_again_in_public_names(release, tmp_path):
    """The old names are renamed as a file loads, and saving writes the new ones."""
    content = (FILES / f"AutoencoderTransformer-{release}.safetensors").read_bytes()
    assert b"_architecture" in content and b"_n_features_out" in content
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* was saved with ")
        estimator = skae.load(FILES / f"AutoencoderTransformer-{release}.safetensors")
    path = tmp_path / "again.safetensors"
    skae.save(estimator, path)
    content = path.read_bytes()
    assert b'"skae.format":"4"' in content
    assert b"architecture" in content and b"_architecture" not in content
    assert b"_n_features_out" not in content and b"_optimizer_state" not in content
    with np.load(FILES / f"expected-{release}.npz") as saved:
        X = saved["X"]
    np.testing.assert_array_equal(skae.load(path).transform(X), estimator.transform(X))


@pytest.mark.parametrize("release", RELEASES)
def test_files_before_format_4_load_with_unbounded_input_ranges(release):
    """Their residuals read every input unclipped, as the skae that wrote them did."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* was saved with ")
        estimator = skae.load(FILES / f"AutoencoderTransformer-{release}.safetensors")
    for path in linear_paths(estimator._network):
        assert bool((path.input_range.low == -UNBOUNDED).all())
        assert bool((path.input_range.high == UNBOUNDED).all())
