"""One typed settings object: built-in Iris defaults < petalops.yaml < PETALOPS_* env < --set."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from petalops.errors import ConfigError
from petalops.rollout.strategies import registry as rollout_strategies

IRIS_SOURCE = "sklearn:iris"
DEFAULT_CONFIG_FILE = "petalops.yaml"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
DEFAULT_CLASS = "sklearn.linear_model.LogisticRegression"
# The parameters a model class starts from when model.params is not given: its own defaults,
# except for the default classifier (lbfgs needs more than 100 iterations on unscaled Iris).
# LightGBM prints a warning per tree on small data sets unless told to be quiet.
CLASS_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    DEFAULT_CLASS: {"max_iter": 200},
    "lightgbm.LGBMClassifier": {"verbose": -1},
}
ColumnKind = Literal["auto", "numeric", "categorical", "boolean"]
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("petalops_config_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ColumnSettings(_Section):
    """How one feature column is read: its kind (inferred by default) and whether it may be
    missing (in training data and in requests)."""

    # auto: numbers are numeric, true/false columns boolean, anything else categorical.
    # Declare numbers that are codes (a zip code, a store id) as categorical.
    kind: ColumnKind = Field("auto", examples=["categorical"])
    allow_missing: bool = Field(True, examples=[False])


class DataSettings(_Section):
    source: str = Field(IRIS_SOURCE, examples=["sklearn:iris", "data/iris.csv"])
    target: str = Field("species", examples=["species"])
    # The Iris project is the default; set these to null to infer them from a file's columns.
    features: list[str] | None = Field(
        default_factory=lambda: list(IRIS_FEATURES), examples=[["sepal_length", "sepal_width"]]
    )
    classes: list[str] | None = Field(
        default_factory=lambda: list(IRIS_CLASSES), examples=[["setosa", "versicolor", "virginica"]]
    )
    min_rows_per_class: int = Field(5, ge=2, examples=[5])
    # Per feature column: its kind and whether it may be missing (the target never may).
    columns: dict[str, ColumnSettings] = Field(
        default_factory=dict, examples=[{"island": {"kind": "categorical"}}]
    )

    @model_validator(mode="before")
    @classmethod
    def _follow_the_source(cls, data: Any) -> Any:
        # The Iris feature and class lists are the defaults of the Iris source only: a file
        # of your own infers them unless they are given.
        if isinstance(data, dict) and data.get("source", IRIS_SOURCE) != IRIS_SOURCE:
            data = {"features": None, "classes": None, **data}
        return data


class PreprocessSettings(_Section):
    """The preprocessing steps of the Pipeline (scikit-learn's SimpleImputer, OneHotEncoder /
    OrdinalEncoder and StandardScaler in a ColumnTransformer)."""

    numeric_impute: Literal["median", "mean", "most_frequent"] = Field(
        "median", examples=["median"]
    )
    categorical_impute: Literal["most_frequent", "constant"] = Field(
        "most_frequent", examples=["most_frequent"]
    )
    encoding: Literal["onehot", "ordinal"] = Field("onehot", examples=["onehot"])
    # A category never seen in training: ignore (all-zero one-hot, or -1 ordinal), infrequent
    # (it joins the categories seen fewer than min_frequency times), or error (refused).
    unknown: Literal["ignore", "infrequent", "error"] = Field("ignore", examples=["ignore"])
    min_frequency: int = Field(5, ge=1, examples=[5])


class ModelSettings(_Section):
    class_path: str = Field(
        DEFAULT_CLASS,
        alias="class",
        examples=["sklearn.linear_model.LogisticRegression"],
    )
    # Without params a class starts from its own defaults (CLASS_DEFAULT_PARAMS).
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"max_iter": 200, "C": 1.0}])
    scale: bool = Field(False, examples=[True])
    # Class probabilities for a classifier that has none (LinearSVC, RidgeClassifier...), or
    # better-calibrated ones: the classifier wrapped in scikit-learn's CalibratedClassifierCV
    # with this method (5-fold). "off" takes the classifier's own predict_proba. Not
    # "isotonic": its ONNX graph disagreed with scikit-learn on 5 of 150 Iris rows
    # (LinearSVC, C=10), and compile refuses such a bundle.
    calibrated: Literal["off", "sigmoid"] = Field("off", examples=["sigmoid"])
    preprocess: PreprocessSettings = Field(default_factory=PreprocessSettings)

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _class_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" not in data:
            class_path = data.get("class", data.get("class_path", DEFAULT_CLASS))
            data = {**data, "params": dict(CLASS_DEFAULT_PARAMS.get(str(class_path), {}))}
        return data

    @field_validator("class_path")
    @classmethod
    def _dotted(cls, value: str) -> str:
        module, _, name = value.rpartition(".")
        if not module or not name:
            raise ValueError("must be a dotted import path")
        return value


class SplitSettings(_Section):
    test_size: float = Field(0.2, gt=0.0, lt=1.0, examples=[0.2])
    stratify: bool = True


class KnownExample(_Section):
    # In feature order, or by feature name; strings for categories, null for missing.
    features: list[float | bool | str | None] | dict[str, float | bool | str | None]
    label: str | int


def _iris_known_examples() -> list[KnownExample]:
    # One textbook flower per species (rows 1, 51 and 101 of the Iris set).
    return [
        KnownExample(features=[5.1, 3.5, 1.4, 0.2], label="setosa"),
        KnownExample(features=[7.0, 3.2, 4.7, 1.4], label="versicolor"),
        KnownExample(features=[6.3, 3.3, 6.0, 2.5], label="virginica"),
    ]


class GateSettings(_Section):
    min_accuracy: float = Field(0.9, ge=0.0, le=1.0, examples=[0.9])
    max_regression: float = Field(0.01, ge=0.0, le=1.0, examples=[0.01])
    min_class_recall: float = Field(0.5, ge=0.0, le=1.0, examples=[0.8])
    # The default (three textbook flowers) applies to the Iris features only.
    known_examples: list[KnownExample] = Field(default_factory=_iris_known_examples)
    invariance: bool = True
    scale_tolerance: float = Field(0.01, ge=0.0, le=0.5, examples=[0.01])
    max_flip_rate: float = Field(0.05, ge=0.0, le=1.0, examples=[0.05])
    # Only rows the model answers with at least this probability are judged by
    # scale_tolerance: an unsure row sits by a class boundary and may move (docs/experiments.md).
    flip_confidence: float = Field(0.8, ge=0.0, le=1.0, examples=[0.8])


class ServeSettings(_Section):
    host: str = Field("127.0.0.1", examples=["127.0.0.1"])
    port: int = Field(8000, ge=1, le=65535, examples=[8000])
    workers: int = Field(1, ge=1, le=64, examples=[2])
    # How `serve --workers N` (N > 1) starts its workers: fork them from the parent once it
    # has imported petalops and opened the model (ready sooner, model memory shared), or
    # spawn fresh interpreters that import and load everything themselves (docs/scaling.md).
    worker_start: Literal["fork", "spawn"] = Field("fork", examples=["fork"])
    # A forked worker stops accepting while one more connection would put it more than 2
    # over its share of all the workers' connections, so a burst of keep-alive connections
    # splits evenly instead of by which worker woke first (serving/balance.py,
    # docs/serving.md "Connections across workers").
    balance_connections: bool = True
    model: str = Field("", examples=["iris@champion", "iris/3"])
    max_batch: int = Field(1000, ge=1, examples=[1000])
    max_body_bytes: int = Field(1_048_576, ge=1024, examples=[1048576])
    log_requests: bool = True
    # Test-only: versions tagged petalops.test_fault misbehave on purpose (serving/faults.py).
    test_faults: bool = False
    log_predictions: bool = True
    # Per-feature data-quality counters of served values (petalops_input_values_total:
    # missing, out of range, unseen category, refused at the edge; serving/inputquality.py).
    quality_counters: bool = True
    shutdown_seconds: int = Field(10, ge=0, examples=[10])
    # Slow and abusive clients (serving/protocol.py): a connection is closed when its header
    # block, or answered 408 when its body, is not in within these; idle keep-alive
    # connections close after keep_alive_seconds. Past max_connections (per worker) or
    # max_in_flight requests (per worker) a request is answered 503 + Retry-After.
    header_timeout_seconds: float = Field(10.0, gt=0, examples=[10])
    body_timeout_seconds: float = Field(30.0, gt=0, examples=[30])
    keep_alive_seconds: float = Field(5.0, gt=0, examples=[5])
    max_connections: int = Field(1000, ge=1, examples=[1000])
    max_in_flight: int = Field(256, ge=1, examples=[256])
    # None: no deadline. Else a request still running after it is answered 503.
    request_deadline_seconds: float | None = Field(None, gt=0, examples=[2.0])
    # Set it on any non-local bind: POST /v1/feedback then needs "Authorization: Bearer
    # <token>" (or the admin token), so a client that can reach the port cannot relabel.
    feedback_token: str = Field("", examples=["a-long-random-secret"])
    # HTTPS by uvicorn itself (both or neither); behind nginx or an ingress that terminates
    # TLS, leave them unset.
    tls_cert: Path | None = Field(None, examples=["/etc/petalops/tls/cert.pem"])
    tls_key: Path | None = Field(None, examples=["/etc/petalops/tls/key.pem"])

    @model_validator(mode="after")
    def _tls_pair(self) -> ServeSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "serve.tls_cert and serve.tls_key go together: give both (--tls-cert F "
                "--tls-key F) or neither"
            )
        return self


class MonitorSettings(_Section):
    db_url: str = Field("", examples=["sqlite:///.petalops/monitor.db"])
    queue_size: int = Field(100_000, ge=100, examples=[100000])
    flush_rows: int = Field(500, ge=1, examples=[500])
    # How often one serving worker recomputes the drift / live-quality gauges (0: never).
    gauge_seconds: float = Field(60.0, ge=0, examples=[60])
    flush_seconds: float = Field(0.5, gt=0, examples=[0.5])
    retention_days: float = Field(30.0, gt=0, examples=[30])
    drift_p_value: float = Field(0.01, gt=0, lt=1, examples=[0.01])
    drift_psi: float = Field(0.2, gt=0, examples=[0.2])
    drift_min_rows: int = Field(50, ge=5, examples=[50])
    drift_share: float = Field(0.5, gt=0, le=1, examples=[0.5])
    # A feature drifts only if the shift is significant AND at least this large (KS statistic),
    # or its PSI crosses drift_psi: tiny noise on a large window is not drift.
    drift_min_effect: float = Field(0.1, gt=0, le=1, examples=[0.1])
    drift_window: int = Field(1000, ge=5, examples=[1000])
    accuracy_window: int = Field(500, ge=10, examples=[500])
    min_accuracy: float = Field(0.85, ge=0, le=1, examples=[0.85])
    retrain: bool = False
    retrain_cooldown_seconds: float = Field(3600.0, ge=0, examples=[3600])
    # A registered rollout strategy, or "none": the retrained challenger waits for a person.
    rollout_strategy: str = Field("shadow-canary", examples=["shadow-canary"])
    webhook_url: str = Field("", examples=["http://127.0.0.1:9000/alerts"])
    watch_seconds: float = Field(30.0, gt=0, examples=[30])
    alert_window_seconds: float = Field(300.0, gt=0, examples=[300])
    alert_error_rate: float = Field(0.05, gt=0, le=1, examples=[0.05])
    alert_p99_ms: float = Field(250.0, gt=0, examples=[250])
    # Label-free quality (monitoring/estimate.py, dataquality.py, skew.py; docs/monitoring.md).
    estimate_min_rows: int = Field(50, ge=1, examples=[50])
    quality_window: int = Field(500, ge=5, examples=[500])
    quality_max_missing: float = Field(0.05, ge=0, le=1, examples=[0.05])
    quality_max_out_of_range: float = Field(0.05, ge=0, le=1, examples=[0.05])
    # A value counts as out of range beyond the training min/max by this share of the range.
    quality_range_tolerance: float = Field(0.1, ge=0, examples=[0.1])
    quality_max_unseen: float = Field(0.01, ge=0, le=1, examples=[0.01])
    quality_max_refused: float = Field(0.01, ge=0, le=1, examples=[0.01])
    # A column whose most common value covers this share of the window is near-constant.
    quality_constant_share: float = Field(0.98, gt=0, le=1, examples=[0.98])
    skew_rows: int = Field(500, ge=5, examples=[500])
    # What drift compares traffic with: the version's training profile, or its first
    # skew_rows served rows (monitoring/firstwindow.py), so drift means "moved since it began".
    drift_reference: Literal["training", "first-window"] = Field(
        "training", examples=["first-window"]
    )

    @field_validator("rollout_strategy")
    @classmethod
    def _known_or_none(cls, value: str) -> str:
        return value if value == "none" else _registered_strategy(value, "or none")


class SecuritySettings(_Section):
    """Scoped API keys (`petalops keys`, docs/security.md)."""

    # Where the key hashes live: the monitoring database by default, or this JSON file (a
    # mounted Secret for read-only images; `petalops keys create` writes it).
    keys_file: Path | None = Field(None, examples=["/etc/petalops/keys.json"])
    # Put /metrics behind the keys of this scope ("": open, as /healthz and /readyz stay).
    metrics_scope: Literal["", "predict", "feedback", "admin"] = ""


class RolloutSettings(_Section):
    """Defaults of `petalops rollout start` and the controller (see docs/rollouts.md)."""

    strategy: str = Field("canary", examples=["canary"])
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0], examples=[[5, 50, 100]]
    )
    interval_seconds: float = Field(60.0, gt=0, examples=[60])
    max_error_rate: float = Field(0.01, ge=0, le=1, examples=[0.01])
    max_p99_ms: float | None = Field(50.0, gt=0, examples=[50])
    max_disagreement: float | None = Field(0.1, ge=0, le=1, examples=[0.1])
    min_accuracy: float | None = Field(None, ge=0, le=1, examples=[0.9])
    max_accuracy_drop: float | None = Field(0.05, ge=0, le=1, examples=[0.05])
    min_samples: int = Field(200, ge=1, examples=[200])
    min_labels: int = Field(30, ge=1, examples=[30])
    max_inconclusive: int = Field(5, ge=1, examples=[5])
    shadow_seconds: float = Field(600.0, gt=0, examples=[600])
    keep_warm_seconds: float = Field(600.0, ge=0, examples=[600])
    warm_seconds: float | None = Field(None, ge=0, examples=[11])
    tick_seconds: float = Field(1.0, gt=0, examples=[1])
    lease_seconds: float = Field(15.0, gt=0, examples=[15])
    embedded: bool = False

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered_strategy(value)


def _registered_strategy(value: str, extra: str = "") -> str:
    """``value`` if it names a registered rollout strategy (`rollout.strategies.registry`)."""
    known = rollout_strategies.names()
    if value not in known:
        raise PydanticCustomError(
            "rollout_strategy",
            "Input should be a rollout strategy: {names}",
            {"names": ", ".join(known) + (f" {extra}" if extra else "")},
        )
    return value


class TuneSettings(_Section):
    """Defaults of `petalops tune` (see docs/experiments.md)."""

    strategy: Literal["grid", "random"] = "grid"
    # model.params to search: a list of values, or for random search "loguniform(a, b)" /
    # "uniform(a, b)" / "randint(a, b)".
    params: dict[str, list[Any] | str] = Field(
        default_factory=lambda: {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},  # type: ignore[arg-type]
        examples=[{"C": [0.01, 0.1, 1, 10]}],
    )
    trials: int = Field(20, ge=1, le=10_000, examples=[20])
    cv: int = Field(5, ge=2, le=50, examples=[5])
    metric: Literal["accuracy", "f1_macro", "neg_log_loss"] = "accuracy"


class SigningSettings(_Section):
    """Signed model bundles (see README § Securing a deployment → Signed models).

    ``key_file``: the Ed25519 private key `train` (and the loop's retraining) signs each
    bundle's manifest with; set it in petalops.yaml or PETALOPS_SIGNING__KEY_FILE, never on
    a command line. ``trusted_keys``: the public keys (``.pub`` files, or directories of
    them) whose signatures `serve` and `predict` accept; once any is set, a bundle that is
    unsigned, badly signed or signed by another key is refused. Empty (the local default):
    unsigned models are served too. PETALOPS_SIGNING__TRUSTED_KEYS takes a comma-separated
    list.
    """

    key_file: Path | None = Field(None, examples=[".petalops/keys/signing.key"])
    trusted_keys: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, examples=[[".petalops/keys/signing.pub"]]
    )

    @field_validator("trusted_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # The environment holds one string: "a.pub,/etc/petalops/keys"; a JSON list works too.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return yaml.safe_load(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


class Settings(BaseSettings):
    """Every petalops setting. The Iris project is the default: no file is needed for it."""

    model_config = SettingsConfigDict(
        env_prefix="PETALOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        populate_by_name=True,
    )

    project: str = Field("iris", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", examples=["iris"])
    home: Path = Field(Path(".petalops"), examples=[".petalops"])
    mlflow_uri: str = Field("", examples=["http://127.0.0.1:5000"])
    experiment: str = Field("", examples=["iris"])
    seed: int = Field(42, examples=[42])
    admin_token: str = Field("", examples=["change-me"])
    reconcile_seconds: float = Field(5.0, gt=0, examples=[5])
    data: DataSettings = Field(default_factory=DataSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    tune: TuneSettings = Field(default_factory=TuneSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)

    @model_validator(mode="after")
    def _known_examples_follow_the_data(self) -> Settings:
        gate = self.gate
        if "known_examples" not in gate.model_fields_set and self.data.features != IRIS_FEATURES:
            gate.known_examples = []
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence, highest first: --set (init kwargs), PETALOPS_* environment, petalops.yaml.
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        config_file = _CONFIG_FILE.get()
        if config_file is not None:
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=config_file),)
        return sources

    # Derived locations: every path is absolute so that worker processes agree.
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.home_dir / "artifacts"

    @property
    def cache_dir(self) -> Path:
        return self.home_dir / "cache"

    @property
    def monitor_url(self) -> str:
        return self.monitor.db_url or f"sqlite:///{self.home_dir / 'monitor.db'}"

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.project

    @property
    def model_ref(self) -> str:
        return self.serve.model or f"{self.project}@champion"


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["model.params.C=0.5", ...]`` into a nested dict, values parsed as YAML scalars."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not KEY=VALUE; example: --set model.params.C=0.5")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_path(tree, key.strip(), value)
    return tree


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _example_for(loc: tuple[Any, ...]) -> str | None:
    model: Any = Settings
    field = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields:
            break
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            break
        model = field.annotation
    if field is not None and field.examples:
        return (
            repr(field.examples[0])
            if isinstance(field.examples[0], str)
            else str(field.examples[0])
        )
    return None


def _explain(error: ValidationError, source: str) -> ConfigError:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc) or "(root)"
    if first["type"] == "extra_forbidden":
        return ConfigError(
            f"unknown setting {key!r} in {source}; see `petalops config` for the valid keys"
        )
    example = _example_for(loc)
    hint = f"; example: {key}={example}" if example else ""
    bad = first.get("input")
    return ConfigError(f"invalid setting {key}={bad!r} in {source}: {first['msg']}{hint}")


def load_settings(
    config_file: str | Path | None = None, overrides: list[str] | None = None
) -> Settings:
    """Build the settings from the file (if any), the environment and ``--set`` overrides."""
    path = Path(config_file) if config_file else Path(DEFAULT_CONFIG_FILE)
    if config_file and not path.is_file():
        raise ConfigError(f"config file {path} does not exist; create it or drop --config")
    has_file = path.is_file()
    if has_file:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path} is not valid YAML{where}; check the indentation") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path} must be a mapping of settings, e.g. `project: iris`")
    extra = parse_overrides(overrides or [])
    token = _CONFIG_FILE.set(path.resolve() if has_file else None)
    try:
        try:
            base = Settings()
        except ValidationError as exc:
            origin = (
                f"{path} or the PETALOPS_* environment" if has_file else "PETALOPS_* environment"
            )
            raise _explain(exc, origin) from None
        if not extra:
            return base
        # --set merges into the loaded values key by key (model.params.C keeps max_iter).
        merged = _deep_merge(base.model_dump(by_alias=True, mode="json"), extra)
        model_extra = extra.get("model")
        if isinstance(model_extra, dict) and model_extra.get("class", base.model.class_path) != (
            base.model.class_path
        ):
            # Another class starts from its own defaults: the loaded params were another's.
            merged["model"]["params"] = model_extra.get("params") or dict(
                CLASS_DEFAULT_PARAMS.get(str(model_extra["class"]), {})
            )
        data_extra = extra.get("data")
        if isinstance(data_extra, dict) and data_extra.get("source", base.data.source) != (
            base.data.source
        ):
            # Another source infers its features and classes unless they are given.
            for key in ("features", "classes"):
                if key not in data_extra and key not in base.data.model_fields_set:
                    merged["data"].pop(key, None)
        gate_extra = extra.get("gate")
        if not (isinstance(gate_extra, dict) and "known_examples" in gate_extra) and (
            "known_examples" not in base.gate.model_fields_set
        ):
            merged["gate"].pop("known_examples", None)
        # merged holds the file's values already: read it again and pydantic-settings would
        # deep-merge its model.params back under another class's.
        _CONFIG_FILE.set(None)
        try:
            return Settings(**merged)
        except ValidationError as exc:
            raise _explain(exc, "--set") from None
    finally:
        _CONFIG_FILE.reset(token)
