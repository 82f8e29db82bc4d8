from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from petalops.batch import score_file
from petalops.config import DataSettings
from petalops.data.load import load_dataset
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


@pytest.mark.parametrize(
    ("src", "dst"), [(".parquet", ".parquet"), (".csv", ".csv"), (".csv", ".parquet")]
)
def test_streamed_scoring_matches_sklearn(runtime, tmp_path: Path, src: str, dst: str) -> None:  # type: ignore[no-untyped-def]
    rt, pipe = runtime
    rng = np.random.default_rng(1)
    x = DATA.x[rng.integers(0, 150, 5000)] + rng.normal(0, 0.05, (5000, 4))
    frame = pd.DataFrame(x, columns=DATA.features)
    source = tmp_path / f"in{src}"
    frame.to_parquet(source) if src == ".parquet" else frame.to_csv(source, index=False)
    target = tmp_path / f"out{dst}"
    stats = score_file(rt, source, target, batch_rows=1000)
    assert stats.rows == 5000
    got = pd.read_parquet(target) if dst == ".parquet" else pd.read_csv(target)
    assert got["prediction"].tolist() == pipe.predict(frame).tolist()


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
    rng = np.random.default_rng(2)
    x = DATA.x[rng.integers(0, 150, 1003)] + rng.normal(0, 0.05, (1003, 4))
    frame = pd.DataFrame(x, columns=DATA.features)
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    target = tmp_path / "out.parquet"
    assert score_file(rt, source, target, batch_rows=100, with_proba=with_proba).rows == 1003
    got = pd.read_parquet(target)
    assert got["prediction"].tolist() == pipe.predict(frame).tolist()
    if with_proba:
        expected = pipe.predict_proba(frame)
        columns = [f"proba_{c}" for c in rt.classes]
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
