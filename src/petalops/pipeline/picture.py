"""The confusion-matrix picture of a training run, drawn beside the run's other work.

`petalops train` spends most of its time importing and calling MLflow, on one core; drawing
the picture (matplotlib: ~0.4 s to import and render) in a process of its own, started as
soon as the matrix is known and waited for just before the artifacts are logged, takes that
time off the command on any machine with a second core. This module imports numpy and
matplotlib only, so that process starts without pandas, scikit-learn or MLflow.

    python -m petalops.pipeline.picture OUT.png  < {"matrix": [[...]], "classes": [...]}
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def plot_confusion(matrix: list[list[int]], classes: list[str], path: Path) -> Path:
    """Write the confusion matrix as a PNG: counts on a blue scale, true classes down,
    predicted classes across (the picture of scikit-learn's ``ConfusionMatrixDisplay``)."""
    # Drawn on matplotlib's Agg canvas directly, not through pyplot (whose figure managers
    # and backend selection, which ConfusionMatrixDisplay.plot always imports, cost ~0.1 s
    # of `petalops train` and are process-wide state). Imported here: only this picture
    # needs matplotlib (~0.4 s).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(matrix)
    n = len(classes)
    figure = Figure(figsize=(4.5, 4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image = ax.imshow(counts, interpolation="nearest", cmap="Blues")
    # Dark text on light cells, light text on dark ones, as ConfusionMatrixDisplay does.
    light, dark = image.cmap(0.0), image.cmap(1.0)
    middle = (counts.max() + counts.min()) / 2.0 if counts.size else 0.0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{counts[i, j]:d}",
                ha="center",
                va="center",
                color=dark if counts[i, j] < middle else light,
            )
    ax.set_xticks(range(n), labels=classes)
    ax.set_yticks(range(n), labels=classes)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_title("Confusion matrix (held-out split)")
    figure.tight_layout()
    figure.savefig(path)
    return path


class Drawing:
    """The picture being drawn by a child process; `wait` returns its path.

    If the child cannot be started or fails, `wait` draws it here instead, so a broken
    matplotlib still raises its own error in the train command, not a vague one.
    """

    def __init__(self, matrix: list[list[int]], classes: list[str], path: Path) -> None:
        self.matrix, self.classes, self.path = matrix, classes, path
        self._child: subprocess.Popen[bytes] | None = None
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "petalops.pipeline.picture", str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert self._child.stdin is not None
            self._child.stdin.write(json.dumps({"matrix": matrix, "classes": classes}).encode())
            self._child.stdin.close()
        except OSError:  # could not start, or died before it read the matrix
            if self._child is not None:
                self._child.kill()
                self._child.wait()
            self._child = None

    def wait(self) -> Path:
        child, self._child = self._child, None
        if child is not None:
            assert child.stderr is not None
            child.stderr.read()
            child.stderr.close()
            if child.wait() == 0 and self.path.is_file():
                return self.path
        if not self.path.is_file():
            plot_confusion(self.matrix, self.classes, self.path)
        return self.path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m petalops.pipeline.picture OUT.png < matrix.json\n")
        return 2
    given = json.load(sys.stdin)
    plot_confusion(given["matrix"], given["classes"], Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
