"""`slmeval fit` on a folder mixing speech runs (slmeval results.json) and text runs (lm-eval's own
results files, and an `slmeval text` run folder): γq per modality, the text/speech efficiency ratio,
and the input rules (newest of a rerun, model_args as a dict, incompatible task versions)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _text_helpers import lm_eval_blimp_results, slmeval_speech_results
from slmeval.cli import app
from slmeval.scaling import RunsTableError, load_runs

# Known-parameter laws Q = k·C^γ: γ from Cuervo & Marxer 2024 Table 4 (BLiMP / sBLIMP), used as the
# generating truth; the fit must recover their ratio, 0.066 / 0.021.
GAMMA = {"text": 0.066, "speech": 0.021}
K = {"text": 0.0378, "speech": 0.2286}     # accuracies from ~0.5 at 1e17 FLOPs to 0.92 (text) and 0.63 (speech) at 1e21


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def mixed_folder(root: Path, seed: int = 0, n: int = 14) -> Path:
    """n speech + n text runs; a rerun (two timestamped lm-eval files) and an `slmeval text`-style folder
    (results.json beside the lm-eval file it was made from) among the text runs."""
    rng = np.random.default_rng(seed)
    rows = []
    for mod in ("speech", "text"):
        compute = np.geomspace(1e17, 1e21, n) * rng.uniform(0.8, 1.25, n)
        for i, c in enumerate(compute):
            q = K[mod] * c ** GAMMA[mod] * float(np.exp(rng.normal(0, 0.002)))
            name = f"{mod}{i}"
            n_params = 1e8 * (i + 1)
            rows.append({"name": name, "N": n_params, "D": c / (6 * n_params), "modality": mod})
            if mod == "speech":
                _write(root / name / "results.json", slmeval_speech_results(q, model=f"/ckpt/{name}"))
            elif i == 0:    # rerun: the older file holds other numbers and must be ignored
                _write(root / name / "results_2025-01-01T10-00-00.000001.json",
                       lm_eval_blimp_results(0.99, pretrained=f"org/{name}"))
                _write(root / name / "results_2025-02-01T10-00-00.000001.json",
                       lm_eval_blimp_results(q, pretrained=f"org/{name}"))
            elif i == 1:    # as `slmeval text` leaves it
                _write(root / name / "results_2025-03-01T10-00-00.000001.json",
                       lm_eval_blimp_results(q, pretrained=f"org/{name}"))
                text = slmeval_speech_results(q, model=f"org/{name}")
                text["results"] = {"text_blimp": text["results"].pop("sblimp")}
                text["configs"] = {"text_blimp": {"name": "text_blimp", "family": "sblimp", "twin": "sblimp"}}
                text["versions"] = {"text_blimp": 1}
                text["provenance"]["task_hashes"] = {"text_blimp": {"items_sha256": "d" * 64, "data_sha256": "e" * 64}}
                text["config"].update(modality="text", lm_eval={"results_file": "results_2025-03-01T10-00-00.000001.json"})
                _write(root / name / "results.json", text)
            else:
                _write(root / name / f"results_2025-0{1 + i % 9}-01T10-00-00.000001.json",
                       lm_eval_blimp_results(q, pretrained=f"org/{name}"))
    pd.DataFrame(rows).drop(columns="modality").to_csv(root.parent / "meta.csv", index=False)
    return root


def test_fit_recovers_the_text_speech_gamma_ratio(tmp_path):
    root = mixed_folder(tmp_path / "runs")
    out = tmp_path / "fit"
    res = CliRunner().invoke(app, ["fit", str(root), "--metadata", str(tmp_path / "meta.csv"), "--out", str(out),
                                   "--metric", "sblimp/acc_macro", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    fit = json.loads((out / "fit.json").read_text())
    g = fit["gamma_q"]
    # 14 runs with 0.2 % noise: estimates within 2-3 % of the truth. The percentile bootstrap over so few
    # runs is narrow (it can miss the truth by ~1 %), so intervals are checked to reach within 2 % of it.
    for mod in ("text", "speech"):
        entry = g[f"sblimp/acc_macro | {mod}"]
        assert entry["modality"] == mod and entry["n_runs"] == 14
        assert entry["gamma"] == pytest.approx(GAMMA[mod], rel=0.02)
        lo, hi = entry["ci"]["gamma"]
        assert lo < hi and lo < GAMMA[mod] * 1.02 and hi > GAMMA[mod] * 0.98
    eff = fit["efficiency"]["sblimp/acc_macro | text/speech"]
    truth = GAMMA["text"] / GAMMA["speech"]       # 3.14
    assert eff["ratio"] == pytest.approx(truth, rel=0.03)
    lo, hi = eff["ratio_ci"]
    assert lo < eff["ratio"] < hi and lo < truth * 1.02 and hi > truth * 0.98
    notes = fit["input"]["notes"]
    assert any("run 'text0': 2 results files" in n and "2025-02-01" in n and "newest" in n for n in notes)
    assert any("run 'text1'" in n for n in notes) is False      # its lm-eval file is the one results.json was made from
    assert any("text_blimp -> sblimp" in n for n in notes)
    report = (out / "report.md").read_text()
    assert "γ_text/γ_speech" in report and "## Input" in report
    assert (out / "metric_vs_compute_sblimp_acc_macro.png").is_file()   # one figure, both envelopes


def test_lm_eval_model_args_dict_names_runs_by_model_and_revision(tmp_path):
    root = tmp_path / "runs"
    for step in (1000, 2000):
        _write(root / f"r{step}" / "results_2025-01-01T00-00-00.json",
               lm_eval_blimp_results(0.6, pretrained="EleutherAI/pythia-160m", revision=f"step{step}"))
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"name": ["pythia-160m@step1000", "pythia-160m@step2000"], "N": [1.6e8] * 2,
                  "D": [2e9, 4e9]}).to_csv(meta, index=False)
    df = load_runs(root, metadata=meta, name_from="model")
    assert sorted(df["name"]) == ["pythia-160m@step1000", "pythia-160m@step2000"]
    assert set(df["modality"]) == {"text"}


def test_two_models_under_one_run_name_is_an_error(tmp_path):
    root = tmp_path / "runs"
    _write(root / "a" / "results_2025-01-01T00-00-00.json", lm_eval_blimp_results(0.6, pretrained="org/m1"))
    _write(root / "a" / "results_2025-01-02T00-00-00.json", lm_eval_blimp_results(0.6, pretrained="org/m2"))
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"name": ["a"], "N": [1e8], "D": [1e9]}).to_csv(meta, index=False)
    with pytest.raises(RunsTableError, match="run name 'a' is taken by files of different models"):
        load_runs(root, metadata=meta)


@pytest.mark.parametrize("change, message", [
    (lambda p: _write(p / "speech3" / "results.json", slmeval_speech_results(0.6, model="x", version=2)),
     r"task 'sblimp' appears at incompatible versions: 1 in .*, 2 in .*speech3/results.json"),
    (lambda p: _write(p / "speech3" / "results.json", slmeval_speech_results(0.6, model="x", items="f" * 64)),
     r"task 'sblimp' was scored on different item lists"),
    (lambda p: _write(p / "text5" / "results_2025-09-09T00-00-00.json",
                      lm_eval_blimp_results(0.6, pretrained="org/text5", version="2")),
     r"task 'text_blimp' appears at incompatible versions"),
])
def test_incompatible_task_versions_are_one_clear_error(tmp_path, change, message):
    root = mixed_folder(tmp_path / "runs", n=6)
    for stale in (root / "text5").glob("*.json"):
        stale.unlink()
    change(root)
    res = CliRunner().invoke(app, ["fit", str(root), "--metadata", str(tmp_path / "meta.csv"), "--out",
                                   str(tmp_path / "fit"), "--bootstrap", "0", "--no-plots"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    import re
    assert re.search(message, res.output.replace("\n", "")), res.output


def test_partial_runs_are_named_in_the_notes(tmp_path):
    """Runs that all used the same --limit pass the item-list check; fit reads them but says so."""
    root = tmp_path / "runs"
    for i, step in enumerate((1000, 2000)):
        doc = lm_eval_blimp_results(0.6, pretrained="org/m", revision=f"step{step}")
        doc["config"]["limit"] = 5 if i == 0 else None
        _write(root / f"r{step}" / "results_2025-01-01T00-00-00.json", doc)
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"name": ["r1000", "r2000"], "N": [1e8] * 2, "D": [1e9, 2e9]}).to_csv(meta, index=False)
    notes = load_runs(root, metadata=meta).attrs["notes"]
    assert [n for n in notes if "partial" in n] == [
        "1 partial run(s), scored on the first items of each task only (the leaderboard refuses them): "
        "r1000 (--limit 5)"]
