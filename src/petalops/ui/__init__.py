"""The control room: one page for what serves, how the rollout goes, drift and live quality.

`petalops.ui.state` builds the page's JSON document from the blocks' read models
(`registry.catalog`, `rollout.view`, `monitoring.view`); `petalops.ui.builder` builds it in
its own process under `petalops serve`, and `petalops.ui.document` is a worker's answer
from it. `petalops.ui.actions` carries out the page's guarded actions, `petalops.ui.assets`
reads its files (shipped in the package, the chart library vendored by `make vendor-ui`),
and `petalops.ui.watch` serves it alone for a host that only watches (`petalops ui
--control-room`). The server mounts it at /ui; nothing here imports the server.
"""
