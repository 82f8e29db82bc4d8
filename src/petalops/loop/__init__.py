"""The closed loop: alerts → retrain → gate → register → rollout.

The only block that uses both the training pipeline and the rollout controller; the
monitoring block it starts from imports neither.

* ``petalops.loop.watcher``  ``Watcher``: `petalops monitor watch` (checks, notifications)
* ``petalops.loop.cycle``    one retraining cycle as a chain of named steps
* ``petalops.loop.data``     the retraining data: training set plus labelled live rows
* ``petalops.loop.rollouts`` starting the rollout the policy names, recording its outcome
* ``petalops.loop.events``   the kinds of ``loop_events`` rows
"""
