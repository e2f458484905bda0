"""Finding spans among the finished ones (in memory, or decoded from OTLP)."""

from __future__ import annotations


def by_name(finished, name: str):
    """The finished spans called ``name`` (request spans are named ``<METHOD> <route>``)."""
    return [span for span in finished if span.name == name]


def one(finished, name: str):
    found = by_name(finished, name)
    assert len(found) == 1, f"expected one {name!r} span, got {[s.name for s in finished]}"
    return found[0]


def server_span(finished, route_part: str):
    from opentelemetry.trace import SpanKind

    found = [s for s in finished if s.kind == SpanKind.SERVER and route_part in s.name]
    assert len(found) == 1, f"expected one server span for {route_part!r}, got {[s.name for s in finished]}"
    return found[0]
