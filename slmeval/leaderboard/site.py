"""Render the static leaderboard: index.html (tables + inline SVG scatter), leaderboard.json, leaderboard.csv.

Every string that came from a submission is untrusted: the page is rendered by a jinja2 environment
with autoescaping on (HTML and the inline SVG alike), and a Content-Security-Policy allows only the
page's own inline script and style (by hash), so even a missed escape could not run injected code.
"""
from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from markupsafe import Markup

from slmeval.io import atomic_write_text
from slmeval.leaderboard.entries import REPORTED, Entry, build_entries, sections as section_keys, to_csv, to_json
from slmeval.leaderboard.literature import load_literature
from slmeval.leaderboard.present import BENCHMARK, OTHER, build_summary, declared_sections, section_kind
from slmeval.fmt import format_compute
from slmeval.leaderboard.quantities import format_count
from slmeval.leaderboard.store import Board

WIDTH, HEIGHT = 760, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 24, 16, 56
ASSETS = Path(__file__).parent / "templates"
OTHER_SECTION = "_other"     # one section for every task without a declared leaderboard section
OTHER_TITLE = "Other tasks (no leaderboard section declared: table only)"


@dataclass
class Point:
    x: float
    y: float
    r: float
    kind: str
    unofficial: bool
    label: str
    title: str
    label_x: float | None = None      # None: no room for a label; the point keeps its tooltip
    label_y: float | None = None
    label_anchor: str = "start"


CHAR_WIDTH, LABEL_HEIGHT = 6.2, 12.0   # approximate 11px sans-serif metrics for collision tests


def place_labels(points: list[Point], width: float, height: float,
                 reserved: list[tuple[float, float, float, float]] = ()) -> None:
    """Greedy label placement: submitted (consistent) points first, then larger models; a label that would overlap
    another label or a marker, or leave the chart, is dropped (the point's tooltip still names it)."""
    boxes: list[tuple[float, float, float, float]] = [(p.x - p.r, p.y - p.r, p.x + p.r, p.y + p.r) for p in points]
    placed: list[tuple[float, float, float, float]] = list(reserved)   # e.g. the legend

    def free(box: tuple[float, float, float, float], own: int) -> bool:
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            return False
        hits = lambda b: x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1   # noqa: E731
        return not any(hits(b) for i, b in enumerate(boxes) if i != own) and not any(map(hits, placed))

    order = sorted(range(len(points)), key=lambda i: (points[i].kind == "reported", -points[i].r))
    for i in order:
        p = points[i]
        w = CHAR_WIDTH * len(p.label)
        candidates = [  # (text x, baseline y, anchor, box)
            (p.x + p.r + 3, p.y + 4, "start", (p.x + p.r + 2, p.y - 8, p.x + p.r + 4 + w, p.y + 4)),
            (p.x - p.r - 3, p.y + 4, "end", (p.x - p.r - 4 - w, p.y - 8, p.x - p.r - 2, p.y + 4)),
            (p.x, p.y - p.r - 4, "middle", (p.x - w / 2, p.y - p.r - 4 - LABEL_HEIGHT, p.x + w / 2, p.y - p.r - 3)),
            (p.x, p.y + p.r + 12, "middle", (p.x - w / 2, p.y + p.r + 1, p.x + w / 2, p.y + p.r + 13)),
        ]
        for text_x, text_y, anchor, box in candidates:
            if free(box, i):
                p.label_x, p.label_y, p.label_anchor = round(text_x, 1), round(text_y, 1), anchor
                placed.append(box)
                break


@dataclass
class Scatter:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    points: list[Point]
    x_ticks: list[tuple[float, str]]      # (pixel, plain-number label: "1e21")
    y_ticks: list[tuple[float, str]]
    hidden: int                            # rows of the section without a known compute


def _y_step(span: float) -> float:
    return 2.0 if span <= 12 else 5.0 if span <= 40 else 10.0


