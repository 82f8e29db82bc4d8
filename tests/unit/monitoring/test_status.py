"""Small pieces behind `petalops monitor drift | status`."""

from __future__ import annotations

import pytest

from petalops.errors import InputError
from petalops.monitoring.status import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        (" 1.5h ", 5400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1w", "-5m", "soon", "1h30m"])
def test_bad_durations_show_examples(text: str) -> None:
    with pytest.raises(InputError, match="examples: 90s, 15m, 1h, 2d"):
        parse_duration(text)
