"""Path matching of the hot routes: exact paths by dict lookup, templated ones by regex."""

from __future__ import annotations

import re
from collections.abc import Sequence

from petalops.serving.codec import Route

_PARAM = re.compile(r"\{(\w+)\}")


class Endpoint:
    """The routes of one path, by method, and the label its requests are counted under."""

    __slots__ = ("allowed", "label", "methods")

    def __init__(self, path: str) -> None:
        self.label = path
        self.methods: dict[str, Route] = {}
        self.allowed = ""

    def add(self, route: Route) -> None:
        if route.method in self.methods:
            raise ValueError(
                f"two routes answer {route.method} {route.path}; each method and path "
                "belongs to one codec"
            )
        self.methods[route.method] = route
        self.allowed = ", ".join(sorted(self.methods))


class Router:
    """Finds the `Endpoint` of a request path; prediction paths are tried first."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.exact: dict[str, Endpoint] = {}
        self.templated: list[tuple[re.Pattern[str], Endpoint]] = []
        patterns: dict[str, Endpoint] = {}
        for route in self.routes:
            table = patterns if "{" in route.path else self.exact
            endpoint = table.get(route.path)
            if endpoint is None:
                endpoint = table[route.path] = Endpoint(route.path)
            endpoint.add(route)
        # Prediction routes first: they are the ones matched thousands of times a second.
        hot_first = sorted(patterns.items(), key=lambda item: "POST" not in item[1].methods)
        for template, endpoint in hot_first:
            regex = (
                "^"
                + _PARAM.sub(
                    r"(?P<\1>[^/:]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
                )
                + "$"
            )
            self.templated.append((re.compile(regex), endpoint))

    def match(self, path: str) -> tuple[Endpoint | None, dict[str, str]]:
        """The endpoint of ``path`` and its path parameters (``None`` if no route has it)."""
        endpoint = self.exact.get(path)
        if endpoint is not None:
            return endpoint, {}
        for regex, candidate in self.templated:
            found = regex.match(path)
            if found is not None:
                return candidate, found.groupdict()
        return None, {}
