"""Server-side SVG bar charts: plain ``<svg>`` markup (no script, no style attribute — the CSP forbids inline
styles — colours as presentation attributes and classes), every bar with a ``<title>`` naming its label and
count, and the chart with a ``<title>``/``<desc>`` for screen readers (SVG 2 §5.9, "The 'desc' and 'title'
elements"; WAI-ARIA Graphics: ``role="img"`` with ``aria-labelledby``)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 200
MARGIN_LEFT = 40
MARGIN_BOTTOM = 36
MARGIN_TOP = 12


def bar_chart(
    ident: str, title: str, bars: Sequence[tuple[str, int]], *, classes: Sequence[str] | None = None
) -> Markup:
    """An SVG bar chart of ``bars`` ((label, count), left to right). ``ident``: a unique id prefix for the
    element ids; ``classes``: a CSS class per bar (colours, always next to the label text). Every text is
    escaped."""
    n = max(len(bars), 1)
    top = max((count for _, count in bars), default=0) or 1
    plot_w = WIDTH - MARGIN_LEFT - 8
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1.0)
    total = sum(count for _, count in bars)
    desc = ", ".join(f"{label}: {count}" for label, count in bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(ident)}-title {escape(ident)}-desc" id="{escape(ident)}">',
        f'<title id="{escape(ident)}-title">{escape(title)}</title>',
        f'<desc id="{escape(ident)}-desc">{escape(desc)} (total {total})</desc>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{WIDTH - 8}" y2="{MARGIN_TOP + plot_h}" '
        'class="axis" stroke="currentColor"/>',
        f'<text x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + 10}" text-anchor="end" class="tick">{top}</text>',
        f'<text x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + plot_h}" text-anchor="end" class="tick">0</text>',
    ]
    for i, (label, count) in enumerate(bars):
        h = plot_h * count / top
        x = MARGIN_LEFT + i * slot + (slot - bar_w) / 2
        y = MARGIN_TOP + plot_h - h
        cls = escape(classes[i]) if classes and i < len(classes) else "bar"
        parts.append(
            f'<g class="bar-group"><title>{escape(label)}: {count}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" class="bar {cls}"/>'
            f'<text x="{x + bar_w / 2:.1f}" y="{max(y - 3, MARGIN_TOP + 8):.1f}" text-anchor="middle" '
            f'class="value">{count}</text>'
            f'<text x="{x + bar_w / 2:.1f}" y="{MARGIN_TOP + plot_h + 14}" text-anchor="middle" '
            f'class="label">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
