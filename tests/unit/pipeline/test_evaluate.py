"""The evaluate step: metrics and the confusion matrix on the held-out rows."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.pipeline.evaluate import classification_metrics, evaluate
from petalops.pipeline.fit import fit
from petalops.pipeline.picture import Drawing, plot_confusion
from petalops.pipeline.split import split

DATA = load_dataset(DataSettings())


def test_scores_are_measured_on_the_test_rows_only() -> None:
    settings = Settings()
    rows = split(settings, DATA)
    scores = evaluate(fit(settings, rows, DATA.features), rows, DATA)
    assert sum(map(sum, scores.confusion)) == len(rows.y_test) == 30
    diagonal = sum(scores.confusion[i][i] for i in range(3))
    assert scores.metrics["accuracy"] == diagonal / 30
    assert {f"recall_{c}" for c in DATA.classes} <= set(scores.metrics)


def test_a_perfect_answer_has_accuracy_one_and_a_wrong_one_zero() -> None:
    y = np.array([0, 1, 2, 2], dtype=np.int64)
    proba = np.eye(3)[y]
    right = classification_metrics(y, y, np.clip(proba, 0.01, 0.98), DATA.classes)
    assert right["accuracy"] == 1.0 and right["f1_macro"] == 1.0
    wrong = classification_metrics(y, (y + 1) % 3, np.clip(proba, 0.01, 0.98), DATA.classes)
    assert wrong["accuracy"] == 0.0
    assert wrong["recall_setosa"] == 0.0


def test_the_confusion_matrix_picture_is_a_png(tmp_path: Path) -> None:
    path = plot_confusion([[10, 0, 0], [0, 9, 1], [0, 1, 9]], DATA.classes, tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_picture_is_drawn_without_pyplot(tmp_path: Path) -> None:
    # pyplot (and the process-wide backend it picks) is what ConfusionMatrixDisplay imports.
    code = (
        "import sys; from pathlib import Path; "
        "from petalops.pipeline.picture import plot_confusion; "
        f"plot_confusion([[3, 1], [0, 4]], ['a', 'b'], Path({str(tmp_path / 'c.png')!r})); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    png = (tmp_path / "c.png").read_bytes()
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (450, 400)


def test_the_picture_is_drawn_by_a_child_that_imports_no_pandas_sklearn_or_mlflow(
    tmp_path: Path,
) -> None:
    drawing = Drawing([[3, 1], [0, 4]], ["a", "b"], tmp_path / "c.png")
    assert drawing._child is not None  # drawing in its own process while train goes on
    assert drawing.wait().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = (
        "import sys, petalops.pipeline.picture; "
        "print(sorted({'pandas', 'sklearn', 'mlflow'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_child_that_cannot_start_or_fails_leaves_the_picture_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    path = Drawing([[1, 0], [0, 1]], ["a", "b"], tmp_path / "c.png").wait()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, then fails
    path = Drawing([[1, 0], [0, 1]], ["a", "b"], tmp_path / "d.png").wait()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
