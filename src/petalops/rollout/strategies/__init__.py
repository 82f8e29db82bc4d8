"""Rollout strategies: one module each, found by `registry` on its first lookup.

To add one, write a module here with a ``Strategy`` subclass (see `base`) decorated with
``@register``; `--strategy`, the settings and the controller pick it up from the registry.
"""
