"""The model bundle: the files the server loads, safe to open and checksum-verified.

A bundle is a directory holding ``manifest.json`` plus the files it lists with their sha256:

* ``model.onnx``  the whole scikit-learn pipeline compiled by skl2onnx (any classifier);
* ``linear.json`` for linear models, the coefficients with any scaler folded in (fast numpy path);
* ``profile.json`` the reference profile of the training data (for drift and range checks).

The manifest also holds the input schema (each feature's kind, categories and ranges seen in
training) and the policy for categories never seen in training.

Nothing in a bundle is ever unpickled. The sha256 of ``manifest.json`` is recorded on the
registry version; it pins every other file through the hashes the manifest lists.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petalops.errors import IntegrityError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    name: str
    features: list[str]
    classes: list[str]
    kind: str  # "linear" or "onnx"
    files: dict[str, str]
    input_dtype: str = "float64"
    feature_min: list[float | None] = field(default_factory=list)
    feature_max: list[float | None] = field(default_factory=list)
    # The input schema (`petalops.data.schema.Schema.to_json`); empty: all numeric.
    schema: list[dict[str, Any]] = field(default_factory=list)
    # What a category never seen in training does: ignore, infrequent or error.
    unknown: str = "ignore"
    # The served class of an ONNX model: "label", the graph's label output (the estimator's
    # own predict, as the converter compiles it); "proba", the most probable class (a bundle
    # from before the label was served).
    decision: str = "proba"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "features": self.features,
            "classes": self.classes,
            "kind": self.kind,
            "files": self.files,
            "input_dtype": self.input_dtype,
            "feature_min": self.feature_min,
            "feature_max": self.feature_max,
            "schema": self.schema,
            "unknown": self.unknown,
            "decision": self.decision,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT_VERSION:
            raise IntegrityError(
                f"bundle format {data.get('format')!r} is not supported (expected {FORMAT_VERSION})"
            )
        return cls(
            name=data["name"],
            features=list(data["features"]),
            classes=[str(c) for c in data["classes"]],
            kind=data["kind"],
            files=dict(data["files"]),
            input_dtype=data.get("input_dtype", "float64"),
            feature_min=list(data.get("feature_min", [])),
            feature_max=list(data.get("feature_max", [])),
            schema=list(data.get("schema", [])),
            unknown=str(data.get("unknown", "ignore")),
            decision=str(data.get("decision", "proba")),
            extra=dict(data.get("extra", {})),
        )


def write_manifest(directory: Path, manifest: Manifest) -> str:
    """Write ``manifest.json`` and return its sha256 (the value to record on the version)."""
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    return sha256_file(path)


def verify_bundle(directory: Path, expected_sha256: str | None) -> Manifest:
    """Check the manifest against the recorded hash and every file against the manifest."""
    path = directory / MANIFEST
    if not path.is_file():
        raise IntegrityError(
            f"model bundle at {directory} has no {MANIFEST}; re-register the model"
        )
    if expected_sha256:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise IntegrityError(
                f"checksum mismatch for {path}: registry says {expected_sha256[:12]}…, "
                f"file is {actual[:12]}…; refusing to load a modified model"
            )
    manifest = Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    for name, digest in manifest.files.items():
        file_path = directory / name
        if not file_path.is_file():
            raise IntegrityError(f"model bundle at {directory} is missing {name}")
        actual = sha256_file(file_path)
        if actual != digest:
            raise IntegrityError(
                f"checksum mismatch for {file_path}: manifest says {digest[:12]}…, "
                f"file is {actual[:12]}…; refusing to load a modified model"
            )
    return manifest
