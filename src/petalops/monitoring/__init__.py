"""Monitoring: the prediction log, feedback labels, drift, live quality, alerts, the loop.

Import the module you need; nothing here is imported eagerly so the server starts fast:

* ``petalops.monitoring.store``    the monitoring database (the only module touching it)
* ``petalops.monitoring.logger``   ``PredictionLogger``: batched, bounded, never blocks
* ``petalops.monitoring.spool``    ``SpoolWriter`` / ``SpoolLoader``: the log of `petalops serve`
* ``petalops.monitoring.feedback`` ``record_feedback`` / ``record_feedback_batch``
* ``petalops.monitoring.drift``    KS / PSI / chi-square drift against the reference profile
* ``petalops.monitoring.quality``  live accuracy and macro-F1
* ``petalops.monitoring.metrics``  Prometheus gauges and ``update_gauges``
* ``petalops.monitoring.alerts``   the alert conditions, evaluated from the store
* ``petalops.monitoring.loop``     ``monitor watch`` and the retraining loop
"""
