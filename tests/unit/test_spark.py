"""`petalops.spark` on a real Spark (local[2]) against the local path on the same inputs.

One SparkSession serves the whole module (a JVM start costs ~10 s); inputs stay small.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petalops.batch import score_file
from petalops.config import Settings
from petalops.data.load import IRIS_CLASSES, IRIS_FEATURES, iris_frame
from petalops.errors import ConfigError, InputError, IntegrityError
from petalops.registry import load_runtime

spark_module = pytest.importorskip("pyspark", reason="the spark extra is not installed")

from petalops import spark as ps  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PROBAS = [f"proba_{c}" for c in IRIS_CLASSES]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    session = ps.session(
        "local[2]",
        {
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            # Small inputs still spread over several Arrow batches and tasks.
            "spark.sql.execution.arrow.maxRecordsPerBatch": "1000",
            "spark.sql.files.maxPartitionBytes": "64k",
        },
        app_name="petalops tests",
    )
    yield session
    session.stop()


def _iris_like(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = iris_frame()[IRIS_FEATURES].to_numpy()
    frame = pd.DataFrame(
        base[rng.integers(0, len(base), n)] + rng.normal(0, 0.1, (n, 4)), columns=IRIS_FEATURES
    )
    frame.insert(0, "id", np.arange(seed * 1_000_000, seed * 1_000_000 + n))
    return frame


def _local(
    settings: Settings, sources: list[Path], tmp_path: Path, **kwargs: object
) -> pd.DataFrame:
    """The local engine's answer for the same files, in the same columns."""
    runtime = load_runtime(settings, kwargs.pop("model", None))  # type: ignore[arg-type]
    parts = []
    for i, source in enumerate(sources):
        target = tmp_path / f"local-{i}.parquet"
        score_file(runtime, source, target, batch_rows=1000, **kwargs)  # type: ignore[arg-type]
        parts.append(pd.read_parquet(target))
    frame = pd.concat(parts, ignore_index=True)
    frame["prediction"] = frame["prediction"].astype(str)
    return frame.sort_values("id", ignore_index=True)


def _spark_output(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    frame["prediction"] = frame["prediction"].astype(str)
    return frame.sort_values("id", ignore_index=True)


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    assert len(got) == len(expected)
    assert got["id"].tolist() == expected["id"].tolist()
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    assert got["prediction_index"].tolist() == expected["prediction_index"].tolist()
    for column in columns:
        np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy())


