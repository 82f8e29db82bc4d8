"""The protocol modules, one file each: every module here whose ``CODEC`` names a
`petalops.serving.codec.Codec` subclass is served, and every ``router`` (a FastAPI
``APIRouter``) is mounted on the fallback app. There is no table to edit: adding a file
adds its routes.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from fastapi import APIRouter

from petalops.serving.codec import Codec


def shipped() -> tuple[list[type[Codec[Any]]], list[APIRouter]]:
    """The codecs and FastAPI routers of the modules in this package."""
    codecs: list[type[Codec[Any]]] = []
    routers: list[APIRouter] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        codec = getattr(module, "CODEC", None)
        if codec is not None:
            if not (isinstance(codec, type) and issubclass(codec, Codec)):
                raise TypeError(f"{module.__name__}.CODEC must be a Codec subclass, got {codec!r}")
            codecs.append(codec)
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return codecs, routers
