"""Mutation fuzzing of skae model files, each load and use in a forked child.

Genuine files of every estimator (fitted in several ways, and trained on with
``partial_fit`` so that they hold an optimiser state) are mutated with a seed:
their bytes, their safetensors header, their JSON document or their tensors.
Mutations of the header, the document and the tensors mostly recompute the
checksum, as someone editing a file on purpose can, so that they reach the
checks behind it. Each mutated file is loaded and, if it loads, used
(``transform``, ``score_samples``, ``inverse_transform``, ``predict``,
``sample``, ``partial_fit``) in a child process forked for it, with a memory
limit and a timeout, so that a crash or a hang is an outcome, not the end of
the run.

Outcomes, per file:

- ``refused``: ``load`` raised a clean error.
- ``loaded, a use refused``: it loaded; some use raised a clean error.
- ``loaded, every use works``.
- ``raw exception``: an error that is not clean, at load or in a use.
- ``crash``: the child died (a signal, or memory that ran out in native code).
- ``hang``: the child did not finish within the timeout.

A clean error is a ``ValueError`` or ``TypeError`` (their subclasses
included, such as scikit-learn's ``NotFittedError``) raised by skae's own
code or by scikit-learn's validation of parameters and input, with a message
of at most 1,000 characters that quotes no native stack
(``Exception raised from``, ``INTERNAL ASSERT``). Anything else, a
``KeyError``, ``RuntimeError`` or ``MemoryError`` from torch or NumPy
included, is raw.

Run a campaign from the repository root (it re-runs itself on one thread)::

    python -m tests.fuzzing --cases 3400 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import math
import os
import random
import resource
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import safetensors.torch
import torch

import skae
from skae._file_format import checksum as _checksum
from skae._fitted_state import RENAMED_FIELDS

GOOD = ("refused", "loaded, a use refused", "loaded, every use works")
BAD = ("raw exception", "crash", "hang")
KINDS = ("bytes", "header", "document", "tensors")
# Code whose ValueError or TypeError is a deliberate, clean refusal.
_CLEAN_ORIGINS = (
    str(Path(skae.__file__).parent),
    os.path.join("sklearn", "utils", "validation.py"),
    os.path.join("sklearn", "utils", "_param_validation.py"),
)
_NATIVE_TRACES = ("Exception raised from", "INTERNAL ASSERT", "Traceback")
MAX_MESSAGE = 1000
# Memory a child may take beyond what the process has mapped when it forks.
CHILD_MEMORY = 1 << 30
TIMEOUT_SECONDS = 60.0
_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


# -- genuine files ------------------------------------------------------------------


def training_data():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(48, 3)) @ rng.uniform(size=(3, 6)) / 3
    return pd.DataFrame(X.clip(0, 1), columns=[f"f{i}" for i in range(6)])


def genuine_estimators():
    """One estimator per way of fitting that changes what a file holds."""
    small = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0}
    ae = skae.AutoencoderTransformer
    return {
        "pca-start": ae(n_components=2, **small),
        "random-batch-norm-dropout": ae(
            n_components=2, init="random", batch_norm=True, dropout=0.1, **small
        ),
        "convolutional-sgd": ae(
            n_components=2,
            image_shape=(1, 2, 3),
            conv_channels=(2,),
            solver="sgd",
            **small,
        ),
        "cross-entropy-validation": ae(
            n_components=3,
            loss="binary_crossentropy",
            code_activation="tanh",
            early_stopping=True,
            solver="adamw",
            **small,
        ),
        "denoising-sparse": ae(
            n_components=2, noise="gaussian", noise_level=0.1, sparsity=0.1, **small
        ),
        "variational": skae.VariationalAutoencoder(n_components=2, **small),
        "detector": skae.AutoencoderOutlierDetector(ae(n_components=2, **small)),
        "detector-variational": skae.AutoencoderOutlierDetector(
            skae.VariationalAutoencoder(n_components=2, **small), contamination=0.2
        ),
        "unfitted": ae(n_components=3).set_output(transform="pandas"),
    }


def genuine_files(folder):
    """Fit, train on and save each genuine estimator; return {name: bytes}."""
    X = training_data()
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, estimator in genuine_estimators().items():
            if name != "unfitted":
                estimator.fit(X)
                inner = getattr(estimator, "estimator_", estimator)
                inner.partial_fit(X)
            path = Path(folder) / f"{name}.safetensors"
            skae.save(estimator, path)
            files[name] = path.read_bytes()
    return files


# -- mutations ----------------------------------------------------------------------

INTERESTING = [
    0,
    1,
    -1,
    2,
    3,
    255,
    2**31,
    -(2**31),
    2**53 + 1,
    2**63,
    2**64,
    10**30,
    -(10**30),
    10**400,
    0.0,
    -0.0,
    0.5,
    1e-320,
    1e-45,
    1e38,
    1e300,
    -1e300,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "x",
    "x" * 300,
    "tensor.0",
    "tensor.999",
    "cpu",
    "meta",
    "cuda:99",
    "__tuple__",
    "<f8",
    "|O",
    "<U99999999",
    "F32",
    None,
    True,
    False,
    [],
    {},
    [1, 2],
    [[]],
    [0] * 64,
    {"__tuple__": []},
    {"__tuple__": [1, 2]},
    {"__ndarray__": "tensor.0"},
    {"__tensor__": "tensor.1"},
    {"__scalar__": ["<f8", 1e300]},
    {"__scalar__": ["<i8", 2**63]},
    {"__strings__": ["<U3", [1], ["abc"]]},
    {"__dict__": [[1, 2]]},
    {"__dict__": [[[1], 2]]},
    {"__device__": "cpu"},
    {"__estimator__": {"class": "AutoencoderTransformer", "params": {}}},
    {"__random_state__": ["MT19937", [0] * 624, 624, 0, 0.0]},
]
_DTYPES = [
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]
_HEADER_DTYPES = [
    "F64",
    "F16",
    "BF16",
    "I64",
    "I32",
    "U8",
    "BOOL",
    "F8_E4M3",
    ["F32"],
    {"F32": 1},
    7,
    None,
    "f32",
    "",
]


def mutate(content, rng):
    """Return (kind, mutated bytes) for a genuine file's bytes."""
    kind = rng.choice(KINDS)
    mutated = {
        "bytes": _mutate_bytes,
        "header": _mutate_header,
        "document": _mutate_document,
        "tensors": _mutate_tensors,
    }[kind](content, rng)
    return kind, mutated


