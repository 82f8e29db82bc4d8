"""Everything petalops asks of MLflow: runs, datasets, model versions, aliases and tags.

This is the only module that imports MLflow: the read-only fast paths live in resolve.py, and
alias and tag writes go through writes.py (no MLflow import) where the store allows it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from petalops.config import Settings
from petalops.errors import NotFoundError, RegistryUnavailableError
from petalops.registry import writes
from petalops.registry.resolve import SHA_TAG, VersionInfo, resolve
from petalops.security import audit

if TYPE_CHECKING:
    from mlflow import MlflowClient

ALIASES = ("champion", "challenger", "previous")


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # MLflow's defaults retry an unreachable server for minutes; fail within seconds instead.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    for name in ("mlflow", "alembic", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.WARNING)


@functools.lru_cache(maxsize=8)
def _client_for(tracking_uri: str) -> MlflowClient:
    _quiet_mlflow()
    from mlflow import MlflowClient

    if not tracking_uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    # MLflow creates and migrates the SQLite schema on first use, unguarded: two processes
    # doing it at once fail ("duplicate column name", "_alembic_tmp_... already exists").
    # One at a time here; the second finds the schema in place.
    lock = Path(tracking_uri[len("sqlite:///") :] + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        mlflow_client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        mlflow_client.search_experiments(max_results=1)
        mlflow_client.search_registered_models(max_results=1)
    return mlflow_client


def client(settings: Settings) -> MlflowClient:
    """An MLflow client bound to the settings' tracking/registry URI (created on first use)."""
    if settings.tracking_uri.startswith("sqlite:///"):
        settings.home_dir.mkdir(parents=True, exist_ok=True)
    try:
        mlflow_client = _client_for(settings.tracking_uri)
        import mlflow

        # Fluent calls (start_run, log_*) use the process-wide URI: keep it on these settings.
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        return mlflow_client
    except Exception as exc:  # MLflow raises many types when a store cannot be opened
        raise RegistryUnavailableError(
            f"cannot open MLflow at {settings.tracking_uri}: {exc}"
        ) from None


def ensure_experiment(settings: Settings, name: str | None = None) -> str:
    """The experiment id, creating it with artifacts under .petalops/ for the embedded store."""
    mlflow_client = client(settings)
    exp_name = name or settings.experiment_name
    experiment = mlflow_client.get_experiment_by_name(exp_name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if settings.tracking_uri.startswith("sqlite:///"):
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        location = (settings.artifact_root / exp_name).as_uri()
    try:
        return str(mlflow_client.create_experiment(exp_name, artifact_location=location))
    except Exception:  # created concurrently by another process
        found = mlflow_client.get_experiment_by_name(exp_name)
        if found is None:
            raise
        return str(found.experiment_id)


@contextlib.contextmanager
def tracked_run(
    settings: Settings,
    run_name: str | None = None,
    experiment: str | None = None,
    nested: bool = False,
) -> Iterator[str]:
    """Start an MLflow run in the project's experiment; yields the run id."""
    import mlflow

    experiment_id = ensure_experiment(settings, experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested) as run:
        yield run.info.run_id


def log_run_data(
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> None:
    import mlflow

    mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
    mlflow.log_metrics(metrics)
    mlflow.set_tags(tags)


def log_dataset(frame: Any, source: str, name: str, target: str, digest: str) -> None:
    """Record the training data as the run's MLflow dataset input (context: training)."""
    import warnings

    import mlflow

    with warnings.catch_warnings():
        # A local path matches two equivalent MLflow source resolvers; either is right.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame, source=source, name=name, targets=target, digest=digest[:36]
        )
    mlflow.log_input(dataset, context="training")


def log_artifacts(directory: Path, artifact_path: str | None = None) -> None:
    import mlflow

    mlflow.log_artifacts(str(directory), artifact_path=artifact_path)


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_sklearn_model(pipeline: Any, input_example: Any, output_example: Any) -> str:
    """Log the Pipeline in MLflow's sklearn flavour so stock MLflow can load it; return its URI."""
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, output_example)
    with _pins_checked_directly():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=input_example,
            # Pinned explicitly: inferring requirements re-imports the model in a subprocess.
            pip_requirements=[
                f"scikit-learn=={sklearn.__version__}",
                f"mlflow=={mlflow.__version__}",
                f"skops=={skops.__version__}",
            ],
            serialization_format="skops",  # safe to load: no arbitrary code at unpickling
            skops_trusted_types=trusted_types(pipeline),
        )
    return str(info.model_uri)


