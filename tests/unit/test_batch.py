from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tests.utils.tabular import penguins_csv, trained_bundle

from petalops.batch import score_file
from petalops.config import DataSettings, Settings
from petalops.data.load import feature_frame, load_dataset
from petalops.errors import InputError
from petalops.pipeline.compile import write_bundle
from petalops.pipeline.profile import build_profile
from petalops.runtime.model import ModelRuntime, open_bundle

DATA = load_dataset(DataSettings())


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRuntime, Pipeline]:
    path = tmp_path_factory.mktemp("bundle")
    pipe = Pipeline([("clf", LogisticRegression(max_iter=200))])
    pipe.fit(pd.DataFrame(DATA.x, columns=DATA.features), DATA.y)
    profile = build_profile(DATA.x, DATA.y, DATA.features, DATA.classes)
    digest = write_bundle(path, pipe, "iris", DATA.features, DATA.classes, profile, DATA.x)
    return open_bundle(path, "iris", "1", digest), pipe


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = DATA.x[rng.integers(0, 150, n)] + rng.normal(0, 0.05, (n, 4))
    return pd.DataFrame(x, columns=DATA.features)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize(
    ("src", "dst"), [(".parquet", ".parquet"), (".csv", ".csv"), (".csv", ".parquet")]
)
def test_streamed_scoring_matches_sklearn(runtime, tmp_path: Path, src: str, dst: str) -> None:  # type: ignore[no-untyped-def]
    rt, pipe = runtime
    frame = _frame(5000, 1)
    source = _write(frame, tmp_path / f"in{src}")
    target = tmp_path / f"out{dst}"
    stats = score_file(rt, source, target, batch_rows=1000)
    assert stats.rows == 5000
    got = _read(target)
    expected = pipe.predict(frame)
    assert list(got.columns) == ["prediction", "prediction_index"]
    assert got["prediction_index"].tolist() == expected.tolist()
    assert got["prediction"].astype(str).tolist() == [DATA.classes[i] for i in expected]


