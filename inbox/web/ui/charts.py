"""Bar charts as inline SVG, drawn on the server: no chart library, readable without scripts."""

from __future__ import annotations

from markupsafe import Markup, escape


def bar_chart(
    bars: list[tuple[str, int]],
    *,
    title: str,
    width: int = 560,
    height: int = 220,
    label_every: int = 1,
) -> Markup:
    """Vertical bars with their values and x labels; ``title`` is the accessible name."""
    top, bottom, left, right = 20, 34, 8, 8
    plot_h = height - top - bottom
    plot_w = width - left - right
    peak = max((value for _, value in bars), default=0) or 1
    step = plot_w / max(1, len(bars))
    bar_w = max(2.0, step * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        'class="axis"/>',
    ]
    for index, (label, value) in enumerate(bars):
        h = plot_h * value / peak
        x = left + index * step + (step - bar_w) / 2
        y = top + plot_h - h
        cx = x + bar_w / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" class="bar">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if value:
            parts.append(
                f'<text x="{cx:.1f}" y="{y - 4:.1f}" class="value" text-anchor="middle">'
                f"{value}</text>"
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{cx:.1f}" y="{height - 12}" class="label" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
