"""The rollout block's read model for pages (its reads are exercised on a real registry by
tests/unit/ui/test_state.py)."""

from __future__ import annotations

from petalops.rollout.control_plane import PLAN_TAG
from petalops.rollout.view import has_rollout, plan_text


def test_the_plan_tag_says_whether_there_is_a_rollout() -> None:
    assert not has_rollout({}) and plan_text({}) == ""
    assert not has_rollout({"petalops.traffic": '{"strategy": "none"}'})
    tags = {PLAN_TAG: '{"rollout_id": "r1"}'}
    assert has_rollout(tags) and plan_text(tags) == '{"rollout_id": "r1"}'
