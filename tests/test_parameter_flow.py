"""Parameter flow: every public parameter reaches the place it controls.

Each test changes one parameter and observes its effect on the fitted model
(its network's layers, the optimiser's state, the training record, outputs),
so a parameter that stops reaching the core fails here. ``flows`` registers
the parameters a test covers; the last test checks that every parameter of
every estimator has such a test, so a new parameter without one fails too.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from torch import nn

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from skae._data import native_bfloat16
from tests.helpers import low_rank_data

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
]

AUTOENCODERS = [AutoencoderTransformer, VariationalAutoencoder]
ESTIMATORS = [*AUTOENCODERS, AutoencoderOutlierDetector]
N_SAMPLES, N_FEATURES = 40, 6
# Parameter name -> estimator classes whose flow a test checks.
COVERED = {}


def flows(*names, classes=AUTOENCODERS):
    """Register a test as covering ``names``, run once per class that has them."""
    classes = [
        cls for cls in classes if set(names) <= set(cls().get_params(deep=False))
    ]
    for name in names:
        COVERED.setdefault(name, set()).update(classes)
    return pytest.mark.parametrize("cls", classes, ids=lambda cls: cls.__name__)


# Samples near a plane in 6-d space: a 2-wide code reconstructs them well.
X = low_rank_data(N_SAMPLES, N_FEATURES, rank=2, noise=0.1)


def fit(cls, X=X, **params):
    """Fit a tiny model of ``cls``: a few epochs of an 8-wide network."""
    defaults = {
        "n_components": 2,
        "hidden_layer_sizes": (8,),
        "max_iter": 3,
        "early_stopping": False,
        "learning_rate": "constant",
        "random_state": 0,
    }
    return cls(**{**defaults, **params}).fit(X)


def modules(model, kind):
    """The trained network's modules of type ``kind``, in order."""
    return [module for module in model._network.modules() if isinstance(module, kind)]


def linear_widths(part):
    return [
        module.out_features
        for module in part.modules()
        if isinstance(module, nn.Linear)
    ]


def weights(model):
    """The trained parameters, without buffers such as the residuals' input ranges."""
    return torch.cat([value.flatten() for value in model._network.parameters()])


def adam_steps(model):
    return {int(entry["step"]) for entry in model._optimizer_state["state"].values()}


def param_group(model):
    (group,) = model._optimizer_state["param_groups"]
    return group


# -- the network's shape --------------------------------------------------------------


@flows("n_components")
def test_n_components_sets_the_code_width(cls):
    for n_components in (1, 3):
        model = fit(cls, n_components=n_components)
        assert model.n_components_ == n_components
        assert model.transform(X).shape == (N_SAMPLES, n_components)
        assert model.inverse_transform(np.zeros((2, n_components))).shape == (2, 6)


@flows("hidden_layer_sizes")
def test_hidden_layer_sizes_set_the_linear_widths(cls):
    model = fit(cls, hidden_layer_sizes=(7, 5))
    ends = {N_FEATURES, model.n_components_, 2 * model.n_components_}
    encoder = [w for w in linear_widths(model._network.encoder) if w not in ends]
    decoder = [w for w in linear_widths(model._network.decoder) if w not in ends]
    assert encoder == [7, 5]
    assert decoder == [5, 7]


@flows("activation")
def test_activation_sets_the_hidden_activation_modules(cls):
    for activation, module in (("tanh", nn.Tanh), ("logistic", nn.Sigmoid)):
        model = fit(cls, activation=activation)
        kinds = {type(m) for m in modules(model, nn.Module)}
        assert module in kinds
        assert not kinds & {nn.ReLU, nn.GELU}


@flows("code_activation")
def test_code_activation_applies_to_the_codes(cls):
    assert fit(cls, code_activation="identity").transform(X).min() < 0
    codes = fit(cls, code_activation="relu").transform(X)
    assert codes.min() == 0
    codes = fit(cls, code_activation="tanh").transform(X * 1e3)
    assert np.abs(codes).max() <= 1


@flows("dropout")
def test_dropout_puts_dropout_layers_of_that_rate(cls):
    assert modules(fit(cls, dropout=0.0), nn.Dropout) == []
    dropouts = modules(fit(cls, dropout=0.3), nn.Dropout)
    assert dropouts
    assert {module.p for module in dropouts} == {0.3}