def test_bad_file_leaves_no_partial_output(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _ = runtime
    frame = pd.DataFrame(DATA.x, columns=DATA.features)
    frame.loc[1200 % 150, "petal_width"] = np.nan
    source = tmp_path / "in.parquet"
    pd.concat([frame] * 10).to_parquet(source)
    target = tmp_path / "out.parquet"
    with pytest.raises(InputError, match="'petal_width' has a missing value"):
        score_file(rt, source, target, batch_rows=1000)
    assert list(tmp_path.iterdir()) == [source]


def test_missing_column(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _ = runtime
    source = tmp_path / "in.parquet"
    pd.DataFrame(DATA.x[:, :3], columns=DATA.features[:3]).to_parquet(source)
    with pytest.raises(InputError, match=r"lacks column\(s\) \['petal_width'\]"):
        score_file(rt, source, tmp_path / "out.parquet")


@pytest.mark.parametrize("with_proba", [False, True])
def test_chunked_scoring_across_batches_matches_sklearn(
    runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_proba: bool
) -> None:  # type: ignore[no-untyped-def]
    """Chunks smaller than a batch, batches not a multiple of the chunk: every row once, in order."""
    import petalops.batch

    monkeypatch.setattr(petalops.batch, "CHUNK_ROWS", 7)
    rt, pipe = runtime
    frame = _frame(1003, 2)
    source = _write(frame, tmp_path / "in.parquet")
    target = tmp_path / "out.parquet"
    assert score_file(rt, source, target, batch_rows=100, with_proba=with_proba).rows == 1003
    got = pd.read_parquet(target)
    assert got["prediction_index"].tolist() == pipe.predict(frame).tolist()
    if with_proba:
        expected = pipe.predict_proba(frame)
        columns = [f"proba_{c}" for c in rt.classes]
        assert list(got.columns) == ["prediction", "prediction_index", *columns]
        np.testing.assert_allclose(got[columns].to_numpy(), expected, rtol=1e-9, atol=1e-12)


def test_infinity_in_a_later_chunk_names_its_row(
    runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import petalops.batch

    monkeypatch.setattr(petalops.batch, "CHUNK_ROWS", 16)
    rt, _ = runtime
    frame = pd.DataFrame(np.tile(DATA.x, (4, 1)), columns=DATA.features)
    frame.loc[437, "sepal_width"] = np.inf  # batch 2 (rows 400-599), chunk 3 of it
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    target = tmp_path / "out.parquet"
    with pytest.raises(InputError, match="row 438 has NaN or infinity"):
        score_file(rt, source, target, batch_rows=200)
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.parametrize(("src", "dst"), [(".parquet", ".csv"), (".csv", ".parquet")])
def test_kept_columns_come_first_and_unchanged(runtime, tmp_path: Path, src: str, dst: str) -> None:  # type: ignore[no-untyped-def]
    rt, pipe = runtime
    frame = _frame(2500, 3)
    frame.insert(0, "order_id", [f"A-{i:05d}" for i in range(len(frame))])
    frame["store"] = np.arange(len(frame)) % 7
    source = _write(frame, tmp_path / f"in{src}")
    target = tmp_path / f"out{dst}"
    score_file(
        rt, source, target, batch_rows=1000, with_proba=True, keep=["order_id", "store", "store"]
    )
    got = _read(target)
    probas = [f"proba_{c}" for c in rt.classes]
    assert list(got.columns) == ["order_id", "store", "prediction", "prediction_index", *probas]
    assert got["order_id"].tolist() == frame["order_id"].tolist()
    assert got["store"].astype(int).tolist() == frame["store"].tolist()
    features = frame[DATA.features]
    assert got["prediction_index"].tolist() == pipe.predict(features).tolist()
    np.testing.assert_allclose(got[probas].to_numpy(), pipe.predict_proba(features), rtol=1e-9)


def test_kept_csv_column_keeps_its_text(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An id column of digits with leading zeros stays as written, not read as a number."""
    rt, _ = runtime
    frame = _frame(3, 4)
    frame.insert(0, "id", ["007", "010", "123"])
    source = _write(frame, tmp_path / "in.csv")
    score_file(rt, source, tmp_path / "out.parquet", keep=["id"])
    assert pq.read_table(tmp_path / "out.parquet").column("id").to_pylist() == ["007", "010", "123"]


def test_csv_output_quotes_only_what_needs_it(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Header unquoted; a batch is quoted only when one of its values needs quotes."""
    rt, pipe = runtime
    frame = _frame(4, 5)
    frame.insert(0, "name", ["plain", "plain too", "with, comma", 'with "quote"'])
    source = _write(frame, tmp_path / "in.parquet")
    target = tmp_path / "out.csv"
    score_file(rt, source, target, keep=["name"], batch_rows=2)
    lines = target.read_text().splitlines()
    labels = [DATA.classes[i] for i in pipe.predict(frame[DATA.features])]
    index = [DATA.classes.index(label) for label in labels]
    assert lines[:3] == [
        "name,prediction,prediction_index",
        f"plain,{labels[0]},{index[0]}",
        f"plain too,{labels[1]},{index[1]}",
    ]
    assert lines[3] == f'"with, comma","{labels[2]}",{index[2]}'
    got = pd.read_csv(target)
    assert got["name"].tolist() == frame["name"].tolist()
    assert got["prediction"].tolist() == labels


def test_unknown_kept_column_names_the_columns(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _ = runtime
    for suffix in (".parquet", ".csv"):
        source = _write(_frame(10, 6), tmp_path / f"in{suffix}")
        target = tmp_path / "out.parquet"
        with pytest.raises(InputError) as info:
            score_file(rt, source, target, keep=["id"])
        assert info.value.message == (
            f"--keep 'id': {source} has no such column; it has {DATA.features}"
        )
        assert not target.exists()


def test_kept_column_cannot_shadow_an_output_column(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _ = runtime
    frame = _frame(10, 7)
    frame["prediction"] = 1
    source = _write(frame, tmp_path / "in.parquet")
    with pytest.raises(InputError, match="--keep 'prediction': the output already has"):
        score_file(rt, source, tmp_path / "out.parquet", keep=["prediction"])


def test_missing_output_directory_is_an_error_and_not_created(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _ = runtime
    source = _write(_frame(10, 8), tmp_path / "in.parquet")
    target = tmp_path / "nope" / "out.parquet"
    with pytest.raises(InputError, match=r"the directory .*nope does not exist"):
        score_file(rt, source, target)
    assert not target.parent.exists()


@pytest.mark.parametrize("dst", [".parquet", ".csv"])
def test_empty_input_gives_an_empty_output_with_the_columns(
    runtime, tmp_path: Path, dst: str
) -> None:  # type: ignore[no-untyped-def]
    rt, _ = runtime
    source = _write(_frame(0, 9), tmp_path / "in.parquet")
    target = tmp_path / f"out{dst}"
    assert score_file(rt, source, target, with_proba=True).rows == 0
    got = _read(target)
    assert len(got) == 0
    assert list(got.columns) == ["prediction", "prediction_index"] + [
        f"proba_{c}" for c in rt.classes
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_mixed_type_model_scores_files_like_its_pipeline(tmp_path: Path, suffix: str) -> None:
    path = penguins_csv(tmp_path)
    settings = Settings(  # type: ignore[arg-type]
        data={"source": str(path), "target": "species"},
        model={"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 20}},
    )
    directory, digest, pipeline, dataset = trained_bundle(tmp_path / "bundle", settings, path)
    runtime = open_bundle(directory, "penguins", "1", digest)
    source = path if suffix == ".csv" else tmp_path / "penguins.parquet"
    if suffix == ".parquet":
        pd.read_csv(path).to_parquet(source)
    score_file(runtime, source, tmp_path / f"out{suffix}", with_proba=True)
    out = tmp_path / f"out{suffix}"
    got = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    expected = pipeline.predict_proba(feature_frame(dataset.x, dataset.schema))
    assert got["prediction_index"].tolist() == expected.argmax(axis=1).tolist()
    assert got["prediction"].isin(dataset.classes).all()
    bad = pd.read_csv(path)
    bad["bill_length_mm"] = bad["bill_length_mm"].astype(object)
    bad.loc[5, "bill_length_mm"] = "long"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(
        InputError, match="column 'bill_length_mm' at row 6 is 'long', not a number"
    ):
        score_file(runtime, tmp_path / "bad.csv", tmp_path / "bad-out.csv")


def _canonical(values: list[object], kind: str, allow_missing: bool = True) -> list[object]:
    import pyarrow as pa

    from petalops.batch import typed_column
    from petalops.data.schema import ColumnSchema

    column = ColumnSchema("f", kind, allow_missing)  # type: ignore[arg-type]
    out = typed_column(pa.array(values), column, "in.csv", 10)
    return [None if isinstance(v, float) and v != v else v for v in out.tolist()]


def test_typed_columns_parse_every_kind_as_the_rows_do() -> None:
    assert _canonical(["Dream", None, ""], "categorical") == ["Dream", "", ""]
    assert _canonical([3, None], "categorical") == ["3", ""]  # a number declared categorical
    assert _canonical([" Yes", "no", "", "1", None], "boolean") == [1.0, 0.0, None, 1.0, None]
    assert _canonical([True, None, False], "boolean") == [1.0, None, 0.0]
    assert _canonical([1, 0], "boolean") == [1.0, 0.0]
    assert _canonical(["1.5", "", "-2"], "numeric") == [1.5, None, -2.0]
    assert _canonical([1.5, None], "numeric") == [1.5, None]


@pytest.mark.parametrize(
    ("values", "kind", "allow_missing", "says"),
    [
        (["yes", "maybe"], "boolean", True, "column 'f' at row 12 is 'maybe', not true/false"),
        ([0, 2], "boolean", True, "column 'f' at row 12 is 2, not true/false"),
        (["1", "x"], "numeric", True, "column 'f' at row 12 is 'x', not a number"),
        (["1", "inf"], "numeric", True, "column 'f' at row 12 is infinite"),
        ([1.0, float("nan")], "numeric", False, "row 12 is missing; the model was trained with"),
        (["a", ""], "categorical", False, "data.columns.f.allow_missing=false"),
    ],
)
def test_a_bad_value_in_a_typed_column_names_its_row(
    values: list[object], kind: str, allow_missing: bool, says: str
) -> None:
    with pytest.raises(InputError, match=says):
        _canonical(values, kind, allow_missing)


@pytest.mark.parametrize("proba", [False, True])
def test_a_multi_row_group_file_scores_as_one_piece(runtime, tmp_path: Path, proba: bool) -> None:  # type: ignore[no-untyped-def]
    """Streamed row group by row group, in batches that straddle the groups, without memory
    mapping: row for row what the runtime answers for the whole matrix at once."""
    rt, _pipe = runtime
    frame = _frame(70_000, 3)
    source = tmp_path / "groups.parquet"
    frame.to_parquet(source, row_group_size=9_000)  # 8 row groups, the last one short
    assert pq.ParquetFile(source).metadata.num_row_groups == 8
    target = tmp_path / "out.parquet"
    score_file(rt, source, target, batch_rows=25_000, with_proba=proba)
    got = pq.read_table(target)
    x = frame.to_numpy(dtype=np.float64)
    if proba:
        p = rt.predict_proba(x)
        expected = rt.decide(p)
        for j, name in enumerate(rt.classes):
            assert got.column(f"proba_{name}").to_pylist() == p[:, j].tolist()
    else:
        expected = rt.predict(x)
    assert got.column("prediction_index").to_pylist() == expected.tolist()
    assert got.column("prediction").to_pylist() == [rt.classes[i] for i in expected]
