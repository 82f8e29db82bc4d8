"""`train`: the training pipeline as a chain of steps, one module each.

    load       load.py      read, validate and fingerprint the data; the config and train key
    split      split.py     held-out test rows, by the seed
    fit        fit.py       the Pipeline of build.py fitted on the training rows
    evaluate   evaluate.py  metrics and the confusion matrix on the test rows
    calibrate  calibrate.py the model's probabilities against the truth of the test rows
    compile    profile.py   the reference profile for drift detection
               compile.py   the bundle (ONNX / linear), proven to predict like the Pipeline
    gate       champion.py  the current champion on the same test rows
               gate.py      every quality check on the compiled model
    track      track.py     the MLflow run: params, metrics, tags, dataset, artifacts, model
      snapshot snapshot.py  the exact training data, stored once per content hash
      export   export.py    (--export) the tutorial files in one directory
    register   register.py  the model version and its alias, with the signature of the
                            bundle's manifest when signing.key_file is set

Data and configuration errors are raised before anything is logged; a failed gate logs the
run (so it can be inspected) but registers nothing. An exception raised inside a step carries
a note naming that step; ``on_step`` hears the names in ``STEPS`` (snapshot and export are
named in notes only).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.errors import GateFailedError, IntegrityError
from petalops.pipeline.checks import GateResult
from petalops.pipeline.identity import SOURCE_KEY_TAG, source_key
from petalops.pipeline.register import find_registered
from petalops.registry import get_run
from petalops.registry.store import set_version_tag
from petalops.runtime.bundle import MANIFEST
from petalops.runtime.signing import Signature, Signer

STEPS = ("load", "split", "fit", "evaluate", "calibrate", "compile", "gate", "track", "register")
StepCallback = Callable[[str], None]


@dataclass
class TrainResult:
    """What `train` did: the run, its scores and gate, and the version it registered."""

    metrics: dict[str, float]
    gate: GateResult
    run_id: str = ""
    version: str | None = None
    alias: str | None = None
    skipped: bool = False
    train_key: str = ""
    data_sha256: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    fitted: dict[str, Any] = field(default_factory=dict)
    exported: list[str] = field(default_factory=list)
    signed_by: str = ""  # the key id of the signing key, when the version was signed


STEP_NOTE = "petalops train: failed in step "


@contextmanager
def step(name: str, on_step: StepCallback | None) -> Iterator[None]:
    """Report the step to ``on_step`` (if given); an exception raised inside it gets a note
    naming the innermost step it came from. The message is left alone: the CLI prints it."""
    if on_step is not None:
        on_step(name)
    try:
        yield
    except Exception as exc:
        if not any(note.startswith(STEP_NOTE) for note in getattr(exc, "__notes__", ())):
            exc.add_note(f"{STEP_NOTE}{name!r}")
        raise


def train(
    settings: Settings,
    data_path: str | Path | None = None,
    *,
    register: bool = True,
    export_dir: Path | None = None,
    skip_if_unchanged: bool = False,
    on_step: StepCallback | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Train, evaluate, gate and (unless told not to) register a model version."""
    with step("load", on_step):
        # A signing key that cannot be used fails here, before minutes of training.
        key_file = settings.signing.key_file
        signer = Signer.from_file(key_file) if key_file is not None and register else None
        if skip_if_unchanged and register:
            # The file's bytes first: the same bytes and config as a registered version's
            # mean nothing to do, found with neither pandas nor scikit-learn imported.
            raw = source_key(settings, data_path)
            same_bytes = find_registered(settings, raw, SOURCE_KEY_TAG) if raw else None
            if same_bytes is not None:
                return _unchanged(settings, *same_bytes)
        # Imported past the check above: pandas and scikit-learn (the data, ~1 s), then
        # skl2onnx, onnx and onnxruntime (the steps below), none of which it needs.
        from petalops.pipeline.load import load

        data = load(settings, data_path)
    if skip_if_unchanged and register:
        existing = find_registered(settings, data.key)
        if existing is not None:
            if data.source_key:  # the next check finds it by its bytes
                set_version_tag(settings, existing[0], SOURCE_KEY_TAG, data.source_key)
            return _unchanged(settings, *existing)

    from petalops.pipeline.calibrate import calibrate
    from petalops.pipeline.champion import NO_CHAMPION, find_champion
    from petalops.pipeline.compile import compile_candidate
    from petalops.pipeline.evaluate import evaluate
    from petalops.pipeline.export import export_files
    from petalops.pipeline.fit import fit, fitted_parameters
    from petalops.pipeline.gate import run_gate
    from petalops.pipeline.profile import training_profile
    from petalops.pipeline.register import register_model
    from petalops.pipeline.snapshot import record_snapshot
    from petalops.pipeline.split import split
    from petalops.pipeline.track import (
        log_artifacts,
        log_model,
        run_params,
        run_tags,
        tracked_run,
        write_artifacts,
    )

    dataset = data.dataset
    with step("split", on_step):
        rows = split(settings, dataset)
    with step("fit", on_step):
        model = fit(settings, rows, dataset.features)
    with step("evaluate", on_step):
        scores = evaluate(model, rows, dataset)
    with step("calibrate", on_step):
        calibration = calibrate(model, rows, dataset, seed=settings.seed)

    with tempfile.TemporaryDirectory(prefix="petalops-train-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        with step("compile", on_step):
            profile = training_profile(settings, dataset, rows, model)
            profile["calibration"] = calibration  # stored with the version (estimate.py)
            candidate = compile_candidate(
                workdir / "petalops",
                model,
                settings.project,
                dataset,
                profile,
                unknown=settings.model.preprocess.unknown,
            )
        with step("gate", on_step):
            champion = find_champion(settings, dataset, rows) if register else NO_CHAMPION
            gate = run_gate(
                candidate.runtime,
                scores.metrics,
                rows.x_test,
                settings.gate,
                champion_accuracy=champion.accuracy,
                champion_version=champion.version,
                seed=settings.seed,
            )
        with step("track", on_step):
            fitted = fitted_parameters(model)
            params = run_params(settings, dataset)
            tags = run_tags(data, gate)
            drawing = write_artifacts(workdir, data, scores, gate, fitted)
            with tracked_run(
                settings, data, params=params, metrics=scores.metrics, tags=tags, run_name=run_name
            ) as run_id:
                with step("snapshot", None):
                    record_snapshot(settings, dataset, run_id)
                log_artifacts(workdir, candidate.bundle, drawing)
                model_uri = (
                    log_model(model, rows, dataset.features) if gate.passed and register else ""
                )
        result = TrainResult(
            metrics=scores.metrics,
            gate=gate,
            run_id=run_id,
            train_key=data.key,
            data_sha256=data.sha256,
            params=params,
            fitted=fitted,
        )
        if export_dir is not None:
            with step("export", None):
                result.exported = export_files(
                    export_dir, workdir, candidate.bundle, scores.metrics
                )
        if not gate.passed:
            raise GateFailedError(f"quality gate failed, nothing registered: {gate.reason()}")
        if register:
            with step("register", on_step):
                signature = _sign(signer, candidate.bundle, candidate.digest)
                result.signed_by = signature.key_id if signature is not None else ""
                result.version, result.alias = register_model(
                    settings,
                    data,
                    model_uri=model_uri,
                    run_id=run_id,
                    digest=candidate.digest,
                    accuracy=scores.metrics["accuracy"],
                    champion_version=champion.version,
                    signature=signature,
                )
        return result


def _sign(signer: Signer | None, bundle: Path, digest: str) -> Signature | None:
    """The signature of the bundle's manifest: the very bytes whose sha256 is registered."""
    if signer is None:
        return None
    manifest = bundle / MANIFEST
    data = manifest.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:  # never sign what does not get registered
        raise IntegrityError(f"{manifest} changed after it was compiled; train again")
    return signer.sign(data)


def _unchanged(settings: Settings, version: str, run_id: str) -> TrainResult:
    """The result of `--skip-if-unchanged` when ``version`` was trained from the same data
    and config: its run's metrics and the keys it was registered with."""
    run = get_run(settings, run_id)
    return TrainResult(
        metrics=run.metrics,
        gate=GateResult([]),
        run_id=run_id,
        version=version,
        skipped=True,
        train_key=run.tags.get("petalops.train_key", ""),
        data_sha256=run.tags.get("petalops.data_sha256", ""),
    )
