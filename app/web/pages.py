"""The few small HTML pages written inline (links, activation): compiled once, autoescaped. Flask's
render_template_string compiled the template again on every request (7 ms each in the fuzz profile)."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, Template

_ENV = Environment(autoescape=True)


@functools.cache
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def render(source: str, **context: Any) -> str:
    return _compiled(source).render(**context)
