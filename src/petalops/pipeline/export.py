"""The export step of `petalops train --export DIR`: tutorial-style artifacts in one directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def export_files(
    export_dir: Path, workdir: Path, bundle: Path, metrics: dict[str, float]
) -> list[str]:
    """Copy metrics.json, the confusion matrix, gate.json, config.json and the bundle's files
    into ``export_dir``; the sorted names written."""
    export_dir.mkdir(parents=True, exist_ok=True)
    written = []
    (export_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    written.append("metrics.json")
    for name in ("confusion_matrix.png", "gate.json", "config.json"):
        shutil.copy2(workdir / name, export_dir / name)
        written.append(name)
    for item in bundle.iterdir():
        shutil.copy2(item, export_dir / item.name)
        written.append(item.name)
    return sorted(written)
