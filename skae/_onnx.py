# SPDX-License-Identifier: BSD-3-Clause
"""ONNX export: skl2onnx converters for skae's transformers.

``skl2onnx.to_onnx`` converts a pipeline step by step, each step by the
converter registered for its class. :func:`register_onnx_converters`
registers one for :class:`~skae.AutoencoderTransformer` and
:class:`~skae.VariationalAutoencoder`: the fitted encoder (standardisation
included, as ``transform`` runs it) is exported by torch's TorchScript-based
ONNX exporter, which needs nothing beyond torch, and its graph joins the
pipeline's graph. skl2onnx, onnx and onnxruntime stay optional: this module
imports them only when called, and nothing else in skae imports it.
"""

from __future__ import annotations

import inspect
import io
import warnings
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from skae._autoencoder import AutoencoderTransformer
from skae._inference import inference_module
from skae._variational import VariationalAutoencoder

# The ONNX opset the encoder's graph is written in: every torch skae supports
# (2.4 and later) exports it, and the operators of skae's networks (Gemm,
# Conv, BatchNormalization, Erf for GELU, Reshape, Slice...) mean the same in
# the later opsets a pipeline may target.
ENCODER_OPSET = 17
CONVERTED_CLASSES = (AutoencoderTransformer, VariationalAutoencoder)


def register_onnx_converters() -> None:
    """Register skl2onnx converters for skae's transformers.

    After this call, :func:`skl2onnx.to_onnx` and
    :func:`skl2onnx.convert_sklearn` convert fitted
    :class:`AutoencoderTransformer` and :class:`VariationalAutoencoder`
    models, alone or as steps of a :class:`~sklearn.pipeline.Pipeline` or a
    :class:`~sklearn.compose.ColumnTransformer`. The ONNX graph computes
    ``transform``: the codes (for a variational autoencoder, the posterior
    means), computed in float32 as ``transform`` computes them for float32
    input; other inputs are cast to float32, and float64 codes are cast back
    (onnxruntime has no float64 kernel for GELU's Erf). Dense,
    convolutional and custom ``network`` modules are exported by PyTorch's
    TorchScript-based ONNX exporter; a custom module it cannot trace cannot be
    converted. Calling it again changes nothing.

    Needs the ``onnx`` extra: ``pip install "skae[onnx]"`` (onnx, onnxruntime
    and skl2onnx).

    Read more in the :ref:`User Guide <onnx>`.

    Raises
    ------
    ImportError
        If skl2onnx or onnx is not installed.

    See Also
    --------
    save : skae's own model files, for Python.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from skl2onnx import to_onnx
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer, register_onnx_converters
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> ae = AutoencoderTransformer(
    ...     n_components=8, hidden_layer_sizes=(16,), max_iter=2, random_state=0
    ... ).fit(X)
    >>> register_onnx_converters()
    >>> model = to_onnx(ae, X[:1])
    >>> session = onnxruntime.InferenceSession(
    ...     model.SerializeToString(), providers=["CPUExecutionProvider"]
    ... )
    >>> (codes,) = session.run(None, {"X": X})
    >>> bool(np.abs(codes - ae.transform(X)).max() < 1e-5)
    True
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as exc:
        raise ImportError(
            "register_onnx_converters needs skl2onnx and onnx; install them with "
            'pip install "skae[onnx]".'
        ) from exc
    for cls in CONVERTED_CLASSES:
        update_registered_converter(
            cls,
            f"Skae{cls.__name__}",
            _calculate_code_shape,
            _convert_encoder,
            overwrite=True,
        )


def _calculate_code_shape(operator: Any) -> None:
    """Declare the codes' type: the input's float type, n_components_ columns."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    model = operator.raw_operator
    check_is_fitted(model)
    X = operator.inputs[0]
    n_features = X.get_second_dimension()
    if n_features is not None and n_features != model.n_features_in_:
        raise ValueError(
            f"{type(model).__name__} takes {model.n_features_in_} features, but "
            f"its input in the ONNX graph has {n_features}."
        )
    double = isinstance(X.type, DoubleTensorType)
    code_type = DoubleTensorType if double else FloatTensorType
    operator.outputs[0].type = code_type([X.get_first_dimension(), model.n_components_])


