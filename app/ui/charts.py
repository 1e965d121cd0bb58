"""Charts as inline SVG, drawn on the server: no JavaScript, no chart library, one element per data point.

Every function returns markup-safe SVG text (all text escaped here). Each data element carries a `<title>`
(the browser's tooltip and what a screen reader reads) and `data-*` attributes with its values, and every
chart has `role="img"` and an `aria-label` saying what it shows; the pages print the same numbers as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

BAND_COLOURS = {"low": "#2e7d32", "medium": "#c77700", "high": "#c62828"}
SERIES_COLOURS = ("#1f5fbf", "#8e44ad", "#00897b", "#6d4c41")
AXIS = "#6b7280"
GRID = "#e5e7eb"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a stacked bar chart: its label and the value of each stack."""

    label: str
    values: dict[str, int]
    tick: str  # the short axis label


@dataclass(frozen=True, slots=True)
class Group:
    """A named group of horizontal bars (a dimension of the factors) with its own score."""

    name: str
    score: float
    bars: list[tuple[str, float, str]]  # (label, value, tooltip)


def _svg(width: int, height: int, label: str, body: list[str], css: str = "chart", fit: bool = True) -> Markup:
    """`fit`: stretch to the container's width; else keep the drawn size (at most the container's)."""
    size = 'width="100%"' if fit else f'width="{width}" height="{height}" style="max-width:100%;height:auto"'
    head = (f'<svg class="{css}" viewBox="0 0 {width} {height}" {size} role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" {FONT}>')  # fmt: skip
    return Markup(head + "".join(body) + "</svg>")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 10
    for factor in (1, 2, 5, 10):
        if value <= step * factor:
            return step * factor
    return value


def stacked_bars(bars: Sequence[Bar], stacks: Sequence[str], label: str, width: int = 760, height: int = 220) -> Markup:
    """Vertical bars, each stacked by `stacks` (bottom first), coloured by band; a legend above."""
    left, right, top, bottom = 44, 8, 22, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((sum(b.values.values()) for b in bars), default=0))
    body = _legend(stacks, left, 12)
    for i in range(3):
        value = peak * i / 2
        y = top + plot_h - plot_h * i / 2
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">{value:,.0f}</text>')
    slot = plot_w / max(len(bars), 1)
    every = max(1, round(len(bars) / 8))
    for i, bar in enumerate(bars):
        x = left + i * slot + slot * 0.12
        y = top + plot_h
        for stack in stacks:
            rows = bar.values.get(stack, 0)
            if not rows:
                continue
            h = plot_h * rows / peak
            y -= h
            tip = escape(f"{bar.label}: {rows:,} {stack}")
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.76:.1f}" height="{h:.1f}" '
                f'fill="{BAND_COLOURS.get(stack, SERIES_COLOURS[0])}" data-label="{escape(bar.label)}" '
                f'data-series="{escape(stack)}" data-value="{rows}"><title>{tip}</title></rect>'
            )
        if i % every == 0:
            body.append(f'<text x="{x + slot * 0.38:.1f}" y="{height - 10}" text-anchor="middle" fill="{AXIS}">'
                        f"{escape(bar.tick)}</text>")  # fmt: skip
    return _svg(width, height, label, body)


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    body = []
    for i, name in enumerate(names):
        colour = BAND_COLOURS.get(name, SERIES_COLOURS[i % len(SERIES_COLOURS)])
        body.append(f'<rect x="{x + i * 110}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{x + i * 110 + 14}" y="{y}">{escape(name)}</text>')
    return body


def lines(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], label: str, width: int = 760, height: int = 220
) -> Markup:
    """Lines over 0–1 (metrics), one per series; a missing value breaks the line; a dot per point."""
    left, right, top, bottom = 44, 8, 22, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    body = _legend(list(series), left, 12)
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">{tick:.1f}</text>')
    step = plot_w / max(len(labels) - 1, 1)
    every = max(1, round(len(labels) / 8))
    for i, text in enumerate(labels):
        if i % every == 0:
            x = left + i * step
            body.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" fill="{AXIS}">{escape(text)}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            x, y = left + i * step, top + plot_h * (1 - value)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            tip = escape(f"{name}, week of {labels[i]}: {value:.3f}")
            body.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" data-series="{escape(name)}" '
                f'data-label="{escape(labels[i])}" data-value="{value:.4f}"><title>{tip}</title></circle>'
            )
        for run in runs:
            if len(run) > 1:
                body.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    return _svg(width, height, label, body)


