"""The model server: `create_app(settings)` and the `petalops serve` runner."""

from petalops.serving.app import create_app

__all__ = ["create_app"]
