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
        # Templated paths already matched, to skip the regexes (OIP v2 and KServe v1 ask
        # the same one or two paths all day: ~1 µs a request). Bounded: a client sending
        # endless distinct names fills it once, then is matched by regex as before.
        self._matched: dict[str, tuple[Endpoint, dict[str, str]]] = {}

    MATCHED_PATHS = 256

    def match(self, path: str) -> tuple[Endpoint | None, dict[str, str]]:
        """The endpoint of ``path`` and its path parameters (``None`` if no route has it)."""
        endpoint = self.exact.get(path)
        if endpoint is not None:
            return endpoint, {}
        seen = self._matched.get(path)
        if seen is not None:
            return seen[0], seen[1].copy()  # the caller's own dict, as a regex match gives
        for regex, candidate in self.templated:
            found = regex.match(path)
            if found is not None:
                params = found.groupdict()
                if len(self._matched) < self.MATCHED_PATHS:
                    self._matched[path] = (candidate, params.copy())
                return candidate, params
        return None, {}