@contextlib.contextmanager
def _pins_checked_directly() -> Iterator[None]:
    """MLflow's check that the model's requirements match this environment, done per pin.

    `log_model` warns when a requirement is not satisfied here, once as it writes the model
    and once as it loads it back to validate the input example; to know which module belongs
    to which package it first maps every installed distribution (importlib's
    ``packages_distributions``: ~0.4 s of `petalops train` on a venv with the spark and dev
    extras). The requirements logged here are pins of the packages this very process
    imported, so the same warning is had from one metadata lookup per pin. Where MLflow no
    longer has the hook, its own check runs unchanged.
    """
    from importlib import metadata

    import mlflow.pyfunc
    from mlflow.utils import environment

    def check(requirements: list[str]) -> None:
        for requirement in requirements:
            name, _, pinned = requirement.partition("==")
            try:
                installed = metadata.version(name.strip())
            except (metadata.PackageNotFoundError, ValueError):
                installed = "uninstalled"
            if pinned and installed != pinned.strip():
                logging.getLogger("mlflow").warning(
                    "the model requires %s but this environment has %s", requirement, installed
                )

    hooks = [
        module
        for module in (environment, mlflow.pyfunc)
        if callable(getattr(module, "warn_dependency_requirement_mismatches", None))
    ]
    own = {module: module.warn_dependency_requirement_mismatches for module in hooks}
    for module in hooks:
        module.warn_dependency_requirement_mismatches = check  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, function in own.items():
            module.warn_dependency_requirement_mismatches = function  # type: ignore[attr-defined]


def trusted_types(pipeline: Any) -> list[str]:
    """The types skops must trust to load exactly this Pipeline (its tree structures, numpy
    dtypes, a booster...): read from the Pipeline's own skops dump, never "trust everything"."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))


def register_version(
    settings: Settings, model_uri: str, run_id: str, sha256: str, tags: dict[str, str]
) -> str:
    """Create a registry version for a logged model and tag it; return the version number."""
    import mlflow

    client(settings)
    name = settings.project

    # register_model (not create_model_version) links the logged model id, which a remote
    # tracking server requires.
    # register_model prints "Registered model ... already exists" lines to stderr on every
    # version; the CLI says what happened itself. Failures still raise.
    with contextlib.redirect_stderr(io.StringIO()):
        version = mlflow.register_model(model_uri, name, tags={SHA_TAG: sha256, **tags})
    return str(version.version)


def set_alias(
    settings: Settings, alias: str, version: str, name: str | None = None, actor: str | None = None
) -> None:
    """Point an alias at a version and record who did it and when as version tags
    (``petalops.promoted_by`` / ``_at`` for champion, ``petalops.alias_history`` for all)
    and in the audit trail (with the version it pointed at before)."""
    model = name or settings.project
    before = _alias_before(settings, alias, model)
    if str(version).isdigit() and writes.accepts(settings, model, alias=alias):
        info = resolve(settings, f"{model}/{int(version)}")  # a clear 404 for a missing version
        tags = _alias_event_tags(info, alias, actor)
        if writes.accepts(settings, model, tags=tags):
            try:
                writes.set_alias(settings, model, alias, info.version, tags)
            except writes.UnknownSchema:
                pass  # not a schema the direct writes know: MLflow's client below
            else:
                _audit_alias_set(settings, model, alias, before, info.version, actor)
                return
    mlflow_client = client(settings)
    info = get_version(settings, version, name=model)  # a clear 404 for a missing version
    mlflow_client.set_registered_model_alias(model, alias, str(version))
    for key, value in _alias_event_tags(info, alias, actor).items():
        set_version_tag(settings, info.version, key, value, name=info.name)
    _audit_alias_set(settings, model, alias, before, str(version), actor)


def _alias_before(settings: Settings, alias: str, model: str) -> str | None:
    """The version ``alias`` points at now (for the audit trail), read like ``resolve``:
    without importing MLflow where the store allows it."""
    from petalops.registry.resolve import model_state

    try:
        aliases, _ = model_state(settings, model)
    except NotFoundError:
        return None
    return aliases.get(alias)


def _audit_alias_set(
    settings: Settings, model: str, alias: str, before: str | None, after: str, actor: str | None
) -> None:
    audit.record(
        settings,
        "alias.set",
        f"{model}@{alias}",
        before={"version": before},
        after={"version": after},
        actor=actor,
    )


ALIAS_HISTORY_TAG = "petalops.alias_history"


def current_actor() -> str:
    """Who is acting: an HTTP route's API key name, ``PETALOPS_ACTOR`` if set, else
    ``user@host`` (`petalops.security.audit.current_actor`)."""
    return audit.current_actor()


def _alias_event_tags(info: VersionInfo, alias: str, actor: str | None) -> dict[str, str]:
    """The version tags that record an alias move: its history, and for champion who
    promoted it and when."""
    from datetime import UTC, datetime

    who = actor or current_actor()
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        history = json.loads(info.tags.get(ALIAS_HISTORY_TAG, "[]"))
    except ValueError:
        history = []
    history = [*history, {"alias": alias, "by": who, "at": when}][-20:]  # tags are size-capped
    tags = {ALIAS_HISTORY_TAG: json.dumps(history)}
    if alias == "champion":
        tags |= {"petalops.promoted_by": who, "petalops.promoted_at": when}
    return tags


def delete_alias(settings: Settings, alias: str, name: str | None = None) -> None:
    model = name or settings.project
    before = _alias_before(settings, alias, model)
    if before is None:
        raise NotFoundError(f"model {model!r} has no alias {alias!r}; see `petalops registry list`")
    deleted = False
    if writes.accepts(settings, model, alias=alias):
        try:
            writes.delete_alias(settings, model, alias)
            deleted = True
        except writes.UnknownSchema:
            pass  # not a schema the direct writes know: MLflow's client below
    if not deleted:
        from mlflow.exceptions import MlflowException

        try:
            client(settings).delete_registered_model_alias(model, alias)
        except MlflowException:
            raise NotFoundError(f"model {model!r} has no alias {alias!r}") from None
    audit.record(
        settings, "alias.delete", f"{model}@{alias}", before={"version": before}, after=None
    )


def alias_version(settings: Settings, alias: str, name: str | None = None) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = client(settings).get_model_version_by_alias(name or settings.project, alias)
    except MlflowException:
        return None
    return str(mv.version)


def _to_info(mv: Any, artifact_uri: str = "") -> VersionInfo:
    tags = dict(mv.tags or {})
    return VersionInfo(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or "",
        sha256=tags.get(SHA_TAG, ""),
        artifact_uri=artifact_uri,
        aliases=sorted(getattr(mv, "aliases", []) or []),
        tags=tags,
    )


def get_version(
    settings: Settings, version: str, alias: str | None = None, name: str | None = None
) -> VersionInfo:
    from mlflow.exceptions import MlflowException

    model = name or settings.project
    mlflow_client = client(settings)
    try:
        if alias:
            mv = mlflow_client.get_model_version_by_alias(model, alias)
        else:
            mv = mlflow_client.get_model_version(model, str(version))
    except MlflowException:
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise NotFoundError(
            f"model {model!r} has no {what}; see `petalops registry list`"
        ) from None
    return _to_info(mv)


def list_versions(settings: Settings, name: str | None = None) -> list[VersionInfo]:
    """All versions of the project's model, newest first."""
    from dataclasses import replace

    from mlflow.exceptions import MlflowException

    model = name or settings.project
    mlflow_client = client(settings)
    try:
        aliases = dict(mlflow_client.get_registered_model(model).aliases or {})
    except MlflowException:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    versions = mlflow_client.search_model_versions(f"name = '{model}'")
    infos = [
        replace(_to_info(mv), aliases=sorted(by_version.get(str(mv.version), [])))
        for mv in versions
    ]
    return sorted(infos, key=lambda i: int(i.version), reverse=True)


