#!/usr/bin/env bash
# Vendor the browser libraries the server's pages load, from the npm registry into the
# package with their licences, so no page needs a CDN (they work offline):
#   uPlot (MIT)                 the control room's charts          -> src/petalops/ui/static/
#   swagger-ui-dist (Apache-2.0) /docs (OpenAPI 3.1 needs Swagger UI 5) -> .../static/swagger/
# Run by `make vendor-ui`; commit the result. The versions are pinned here.
set -euo pipefail
uplot="${UPLOT_VERSION:-1.6.32}"
swagger="${SWAGGER_UI_VERSION:-5.35.0}"
dest="$(cd "$(dirname "$0")/.." && pwd)/src/petalops/ui/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir uplot swagger
npm pack --silent "uplot@$uplot" >/dev/null && tar xzf "uplot-$uplot.tgz" -C uplot
npm pack --silent "swagger-ui-dist@$swagger" >/dev/null && tar xzf "swagger-ui-dist-$swagger.tgz" -C swagger
cp uplot/package/dist/uPlot.iife.min.js uplot/package/dist/uPlot.min.css "$dest/"
cp uplot/package/LICENSE "$dest/uPlot.LICENSE"
mkdir -p "$dest/swagger"
cp swagger/package/swagger-ui-bundle.js swagger/package/swagger-ui.css \
  swagger/package/favicon-32x32.png "$dest/swagger/"
cp swagger/package/LICENSE "$dest/swagger/LICENSE"
[ -f swagger/package/NOTICE ] && cp swagger/package/NOTICE "$dest/swagger/NOTICE"
echo "vendored uPlot $uplot and swagger-ui-dist $swagger into $dest"
