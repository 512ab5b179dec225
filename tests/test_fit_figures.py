"""`slmeval fit` figures and console: every axis of every figure kind carries readable labelled ticks
(read back from the matplotlib objects), PNGs at 200 dpi beside SVGs, one compute notation, the
efficiency ratio's interval on the console, skips in one table, spreads never fitted as scores."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from _scaling_helpers import SPEECH, multi_epoch_runs, study_table
from slmeval.cli import app
from slmeval.scaling.axes import log_ticks
from slmeval.scaling.plots import DPI, FIGURE_KINDS, build_figures, make_figures
from slmeval.scaling.study import FitOptions, run_study
from slmeval.scaling.tables import validate_runs

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
_LABEL = re.compile(r"^(-?\d+(?:\.\d+)?)(?:e(-?\d+))?([KMBT]?)$")


def parse_label(text: str) -> float:
    """A tick label back to its number, by the notation docs/scaling.md states (independent of fmt.py)."""
    match = _LABEL.match(text)
    assert match, f"tick label {text!r} is not a plain number"
    mantissa, exponent, suffix = match.groups()
    return float(mantissa) * 10.0 ** int(exponent or 0) * _SUFFIX[suffix]


def runs_table() -> pd.DataFrame:
    """The synthetic study (speech + text, a repeated-data speech series) plus `sstorycloze`, an
    accuracy that moves only from ~0.53 to ~0.60 over four decades of compute: a log axis with no
    decade in view, the case that used to get no label at all."""
    me = multi_epoch_runs(SPEECH, seed=3).assign(modality="speech")
    me.insert(0, "name", [f"me{i}" for i in range(len(me))])
    df = pd.concat([study_table(), me], ignore_index=True)
    c = 6 * df["N"] * df["D"]
    df["sstorycloze"] = 0.53 * (c / c.min()) ** 0.012
    df["sstorycloze_voice_std"] = 0.01      # a spread: must never be fitted
    return df


@pytest.fixture(scope="module")
def study():
    df = validate_runs(runs_table())
    return df, run_study(df, FitOptions(delta=0.03, bootstrap=0, progress=False))


def _axes_labels(fig):
    """(axes title, 'x'/'y', axis, [(tick value, label text)]) for each axis that shows ticks."""
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            lo, hi = sorted(axis.get_view_interval())
            if ax.get_label() == "<colorbar>" and name == "x":     # a colorbar has one axis
                continue
            shown = [(t.get_loc(), label.get_text()) for t in axis.get_major_ticks()
                     for label in (t.label1, t.label2)      # label2: a right-hand (colorbar) axis
                     if label.get_visible() and lo - 1e-9 * abs(hi) <= t.get_loc() <= hi + 1e-9 * abs(hi)]
            out.append((ax.get_title(), name, axis, shown))
    return out


@pytest.mark.parametrize("lo, hi, expected", [
    (3e15, 8e21, [1e16, 1e17, 1e18, 1e19, 1e20, 1e21]),   # decades
    (1e7, 1e30, [10.0 ** k for k in range(9, 31, 3)]),    # 24 decades: every 3rd, exponents divisible by 3
    (1.5, 40, [2, 5, 10, 20]),                            # 1-2-5
    (2.1, 7.9, [3, 4, 5, 6, 7]),                          # 1…9
    (0.52, 0.61, [0.525, 0.55, 0.575, 0.6]),
    (0.53, 0.66, [0.55, 0.6, 0.65]),                      # docs/scaling.md's example: 0.0325 rounded up to 0.05              # under one 1…9 step: 4 bins of 0.025 (0.0225 rounded up)
])
def test_log_ticks_rules_at_their_edges(lo, hi, expected):
    np.testing.assert_allclose(log_ticks(lo, hi), expected, rtol=1e-12)


def test_every_figure_kind_has_labelled_ticks_on_every_axis(study):
    df, result = study
    seen_kinds, narrow = set(), 0
    for stem, fig in build_figures(df, result):
        seen_kinds.add(next(k.__name__ for k in FIGURE_KINDS if stem.startswith(k.__name__)))
        for title, name, axis, shown in _axes_labels(fig):
            labels = [text for _, text in shown]
            where = f"{stem} {title!r} {name} axis"
            assert len(labels) >= 3 and all(labels), f"{where}: tick labels {labels}"
            assert len(set(labels)) == len(labels), f"{where}: two ticks read alike {labels}"
            for loc, text in shown:     # each label says the number its tick marks
                assert parse_label(text) == pytest.approx(loc, rel=0.051, abs=1e-12), f"{where}: {text} at {loc}"
            if "FLOP" in axis.get_label_text():    # compute notation: "1e21", never "10T" nor "1e+21"
                assert all(re.fullmatch(r"\d(\.\d+)?e\d+", t) for t in labels), f"{where}: {labels}"
            if axis.get_scale() == "log":
                lo, hi = sorted(axis.get_view_interval())
                narrow += hi / lo < 10
        import matplotlib.pyplot as plt

        plt.close(fig)
    assert seen_kinds == {k.__name__ for k in FIGURE_KINDS}
    assert narrow >= 2          # the narrow log axes (accuracy, loss) were among those checked


def test_pngs_are_200_dpi_beside_svgs(study, tmp_path):
    df, result = study
    written = make_figures(df, result, tmp_path)
    pngs = [f for f in written if f.endswith(".png")]
    assert sorted(f[:-4] for f in pngs) == sorted(f[:-4] for f in written if f.endswith(".svg"))
    assert DPI >= 200
    for name in pngs:
        with Image.open(tmp_path / name) as im:
            dpi = im.info["dpi"]
            # figsize >= 5.6 x 3.8 in at 200 dpi; bbox_inches="tight" trims margins only
            assert dpi == pytest.approx((DPI, DPI), abs=0.5) and im.size[0] >= 1000 and im.size[1] >= 650, name
        assert (tmp_path / name.replace(".png", ".svg")).read_text().lstrip().startswith("<?xml")


def test_spread_columns_are_never_fitted(study):
    _, result = study
    assert not any("voice_std" in k for k in [*result["gamma_q"], *result["accuracy_vs_loss"]])
    spread = [s for s in result["skipped"] if s.get("metric") == "sstorycloze_voice_std"]
    assert len(spread) == 1 and "spread" in spread[0]["reason"]


def test_fit_cli_console_ratio_interval_and_one_skip_table(tmp_path):
    df = study_table().drop(columns="loss")     # no loss law: the ratio is all this test needs
    df["sblimp/acc_voice_std"] = 0.02
    for i in range(12):   # speech-only metrics (a results folder's per-voice columns): no text runs have them
        df[f"sblimp/acc_voice_{i}"] = np.where(df["modality"] == "speech", df["blimp"], np.nan)
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "fit"
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(out), "--bootstrap", "20", "--no-plots"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    fit = json.loads((out / "fit.json").read_text())
    e = fit["efficiency"]["blimp | text/speech"]
    lo, hi = e["ratio_ci"]
    assert lo <= e["ratio"] <= hi
    assert f"γ_text/γ_speech = {e['ratio']:.3g} [{lo:.3g}, {hi:.3g}] (95% bootstrap interval)" in res.output
    assert "never improves" not in res.output and "skipped gamma_q" not in res.output
    no_runs = [s for s in fit["skipped"] if s["reason"] == "no run of this modality has the metric"]
    assert len(no_runs) == 12 and {s["modality"] for s in no_runs} == {"text"}      # all still in fit.json
    assert res.output.count("no run of this modality has the metric") == 1        # one row of one table
    flat = re.sub(r"[\s│]+", " ", res.output)
    assert "12: sblimp/acc_voice_0 (text), sblimp/acc_voice_1 (text)," in flat and "(+6 more)" in flat
    report = (out / "report.md").read_text()
    assert "| gamma_q, accuracy_vs_loss | no run of this modality has the metric | 12: " in report
    assert "sblimp/acc_voice_11 (text)" in report       # the report lists every one


def test_fit_cli_refuses_a_spread_as_metric(tmp_path):
    path = tmp_path / "runs.csv"
    study_table().assign(**{"blimp_std": 0.01}).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(tmp_path / "o"), "--metric", "blimp_std",
                                   "--bootstrap", "0", "--no-plots"])
    assert res.exit_code == 2 and "'blimp_std' is a spread" in res.output and "Traceback" not in res.output


def test_one_envelope_point_is_not_called_never_improves():
    from slmeval.scaling import fit_gamma_q

    with pytest.raises(ValueError, match="none of the 3 runs scores above the run with the least compute"):
        fit_gamma_q([1e18, 1e19, 1e20], [0.6, 0.55, 0.5])
    with pytest.raises(ValueError, match="1 run\\(s\\) with this metric"):
        fit_gamma_q([1e18], [0.6])
    assert math.isfinite(fit_gamma_q([1e18, 1e19], [0.5, 0.6]).gamma)


def test_docs_show_one_committed_figure_of_each_kind():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    shown = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", (docs / "scaling.md").read_text())
    kinds = {next(k.__name__ for k in FIGURE_KINDS if Path(f).stem.startswith(k.__name__)) for f in shown}
    assert kinds == {k.__name__ for k in FIGURE_KINDS}
    for f in shown:
        with Image.open(docs / f) as im:
            assert im.info["dpi"] == pytest.approx((DPI, DPI), abs=0.5), f
