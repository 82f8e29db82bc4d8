"""The model registry: MLflow is the single source of truth for what should be serving.

`resolve`, `list_versions`, `get_run`, `read_run_json`, `load_runtime` and `load_profile` are
cheap (no MLflow import for the embedded store or an HTTP tracking server); everything else
lives in `petalops.registry.store`.
"""

from petalops.registry.resolve import (
    SHA_TAG,
    VersionInfo,
    fetch_bundle,
    get_run,
    list_versions,
    load_profile,
    load_runtime,
    model_state,
    model_tag,
    parse_ref,
    read_run_json,
    resolve,
)

__all__ = [
    "SHA_TAG",
    "VersionInfo",
    "fetch_bundle",
    "get_run",
    "list_versions",
    "load_profile",
    "load_runtime",
    "model_state",
    "model_tag",
    "parse_ref",
    "read_run_json",
    "resolve",
]