def _mutate_bytes(content, rng):
    data = bytearray(content)
    length = _header_length(content)
    choice = rng.randrange(7)
    if choice == 0:  # a few bits anywhere
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice == 1:  # one bit of the header (the JSON)
        data[8 + rng.randrange(length)] ^= 1 << rng.randrange(8)
    elif choice == 2:  # a run of random bytes
        start = rng.randrange(len(data))
        run = rng.randint(1, 64)
        data[start : start + run] = os.urandom(min(run, len(data) - start))
    elif choice == 3:
        del data[rng.randrange(len(data)) :]
    elif choice == 4:
        data += os.urandom(rng.randint(1, 64))
    elif choice == 5:
        start = rng.randrange(len(data))
        del data[start : start + rng.randint(1, 64)]
    else:  # the length field itself
        data[:8] = struct.pack("<Q", rng.choice([0, 1, length - 1, length + 1, 2**63]))
    return bytes(data)


def _header_length(content):
    return struct.unpack("<Q", content[:8])[0]


def _split(content):
    length = _header_length(content)
    return json.loads(content[8 : 8 + length]), content[8 + length :]


def _join(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _mutate_header(content, rng):
    """Edit the safetensors header: a tensor's entry, or the metadata."""
    header, data = _split(content)
    names = [name for name in header if name != "__metadata__"]
    name = rng.choice(names) if names else None
    entry = header[name] if names else {}
    choice = rng.randrange(8) if names else rng.choice([6, 7])
    if choice == 0:
        entry["dtype"] = rng.choice(_HEADER_DTYPES)
    elif choice == 1:  # a shape of the same size, where there is one
        entry["shape"] = _same_size_shape(entry["shape"], rng)
    elif choice == 2:
        entry["shape"] = rng.choice(
            [[], [0], [10**4200], [2**63], [-1], [1.5], [[2]], "3", [2**32, 2**32]]
        )
    elif choice == 3:
        begin, end = entry["data_offsets"]
        shift = rng.choice([-4, -1, 1, 4, 10**20])
        entry["data_offsets"] = rng.choice([[begin + shift, end + shift], [end, begin]])
    elif choice == 4:  # two tensors swap names
        other = rng.choice(names)
        header[name], header[other] = header[other], header[name]
    elif choice == 5:
        del header[name]
    elif choice == 6:
        metadata = header["__metadata__"]
        key = rng.choice(sorted(metadata))
        metadata[key] = rng.choice(
            ["", "1", "2", "3", "4", "03", "x", metadata[key][:-1]]
        )
    else:
        header["__metadata__"] = rng.choice([None, [], {"skae.format": 3}, "x"])
    mutated = _join(header, data)
    return _signed(mutated) if rng.random() < 0.7 else mutated


def _same_size_shape(shape, rng):
    if len(shape) >= 2 and rng.random() < 0.5:
        return shape[::-1]
    size = math.prod(shape)
    return rng.choice([[size], [1, size], [size, 1], [*shape, 1], []])


def _signed(content):
    """Recompute the checksum of a file whose layout skae's reader accepts."""
    from skae._model_file import read_header, read_tensors

    try:
        with tempfile.TemporaryFile() as file:
            file.write(content)
            file.seek(0)
            length, header = read_header(file, len(content))
            metadata = header.pop("__metadata__", {})
            tensors = read_tensors(file, header, 8 + length, len(content))
            metadata["skae.sha256"] = _checksum(metadata, tensors)
    except (ValueError, TypeError, AttributeError, KeyError):
        return content
    header, data = _split(content)
    header["__metadata__"] = metadata
    return _join(header, data)


def _load_parts(content):
    tensors = safetensors.torch.load(content)
    header, _ = _split(content)
    return header["__metadata__"], tensors


def _write_parts(metadata, tensors, sign=True):
    metadata = dict(metadata)
    if sign:
        metadata["skae.sha256"] = _checksum(metadata, tensors)
    return safetensors.torch.save(tensors, metadata=metadata)


def _mutate_document(content, rng):
    """Edit one value of the JSON document, anywhere in its tree."""
    metadata, tensors = _load_parts(content)
    document = json.loads(metadata["skae.model"])
    if rng.random() < 0.2:
        _old_layout(metadata, document, rng)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        _mutate_node(document, rng)
    metadata["skae.model"] = json.dumps(document)
    return _write_parts(metadata, tensors, sign=rng.random() < 0.9)


def _old_layout(metadata, document, rng):
    """Label the file of an older format, most fields under their old names.

    Some fields keep their new name too, so that both names are stored.
    """
    metadata["skae.format"] = rng.choice(["1", "2", "3", "4", "4"])
    for _, node in _nodes(document):
        attributes = node.get("attributes") if isinstance(node, dict) else None
        if not isinstance(attributes, dict):
            continue
        for old, new in RENAMED_FIELDS.items():
            if new in attributes and rng.random() < 0.8:
                keep = rng.random() < 0.2
                attributes[old] = attributes[new] if keep else attributes.pop(new)


def _nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, (*path, index))


