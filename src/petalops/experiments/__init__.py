"""Experiments and reproducibility on top of the pipeline: restoring data snapshots,
reproduce, tune, compare, export, lineage and the MLflow UI.

Each module is a library function that a thin command in `petalops.cli.experiments` wraps.
This package imports `petalops.pipeline`; the pipeline never imports it.
"""
