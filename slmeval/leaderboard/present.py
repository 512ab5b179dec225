"""What the page shows beyond the raw rows: the protocol in words, which sections are benchmarks, and
the model × task summary table (Open LLM Leaderboard style) with an average over the paper benchmarks.

Rules (docs/leaderboard.md states them for readers):
* a *benchmark* section is one a registered task file declares (`leaderboard: {section}`) and that is
  not bundled toy data, or one of the papers' benchmarks (sBLIMP, sStoryCloze, tStoryCloze); *mini*
  sections are declared by mini task files; every other task (an ad-hoc or plugin task with no
  declared section, e.g. each `text_blimp_<paradigm>`) is *other*: listed in one "Other tasks" table,
  never given its own section or chart;
* the summary has one row per model and kind (verified / reported) and one column per benchmark and
  mini section; the **average** is the mean over sBLIMP, sStoryCloze and tStoryCloze — the three
  benchmarks the papers report, so verified and reported rows average the same tasks — and is blank
  unless the model has all three. A reported model whose papers give two different numbers for one
  benchmark shows the first (file order) and names every one in the cell's tooltip.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from slmeval.leaderboard.entries import SECTION_ORDER, SECTION_TITLES, Entry

AVERAGE_OVER = SECTION_ORDER
BENCHMARK, MINI, OTHER = "benchmark", "mini", "other"


def _credit(value: object) -> str:
    names = {0.5: "½ credit", 0.0: "no credit", 1.0: "full credit"}
    return names.get(value, f"{value} credit") if isinstance(value, (int, float)) else f"{value} credit"


def describe_protocol(protocol: dict | None, tie_value: float | None = None) -> str:
    """"slmeval: mean log-prob per unit, after BOS, EOS not scored, ties ½ credit" — the protocol as it
    applied to one task: `tie_value` is that task's tie credit (`task_tie` of its record, which resolves
    it as the run did: Protocol.tie_value_for); None: the protocol's own `tie_value`."""
    if not isinstance(protocol, dict) or not protocol:
        return ""
    score = protocol.get("score")
    parts = ["mean log-prob per unit" if score == "mean" else "summed log-prob" if score == "sum"
             else f"score {score}"]
    start = protocol.get("start_token")
    parts.append({"bos": "after BOS", "eos": "after EOS (as start token)",
                  "none": "no start token (first unit unscored)"}.get(start, f"start {start}"))
    parts.append("EOS scored" if protocol.get("score_eos") else "EOS not scored")
    parts.append(f"ties {_credit(protocol.get('tie_value') if tie_value is None else tie_value)}")
    dtype = protocol.get("logprob_dtype")
    if dtype and dtype != "float32":
        parts.append(f"log-probs in {dtype}")
    return f"{protocol.get('name', '?')}: " + ", ".join(parts)


def declared_sections() -> tuple[set[str], set[str]]:
    """(benchmark sections, mini sections) declared by the registered task files."""
    from slmeval.task_loader.registry import all_tasks

    benchmark, mini = set(SECTION_ORDER), set()
    for task in all_tasks().values():
        if task.leaderboard.get("section"):
            (mini if task.mini else benchmark).add(task.section)
    return benchmark - mini, mini


def section_kind(section: str, benchmark: set[str], mini: set[str]) -> str:
    return MINI if section in mini else BENCHMARK if section in benchmark else OTHER


@dataclass
class SummaryRow:
    model: str
    kind: str
    cells: dict[str, float | None]            # section -> accuracy (percent) shown
    notes: dict[str, str]                     # section -> tooltip ("" when one number)
    average: float | None
    params: float | None
    compute: float | None
    compute_approx: bool
    unofficial: bool
    reproduced: str = ""                      # the board re-ran it (ledger date), as on the section rows


@dataclass
class Summary:
    columns: list[tuple[str, str, bool]]       # (section, title, counts in the average)
    rows: list[SummaryRow] = field(default_factory=list)
    average_over: tuple[str, ...] = tuple(SECTION_TITLES.get(s, s) for s in AVERAGE_OVER)   # titles, for the page


def build_summary(entries: list[Entry], sections: list[str], titles: dict[str, str]) -> Summary:
    """`sections`: the benchmark and mini sections shown, in page order."""
    columns = [(s, titles.get(s, SECTION_TITLES.get(s, s)), s in AVERAGE_OVER) for s in sections]
    grouped: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        if e.section in sections and e.acc is not None:
            grouped.setdefault((e.model, e.kind), []).append(e)
    summary = Summary(columns)
    for (model, kind), rows in grouped.items():
        cells, notes = {}, {}
        for section in sections:
            here = [e for e in rows if e.section == section]
            if not here:
                continue
            cells[section] = here[0].acc
            if len({e.acc for e in here}) > 1:
                notes[section] = "; ".join(f"{e.acc:.2f} ({e.provenance or e.task})" for e in here)
        average = (sum(cells[s] for s in AVERAGE_OVER) / len(AVERAGE_OVER)
                   if all(cells.get(s) is not None for s in AVERAGE_OVER) else None)
        known = next((e for e in rows if e.compute), rows[0])
        summary.rows.append(SummaryRow(model, kind, cells, notes, average,
                                       next((e.params for e in rows if e.params), None), known.compute,
                                       known.compute_approx, any(e.data_status == "unofficial data" for e in rows),
                                       next((e.reproduced for e in rows if e.reproduced), "")))
    summary.rows.sort(key=lambda r: (r.average is None, -(r.average or 0.0), r.model.casefold()))
    return summary
