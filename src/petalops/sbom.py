"""The software bill of materials of an install: a CycloneDX JSON of its Python packages.

The image build writes it (deploy/docker/sbom.sh runs ``cyclonedx-py environment`` on the
image's virtual environment) to ``SBOM_FILE``, so that what a container runs can be
audited from the container itself. Outside an image there is no shipped file; when the
``cyclonedx-bom`` package is installed (``pip install 'petalops[sbom]'``, and the dev
install) the same tool makes one from the running environment instead, and says so.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from petalops.errors import NotFoundError, PetalopsError

# Where deploy/docker/Dockerfile writes the SBOM of /opt/venv (both targets).
SBOM_FILE = Path("/opt/petalops/sbom.cdx.json")
TOOL = "cyclonedx_py"  # the module of the cyclonedx-bom package: `cyclonedx-py`


@dataclass(frozen=True)
class Sbom:
    """A CycloneDX document and where it came from (the shipped file, or generated)."""

    text: str
    origin: str


def generate(python: str = sys.executable) -> str:
    """A CycloneDX (1.6, JSON) SBOM of the environment of the interpreter ``python``."""
    if importlib.util.find_spec(TOOL) is None:
        raise NotFoundError(
            f"no SBOM is shipped at {SBOM_FILE} (the image build writes it) and cyclonedx-bom "
            "is not installed to make one from this environment: pip install 'petalops[sbom]'"
        )
    done = subprocess.run(
        [sys.executable, "-m", TOOL, "environment", "--output-format", "JSON", python],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PetalopsError(f"cyclonedx-py could not describe {python}: {last}")
    return done.stdout


def read(shipped: Path | None = None) -> Sbom:
    """The shipped SBOM (``SBOM_FILE``) when there is one, else one generated from this
    environment."""
    shipped = shipped or SBOM_FILE
    if shipped.is_file():
        return Sbom(shipped.read_text(encoding="utf-8"), f"shipped with the image: {shipped}")
    return Sbom(
        generate(),
        f"generated now from this environment ({sys.prefix}): no SBOM is shipped at {shipped}",
    )
