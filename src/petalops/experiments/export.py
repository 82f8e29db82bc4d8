"""Export a registered version as one standalone ONNX file for the edge.

The file runs under plain ONNX Runtime (no petalops, no scikit-learn):

* input  ``input``          float32 ``[N, n_features]`` (features in the order of the
  ``petalops.features`` metadata entry; ``--dtype float64`` keeps double precision)
* output ``label``          int64   ``[N]``   the class index (``petalops.classes``)
* output ``probabilities``  float32 ``[N, n_classes]`` (float64 with ``--dtype float64``)

A model with categorical features takes one input per feature instead, named after it, of
shape ``[N, 1]``: ``string`` for a categorical feature (the empty string for a missing one),
the requested float type for the others (NaN for a missing number).

The model inside is the version's checksum-verified bundle ``model.onnx``; only casts at the
edges are added when the requested dtype differs from the one it was compiled with.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

from petalops.config import Settings
from petalops.errors import InputError
from petalops.registry import fetch_bundle, resolve
from petalops.runtime.bundle import sha256_file, verify_bundle

FORMATS = ("onnx",)
DTYPES = {"float32": 1, "float64": 11}  # onnx.TensorProto.FLOAT / DOUBLE
INPUT, LABEL, PROBABILITIES = "input", "label", "probabilities"


@dataclass(frozen=True)
class ExportInfo:
    name: str
    version: str
    path: Path
    dtype: str
    features: list[str]
    classes: list[str]
    bundle_sha256: str
    file_sha256: str
    size_bytes: int
    # A mixed-type model's inputs: feature -> "string" or the float dtype.
    inputs: dict[str, str] | None = None

    def signature(self) -> dict[str, Any]:
        n, k = len(self.features), len(self.classes)
        inputs = (
            {name: f"{kind} [N, 1]" for name, kind in self.inputs.items()}
            if self.inputs
            else {INPUT: f"{self.dtype} [N, {n}]"}
        )
        return {
            "inputs": inputs,
            "outputs": {LABEL: "int64 [N]", PROBABILITIES: f"{self.dtype} [N, {k}]"},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "dtype": self.dtype,
            "features": self.features,
            "classes": self.classes,
            "bundle_sha256": self.bundle_sha256,
            "sha256": self.file_sha256,
            "size_bytes": self.size_bytes,
            **self.signature(),
        }


def _rename(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]


def with_dtype(model: Any, dtype: str, features: list[str] | None = None) -> Any:
    """Cast the float input(s) and the probabilities output to ``dtype`` (in place); string
    inputs (a mixed-type model's categorical features) stay as they are."""
    graph = model.graph
    want = DTYPES[dtype]
    names = [i.name for i in graph.input]
    outs = {o.name: o for o in graph.output}
    expected = [INPUT] if not features or names == [INPUT] else list(features)
    if names != expected or set(outs) != {LABEL, PROBABILITIES}:
        raise InputError(
            f"the bundle's model.onnx has inputs {names} and outputs {sorted(outs)}; "
            f"expected {expected} and [{LABEL!r}, {PROBABILITIES!r}]; re-train the version"
        )
    for k, name in enumerate(names):
        have = graph.input[k].type.tensor_type.elem_type
        if have == want or have not in DTYPES.values():
            continue
        _rename(graph, name, f"{name}__native")
        graph.node.insert(
            0,
            helper.make_node(
                "Cast", [name], [f"{name}__native"], to=have, name=f"petalops_cast_{name}"
            ),
        )
        graph.input[k].type.tensor_type.elem_type = want
    proba = outs[PROBABILITIES]
    if proba.type.tensor_type.elem_type != want:
        _rename(graph, PROBABILITIES, f"{PROBABILITIES}__native")
        graph.node.append(
            helper.make_node(
                "Cast",
                [f"{PROBABILITIES}__native"],
                [PROBABILITIES],
                to=want,
                name="petalops_cast_probabilities",
            )
        )
        proba.type.tensor_type.elem_type = want
    return model


def export_onnx(
    settings: Settings, ref: str, output: Path, *, fmt: str = "onnx", dtype: str = "float32"
) -> ExportInfo:
    """Write the version's model as a standalone ONNX file with its signature in metadata."""
    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r} is not supported; use --format onnx")
    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r} is not supported; use float32 or float64")
    if output.is_dir():
        raise InputError(f"--output {output} is a directory; give a file name like model.onnx")
    if not output.parent.resolve().is_dir():
        raise InputError(f"directory {output.parent} does not exist; create it first")
    info = resolve(settings, ref)
    bundle = fetch_bundle(settings, info)
    manifest = verify_bundle(bundle, info.sha256)
    model = with_dtype(onnx.load(str(bundle / "model.onnx")), dtype, list(manifest.features))
    kinds = {c.get("name"): c.get("kind") for c in manifest.schema}
    mixed = any(kind != "numeric" for kind in kinds.values())
    inputs = (
        {f: "string" if kinds.get(f) == "categorical" else dtype for f in manifest.features}
        if mixed
        else None
    )
    n, k = len(manifest.features), len(manifest.classes)
    model.graph.doc_string = (
        f"{info.name} v{info.version} exported by petalops. Input '{INPUT}': {dtype} [N, {n}] "
        f"features {manifest.features}. Outputs '{LABEL}': int64 [N] class index into "
        f"{manifest.classes}; '{PROBABILITIES}': {dtype} [N, {k}]."
    )
    meta = {
        "petalops.name": info.name,
        "petalops.version": info.version,
        "petalops.bundle_sha256": info.sha256,
        "petalops.features": json.dumps(manifest.features),
        "petalops.classes": json.dumps(manifest.classes),
        "petalops.input_dtype": dtype,
    }
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=output.parent.resolve())
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ExportInfo(
        name=info.name,
        version=info.version,
        path=output.resolve(),
        dtype=dtype,
        features=list(manifest.features),
        classes=list(manifest.classes),
        bundle_sha256=info.sha256,
        file_sha256=sha256_file(output),
        size_bytes=output.stat().st_size,
        inputs=inputs,
    )
