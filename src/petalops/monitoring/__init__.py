"""Monitoring: the prediction log, feedback labels, drift, live quality, alerts, the loop.

Import the module you need; nothing here is imported eagerly so the server starts fast:

* ``petalops.monitoring.store``      ``MonitorStore``: monitoring's reads and writes of the
  monitoring database (its tables and migrations: ``petalops.database``)
* ``petalops.monitoring.record``     the prediction record and the row it becomes
* ``petalops.monitoring.sink``       ``PredictionSink`` and ``BoundedSink``: the interface
  of the two sinks below and what they share
* ``petalops.monitoring.logger``     ``PredictionLogger``: batched, bounded, never blocks
* ``petalops.monitoring.spool``      ``SpoolWriter`` / ``SpoolLoader``: the log of `petalops serve`
* ``petalops.monitoring.feedback``   ``record_feedback`` / ``record_feedback_batch``
* ``petalops.monitoring.statistics`` the drift statistics registry (KS and PSI ship)
* ``petalops.monitoring.drift``      per-feature drift over the registered statistics,
  chi-square on predicted classes
* ``petalops.monitoring.report``     the self-contained HTML drift report
* ``petalops.monitoring.quality``    live accuracy and macro-F1
* ``petalops.monitoring.metrics``    Prometheus gauges and ``update_gauges``
* ``petalops.monitoring.alerts``     the alert conditions, evaluated from the store
* ``petalops.monitoring.status``     the functions behind `monitor drift` and `monitor status`

The closed loop (alerts → retrain → rollout) is its own block: ``petalops.loop``.
"""
