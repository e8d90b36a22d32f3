"""Horizontal bar charts as inline SVG: plots on the dashboard without a JavaScript library,
a build step, or a request for anything but the page itself."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_ROW = 22  # px per bar, gap included
_BAR = 16
_LABEL = 150  # px kept left of the bars for their labels
_WIDTH = 480
_COUNT = 44  # px kept right of the longest bar for its count


def bar_chart(bars: Sequence[tuple[str, int]], title: str, *, color: str = "#3b6fb6") -> Markup:
    """One bar per (label, count), scaled to the largest; labels and title are escaped here
    because the result is marked safe for the autoescaping template."""
    widest = max((count for _, count in bars), default=0)
    room = _WIDTH - _LABEL - _COUNT
    height = _ROW * len(bars) + 4
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, count) in enumerate(bars):
        top = index * _ROW + 2
        length = round(room * count / widest) if widest else 0
        middle = top + _BAR / 2
        parts += [
            f'<text x="{_LABEL - 6}" y="{middle}" text-anchor="end" '
            f'dominant-baseline="central">{escape(label)}</text>',
            f'<rect x="{_LABEL}" y="{top}" width="{length}" height="{_BAR}" rx="2" '
            f'fill="{escape(color)}"/>',
            f'<text x="{_LABEL + length + 6}" y="{middle}" '
            f'dominant-baseline="central">{count}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
