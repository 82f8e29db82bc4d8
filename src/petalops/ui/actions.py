"""The control room's guarded actions, each through the function its CLI command calls.

Promote, abort, pause and resume go to `petalops.rollout.api.request` (the running
controller applies them within a tick); setting an alias is
`petalops.registry.store.set_alias`, as `petalops registry alias set` does. Every action
needs the admin token, compared in constant time; with none configured they are off (403).
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import orjson

from petalops.config import Settings
from petalops.errors import ConflictError, InputError, StatusError
from petalops.registry import model_state
from petalops.rollout.view import has_rollout

ROLLOUT_ACTIONS = ("promote", "abort", "pause", "resume")
ACTIONS = (*ROLLOUT_ACTIONS, "alias")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,63}")


class ActionError(StatusError):
    """A refused action, with its HTTP status, a valid example and the headers its answer
    needs (the server that mounts the control room answers it like any domain error)."""


def parse_body(body: bytes) -> Any:
    """An action's JSON body; 400 naming the body when it is empty or malformed."""
    example = {"action": "promote"}
    if not body:
        raise ActionError(400, "the request body is empty; send a JSON body", "body", example)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ActionError(
            400, f"the request body is not valid JSON: {exc}", "body", example
        ) from None


def check_token(settings: Settings, authorization: str) -> None:
    """Refuse unless ``authorization`` is ``Bearer <admin token>``: 403 when no token is
    configured (actions are off, never open), 401 when it is missing or wrong."""
    token = settings.admin_token
    if not token:
        raise ActionError(
            403, "control-room actions are disabled: set PETALOPS_ADMIN_TOKEN to enable them"
        )
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ActionError(
            401,
            "missing or wrong admin token; send 'Authorization: Bearer <PETALOPS_ADMIN_TOKEN>'",
            "Authorization",
            "Bearer change-me",
            headers=[(b"www-authenticate", b"Bearer")],
        )


def parse_action(body: Any) -> tuple[str, dict[str, str]]:
    """``{"action": ..., "reason"?: ..., "alias"?: ..., "version"?: ...}`` checked, as
    (action, its arguments); a 400 names the field that is wrong."""
    if not isinstance(body, dict):
        raise ActionError(400, "the body must be a JSON object", None, {"action": "promote"})
    action = body.get("action")
    if action not in ACTIONS:
        raise ActionError(
            400, f"action must be one of {', '.join(ACTIONS)}, got {action!r}", "action", "promote"
        )
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ActionError(400, "reason must be a string of at most 500 characters", "reason", "")
    if action != "alias":
        return action, {"reason": reason or "from the control room"}
    alias, version = body.get("alias"), str(body.get("version", ""))
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise ActionError(
            400, "alias must be lower-case letters, digits, '-' or '_'", "alias", "champion"
        )
    if not version.isdigit() or len(version) > 9:
        raise ActionError(400, f"version must be a version number, got {version!r}", "version", "3")
    return action, {"alias": alias, "version": version}


def run_action(settings: Settings, action: str, arguments: dict[str, str]) -> dict[str, Any]:
    """Carry out a checked action (blocking: run it in a thread) and return what changed:
    the controller's answer and the resulting plan, or the alias moved."""
    if action in ROLLOUT_ACTIONS:
        # Refused before the MLflow client is loaded (seconds of a worker's CPU) when there
        # is nothing to act on: the registry read without MLflow says so.
        if not has_rollout(model_state(settings)[1]):
            raise ConflictError(
                f"there is no rollout to {action}; start one with `petalops rollout start`"
            )
        from petalops.rollout.api import request  # MLflow client: only when an action runs

        return {"action": action, **request(settings, action, arguments["reason"])}
    if action == "alias":
        from petalops.registry.store import set_alias  # MLflow client, as the CLI's

        set_alias(settings, arguments["alias"], arguments["version"])
        return {
            "action": action,
            "result": f"{settings.project}@{arguments['alias']} -> v{arguments['version']}",
        }
    raise InputError(f"unknown action {action!r}")