def _convert_encoder(scope: Any, operator: Any, container: Any) -> None:
    """Add the fitted encoder's graph to the pipeline's, between its variables."""
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx.common.data_types import FloatTensorType

    model = operator.raw_operator
    X, codes = operator.inputs[0], operator.outputs[0]
    # A pipeline may target an older opset, which torch may still export.
    opset = min(ENCODER_OPSET, container.target_opset or ENCODER_OPSET)
    graph = encoder_graph(model, opset)
    # The names of the encoder's graph, renamed into the pipeline's scope.
    names: dict[str, str] = {
        "": "",
        graph.input[0].name: X.full_name,
        graph.output[0].name: codes.full_name,
    }
    if not isinstance(X.type, FloatTensorType):
        names[graph.input[0].name] = scope.get_unique_variable_name("skae_input")
        container.add_node(
            "Cast",
            X.full_name,
            names[graph.input[0].name],
            op_version=opset,
            name=scope.get_unique_operator_name("SkaeCast"),
            to=TensorProto.FLOAT,
        )
    if not isinstance(codes.type, FloatTensorType):
        names[graph.output[0].name] = scope.get_unique_variable_name("skae_codes")
    for tensor in graph.initializer:
        names[tensor.name] = scope.get_unique_variable_name(f"skae_{tensor.name}")
        # Through NumPy: the exporter may store values outside raw_data.
        values = numpy_helper.to_array(tensor)
        container.add_initializer(
            names[tensor.name],
            tensor.data_type,
            list(values.shape),
            numpy_helper.from_array(values, names[tensor.name]),
        )
    for node in graph.node:
        for name in node.output:
            if name not in names:
                names[name] = scope.get_unique_variable_name(f"skae_{name}")
        container.add_node(
            node.op_type,
            [names[name] for name in node.input],
            [names[name] for name in node.output],
            op_domain=node.domain,
            op_version=opset,
            name=scope.get_unique_operator_name(f"Skae{node.op_type}"),
            **{
                attribute.name: helper.get_attribute_value(attribute)
                for attribute in node.attribute
            },
        )
    if not isinstance(codes.type, FloatTensorType):
        container.add_node(
            "Cast",
            names[graph.output[0].name],
            codes.full_name,
            op_version=opset,
            name=scope.get_unique_operator_name("SkaeCast"),
            to=TensorProto.DOUBLE,
        )


def encoder_graph(model: Any, opset: int = ENCODER_OPSET) -> Any:
    """Export a fitted model's ``transform`` of float32 input as an ONNX graph.

    The module exported is the one ``transform`` runs on the CPU for float32
    input, the input standardisation folded into the first linear layer
    where it can be, so the graph computes what ``transform`` computes.
    """
    import onnx

    check_is_fitted(model)
    module = inference_module(model.encoder_, torch.device("cpu"), torch.float32)
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The dynamo exporter, torch's default from 2.9, needs onnxscript.
        options["dynamo"] = False
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # torch 2.9 and later flag the TorchScript exporter as legacy; it is
        # the one that needs no other package, and torch<2.14 keeps it.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            torch.onnx.export(
                module,
                (torch.zeros(2, model.n_features_in_),),
                buffer,
                input_names=["X"],
                output_names=["codes"],
                dynamic_axes={"X": {0: "n_samples"}, "codes": {0: "n_samples"}},
                opset_version=opset,
                **options,
            )
        except Exception as exc:
            raise ValueError(
                f"PyTorch cannot export the encoder of this {type(model).__name__} "
                f"to ONNX ({type(exc).__name__}: {exc})."
            ) from exc
    return onnx.load_model_from_string(buffer.getvalue()).graph
