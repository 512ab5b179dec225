"""Figures of `slmeval fit` (matplotlib, Agg backend; every figure as a PNG at DPI dots per inch and an
SVG beside it, written atomically; tick labels by slmeval/scaling/axes.py)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from matplotlib.figure import Figure  # noqa: E402

from slmeval.fmt import format_compute  # noqa: E402
from slmeval.io import atomic_path, safe_name  # noqa: E402
from slmeval.scaling.allocation import optimal_loss  # noqa: E402
from slmeval.scaling.axes import readable_axes  # noqa: E402
from slmeval.scaling.downstream import envelope_mask  # noqa: E402


DPI = 200   # a 6.4 x 4.4 in figure is 1280 x 880 px: readable when embedded at full width


def _finish(fig) -> Figure:
    for ax in fig.axes:
        readable_axes(ax)
    fig.tight_layout()
    return fig


def save_figure(fig, out_dir: Path, stem: str) -> list[str]:
    """`stem`.png (DPI) and `stem`.svg under out_dir, atomically; closes the figure."""
    written = []
    for ext in ("png", "svg"):
        target = out_dir / safe_name(f"{stem}.{ext}", "figure file name")   # stems hold metric names
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format=ext)
        written.append(target.name)
    plt.close(fig)
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _colors(mods) -> dict:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {m: cycle[i % len(cycle)] for i, m in enumerate(sorted(mods))}


Figures = Iterator[tuple[str, Figure]]   # (file stem, finished figure)


def loss_vs_compute(df: pd.DataFrame, result: dict) -> Figures:
    rows = df[df["loss"].notna() & ~df["modality"].str.contains("+", regex=False)]
    if rows.empty:
        return
    colors = _colors(rows["modality"].unique())
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for mod, sub in rows.groupby("modality"):
        ax.scatter(sub["C"], sub["loss"], s=14, alpha=0.5, color=colors[mod], label=f"{mod} runs")
        # loss envelope: the lowest loss at or below each compute (running minimum)
        env = envelope_mask(sub["C"].to_numpy(), -sub["loss"].to_numpy())
        e = sub[env].sort_values("C")
        ax.plot(e["C"], e["loss"], "o-", ms=4, color=colors[mod], lw=1, label=f"{mod} envelope")
        law = result["loss_law"].get(mod)
        if law and law["alpha"] > 0 and law["beta"] > 0:
            c = np.geomspace(sub["C"].min(), sub["C"].max() * 10, 100)
            ax.plot(c, optimal_loss(c, law["E"], law["A"], law["B"], law["alpha"], law["beta"]), "--",
                    color=colors[mod], label=f"{mod} fit at N_opt(C), D_opt(C)")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="test loss", title="Loss vs compute")
    ax.legend(fontsize=7)
    yield "loss_vs_compute", _finish(fig)


def metric_vs_compute(df: pd.DataFrame, result: dict) -> Figures:
    metrics = sorted({v["metric"] for v in result["gamma_q"].values()})
    for metric in metrics:
        rows = df[df[metric].notna() & ~df["modality"].str.contains("+", regex=False)]
        colors = _colors(rows["modality"].unique())
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for mod, sub in rows.groupby("modality"):
            env = envelope_mask(sub["C"].to_numpy(), sub[metric].to_numpy())
            ax.scatter(sub["C"], sub[metric], s=12, alpha=0.35, color=colors[mod])
            ax.scatter(sub["C"][env], sub[metric][env], s=22, color=colors[mod], edgecolor="k", lw=0.5)
            fit = result["gamma_q"].get(f"{metric} | {mod}")
            if fit:
                c = np.geomspace(sub["C"].min(), sub["C"].max(), 50)
                ax.plot(c, fit["k"] * c ** fit["gamma"], color=colors[mod], label=f"{mod}: γq = {fit['gamma']:.3f}")
        ratios = [f"γ_{e['modalities'][0]}/γ_{e['modalities'][1]} = {e['ratio']:.2f}"
                  + (f" [{e['ratio_ci'][0]:.2f}, {e['ratio_ci'][1]:.2f}]" if e.get("ratio_ci") else "")
                  for e in result["efficiency"].values() if e["metric"] == metric]
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=metric,
               title=f"{metric} vs compute (envelope outlined)" + ("\n" + "; ".join(ratios) if ratios else ""))
        ax.legend(fontsize=7)
        yield f"metric_vs_compute_{_slug(metric)}", _finish(fig)


def metric_vs_loss(df: pd.DataFrame, result: dict) -> Figures:
    for key, fit in result["accuracy_vs_loss"].items():
        metric, mod = fit["metric"], fit["modality"]
        rows = df.set_index("name").loc[fit["runs"]]
        sat = np.asarray(fit["saturated"], bool)
        fig, ax = plt.subplots(figsize=(5.6, 4.2))
        ax.scatter(rows["loss"][~sat], rows[metric][~sat], s=16, label="pre-saturation (fitted)")
        if sat.any():
            ax.scatter(rows["loss"][sat], rows[metric][sat], s=16, facecolors="none", edgecolors="gray",
                       label="saturated (excluded)")
        x = np.linspace(rows["loss"][~sat].min(), rows["loss"][~sat].max(), 20)
        ax.plot(x, fit["intercept"] + fit["slope"] * x, "k--", lw=1,
                label=f"r = {fit['pearson_r']:.3f} [{fit['ci']['pearson_r'][0]:.3f}, {fit['ci']['pearson_r'][1]:.3f}]")
        ax.set(xlabel="test loss", ylabel=metric, title=f"{metric} vs loss ({mod})")
        ax.legend(fontsize=7)
        yield f"metric_vs_loss_{_slug(key)}", _finish(fig)


def iso_flop(df: pd.DataFrame, result: dict) -> Figures:
    for mod, alloc in result["allocation"].items():
        fig, ax = plt.subplots(figsize=(6.0, 4.2))
        for row in alloc["iso_flop"]:
            line, = ax.plot(row["curve"]["N"], row["curve"]["loss"], lw=1, label=f"C = {format_compute(row['C'])} FLOPs")
            ax.plot([row["N_opt"]], [row["L_opt"]], "o", color=line.get_color(), ms=4)
        ax.set(xscale="log", xlabel="parameters N", ylabel="predicted loss",
               title=f"Iso-FLOP curves ({mod}; dots: N_opt)")
        ax.legend(fontsize=6, ncol=2)
        yield f"iso_flop_{_slug(mod)}", _finish(fig)


def multi_epoch_profile(df: pd.DataFrame, result: dict) -> Figures:
    for mod, me in result["multi_epoch"].items():
        axis = np.asarray(me["profile"]["axis"])
        surf = np.asarray(me["profile"]["objective"])
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9.5, 3.8))
        im = ax0.pcolormesh(axis, axis, np.log10(surf / surf.min()).T + 1e-12, shading="auto", cmap="viridis")
        ax0.plot(me["R_N_star"], me["R_D_star"], "r*", ms=9)
        ax0.set(xscale="log", yscale="log", xlabel="R_N*", ylabel="R_D*", title="log10(objective / min)")
        fig.colorbar(im, ax=ax0)
        ax1.plot(axis, me["profile"]["profile_R_N_star"], label="profile over R_N*")
        ax1.plot(axis, me["profile"]["profile_R_D_star"], label="profile over R_D*")
        ax1.set(xscale="log", yscale="log", xlabel="R*", ylabel="objective minimised over the other R*", title=f"Multi-epoch profile ({mod})")
        ax1.legend(fontsize=7)
        yield f"multi_epoch_profile_{_slug(mod)}", _finish(fig)


FIGURE_KINDS = (loss_vs_compute, metric_vs_compute, metric_vs_loss, iso_flop, multi_epoch_profile)


def build_figures(df: pd.DataFrame, result: dict) -> Figures:
    """Every figure the fit supports, one at a time (each is closed by save_figure or the caller)."""
    for kind in FIGURE_KINDS:
        yield from kind(df, result)


def make_figures(df: pd.DataFrame, result: dict, out_dir: Path) -> list[str]:
    written = []
    for stem, fig in build_figures(df, result):
        written += save_figure(fig, Path(out_dir), stem)
    return written
