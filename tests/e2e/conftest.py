"""The end-to-end suite runs only through `make e2e` (PETALOPS_E2E=1): it starts the Docker
engine, builds the image and runs the stack, which `make test` must never do."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("PETALOPS_E2E") == "1" else ["test_*.py"]
