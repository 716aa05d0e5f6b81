"""Small inline SVG charts for the reports (no JavaScript, no external resource, printable)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from rempart.reports.french import fr_datetime

DISPLAY_ZONE = ZoneInfo("Europe/Paris")  # hospital documents show French local time, with its offset
PALETTE = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d68910", "#117a8b", "#7f8c8d")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 260, 56, 150, 28, 36


def _fr(value: float) -> str:
    """Three significant digits, French decimal comma."""
    return f"{value:.3g}".replace(".", ",")


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start if high == low else start + (value - low) * (end - start) / (high - low)


def time_series(title: str, unit: str, series: dict[str, list[tuple[datetime, float]]]) -> str:
    """One polyline per series (e.g. backup duration per dataset over time)."""
    points = [p for values in series.values() for p in values]
    if not points:
        return f'<p class="vide">{escape(title)} : aucune donnée.</p>'
    t0, t1 = min(p[0] for p in points).timestamp(), max(p[0] for p in points).timestamp()
    top = max(p[1] for p in points) * 1.1 or 1.0
    plot_right, plot_bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="graphique">',
        f'<text x="{LEFT}" y="18" class="titre">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{plot_right}" y2="{plot_bottom}" class="axe"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}" class="axe"/>',
    ]
    for fraction in (0, 0.5, 1):
        value = top * fraction
        y = _scale(value, 0, top, plot_bottom, TOP)
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="graduation" text-anchor="end">{_fr(value)}</text>'
        )
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" class="graduation">{escape(unit)}</text>')
    for label, at, anchor in (
        (datetime.fromtimestamp(t0, DISPLAY_ZONE), LEFT, "start"),
        (datetime.fromtimestamp(t1, DISPLAY_ZONE), plot_right, "end"),
    ):
        parts.append(
            f'<text x="{at}" y="{plot_bottom + 16}" class="graduation" text-anchor="{anchor}">'
            f"{escape(fr_datetime(label))}</text>"
        )
    for index, (name, values) in enumerate(sorted(series.items())):
        colour = PALETTE[index % len(PALETTE)]
        coordinates = [
            (_scale(t.timestamp(), t0, t1, LEFT, plot_right), _scale(v, 0, top, plot_bottom, TOP))
            for t, v in sorted(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in coordinates]
        legend_y = TOP + 16 * index
        parts.append(
            f'<rect x="{plot_right + 12}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(f'<text x="{plot_right + 28}" y="{legend_y}" class="legende">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def target_vs_measured(title: str, unit: str, bars: list[tuple[str, float, float | None]]) -> str:
    """Per item, the target (outlined) and the measured value (filled; red when above the target)."""
    if not bars:
        return f'<p class="vide">{escape(title)} : aucune donnée.</p>'
    row, label_width = 30, 150
    height = TOP + row * len(bars) + 30
    top = max(max(t, m or 0) for _, t, m in bars) * 1.1 or 1.0
    right = WIDTH - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" class="graphique">',
        f'<text x="{LEFT}" y="18" class="titre">{escape(title)}</text>',
    ]
    for index, (name, target, measured) in enumerate(bars):
        y = TOP + row * index
        target_x = _scale(target, 0, top, label_width, right)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" class="legende" text-anchor="end">{escape(name)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{target_x - label_width:.1f}" height="16" '
            'class="cible" fill="none" stroke="#555" stroke-dasharray="4 2"/>'
        )
        if measured is None:
            parts.append(f'<text x="{label_width + 4}" y="{y + 14}" class="graduation">non mesuré</text>')
            continue
        measured_x = _scale(measured, 0, top, label_width, right)
        colour = "#2e8b57" if measured <= target else "#c0392b"
        parts.append(
            f'<rect x="{label_width}" y="{y + 5}" width="{max(measured_x - label_width, 1):.1f}" height="10" '
            f'fill="{colour}" class="mesure"/>'
        )
        parts.append(
            f'<text x="{max(measured_x, target_x) + 6:.1f}" y="{y + 14}" class="graduation">'
            f"{_fr(measured)} / {_fr(target)} {escape(unit)}</text>"
        )
    parts.append(
        f'<text x="{label_width}" y="{height - 8}" class="graduation">pointillé : cible ; barre : mesuré</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