def _mutate_node(document, rng):
    nodes = list(_nodes(document))
    path, value = rng.choice(nodes[1:])
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    choice = rng.randrange(6)
    if choice == 0 and isinstance(parent, dict):
        del parent[key]
    elif choice == 1 and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(value))  # a duplicate
    elif choice == 2:
        parent[key] = _nearby(value, rng)
    elif choice == 3:  # another value of the document, moved here
        parent[key] = copy.deepcopy(rng.choice(nodes)[1])
    else:
        parent[key] = copy.deepcopy(rng.choice(INTERESTING))


def _nearby(value, rng):
    """A value like ``value``: the same kind, slightly or wildly off."""
    if type(value) is bool:
        return not value
    if type(value) is int:
        return rng.choice([value + 1, value - 1, -value, value * 1000, float(value)])
    if type(value) is float:
        return rng.choice(
            [
                value * 1.0000001,
                -value,
                value * 1e30,
                value / 1e30,
                int(value) if math.isfinite(value) else 0,
                value + 1,
            ]
        )
    if type(value) is str:
        return rng.choice([value[:-1], value + "x", value.upper(), value * 2])
    if type(value) is list:
        return value[:-1] if value and rng.random() < 0.5 else [*value, *value[:1]]
    if type(value) is dict and len(value) == 1:  # a tagged value, with another tag
        ((_, content),) = value.items()
        tags = ["__tuple__", "__dict__", "__ndarray__", "__tensor__", "__strings__"]
        return {rng.choice(tags): content}
    return None