def gauge(probability: float, threshold: float, medium: float, high: float, width: int = 560) -> Markup:
    """The 0–1 probability scale split into the three bands, the threshold as a dashed line, the commit a marker."""
    left, right, height = 12, 12, 74
    span = width - left - right

    def at(p: float) -> float:
        return left + span * min(max(p, 0.0), 1.0)

    body = []
    for band, start, end in (("low", 0.0, medium), ("medium", medium, high), ("high", high, 1.0)):
        if end > start:
            body.append(
                f'<rect class="band" x="{at(start):.1f}" y="26" width="{at(end) - at(start):.1f}" height="16" '
                f'fill="{BAND_COLOURS[band]}" opacity="0.8" data-series="{band}" data-value="{start:.4f}">'
                f"<title>{band}: {start:.2f} to {end:.2f}</title></rect>"
            )
    for p in (0.0, medium, high, 1.0):
        body.append(f'<text x="{at(p):.1f}" y="58" text-anchor="middle" fill="{AXIS}">{p:.2f}</text>')
    x = at(threshold)
    body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="48" stroke="#111827" stroke-dasharray="3 2"/>')
    body.append(f'<text x="{x:.1f}" y="70" text-anchor="middle">threshold {threshold:.2f}</text>')
    x = at(probability)
    body.append(
        f'<path class="marker" d="M{x - 7:.1f},6 L{x + 7:.1f},6 L{x:.1f},22 Z" fill="#111827" '
        f'data-value="{probability:.4f}"><title>this commit: {probability:.3f}</title></path>'
    )
    return _svg(width, height, f"probability {probability:.2f} against threshold {threshold:.2f}", body, "gauge", False)


def points(value: float) -> str:
    """A probability difference in percentage points, signed, without a negative zero (`+4.3`, `0.0`)."""
    text = f"{value * 100:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def grouped_bars(groups: Sequence[Group], label: str, width: int = 640) -> Markup:
    """Horizontal bars around zero (right: raised the risk, left: lowered it), under a header per group."""
    row, header, left, values = 20, 26, 72, 52
    half = (width - left - values) / 2 - 4
    centre = left + 4 + half
    peak = max((abs(v) for g in groups for _, v, _ in g.bars), default=0.0) or 1.0
    height = sum(header + row * len(g.bars) for g in groups) + 8
    body = [f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="0" y2="{height}" stroke="{AXIS}"/>']
    y = 0.0
    for group in groups:
        body.append(f'<text x="0" y="{y + 17:.1f}" font-weight="600" font-size="12">{escape(group.name)}'
                    f" ({points(group.score)} points)</text>")  # fmt: skip
        y += header
        for name, value, tip in group.bars:
            w = half * abs(value) / peak
            x = centre if value >= 0 else centre - w
            colour = BAND_COLOURS["high"] if value > 0 else BAND_COLOURS["low"]
            body.append(f'<text x="{left - 6}" y="{y + 14:.1f}" text-anchor="end">{escape(name)}</text>')
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y + 3:.1f}" width="{max(w, 1):.1f}" height="{row - 6}" '
                f'fill="{colour}" data-label="{escape(name)}" data-series="{escape(group.name)}" '
                f'data-value="{value:.6f}"><title>{escape(tip)}</title></rect>'
            )
            body.append(f'<text x="{width - 4}" y="{y + 14:.1f}" text-anchor="end" fill="{AXIS}">'
                        f"{points(value)}</text>")  # fmt: skip
            y += row
    return _svg(width, int(height), label, body, "chart factors", False)


def heatmap(
    columns: Sequence[str], rows: Sequence[tuple[str, Sequence[tuple[bool, str] | None]]], label: str
) -> Markup:
    """A grid: one row per feature, one column per run; red cells drifted, green did not; the score as text."""
    left, top, cell_w, cell_h = 64, 34, 58, 20
    width, height = left + cell_w * len(columns) + 4, top + cell_h * len(rows) + 4
    body = []
    for j, column in enumerate(columns):
        x = left + j * cell_w + cell_w / 2
        body.append(f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" fill="{AXIS}">{escape(column)}</text>')
    for i, (name, cells) in enumerate(rows):
        y = top + i * cell_h
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(name)}</text>')
        for j, cell in enumerate(cells):
            x = left + j * cell_w
            if cell is None:
                body.append(f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{GRID}"/>')
                continue
            drifted, text = cell
            colour = BAND_COLOURS["high"] if drifted else BAND_COLOURS["low"]
            body.append(
                f'<rect class="cell" x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{colour}" opacity="{0.85 if drifted else 0.25}" data-label="{escape(name)}" '
                f'data-series="{escape(columns[j])}" data-value="{int(drifted)}">'
                f"<title>{escape(name)}, run {escape(columns[j])}: {escape(text)}"
                f"{' (drifted)' if drifted else ''}</title></rect>"
            )
            fill = "#ffffff" if drifted else "#111827"
            body.append(f'<text x="{x + cell_w / 2:.1f}" y="{y + 14}" text-anchor="middle" fill="{fill}">'
                        f"{escape(text)}</text>")  # fmt: skip
    return _svg(width, height, label, body, "chart heatmap", False)
