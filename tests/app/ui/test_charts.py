"""The SVG charts: one element per data point with its values, escaped text, parseable SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.ui import charts

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img" and root.get("aria-label")
    return root


def data(root: ET.Element, tag: str) -> list[tuple[str | None, str | None, float]]:
    found = [e for e in root.iter(f"{NS}{tag}") if e.get("data-value") is not None]
    return [(e.get("data-label"), e.get("data-series"), float(e.get("data-value", "nan"))) for e in found]


def test_stacked_bars_draw_one_rect_per_nonzero_stack_with_its_value() -> None:
    bars = [charts.Bar("2026-11-29", {"low": 3, "medium": 0, "high": 2}, "11-29"),
            charts.Bar("2026-11-30", {"low": 1, "medium": 4, "high": 0}, "11-30")]  # fmt: skip
    root = parse(charts.stacked_bars(bars, ("low", "medium", "high"), "per day <&>"))
    assert data(root, "rect") == [
        ("2026-11-29", "low", 3), ("2026-11-29", "high", 2), ("2026-11-30", "low", 1), ("2026-11-30", "medium", 4)
    ]  # fmt: skip
    heights = {(r.get("data-label"), r.get("data-series")): float(r.get("height", 0)) for r in root.iter(f"{NS}rect")
               if r.get("data-value")}  # fmt: skip
    assert heights[("2026-11-30", "medium")] == 4 * heights[("2026-11-30", "low")]
    assert root.get("aria-label") == "per day <&>"  # escaped in the markup, intact once parsed
    assert parse(charts.stacked_bars([], ("low",), "empty")) is not None


def test_lines_break_at_missing_values_and_mark_each_point() -> None:
    root = parse(charts.lines(["w1", "w2", "w3"], {"ROC AUC": [0.7, None, 0.8], "Recall": [0.2, 0.3, 0.4]}, "weekly"))
    assert [(s, v) for _, s, v in data(root, "circle")] == [
        ("ROC AUC", 0.7), ("ROC AUC", 0.8), ("Recall", 0.2), ("Recall", 0.3), ("Recall", 0.4)
    ]  # fmt: skip
    assert len(list(root.iter(f"{NS}polyline"))) == 1  # ROC AUC's two points are not joined across the gap


def test_gauge_places_the_marker_on_the_probability_scale() -> None:
    root = parse(charts.gauge(0.75, threshold=0.4, medium=0.3, high=0.6, width=524))
    marker = next(e for e in root.iter(f"{NS}path") if e.get("class") == "marker")
    assert float(marker.get("data-value", 0)) == 0.75 and "M380.0," in marker.get("d", "")  # 12 + 500 × 0.75 − 7
    assert [e.get("data-series") for e in root.iter(f"{NS}rect")] == ["low", "medium", "high"]


def test_grouped_bars_have_a_header_per_group_and_signed_bars() -> None:
    groups = [charts.Group("size", 0.2, [("la", 0.15, "la tip"), ("ld", -0.05, "ld tip")]),
              charts.Group("history", 0.0, [("age", 0.0, "age tip")])]  # fmt: skip
    root = parse(charts.grouped_bars(groups, "effects"))
    assert data(root, "rect") == [("la", "size", 0.15), ("ld", "size", -0.05), ("age", "history", 0.0)]
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "size (+20.0 points)" in texts and "history (0.0 points)" in texts and "-5.0" in texts
    la, ld = (r for r in root.iter(f"{NS}rect") if r.get("data-label") in ("la", "ld"))
    assert float(ld.get("x", 0)) < float(la.get("x", 0))  # a negative effect grows to the left of the axis


def test_points_have_no_negative_zero() -> None:
    assert [charts.points(v) for v in (0.0431, -0.0004, 0.0, -0.012)] == ["+4.3", "0.0", "0.0", "-1.2"]


def test_heatmap_colours_drifted_cells_and_leaves_gaps_grey() -> None:
    root = parse(
        charts.heatmap(["r1", "r2"], [("la", [(True, "0.01"), None]), ("ld", [(False, "0.4"), (True, "0.2")])], "drift")
    )
    assert data(root, "rect") == [("la", "r1", 1), ("ld", "r1", 0), ("ld", "r2", 1)]


def test_time_charts_stretch_and_fixed_ones_keep_their_size() -> None:
    bars = charts.stacked_bars([charts.Bar("d", {"low": 1}, "d")], ("low",), "x")
    line = charts.lines(["w"], {"s": [0.5]}, "y")
    grid = charts.heatmap(["r"], [("la", [(True, "0.1")])], "z")
    assert parse(bars).get("width") == parse(line).get("width") == "100%"
    assert parse(grid).get("width") == "126" and parse(charts.gauge(0.5, 0.5, 0.3, 0.6)).get("width") == "560"
