"""The export step of `train --export`: the tutorial files in one directory."""

from __future__ import annotations

import json
from pathlib import Path

from petalops.pipeline.export import export_files


def test_metrics_the_picture_the_gate_the_config_and_the_bundle_are_copied(
    tmp_path: Path,
) -> None:
    workdir, bundle, out = tmp_path / "work", tmp_path / "work" / "petalops", tmp_path / "out"
    bundle.mkdir(parents=True)
    for name in ("confusion_matrix.png", "gate.json", "config.json", "fitted.json"):
        (workdir / name).write_text(name)
    for name in ("model.onnx", "manifest.json"):
        (bundle / name).write_text(name)
    written = export_files(out / "nested", workdir, bundle, {"accuracy": 0.9})
    assert written == sorted(
        [
            "metrics.json",
            "confusion_matrix.png",
            "gate.json",
            "config.json",
            "model.onnx",
            "manifest.json",
        ]
    )
    assert sorted(p.name for p in (out / "nested").iterdir()) == written  # fitted.json stays
    assert json.loads((out / "nested" / "metrics.json").read_text()) == {"accuracy": 0.9}
    assert (out / "nested" / "model.onnx").read_text() == "model.onnx"