@flows("batch_norm")
def test_batch_norm_puts_batch_normalisation_layers(cls):
    assert modules(fit(cls, batch_norm=False), nn.BatchNorm1d) == []
    assert modules(fit(cls, batch_norm=True), nn.BatchNorm1d)


@flows("image_shape", "conv_channels")
def test_image_shape_and_conv_channels_set_the_convolutions(cls):
    assert modules(fit(cls), nn.Conv2d) == []
    for image_shape, channels in (((1, 2, 3), (3,)), ((2, 1, 3), (3, 5))):
        model = fit(cls, image_shape=image_shape, conv_channels=channels)
        convolutions = modules(model, nn.Conv2d)
        assert [(c.in_channels, c.out_channels) for c in convolutions] == list(
            zip((image_shape[0], *channels[:-1]), channels, strict=True)
        )


@flows("network")
def test_network_factory_builds_the_trained_modules(cls):
    calls, built = [], []

    def network(n_features, n_outputs):
        calls.append((n_features, n_outputs))
        encoder = nn.Sequential(nn.Linear(n_features, 5), nn.Linear(5, n_outputs))
        decoder = nn.Sequential(nn.Linear(2, 5), nn.Linear(5, n_features))
        built.extend([encoder, decoder])
        return encoder, decoder

    model = fit(cls, network=network)
    code_width = 2 if cls is AutoencoderTransformer else 4
    assert calls == [(N_FEATURES, code_width)]
    trained = list(model._network.modules())
    assert all(any(module is part for part in trained) for module in built)


# -- where the network starts, and what it minimises ---------------------------------


@flows("init")
def test_init_pca_starts_at_pcas_reconstruction(cls):
    """Barely trained (a learning rate of 1e-9), the PCA start is PCA itself."""
    pca = PCA(2).fit(X)
    pca_error = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    for init in ("pca", "random"):
        model = fit(cls, init=init, learning_rate_init=1e-9, max_iter=1)
        error = -model.score(X)
        if init == "pca":
            assert error == pytest.approx(pca_error, rel=1e-4)
        else:
            assert error > 2 * pca_error


@flows("loss")
def test_loss_binary_crossentropy_decodes_into_the_unit_interval(cls):
    X_unit = (X - X.min()) / (X.max() - X.min())
    codes = np.array([[1e3, -1e3], [-1e3, 1e3], [1e3, 1e3]])
    squared = fit(cls, X_unit, loss="squared_error").inverse_transform(codes)
    assert squared.min() < 0 or squared.max() > 1
    model = fit(cls, X_unit, loss="binary_crossentropy")
    probabilities = model.inverse_transform(codes)
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    with pytest.raises(ValueError, match="loss='binary_crossentropy'"):
        fit(cls, X, loss="binary_crossentropy")


@flows("noise")
def test_noise_corrupts_the_training_input(cls):
    curves = [
        fit(cls, noise=noise, noise_level=0.5).loss_curve_
        for noise in (None, "gaussian", "mask")
    ]
    assert len({tuple(curve) for curve in curves}) == 3


@flows("noise_level")
def test_noise_level_sets_the_strength_of_the_corruption(cls):
    curves = {
        level: fit(cls, noise="gaussian", noise_level=level).loss_curve_
        for level in (0.2, 2.0)
    }
    assert curves[0.2] != curves[2.0]
    # Stronger corruption makes the clean target harder to reconstruct.
    assert curves[2.0][0] > curves[0.2][0]


@flows("sparsity")
def test_sparsity_adds_its_penalty_to_the_training_loss(cls):
    plain = fit(cls, sparsity=0.0).loss_curve_
    sparse = fit(cls, sparsity=10.0).loss_curve_
    # The scale-free penalty is about 0.8 per code dimension for Gaussian
    # codes: ten times that dwarfs the reconstruction error of rank-2 data.
    assert sparse[0] > plain[0] + 1


@flows("kl_weight")
def test_kl_weight_weighs_the_divergence_to_the_prior(cls):
    curves = {
        weight: fit(cls, kl_weight=weight, max_iter=20).loss_curve_
        for weight in (0.0, 10.0)
    }
    assert curves[0.0] != curves[10.0]
    # A heavy prior pulls the codes (posterior means) toward zero.
    spread = {
        weight: np.abs(fit(cls, kl_weight=weight, max_iter=20).transform(X)).mean()
        for weight in (0.0, 10.0)
    }
    assert spread[10.0] < 0.5 * spread[0.0]