def test_multi_file_input_gives_the_local_answers(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    inputs = tmp_path / "in"
    inputs.mkdir()
    sources = []
    for i in range(3):
        sources.append(inputs / f"part-{i}.parquet")
        _iris_like(3000 + 500 * i, i + 1).to_parquet(sources[-1])
    out = tmp_path / "out"
    stats = ps.score_path(
        spark, trained_settings, str(inputs), str(out), with_proba=True, keep=["id"]
    )
    assert stats.rows == 10_500
    assert stats.partition_by == ()
    got = _spark_output(out)
    assert list(got.columns) == ["id", "prediction", "prediction_index", *PROBAS]
    expected = _local(trained_settings, sources, tmp_path, with_proba=True, keep=["id"])
    _assert_same(got, expected, PROBAS)
    assert (out / "_SUCCESS").is_file()


def test_iris_csv_through_a_glob_and_the_onnx_runtime(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A non-linear model runs in ONNX Runtime on the executors, as in the server; CSV columns
    are read as text."""
    from petalops.pipeline.run import train

    bayes = Settings(
        home=trained_settings.home_dir,
        model={"class": "sklearn.naive_bayes.GaussianNB", "params": {}},
        gate={"max_regression": 1.0, "max_flip_rate": 1.0},  # any non-linear model will do
    )  # type: ignore[arg-type]
    version = train(bayes).version
    assert load_runtime(trained_settings, f"iris/{version}").manifest.kind == "onnx"
    frame = iris_frame().drop(columns=["species"])
    frame.insert(0, "id", range(len(frame)))
    sources = [tmp_path / "iris-a.csv", tmp_path / "iris-b.csv"]
    frame.iloc[:70].to_csv(sources[0], index=False)
    frame.iloc[70:].to_csv(sources[1], index=False)
    out = tmp_path / "out"
    ps.score_path(
        spark,
        trained_settings,
        str(tmp_path / "iris-*.csv"),
        str(out),
        model=f"iris/{version}",
        with_proba=True,
        keep=["id"],
    )
    expected = _local(
        trained_settings, sources, tmp_path, model=f"iris/{version}", with_proba=True, keep=["id"]
    )
    # CSV columns are kept as text, like the local path does.
    got, expected = (
        f.assign(id=f["id"].astype(int)).sort_values("id", ignore_index=True)
        for f in (_spark_output(out), expected)
    )
    _assert_same(got, expected, PROBAS)


def test_hive_partitioned_input_is_written_the_same_way(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    inputs = tmp_path / "in"
    days = ["2024-05-01", "2024-05-02"]
    for i, day in enumerate(days):
        (inputs / f"day={day}").mkdir(parents=True)
        _iris_like(1500, i + 1).to_parquet(inputs / f"day={day}" / "part-0.parquet")
    out = tmp_path / "out"
    stats = ps.score_path(spark, trained_settings, str(inputs), str(out), keep=["id"])
    assert stats.partition_by == ("day",)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [f"day={d}" for d in days]
    for i, day in enumerate(days):
        part = pd.read_parquet(out / f"day={day}")
        assert sorted(part["id"]) == list(range((i + 1) * 1_000_000, (i + 1) * 1_000_000 + 1500))
        assert list(part.columns) == ["id", "prediction", "prediction_index"]


def test_predict_udf_gives_the_local_answers(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "in.parquet"
    _iris_like(4000, 5).to_parquet(source)
    expected = _local(trained_settings, [source], tmp_path, with_proba=True, keep=["id"])
    df = spark.read.parquet(str(source))

    udf = ps.predict_udf(spark, "models:/iris@champion", settings=trained_settings)
    assert udf.features == IRIS_FEATURES
    named = df.withColumn("prediction", udf(*udf.features)).select("id", "prediction")
    got = named.toPandas().sort_values("id", ignore_index=True)
    assert got["prediction"].tolist() == expected["prediction"].tolist()

    index = ps.predict_udf(spark, "iris@champion", result="index", settings=trained_settings)
    proba = ps.predict_udf(spark, "iris/1", result="proba", settings=trained_settings)
    both = df.select("id", index(*[df[c] for c in IRIS_FEATURES]).alias("i"), proba().alias("p"))
    got = both.select("id", "i", "p.*").toPandas().sort_values("id", ignore_index=True)
    assert got["i"].tolist() == expected["prediction_index"].tolist()
    np.testing.assert_array_equal(got[PROBAS].to_numpy(), expected[PROBAS].to_numpy())


def test_predict_udf_checks_its_arguments(spark, trained_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    udf = ps.predict_udf(spark, "iris@champion", settings=trained_settings)
    with pytest.raises(InputError, match=r"takes 4 columns \(sepal_length, .*\), got 2"):
        udf("sepal_length", "sepal_width")
    with pytest.raises(InputError, match="result='label' is not one of"):
        ps.predict_udf(spark, "iris@champion", result="label", settings=trained_settings)  # type: ignore[arg-type]


def test_a_bundle_modified_after_the_driver_checked_it_fails_on_the_executor(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "in.parquet"
    _iris_like(500, 6).to_parquet(source)
    out = tmp_path / "out"
    job = ps.SparkJob(trained_settings, str(source), str(out))
    # What an executor receives is changed after the driver verified it (a damaged copy
    # on the way or on the executor's disk); its own name keeps it out of every cache.
    tampered = tmp_path / "petalops-iris-tampered"
    shutil.copytree(job.bundle.staged, tampered)
    linear = tampered / "linear.json"
    linear.write_text(linear.read_text().replace("[", "[ ", 1))
    job.bundle = ps.Bundle(
        shipped=dataclasses.replace(job.bundle.shipped, file_name=tampered.name), staged=tampered
    )
    with pytest.raises(IntegrityError) as info:
        job.run(spark)
    message = info.value.message
    assert message.startswith("the bundle of iris v1 failed verification on executor ")
    assert "checksum mismatch for" in message and "linear.json" in message
    assert "\n" not in message
    assert not out.exists()


def test_a_bad_value_on_an_executor_is_one_line_and_leaves_nothing(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    frame = iris_frame().drop(columns=["species"]).astype(object)
    frame.loc[42, "sepal_width"] = "wide"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "out"
    with pytest.raises(InputError) as info:
        ps.score_path(spark, trained_settings, str(source), str(out))
    assert info.value.message == f"{source} (partition 0): column 'sepal_width' is not numeric"
    assert not out.exists()


def test_unknown_columns_name_what_the_input_has(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "in.parquet"
    _iris_like(10, 7).drop(columns=["petal_width"]).to_parquet(source)
    columns = ["id", *IRIS_FEATURES[:3]]
    with pytest.raises(InputError) as info:
        ps.score_path(spark, trained_settings, str(source), str(tmp_path / "out"))
    assert info.value.message == (
        f"--input {source} lacks column(s) ['petal_width']; it has {columns}"
    )
    _iris_like(10, 7).to_parquet(source)
    with pytest.raises(InputError) as info:
        ps.score_path(spark, trained_settings, str(source), str(tmp_path / "out"), keep=["sku"])
    assert info.value.message == (
        f"--keep 'sku': --input {source} has no such column; it has {['id', *IRIS_FEATURES]}"
    )
    assert not (tmp_path / "out").exists()


def test_mixed_type_model_gives_the_local_answers(
    spark, trained_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Issue 15, item 3: numeric, categorical and boolean features score on Spark as they
    do locally."""
    from petalops.pipeline.run import train

    frame = iris_frame()
    rng = np.random.default_rng(8)
    frame["soil"] = rng.choice(["clay", "sand", "loam"], len(frame))
    frame["irrigated"] = rng.random(len(frame)) < 0.5
    data = tmp_path / "mixed.csv"
    frame.to_csv(data, index=False)
    features = [*IRIS_FEATURES, "soil", "irrigated"]
    mixed = Settings(home=trained_settings.home_dir, data={"features": features})  # type: ignore[arg-type]
    version = train(mixed, data).version
    assert load_runtime(trained_settings, f"iris/{version}").features == features
    source = tmp_path / "score.parquet"
    scored = frame.drop(columns=["species"])
    scored.insert(0, "id", range(len(scored)))
    scored.to_parquet(source)
    out = tmp_path / "out"
    ps.score_path(
        spark, trained_settings, str(source), str(out), model=f"iris/{version}", keep=["id"]
    )
    expected = _local(trained_settings, [source], tmp_path, model=f"iris/{version}", keep=["id"])
    _assert_same(_spark_output(out), expected, [])


# ---- checks that need no Spark --------------------------------------------------------


def test_missing_java_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"Spark needs Java 17 or newer and no `java` is on PATH"):
        ps.check_java()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(ConfigError, match=r"JAVA_HOME=.*jdk has no bin/java"):
        ps.check_java()


def test_paths_are_checked_before_spark_starts(tmp_path: Path) -> None:
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.csv").write_text("x\n1\n")
    (tmp_path / "mixed" / "b.parquet").write_bytes(b"")
    (tmp_path / "done").mkdir()
    cases = {
        (str(tmp_path / "nope"), str(tmp_path / "o")): "does not exist",
        (str(tmp_path / "mixed"), str(tmp_path / "o")): "holds both CSV and Parquet files",
        (str(tmp_path / "mixed" / "a.csv"), str(tmp_path / "o.csv")): "writes a Parquet directory",
        (str(tmp_path / "mixed" / "a.csv"), str(tmp_path / "x" / "o")): "x does not exist",
        (str(tmp_path / "mixed" / "a.csv"), str(tmp_path / "done")): "already exists",
    }
    for (source, destination), message in cases.items():
        with pytest.raises(InputError, match=message):
            ps.check_paths(source, destination)
    ps.check_paths(f"{tmp_path}/mixed/*.csv", str(tmp_path / "o"))
    ps.check_paths("s3a://bucket/in/", "s3a://bucket/out/")


def test_input_format_and_model_reference() -> None:
    assert ps.input_format("s3a://b/in/day=1/part.csv") == "csv"
    assert ps.input_format("hdfs:///data/x.parquet") == "parquet"
    assert ps.input_format("s3a://b/in/") == "parquet"
    assert ps.model_reference("models:/iris@champion") == "iris@champion"
    assert ps.model_reference("models:/iris/3") == "iris/3"
    assert ps.model_reference("iris@challenger") == "iris@challenger"
