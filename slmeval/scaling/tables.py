"""Runs tables: read, join and validate the input of `slmeval fit`.

Canonical columns: `name`, `N` (non-embedding parameters), `D` (tokens seen), optional `U` (unique
tokens) or `epochs` (then U = D/epochs), optional `C` (FLOPs; default 6·N·D), `loss`, `modality`,
bi-modal token columns `D_<modality>`, and any number of metric columns (numeric, anything else).

Sources: a CSV / JSONL / parquet table; or a folder of slmeval `results.json` files (speech or
text runs) and/or lm-eval result JSONs joined with a metadata table by run name
(slmeval/scaling/results_folder.py).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class RunsTableError(ValueError):
    """Input that cannot become a runs table; the message names the file/field and what was expected."""


KNOWN_MODALITIES = {"speech", "text", "code", "image", "image-text", "speech-text", "molecules", "audio"}
ALIASES = {"run": "name", "model": "name", "params": "N", "n_params": "N", "parameters": "N",
           "tokens": "D", "train_tokens": "D", "unique_tokens": "U", "flops": "C", "compute": "C",
           "test_loss": "loss", "val_loss": "loss"}
RESERVED = {"name", "N", "D", "U", "epochs", "C", "loss", "modality", "loss_tokens", "loss_average", "seed", "step"}
# What a `loss` value averages (`slmeval loss --average`, recorded in the column `loss_average`).
LOSS_AVERAGES = ("token", "utterance")


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise RunsTableError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except ValueError as exc:
        raise RunsTableError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc
    raise RunsTableError(f"{path}: unknown table format {suffix!r}; expected .csv, .tsv, .jsonl, .parquet")


def canonical_columns(df: pd.DataFrame, source) -> pd.DataFrame:
    renames = {c: ALIASES[c] for c in df.columns if c in ALIASES and ALIASES[c] not in df.columns}
    df = df.rename(columns=renames)
    dup = df.columns[df.columns.duplicated()].tolist()
    if dup:
        raise RunsTableError(f"{source}: duplicated columns {dup}")
    return df


def load_runs(source: str | Path, *, metadata: str | Path | None = None, name_from: str = "dir",
              extra_modalities: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read and validate a runs table (see the module docstring)."""
    source = Path(source)
    if source.is_dir():
        if metadata is None:
            raise RunsTableError(f"{source}: a folder of results needs --metadata (a table with name, N, D, ...)")
        from slmeval.scaling.results_folder import read_results_folder

        df = read_results_folder(source, metadata, name_from)
    else:
        df = canonical_columns(read_table(source), source)
        if metadata is not None:
            raise RunsTableError("--metadata is only used with a folder of results JSONs")
    notes = list(df.attrs.get("notes", []))
    df = validate_runs(df, source, extra_modalities=extra_modalities)
    copies = duplicate_runs(df)
    for note in copies:
        log.warning("%s: %s", source, note)
    df.attrs["notes"] = notes + copies   # which results file each run was read from; copied runs (in the report)
    return df


def duplicate_runs(df: pd.DataFrame) -> list[str]:
    """Runs that repeat another run's N, D, U, loss and every metric under a new name: a row copied
    and renamed is counted twice and narrows the bootstrap intervals falsely."""
    measured = ["loss", *metric_columns(df)]
    key = ["N", "D", "U", *measured]
    has_numbers = df[measured].notna().any(axis=1)
    copies = df[df.duplicated(subset=key, keep=False) & has_numbers]
    return [f"runs {group['name'].tolist()} have identical N, D, loss and metrics: if one was copied under "
            "a new name it is counted twice and narrows the intervals falsely (remove the copies)"
            for _, group in copies.groupby(key, dropna=False, sort=False)]