# -- the optimiser ------------------------------------------------------------------


@flows("solver")
def test_solver_chooses_the_optimiser(cls):
    adam = fit(cls, solver="adam")
    adamw = fit(cls, solver="adamw")
    sgd = fit(cls, solver="sgd")
    assert {"exp_avg", "exp_avg_sq"} <= set(adam._optimizer_state["state"][0])
    assert param_group(adam)["decoupled_weight_decay"] is False
    assert param_group(adamw)["decoupled_weight_decay"] is True
    assert set(sgd._optimizer_state["state"][0]) == {"momentum_buffer"}
    assert param_group(sgd)["nesterov"] is True


@flows("alpha")
def test_alpha_is_the_weight_decay_and_shrinks_the_weights(cls):
    plain = fit(cls, alpha=0.0, learning_rate_init=0.01)
    decayed = fit(cls, alpha=50.0, learning_rate_init=0.01)
    assert param_group(plain)["weight_decay"] == 0.0
    assert param_group(decayed)["weight_decay"] == 50.0
    assert weights(decayed).norm() < weights(plain).norm()


@flows("learning_rate_init")
def test_learning_rate_init_sets_the_step_size(cls):
    """Adam's first step moves each weight with a gradient by the rate itself."""
    one_step = {"max_iter": 1, "batch_size": N_SAMPLES}
    start = weights(fit(cls, learning_rate_init=1e-12, **one_step))
    for rate in (1e-3, 1e-2):
        model = fit(cls, learning_rate_init=rate, **one_step)
        assert param_group(model)["lr"] == rate
        step = (weights(model) - start).abs().max().item()
        assert step == pytest.approx(rate, rel=0.05)


@flows("learning_rate")
def test_learning_rate_schedule_anneals_or_keeps_the_rate(cls):
    params = {"learning_rate_init": 0.01, "tol": 0.0, "max_iter": 4}
    constant = fit(cls, learning_rate="constant", **params)
    cosine = fit(cls, learning_rate="cosine", **params)
    assert constant.n_iter_ == cosine.n_iter_ == 4
    assert param_group(constant)["lr"] == 0.01
    assert param_group(cosine)["lr"] < 1e-6


@flows("batch_size")
def test_batch_size_sets_the_optimiser_steps_per_epoch(cls):
    for batch_size, steps_per_epoch in ((8, 5), (16, 3), (N_SAMPLES, 1)):
        model = fit(cls, batch_size=batch_size, solver="adam")
        assert adam_steps(model) == {model.n_iter_ * steps_per_epoch}


# -- how long training runs ----------------------------------------------------------


@flows("max_iter")
def test_max_iter_caps_the_epochs(cls):
    for max_iter in (2, 5):
        model = fit(cls, max_iter=max_iter, tol=0.0)
        assert model.n_iter_ == len(model.loss_curve_) == max_iter


@flows("tol")
def test_tol_stops_training_on_a_plateau(cls):
    params = {"max_iter": 8, "n_iter_no_change": 5, "learning_rate_init": 0.01}
    if cls is AutoencoderTransformer:
        # The PCA start is hard to improve on this nearly linear data.
        params["init"] = "random"
    assert fit(cls, tol=0.0, **params).n_iter_ == 8
    # No epoch improves by a thousand times the data's variance: 1 + 5 + 1.
    assert fit(cls, tol=1e3, **params).n_iter_ == 7


@flows("n_iter_no_change")
def test_n_iter_no_change_sets_the_patience(cls):
    for patience in (1, 3):
        model = fit(cls, tol=1e3, max_iter=20, n_iter_no_change=patience)
        assert model.n_iter_ == patience + 2


@flows("early_stopping")
def test_early_stopping_holds_rows_out_and_scores_them(cls):
    assert fit(cls, early_stopping=False).validation_scores_ is None
    model = fit(cls, early_stopping=True)
    # Three judged epochs; the model kept trains up to the best of them, then
    # the held-out share of those (one epoch) over every row.
    assert len(model.validation_scores_) == 3
    assert model.n_iter_ <= 3 + 1
    assert model.best_loss_ is None


@flows("validation_fraction")
def test_validation_fraction_sets_the_rows_held_out(cls):
    """Other rows judge; a fraction that leaves none to train on is refused."""
    scores = [
        fit(cls, early_stopping=True, validation_fraction=fraction).validation_scores_
        for fraction in (0.25, 0.5)
    ]
    assert scores[0] != scores[1]
    with pytest.raises(ValueError, match="cannot split n_samples=40"):
        fit(cls, early_stopping=True, validation_fraction=0.999)


