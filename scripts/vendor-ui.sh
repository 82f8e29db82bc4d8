#!/usr/bin/env bash
# Vendor the control room's chart library (uPlot, MIT) from the npm registry into the
# package, with its licence, so the page needs no CDN. Run by `make vendor-ui`; commit the
# result. UPLOT_VERSION pins what is vendored.
set -euo pipefail
version="${UPLOT_VERSION:-1.6.32}"
dest="$(cd "$(dirname "$0")/.." && pwd)/src/petalops/ui/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$dest/"
cp "$work/package/LICENSE" "$dest/uPlot.LICENSE"
echo "vendored uPlot $version into $dest"
