"""fit.json (everything, machine-readable), report.md (the same for people) and the terminal summary."""
from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from slmeval.fmt import format_compute
from slmeval.io import atomic_write_text

EQUATIONS = """\
- Loss law (Eq. 4): L(N, D) = E + A/N^α + B/D^β, fitted as Σ Huber_δ(LSE(a − α log N, b − β log D, e) − log L)
  with E = e^e, A = e^a, B = e^b, by L-BFGS from every point of the init grid; single-epoch runs only.
- Allocation (Eq. 6): N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b, G = (αA/(βB))^(1/(α+β)), a = β/(α+β), b = α/(α+β).
- Multi-epoch (Eq. 7–8): U_D = min(D, U), R_D = D/U_D − 1, U_N = min(N_opt(U_D), N), R_N = N/U_N − 1,
  D' = U_D + U_D·R_D*·(1 − e^(−R_D/R_D*)), N' = U_N + U_N·R_N*·(1 − e^(−R_N/R_N*)), L = E + A/N'^α + B/D'^β
  with E, A, B, α, β fixed from the loss law.
- γq: Q = k·C^γq fitted by least squares in log-log on the running-maximum envelope.
- Mixed-modal (Aghajanyan et al. Eq. 4): L = [L_i(N, D_i) + L_j(N, D_j)]/2 − C_ij + A_ij/N^α_ij + B_ij/(D_i+D_j)^β_ij;
  synergy where C_ij > A_ij/N^α_ij + B_ij/(D_i+D_j)^β_ij (the competition barrier is the equality)."""

# Published figures shown beside the fit for orientation (Cuervo & Marxer 2024, Table 5); never used
# as outputs.
PUBLISHED = [("text (Muennighoff et al. 2023)", 1.87, 521, 1488, 0.35, 0.35, 5.31, 15.4),
             ("speech, HuBERT units (Cuervo & Marxer 2024)", 1.73, 13.9, 39.8, 0.25, 0.24, 31.0, 25.0)]