def model_tags(settings: Settings, name: str | None = None) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        return dict(client(settings).get_registered_model(name or settings.project).tags or {})
    except MlflowException:
        return {}


def set_model_tag(settings: Settings, key: str, value: str, name: str | None = None) -> None:
    model = name or settings.project
    if writes.accepts(settings, model, tags={key: value}):
        with contextlib.suppress(writes.UnknownSchema):
            writes.set_model_tags(settings, model, {key: value})
            return
    client(settings).set_registered_model_tag(model, key, value)


def set_version_tag(
    settings: Settings, version: str, key: str, value: str, name: str | None = None
) -> None:
    model = name or settings.project
    if str(version).isdigit() and writes.accepts(settings, model, tags={key: value}):
        with contextlib.suppress(writes.UnknownSchema):
            writes.set_version_tags(settings, model, str(version), {key: value})
            return
    client(settings).set_model_version_tag(model, str(version), key, value)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    start_time: int


def get_run(settings: Settings, run_id: str) -> RunRecord:
    from mlflow.exceptions import MlflowException

    try:
        run = client(settings).get_run(run_id)
    except MlflowException:
        raise NotFoundError(
            f"run {run_id!r} does not exist; see the MLflow UI (`petalops ui`)"
        ) from None
    return RunRecord(
        run_id=run.info.run_id,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        start_time=int(run.info.start_time or 0),
    )


def find_runs(settings: Settings, filter_string: str, max_results: int = 10) -> list[RunRecord]:
    """Active runs of every experiment matching an MLflow filter, newest first."""
    mlflow_client = client(settings)
    experiment_ids = [e.experiment_id for e in mlflow_client.search_experiments()]
    if not experiment_ids:
        return []
    runs = mlflow_client.search_runs(
        experiment_ids, filter_string, max_results=max_results, order_by=["start_time DESC"]
    )
    return [
        RunRecord(
            run_id=run.info.run_id,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            tags=dict(run.data.tags),
            start_time=int(run.info.start_time or 0),
        )
        for run in runs
    ]


def download_run_artifacts(settings: Settings, run_id: str, path: str, dest: Path) -> Path:
    import mlflow

    client(settings)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=path,
            dst_path=str(dest),
            tracking_uri=settings.tracking_uri,
        )
    except Exception as exc:
        raise RegistryUnavailableError(
            f"cannot download artifacts of run {run_id}: {exc}"
        ) from None
    return Path(local)


def read_run_json(settings: Settings, run_id: str, path: str) -> Any:
    """A JSON artifact of a run (small files such as the training config)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = download_run_artifacts(settings, run_id, path, Path(tmp))
        return json.loads(local.read_text(encoding="utf-8"))
