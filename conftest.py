"""Collection rules for the whole test run: tests/ and the doctests of skae/."""

import importlib.util

# The ONNX example needs the optional packages of the onnx extra.
ONNX_PACKAGES = ("onnx", "onnxruntime", "skl2onnx")
collect_ignore = (
    []
    if all(importlib.util.find_spec(name) for name in ONNX_PACKAGES)
    else ["skae/_onnx.py"]
)