@flows("warm_start")
def test_warm_start_continues_from_the_fitted_network(cls):
    cold = fit(cls, warm_start=False)
    first_curve = list(cold.loss_curve_)
    assert cold.fit(X).n_iter_ == 3
    assert cold.loss_curve_ == first_curve
    warm = fit(cls, warm_start=True)
    warm.fit(X)
    assert warm.n_iter_ == 6
    assert warm.loss_curve_[:3] == first_curve
    assert warm.loss_curve_[3:] != first_curve


# -- seeds, output and device ---------------------------------------------------------


@flows("random_state")
def test_random_state_seeds_the_weights(cls):
    first = weights(fit(cls, random_state=1))
    assert torch.equal(weights(fit(cls, random_state=1)), first)
    assert not torch.equal(weights(fit(cls, random_state=2)), first)


@flows("verbose")
def test_verbose_prints_each_epoch(cls, capsys):
    fit(cls, verbose=False)
    assert capsys.readouterr().out == ""
    fit(cls, verbose=True)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out
    assert "Iteration 3, loss = " in out


@flows("device")
def test_device_decides_where_the_network_runs(cls):
    model = fit(cls, device=torch.device("cpu"))
    assert {p.device.type for p in model._network.parameters()} == {"cpu"}
    with pytest.raises(ValueError, match="device='meta' is a 'meta' device"):
        fit(cls, device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' asks for CUDA"):
            fit(cls, device="cuda")


@flows("precision")
def test_precision_sets_the_arithmetic_of_training(cls, monkeypatch):
    """bfloat16 steps change the fit; 'auto' follows the hardware; float32 stays."""
    float32 = fit(cls, precision="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # emulated where not native
        bfloat16 = fit(cls, precision="bfloat16")
    assert not np.array_equal(bfloat16.transform(X), float32.transform(X))
    for model in (float32, bfloat16):
        assert {p.dtype for p in model._network.parameters()} == {torch.float32}
        assert model.transform(X.astype(np.float32)).dtype == np.float32
    # Steps this small gain nothing from bfloat16: 'auto' keeps float32.
    np.testing.assert_array_equal(fit(cls).transform(X), float32.transform(X))
    wide = {"hidden_layer_sizes": (1024, 1024), "max_iter": 1}
    large_steps = [fit(cls, precision=p, **wide) for p in ("auto", "float32")]
    native = native_bfloat16(torch.device("cpu"))
    same = np.array_equal(*(model.transform(X) for model in large_steps))
    assert same is not native
    # Without native bfloat16, 'auto' trains in float32 and 'bfloat16' warns.
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda: False, raising=False)
    np.testing.assert_array_equal(fit(cls).transform(X), float32.transform(X))
    with pytest.warns(UserWarning, match="emulated, slower than float32"):
        fit(cls, precision="bfloat16")


# -- the outlier detector -------------------------------------------------------------


@flows("estimator", classes=[AutoencoderOutlierDetector])
def test_estimator_is_cloned_and_scores_the_samples(cls):
    inner = VariationalAutoencoder(
        2, hidden_layer_sizes=(8,), max_iter=3, random_state=0
    )
    detector = cls(inner).fit(X)
    assert type(detector.estimator_) is VariationalAutoencoder
    assert detector.estimator_ is not inner
    assert detector.estimator_.get_params() == inner.get_params()
    expected = clone(inner).fit(X).score_samples(X)
    np.testing.assert_array_equal(detector.score_samples(X), expected)


@flows("contamination", classes=[AutoencoderOutlierDetector])
def test_contamination_sets_the_threshold_percentile(cls):
    inner = AutoencoderTransformer(
        2, hidden_layer_sizes=(8,), max_iter=3, random_state=0
    )
    for contamination in (0.1, 0.25):
        detector = cls(inner, contamination=contamination).fit(X)
        scores = detector.score_samples(X)
        assert detector.offset_ == np.percentile(scores, 100 * contamination)
        assert np.mean(detector.predict(X) == -1) == pytest.approx(
            contamination, abs=1 / N_SAMPLES
        )


# -- every parameter is covered -------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_every_parameter_has_a_flow_test(cls):
    covered = {name for name, classes in COVERED.items() if cls in classes}
    assert covered == set(cls().get_params(deep=False))
