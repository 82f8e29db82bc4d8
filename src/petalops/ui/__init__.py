"""The control room: one page for what serves, how the rollout goes, drift and live quality.

`petalops.ui.state` builds the page's JSON document, `petalops.ui.actions` carries out its
guarded actions, `petalops.ui.assets` reads the page's files (shipped in the package, the
chart library vendored by `make vendor-ui`), and `petalops.ui.watch` serves it alone for a
host that only watches (`petalops ui --control-room`). `petalops serve` serves it at /ui
(`petalops.serving.routes.ui`).
"""