def _clean(obj):
    """JSON has no NaN / inf: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_fit_json(result: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(_clean(result), indent=2) + "\n")


def _f(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def _ci(ci: dict | None, key: str) -> str:
    if not ci or not ci.get(key):
        return ""
    lo, hi = ci[key]
    return f" [{_f(lo)}, {_f(hi)}]"


SHOWN_ITEMS = 6   # per row of the console's skip table; report.md and fit.json list them all


def efficiency_line(e: dict, level: float) -> str:
    """"γ_text/γ_speech = 3.14 [2.1, 4.4] (95% bootstrap interval)" — the interval wherever the ratio is shown."""
    fast, slow = e["modalities"]
    line = f"γ_{fast}/γ_{slow} = {_f(e['ratio'], 3)}"
    if e.get("ratio_ci"):
        return line + f" [{_f(e['ratio_ci'][0], 3)}, {_f(e['ratio_ci'][1], 3)}] ({level:.0%} bootstrap interval)"
    return line + " (no interval: --bootstrap 0)"


def skip_groups(skipped: list[dict]) -> list[tuple[str, str, list[str]]]:
    """Skips grouped by (analysis, reason), first-seen order: [(analysis, reason, ["metric (modality)", ...])].
    A results folder can skip dozens of (metric, modality) pairs for one reason; one row says it."""
    groups: dict[tuple[str, str], list[str]] = {}
    for s in skipped:
        where = [str(s[k]) for k in ("metric", "modality") if s.get(k) is not None]
        label = where[0] + (f" ({where[1]})" if len(where) > 1 else "") if where else "-"
        groups.setdefault((s["analysis"], s["reason"]), []).append(label)
    return [(a, r, items) for (a, r), items in groups.items()]


def render_markdown(result: dict, figures: list[str]) -> str:
    s = result["settings"]
    lines = ["# Scaling-law fit", "", f"{result['n_runs']} runs; Huber δ = {s['delta']:g}; bootstrap {s['bootstrap']} "
             f"replicates (seed {s['seed']}), {s['ci']:.0%} intervals.", "", "## Equations and rules", "", EQUATIONS, ""]
    notes = list((result.get("input") or {}).get("notes") or [])
    if (result.get("input") or {}).get("loss_average"):
        notes.insert(0, f"loss fitted: {result['input']['loss_average']}")
    if notes:
        lines += ["## Input", ""] + [f"- {n}" for n in notes] + [""]
    if result["loss_law"]:
        lines += ["## Loss law L(N, D) = E + A/N^α + B/D^β", "",
                  "| modality | E | A | B | α | β | objective | starts at best / total | runs |", "|---|---|---|---|---|---|---|---|---|"]
        for mod, f in result["loss_law"].items():
            ci = f.get("ci")
            lines.append(f"| {mod} | {_f(f['E'])}{_ci(ci, 'E')} | {_f(f['A'])}{_ci(ci, 'A')} | {_f(f['B'])}{_ci(ci, 'B')} "
                         f"| {_f(f['alpha'])}{_ci(ci, 'alpha')} | {_f(f['beta'])}{_ci(ci, 'beta')} | {_f(f['objective'], 6)} "
                         f"| {f['n_at_best']} / {f['n_starts']} | {f['n_runs']} |")
        lines += ["", "Published, for orientation (Cuervo & Marxer 2024, Table 5):", "",
                  "| fit | E | A | B | α | β | R_N* | R_D* |", "|---|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join([p[0]] + [f"{v:g}" for v in p[1:]]) + " |" for p in PUBLISHED]
        lines.append("")
    for mod, a in result["allocation"].items():
        lines += [f"## Compute-optimal allocation ({mod})", "",
                  f"a = {_f(a['a'])}{_ci({'a': a.get('a_ci')}, 'a')}, b = {_f(a['b'])}{_ci({'b': a.get('b_ci')}, 'b')}, "
                  f"G = {_f(a['G'])}", "", "| C (FLOPs) | N_opt | D_opt | D/N | L_opt |", "|---|---|---|---|---|"]
        lines += [f"| {format_compute(r['C'])} | {_f(r['N_opt'], 3)} | {_f(r['D_opt'], 3)} | {_f(r['tokens_per_param'], 3)} "
                  f"| {_f(r['L_opt'])} |" for r in a["iso_flop"]]
        lines.append("")
    for mod, m in result["multi_epoch"].items():
        lines += [f"## Multi-epoch ({mod})", "",
                  f"R_N* = {_f(m['R_N_star'], 3)}{_ci(m.get('ci'), 'R_N_star')}, "
                  f"R_D* = {_f(m['R_D_star'], 3)}{_ci(m.get('ci'), 'R_D_star')} "
                  f"({m['n_repeated']} runs repeat data, {m['n_excess_params']} exceed N_opt(U_D)).", "",
                  f"Near-optimal set ({m['near_optimal_rule']}): R_N* in {[_f(v, 3) for v in m['near_optimal_range']['R_N_star']]}, "
                  f"R_D* in {[_f(v, 3) for v in m['near_optimal_range']['R_D_star']]}.", ""]
        lines += [f"> **Warning:** {w}" for w in m["warnings"]] + [""]
    if result["gamma_q"]:
        rule = next(iter(result["gamma_q"].values()))["envelope_rule"]
        lines += ["## γq (metric envelope vs compute)", "", f"Envelope rule: {rule}.", "",
                  "| metric | modality | γq | k | envelope / runs | R² |", "|---|---|---|---|---|---|"]
        lines += [f"| {g['metric']} | {g['modality']} | {_f(g['gamma'])}{_ci(g.get('ci'), 'gamma')} | {_f(g['k'])} "
                  f"| {g['n_envelope']} / {g['n_runs']} | {_f(g['r2'], 3)} |" for g in result["gamma_q"].values()]
        lines.append("")
    for key, e in result["efficiency"].items():
        fast, slow = e["modalities"]
        lines += [f"### Relative efficiency {key}", "", efficiency_line(e, result["settings"]["ci"])]
        for t in e["targets"]:
            lines.append(f"- to reach {t['Q']:g}: {fast} {format_compute(t['C_fast'])} FLOPs, "
                         f"{slow} {format_compute(t['C_slow'])} FLOPs")
        lines += ["", f"Caveat: {e['caveat']}.", ""]
    if result["accuracy_vs_loss"]:
        lines += ["## Metric vs loss", "", "| metric | modality | slope | intercept | Pearson r | used / saturated |",
                  "|---|---|---|---|---|---|"]
        for a in result["accuracy_vs_loss"].values():
            lines.append(f"| {a['metric']} | {a['modality']} | {_f(a['slope'])}{_ci(a['ci'], 'slope')} | "
                         f"{_f(a['intercept'])}{_ci(a['ci'], 'intercept')} | {_f(a['pearson_r'], 3)}{_ci(a['ci'], 'pearson_r')} "
                         f"| {a['n_used']} / {a['n_saturated']} |")
        lines += ["", f"Saturation rule: {next(iter(result['accuracy_vs_loss'].values()))['saturation_rule']}.", ""]
    for mod, m in result["mixed_modal"].items():
        b = m["barrier"]
        lines += [f"## Mixed-modal ({mod})", "", f"C_ij = {_f(m['C'])}, A_ij = {_f(m['A'])}, α_ij = {_f(m['alpha'])}, "
                  f"B_ij = {_f(m['B'])}, β_ij = {_f(m['beta'])} ({m['n_runs']} bi-modal runs); "
                  f"{sum(m['synergy_per_run'])} of them past the barrier.", "",
                  (f"Compute-optimal barrier crossing: N = {b['N']:.4g}, D = {b['D']:.4g}, C = {format_compute(b['C'], 3)} FLOPs."
                   if b.get("crossed") else f"Barrier not crossed: {b.get('reason')}."), f"Rule: {b['rule']}.", ""]
    if result["skipped"]:
        lines += ["## Skipped analyses", "", "| analysis | why | skipped for |", "|---|---|---|"]
        lines += [f"| {analysis} | {reason} | {len(items)}: {', '.join(items)} |"
                  for analysis, reason, items in skip_groups(result["skipped"])] + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures if f.endswith(".png")] + [""]
    return "\n".join(lines)


def print_summary(result: dict, console: Console | None = None) -> None:
    console = console or Console()
    if result["loss_law"]:
        t = Table(title="L(N, D) = E + A/N^α + B/D^β")
        for col in ("modality", "E", "A", "B", "α", "β", "objective", "at best"):
            t.add_column(col)
        for mod, f in result["loss_law"].items():
            t.add_row(mod, *(_f(f[k]) + _ci(f.get("ci"), k) for k in ("E", "A", "B", "alpha", "beta")),
                      _f(f["objective"], 6), f"{f['n_at_best']}/{f['n_starts']}")
        console.print(t)
    if result["gamma_q"]:
        t = Table(title="γq on the envelope")
        for col in ("metric", "modality", "γq", "k", "envelope"):
            t.add_column(col)
        for g in result["gamma_q"].values():
            t.add_row(g["metric"], g["modality"], _f(g["gamma"]) + _ci(g.get("ci"), "gamma"), _f(g["k"]), str(g["n_envelope"]))
        console.print(t)
    for key, e in result["efficiency"].items():
        console.print(f"efficiency {e['metric']}: {efficiency_line(e, result['settings']['ci'])}")
        fast, slow = e["modalities"]
        for tg in e["targets"]:
            console.print(f"  reach {tg['Q']:g}: {fast} {format_compute(tg['C_fast'])} FLOPs, "
                          f"{slow} {format_compute(tg['C_slow'])} FLOPs")
        console.print(f"  [yellow]caveat:[/] {e['caveat']}")
    for mod, m in result["multi_epoch"].items():
        console.print(f"multi-epoch {mod}: R_N* = {_f(m['R_N_star'], 3)}, R_D* = {_f(m['R_D_star'], 3)}")
        for w in m["warnings"]:
            console.print(f"  [yellow]warning:[/] {w}")
    if result["skipped"]:
        t = Table(title=f"Skipped ({len(result['skipped'])}; every one in fit.json and report.md)")
        for col in ("analysis", "why", "skipped for"):
            t.add_column(col, overflow="fold")
        for analysis, reason, items in skip_groups(result["skipped"]):
            shown = ", ".join(items[:SHOWN_ITEMS]) + (f" … (+{len(items) - SHOWN_ITEMS} more)" if len(items) > SHOWN_ITEMS else "")
            t.add_row(analysis, reason, f"{len(items)}: {shown}")
        console.print(t)
