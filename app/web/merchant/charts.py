"""Server-side SVG charts for the merchant app (no JavaScript): one bar per day, scaled to the page width.

Each chart is an <svg role="img"> with a <title> and a <desc> that states what it counts and its total,
so a screen reader gets the figure, not a picture of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 200, 48, 24, 12


def _nice(top: float) -> float:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    for mult in (1, 2, 2.5, 5, 10):
        if top <= mult * step:
            return float(mult * step)
    return float(10 * step)


def bars(points: Sequence[tuple[date, float]], title: str, desc: str, unit: str = "", color: str = "#2c6ecb") -> Markup:
    """A daily bar chart: `points` are (day, value); `desc` says what is counted."""
    n = max(len(points), 1)
    top = _nice(max((v for _, v in points), default=0.0))
    inner_w, inner_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = inner_w / n
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{_id(title)}-t {_id(title)}-d" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}-t">{escape(title)}</title><desc id="{_id(title)}-d">{escape(desc)}</desc>',
    ]
    for frac in (0, 0.5, 1):
        y = PAD_TOP + inner_h * (1 - frac)
        out.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="1"/>')
        out.append(f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="#424a53">{_fmt(top * frac)}{escape(unit)}</text>')
    for i, (day, value) in enumerate(points):
        h = inner_h * (value / top) if top else 0
        x = PAD_LEFT + i * slot + slot * 0.15
        out.append(
            f'<rect x="{x:.1f}" y="{PAD_TOP + inner_h - h:.1f}" width="{max(slot * 0.7, 1):.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{day.isoformat()}: {_fmt(value)}{escape(unit)}</title></rect>"
        )
    if points:
        for i in sorted({0, len(points) - 1}):
            x = PAD_LEFT + i * slot + slot / 2
            anchor = "start" if i == 0 else "end"
            out.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" font-size="12" fill="#424a53">{points[i][0].isoformat()}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.2f}"


def _id(title: str) -> str:
    return "c-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40]
