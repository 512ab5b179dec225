"""Regenerate the figures in this folder: `slmeval fit` on a synthetic study, one figure of each kind.

    python docs/figures/generate.py

The runs come from the published laws with seeded noise (tests/_scaling_helpers.py: Cuervo & Marxer
2024 Table 4-5, Muennighoff et al. 2023): 30 single-epoch speech and 30 text runs with a BLiMP-like
metric, 120 repeated-data speech runs, and an sStoryCloze-like metric that moves only from 0.53 to
0.60 over four decades of compute (a narrow log axis). The figures are what `slmeval fit` writes for
that table; nothing is drawn by hand.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from _scaling_helpers import SPEECH, multi_epoch_runs, study_table  # noqa: E402
from slmeval.cli import app  # noqa: E402

KEEP = ("loss_vs_compute", "metric_vs_compute_sstorycloze", "metric_vs_loss_blimp_speech", "iso_flop_speech",
        "multi_epoch_profile_speech")


def runs() -> pd.DataFrame:
    me = multi_epoch_runs(SPEECH, seed=3).assign(modality="speech")
    me.insert(0, "name", [f"me{i}" for i in range(len(me))])
    df = pd.concat([study_table(), me], ignore_index=True)
    c = 6 * df["N"] * df["D"]
    gamma = df["modality"].map({"speech": 0.012, "text": 0.02})
    shortfall = np.random.default_rng(11).exponential(0.01, len(df))   # runs below the envelope
    df["sstorycloze"] = 0.53 * (c / c.min()) ** gamma * np.exp(-shortfall)
    return df


def main() -> None:
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "runs.csv"
        runs().to_csv(table, index=False)
        res = CliRunner().invoke(app, ["fit", str(table), "--out", str(Path(tmp) / "fit"), "--delta", "0.03",
                                       "--bootstrap", "50", "--target", "0.9"])
        if res.exit_code:
            raise SystemExit(res.output)
        for stem in KEEP:
            shutil.copyfile(Path(tmp) / "fit" / f"{stem}.png", here / f"{stem}.png")
            print(f"wrote {here / (stem + '.png')}")


if __name__ == "__main__":
    main()