def build_scatter(entries: list[Entry]) -> Scatter | None:
    """Accuracy (y) against log10 training compute (x); marker area proportional to parameters."""
    plotted = [e for e in entries if e.compute and e.compute > 0 and e.acc is not None]
    if not plotted:
        return None
    x_lo = math.floor(min(math.log10(e.compute) for e in plotted))
    x_hi = max(math.ceil(max(math.log10(e.compute) for e in plotted)), x_lo + 1)
    step = _y_step(max(e.acc for e in plotted) - min(e.acc for e in plotted))
    y_lo = math.floor(min(e.acc for e in plotted) / step) * step
    y_hi = max(math.ceil(max(e.acc for e in plotted) / step) * step, y_lo + step)
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM
    px = lambda v: left + (v - x_lo) / (x_hi - x_lo) * (right - left)      # noqa: E731
    py = lambda v: bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)    # noqa: E731
    largest = max((e.params or 0.0) for e in plotted) or 1.0
    points = []
    for e in sorted(plotted, key=lambda e: -(e.params or 0.0)):   # big markers first, small ones stay visible
        r = 3.5 + 14.0 * math.sqrt(e.params / largest) if e.params else 3.5
        compute = ("~" if e.compute_approx else "") + f"{format_compute(e.compute)} FLOPs"
        params = f", {format_count(e.params)} parameters" if e.params else ""
        title = f"{e.model} ({e.kind}{', ' + e.data_status if e.data_status else ''}): {e.acc:.2f}% on {e.task}, " \
                f"{compute}{params}"
        points.append(Point(round(px(math.log10(e.compute)), 1), round(py(e.acc), 1), round(r, 1), e.kind,
                            e.data_status == "unofficial data", e.model, title))
    legend = (left + 12, top + 8, left + 262, top + 22)   # matches the legend drawn by the template
    place_labels(points, WIDTH, bottom, reserved=[legend])
    x_ticks = [(round(px(k), 1), format_compute(10.0 ** k)) for k in range(x_lo, x_hi + 1)]
    n_y = int(round((y_hi - y_lo) / step))
    y_ticks = [(round(py(y_lo + i * step), 1), f"{y_lo + i * step:g}") for i in range(n_y + 1)]
    return Scatter(WIDTH, HEIGHT, left, top, right, bottom, points, x_ticks, y_ticks,
                   hidden=len([e for e in entries if e.acc is not None]) - len(plotted))


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_page(entries: list[Entry], generated: str, ledger_head: str = "") -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ASSETS), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    script = (ASSETS / "sort.js").read_text(encoding="utf-8")
    style = (ASSETS / "style.css").read_text(encoding="utf-8")
    sections = []
    benchmark, mini = declared_sections()
    kinds = {key: section_kind(key, benchmark, mini) for key in section_keys(entries)}
    for key in [k for k in kinds if kinds[k] != OTHER] + ([OTHER_SECTION] if OTHER in kinds.values() else []):
        members = [k for k, kind in kinds.items() if kind == OTHER] if key == OTHER_SECTION else [key]
        rows = sorted((e for e in entries if e.section in members), key=lambda e: (e.acc is None, -(e.acc or 0.0)))
        title = OTHER_TITLE if key == OTHER_SECTION else next(
            (e.section_title for e in rows if e.kind != REPORTED and e.section_title),
            next((e.section_title for e in rows if e.section_title), key))
        # charts for benchmark sections only: never for toy data or ad-hoc tasks, never with a single point
        scatter = build_scatter(rows) if kinds.get(key) == BENCHMARK else None
        sections.append({"key": key, "title": title, "rows": rows, "kind": kinds.get(key, OTHER),
                         "has_macro": any(e.acc_macro is not None for e in rows),
                         "scatter": scatter if scatter and len(scatter.points) >= 2 else None})
    shown = [s["key"] for s in sections if s["kind"] != OTHER]
    summary = build_summary(entries, shown, {s["key"]: s["title"] for s in sections})
    csp = (f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
           f"img-src 'none'; base-uri 'none'; form-action 'none'")
    return env.get_template("leaderboard.html.j2").render(
        sections=sections, summary=summary, generated=generated, csp=csp, fmt_count=format_count,
        fmt_compute=format_compute, REPORTED=REPORTED,
        n_consistent=len({e.model for e in entries if e.kind != REPORTED}),
        n_reproduced=len({e.model for e in entries if e.kind != REPORTED and e.reproduced}), ledger_head=ledger_head,
        n_reported=len({e.model for e in entries if e.kind == REPORTED}),
        # Our own constant files, not submitted text: inserted verbatim so their CSP hashes match.
        script=Markup(script), style=Markup(style))


def build_site(board: Board, out_dir: Path) -> list[Path]:
    """Write index.html, leaderboard.json and leaderboard.csv into out_dir (each atomically)."""
    official = board.official_tasks()
    entries = build_entries(board.submissions(), load_literature(board.literature_path), official)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    outputs = {"index.html": render_page(entries, generated, board.ledger().head),
               "leaderboard.json": to_json(entries, generated) + "\n",
               "leaderboard.csv": to_csv(entries)}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in outputs.items():
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    return written


__all__ = ["build_scatter", "build_site", "render_page"]