def _mutate_tensors(content, rng):
    """Replace one tensor by another shape, dtype or values, or drop or add one."""
    metadata, tensors = _load_parts(content)
    name = rng.choice(sorted(tensors)) if tensors else None
    tensor = tensors.get(name)
    choice = rng.randrange(6) if tensors else 5
    if choice == 0:
        tensor = tensor.to(rng.choice(_DTYPES))
    elif choice == 1:
        tensor = _reshaped(tensor, rng)
    elif choice == 2 and tensor.numel():
        tensor = tensor.clone()
        flat = tensor.reshape(-1)
        index = rng.randrange(flat.numel())
        if tensor.dtype == torch.bool:
            flat[index] = not bool(flat[index])
        elif tensor.is_floating_point():
            flat[index] = rng.choice(
                [
                    math.nan,
                    math.inf,
                    -math.inf,
                    -1.0,
                    1e38,
                    -1e38,
                    0.0,
                    1e-45,
                    float(flat[index]) * -1,
                ]
            )
        else:
            flat[index] = rng.choice([-1, 0, 2**31 - 1, -(2**31), 10**6])
    elif choice == 3:
        tensor = tensor * rng.choice([0, -1, 1e30, 1e-30, 2])
    elif choice == 4:
        del tensors[name]
        return _write_parts(metadata, tensors)
    else:
        tensors[f"tensor.{len(tensors) + rng.randrange(3)}"] = torch.zeros(2)
        return _write_parts(metadata, tensors)
    tensors[name] = tensor.contiguous()
    return _write_parts(metadata, tensors, sign=rng.random() < 0.95)


def _reshaped(tensor, rng):
    if tensor.dim() >= 2 and rng.random() < 0.4:
        return tensor.T
    choices = [tensor.reshape(-1), tensor.unsqueeze(0)]
    if tensor.numel():
        choices.append(tensor.reshape(-1)[0])  # 0-d
    if tensor.dim():
        choices += [tensor[:-1], tensor[:0]]
    return rng.choice(choices)


# -- one case, isolated ---------------------------------------------------------------


