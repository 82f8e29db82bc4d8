"""Experiments and reproducibility: data snapshots, reproduce, tune, compare, export, lineage.

Each module is a library function that a thin command in `petalops.cli.experiments` wraps.
"""
