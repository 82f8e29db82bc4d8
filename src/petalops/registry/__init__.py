"""The model registry: MLflow is the single source of truth for what should be serving.

`resolve`, `load_runtime` and `load_profile` are cheap (no MLflow import for the embedded
store or an HTTP tracking server); everything else lives in `petalops.registry.store`.
"""

from petalops.registry.resolve import (
    SHA_TAG,
    VersionInfo,
    fetch_bundle,
    load_profile,
    load_runtime,
    model_tag,
    parse_ref,
    resolve,
)

__all__ = [
    "SHA_TAG",
    "VersionInfo",
    "fetch_bundle",
    "load_profile",
    "load_runtime",
    "model_tag",
    "parse_ref",
    "resolve",
]
