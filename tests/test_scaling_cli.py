"""Runs-table input (CSV / JSONL / parquet, results folders with slmeval and lm-eval JSONs), its
errors, and `slmeval fit` end to end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _scaling_helpers import SPEECH, multi_epoch_runs, study_table
from slmeval.cli import app
from slmeval.scaling import RunsTableError, load_runs


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_table_formats_read_alike(tmp_path, fmt):
    df = study_table().head(8)
    path = tmp_path / f"runs.{fmt}"
    {"csv": lambda: df.to_csv(path, index=False), "jsonl": lambda: df.to_json(path, orient="records", lines=True),
     "parquet": lambda: df.to_parquet(path)}[fmt]()
    runs = load_runs(path)
    np.testing.assert_allclose(runs["C"], 6 * df["N"] * df["D"])
    np.testing.assert_allclose(runs["loss"], df["loss"])
    assert runs["U"].isna().all()


def test_epochs_give_unique_tokens(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"name": ["a", "b"], "N": [1e8, 1e8], "D": [4e9, 1e9], "epochs": [4, 1], "loss": [2.0, 2.1],
                  "C": [3e18, None]}).to_csv(path, index=False)
    runs = load_runs(path)
    assert runs["U"].tolist() == [1e9, 1e9] and runs["C"].tolist() == [3e18, 6e17]


@pytest.mark.parametrize("change,message", [
    (lambda d: d.drop(columns="D"), "missing column"),
    (lambda d: d.assign(N=[-1.0] + [1e8] * (len(d) - 1)), "'N' must be > 0"),
    (lambda d: d.assign(loss=[0.0] + [2.0] * (len(d) - 1)), "'loss' must be > 0"),
    (lambda d: d.assign(modality="speach"), "unknown modality 'speach'"),
    (lambda d: d.assign(modality="speech+text"), "need a column 'D_speech'"),
    (lambda d: d.assign(N="big"), "'N' must be numeric"),
])
def test_bad_tables_get_one_clear_error(tmp_path, change, message):
    path = tmp_path / "r.csv"
    change(study_table().head(4)).to_csv(path, index=False)
    with pytest.raises(RunsTableError, match=message):
        load_runs(path)


def _results_folder(tmp_path):
    root = tmp_path / "results"
    (root / "s1").mkdir(parents=True)
    (root / "s1" / "results.json").write_text(json.dumps({
        "results": {"sblimp": {"acc": 0.55, "acc_stderr": 0.01, "acc_macro": 0.56, "n_pairs": 100}},
        "config": {"model": "/ckpt/s1"}}))
    (root / "pythia").mkdir()
    (root / "pythia" / "results_2024-01-01.json").write_text(json.dumps({
        "results": {"blimp": {"alias": "blimp", "acc,none": 0.81, "acc_stderr,none": 0.002}},
        "config": {"model_args": "pretrained=EleutherAI/pythia-160m,dtype=float32"}}))
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"name": ["s1", "pythia"], "N": [8.5e7, 8.5e7], "D": [1e9, 3e11], "loss": [2.5, 2.9],
                  "modality": ["speech", "text"]}).to_csv(meta, index=False)
    return root, meta


def test_results_folder_joins_slmeval_and_lm_eval_metrics(tmp_path):
    root, meta = _results_folder(tmp_path)
    runs = load_runs(root, metadata=meta).set_index("name")
    assert runs.loc["s1", "sblimp/acc"] == 0.55 and runs.loc["s1", "sblimp/acc_macro"] == 0.56
    assert runs.loc["pythia", "blimp/acc"] == 0.81
    assert "sblimp/acc_stderr" not in runs and "blimp/alias" not in runs
    by_regex = load_runs(root, metadata=meta, name_from=r"^([^/]+)/")
    assert by_regex.set_index("name").loc["pythia", "blimp/acc"] == 0.81


def test_results_folder_errors(tmp_path):
    root, meta = _results_folder(tmp_path)
    pd.DataFrame({"name": ["s1"], "N": [1e8], "D": [1e9], "loss": [2.5]}).to_csv(meta, index=False)
    with pytest.raises(RunsTableError, match=r"no metadata row for run\(s\) \['pythia'\]"):
        load_runs(root, metadata=meta)
    with pytest.raises(RunsTableError, match="needs --metadata"):
        load_runs(root)
    with pytest.raises(RunsTableError, match=r"\['pythia-160m'\]"):     # lm-eval: model_args pretrained=
        load_runs(root, metadata=meta, name_from="model")
    with pytest.raises(RunsTableError, match="has no \\(group\\) match"):
        load_runs(root, metadata=meta, name_from=r"^nomatch/(.*)")


@pytest.mark.slow
def test_fit_command_end_to_end(tmp_path):
    table = study_table()
    me = multi_epoch_runs(SPEECH, seed=3).assign(modality="speech")
    me.insert(0, "name", [f"me{i}" for i in range(len(me))])
    path = tmp_path / "runs.csv"
    pd.concat([table, me], ignore_index=True).to_csv(path, index=False)
    out = tmp_path / "fit"
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(out), "--delta", "0.03", "--bootstrap", "10",
                                   "--target", "0.9"])
    assert res.exit_code == 0, res.output
    fit = json.loads((out / "fit.json").read_text())
    assert set(fit["loss_law"]) == {"speech", "text"}
    law = fit["loss_law"]["speech"]
    assert law["n_starts"] == 4500 and law["n_runs"] == 30 and law["ci"]["E"][0] <= law["E"] <= law["ci"]["E"][1]
    assert fit["allocation"]["speech"]["a"] == pytest.approx(law["beta"] / (law["alpha"] + law["beta"]))
    assert fit["multi_epoch"]["speech"]["n_repeated"] > 0 and fit["settings"]["delta"] == 0.03
    eff = fit["efficiency"]["blimp | text/speech"]
    assert eff["ratio"] == pytest.approx(fit["gamma_q"]["blimp | text"]["gamma"] / fit["gamma_q"]["blimp | speech"]["gamma"])
    assert eff["targets"][0]["Q"] == 0.9
    report = (out / "report.md").read_text()
    assert "Multi-epoch (speech)" in report and "running maximum" in report and "Saturation rule" in report
    for stem in ("loss_vs_compute", "metric_vs_compute_blimp", "metric_vs_loss_blimp_speech", "iso_flop_speech",
                 "multi_epoch_profile_speech"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.svg").exists()


def test_fit_command_reports_bad_input(tmp_path):
    path = tmp_path / "runs.csv"
    study_table().head(3).assign(modality="video").to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown modality 'video'" in res.output


def test_fit_command_rejects_unknown_compare_modality(tmp_path):
    path = tmp_path / "runs.csv"
    study_table().drop(columns="loss").to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(tmp_path / "o"), "--compare", "text/code",
                                   "--bootstrap", "0", "--no-plots"])
    assert res.exit_code == 2 and "modality 'code' has no uni-modal runs" in res.output