def clean(exc):
    """Whether ``exc`` is a clean refusal (see the module docstring)."""
    if not isinstance(exc, ValueError | TypeError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    origin = frames[-1].filename if frames else ""
    message = str(exc)
    return (
        any(part in origin for part in _CLEAN_ORIGINS)
        and len(message) <= MAX_MESSAGE
        and not any(trace in message for trace in _NATIVE_TRACES)
    )


def _describe(exc, step):
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return f"{step}: {type(exc).__name__} at {where}: {str(exc)[:300]}"


def exercise(path):
    """Load ``path`` and use what loads; return (outcome, detail). Runs in the child."""
    warnings.simplefilter("ignore")
    try:
        model = skae.load(path)
    except Exception as exc:
        if clean(exc):
            return "refused", ""
        return "raw exception", _describe(exc, "load")
    n_features = getattr(model, "n_features_in_", 6)
    X = np.random.RandomState(0).uniform(size=(12, n_features))
    inner = getattr(model, "estimator_", model)
    steps = [
        ("transform", lambda: model.transform(X)),
        ("score_samples", lambda: model.score_samples(X)),
        ("inverse_transform", lambda: model.inverse_transform(inner.transform(X))),
        ("predict", lambda: model.predict(X)),
        ("sample", lambda: model.sample(3)),
        ("partial_fit", lambda: inner.partial_fit(X)),
        ("transform after partial_fit", lambda: inner.transform(X)),
    ]
    outcome, detail = "loaded, every use works", ""
    for step, call in steps:
        method = step.split()[0]
        if not hasattr(model if method != "partial_fit" else inner, method):
            continue
        try:
            call()
        except Exception as exc:
            if not clean(exc):
                return "raw exception", _describe(exc, step)
            outcome, detail = "loaded, a use refused", _describe(exc, step)
    return outcome, detail


def _mapped_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_isolated(path, timeout=TIMEOUT_SECONDS):
    """Run :func:`exercise` in a forked child; return (outcome, detail)."""
    limit = _mapped_bytes() + CHILD_MEMORY
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code
        status = 0
        try:
            os.close(read_end)
            # A mutated verbose setting prints; the report must stay clean.
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            result = exercise(path)
        except BaseException as exc:  # reported, then the child exits
            result = ("raw exception", f"outside a step: {exc!r}"[:400])
        try:
            os.write(write_end, json.dumps(result).encode())
        except BaseException:
            status = 1
        os._exit(status)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hang", f"no result within {timeout:.0f} s"
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "crash", f"killed by signal {os.WTERMSIG(status)}"
    if not chunks or os.WEXITSTATUS(status):
        return "crash", f"exit status {os.WEXITSTATUS(status)}, no result"
    outcome, detail = json.loads(b"".join(chunks))
    return outcome, detail


# -- a campaign ---------------------------------------------------------------------


def campaign(n_cases, seed, keep=None, log=None):
    """Mutate and exercise ``n_cases`` files; return counts and the bad cases."""
    counts = collections.Counter()
    by_kind = collections.Counter()
    bad = []
    with tempfile.TemporaryDirectory() as folder:
        files = genuine_files(folder)
        names = sorted(files)
        path = Path(folder) / "mutated.safetensors"
        for case in range(n_cases):
            rng = random.Random(seed * 1_000_003 + case)
            name = names[case % len(names)]
            kind, content = mutate(files[name], rng)
            path.write_bytes(content)
            outcome, detail = run_isolated(path)
            counts[outcome] += 1
            by_kind[kind, outcome] += 1
            if outcome in BAD:
                bad.append(
                    {
                        "case": case,
                        "file": name,
                        "kind": kind,
                        "outcome": outcome,
                        "detail": detail,
                    }
                )
                if keep is not None:
                    kept = Path(keep) / f"case-{case}-{name}.safetensors"
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    kept.write_bytes(content)
            if log is not None and (case + 1) % 500 == 0:
                print(f"{case + 1} cases: {dict(counts)}", file=log, flush=True)
    return {
        "cases": n_cases,
        "seed": seed,
        "counts": {outcome: counts[outcome] for outcome in (*GOOD, *BAD)},
        "by_kind": {
            kind: {outcome: by_kind[kind, outcome] for outcome in (*GOOD, *BAD)}
            for kind in KINDS
        },
        "bad": bad,
    }


def run_campaign_process(n_cases, seed, timeout):
    """Run a campaign in a fresh process on one thread; return its report."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzzing",
            "--cases",
            str(n_cases),
            "--seed",
            str(seed),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
        env={**os.environ, **_ONE_THREAD, "PYTHONPATH": str(root)},
        check=False,
    )
    if result.returncode not in (0, 1):
        raise AssertionError(f"the fuzzer itself failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def _format(report, seconds):
    lines = [
        f"{report['cases']} mutated files (seed {report['seed']}) in {seconds:.0f} s:"
    ]
    for outcome, count in report["counts"].items():
        lines.append(f"  {outcome:<26} {count:>6}")
    lines.append(
        "by mutation: "
        + "; ".join(
            f"{kind} " + ", ".join(f"{n} {o}" for o, n in outcomes.items() if n)
            for kind, outcomes in report["by_kind"].items()
        )
    )
    lines += [
        f"  case {b['case']} ({b['file']}, {b['kind']}): {b['outcome']}: {b['detail']}"
        for b in report["bad"]
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="folder for the files of bad cases")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if any(os.environ.get(name) != value for name, value in _ONE_THREAD.items()):
        # Forked children must not inherit thread pools: start again on one.
        os.environ.update(_ONE_THREAD)
        os.execv(sys.executable, [sys.executable, "-m", "tests.fuzzing", *sys.argv[1:]])
    torch.set_num_threads(1)
    started = time.monotonic()
    report = campaign(
        args.cases, args.seed, keep=args.keep, log=None if args.json else sys.stderr
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(_format(report, time.monotonic() - started))
    return 1 if report["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