def validate_runs(df: pd.DataFrame, source="runs table", *, extra_modalities=()) -> pd.DataFrame:
    df = canonical_columns(df.copy(), source)
    if df.empty:
        raise RunsTableError(f"{source}: no runs (the table has a header but no rows)")
    missing = [c for c in ("N", "D") if c not in df]
    if missing:
        raise RunsTableError(f"{source}: missing column(s) {missing}; have {list(df.columns)}")
    if "name" not in df:
        df.insert(0, "name", [f"run{i}" for i in range(len(df))])
    df["name"] = df["name"].astype(str)
    if df["name"].duplicated().any():
        raise RunsTableError(f"{source}: duplicate run names {df['name'][df['name'].duplicated()].tolist()[:10]}")
    if "modality" not in df:
        df["modality"] = "speech"
    df["modality"] = df["modality"].astype(str)
    known = KNOWN_MODALITIES | set(extra_modalities)
    for value in sorted(set(df["modality"])):
        parts = value.split("+")
        if not all(p in known for p in parts) or len(parts) > 2:
            raise RunsTableError(f"{source}: unknown modality {value!r}; expected one of {sorted(known)} or "
                                 "'<i>+<j>' for bi-modal runs (add others with --modality)")
        if len(parts) == 2:
            for p in parts:
                if f"D_{p}" not in df:
                    raise RunsTableError(f"{source}: bi-modal runs {value!r} need a column 'D_{p}' (tokens of {p})")
    numeric = ["N", "D"] + [c for c in ("U", "epochs", "C", "loss") if c in df]
    for col in numeric:
        vals = _numbers(df, col, source)
        df[col] = vals.astype(float)
        nonpos = df[col].notna() & ~(df[col] > 0)
        if nonpos.any():
            raise RunsTableError(f"{source}: column {col!r} must be > 0; runs {df['name'][nonpos].tolist()[:10]}")
        infinite = df[col].notna() & ~np.isfinite(df[col])
        if infinite.any():
            raise RunsTableError(f"{source}: column {col!r} must be finite; runs {df['name'][infinite].tolist()[:10]}")
    if "loss" in df and df["loss"].isna().any():   # an empty cell is not "no loss": it would drop the run silently
        raise RunsTableError(f"{source}: column 'loss' is empty or NaN for runs {df['name'][df['loss'].isna()].tolist()[:10]}; "
                             "give every run its loss, or leave the column out to fit metrics only")
    if "loss_average" in df:
        _check_loss_average(df, source)
    for col in ("N", "D"):
        if df[col].isna().any():
            raise RunsTableError(f"{source}: column {col!r} is empty for runs {df['name'][df[col].isna()].tolist()[:10]}")
    if "epochs" in df:
        u_from_epochs = df["D"] / df["epochs"]
        df["U"] = df["U"].fillna(u_from_epochs) if "U" in df else u_from_epochs
    if "U" not in df:
        df["U"] = np.nan
    if "C" not in df:
        df["C"] = 6.0 * df["N"] * df["D"]
    df["C"] = df["C"].fillna(6.0 * df["N"] * df["D"])
    huge = ~np.isfinite(df["C"])     # N = D = 1e308 are finite, 6·N·D is not: every log-scale analysis breaks
    if huge.any():
        raise RunsTableError(f"{source}: compute C = 6·N·D is beyond float64 (> 1.8e308) for runs "
                             f"{df['name'][huge].tolist()[:10]}; N and D are counts of parameters and tokens — "
                             "check their units, or give a finite C column")
    for col in df.columns:           # a metric column with one text cell would otherwise vanish from the fit
        if col not in RESERVED and not col.startswith(("D_", "_")) and not pd.api.types.is_numeric_dtype(df[col]) \
                and pd.to_numeric(df[col], errors="coerce").notna().any():
            df[col] = _numbers(df, col, source, hint="; or rename the column to start with '_' to keep it out of the fit")
    if "loss" not in df:
        df["loss"] = np.nan
    return df


def _check_loss_average(df: pd.DataFrame, source) -> None:
    """`loss_average` holds token / utterance (or is empty); runs fitted together share one average —
    the two differ systematically (long utterances weigh more in the token average)."""
    col = df["loss_average"].where(df["loss_average"].notna(), None)
    bad = col.notna() & ~col.isin(LOSS_AVERAGES)
    if bad.any():
        raise RunsTableError(f"{source}: column 'loss_average' must be one of {', '.join(LOSS_AVERAGES)} (or empty); "
                             f"runs {df['name'][bad].tolist()[:10]} have {sorted(set(col[bad].astype(str)))}")
    kinds = {k: df["name"][col == k].tolist() for k in LOSS_AVERAGES if (col == k).any()}
    if len(kinds) > 1:
        raise RunsTableError(f"{source}: the runs mix loss averages ({'; '.join(f'{k}: {v[:5]}' for k, v in kinds.items())}); "
                             "one fit compares one kind of loss — recompute with `slmeval loss --average`")


def loss_average(df: pd.DataFrame) -> str | None:
    """Which average the `loss` column holds, in words (None when the table has no loss values)."""
    if "loss" not in df or df["loss"].isna().all():
        return None
    if "loss_average" not in df or df["loss_average"].isna().all():
        return "not recorded (the runs table has no loss_average column)"
    kind = str(df["loss_average"].dropna().iloc[0])
    words = {"token": "token-weighted mean NLL per unit", "utterance": "utterance-weighted mean NLL (slm_scaling's mean_nll)"}
    missing = df["name"][df["loss"].notna() & df["loss_average"].isna()].tolist()
    return words[kind] + (f"; not recorded for runs {missing[:10]}" if missing else "")


_SPREAD = re.compile(r"(_std|_sd|_stddev|_var|_variance|stderr|_sem|_spread)(@.*)?$", re.IGNORECASE)


def is_spread(column: str) -> bool:
    """A spread or an uncertainty (acc_voice_std: how far voices differ; acc_stderr), not a score: a
    power law fitted to it would be read as a score that improves with compute."""
    return bool(_SPREAD.search(column.rsplit("/", 1)[-1]))


def spread_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(c, str) and is_spread(c) and c not in RESERVED]


def _numbers(df: pd.DataFrame, col: str, source, hint: str = "") -> pd.Series:
    """The column as numbers (empty cells NaN); a cell holding anything else is an error naming its row
    (1 = first data row; for a CSV, file line = row + 1) and run."""
    vals = pd.to_numeric(df[col], errors="coerce")
    bad = vals.isna() & df[col].notna()
    if bad.any():
        rows = [f"row {i + 1} (run {df['name'].iloc[i]!r}): {df[col].iloc[i]!r}" for i in np.flatnonzero(bad.to_numpy())[:5]]
        raise RunsTableError(f"{source}: column {col!r} must be numeric; not a number in {'; '.join(rows)}"
                             + (f" and {int(bad.sum()) - 5} more" if bad.sum() > 5 else "") + hint)
    return vals


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Numeric columns that are not run descriptors nor spreads: the downstream metrics."""
    cols = []
    for c in df.columns:
        if c in RESERVED or c.startswith("D_") or c.startswith("_") or is_spread(c):
            continue
        if pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any():
            cols.append(c)
    return cols


def is_single_epoch(df: pd.DataFrame) -> pd.Series:
    return df["U"].isna() | (df["D"] <= df["U"] * (1 + 1e-9))
