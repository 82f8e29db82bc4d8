#!/bin/sh
# Write the CycloneDX SBOM (JSON) of the image's /opt/venv to /opt/petalops/sbom.cdx.json,
# where `petalops version --sbom` reads it:
#   sbom.sh CONSTRAINTS
# cyclonedx-py (the cyclonedx-bom package, pinned by constraints.txt) runs from a venv of
# its own that is removed afterwards, so the tool is not itself part of what it lists.
set -eu
constraints=$1
python3 -m venv /tmp/sbom-tool
/tmp/sbom-tool/bin/pip install --quiet --no-cache-dir -c "$constraints" cyclonedx-bom
/tmp/sbom-tool/bin/cyclonedx-py environment --output-format JSON \
  --output-file /opt/petalops/sbom.cdx.json /opt/venv/bin/python
rm -rf /tmp/sbom-tool
chmod 0644 /opt/petalops/sbom.cdx.json
