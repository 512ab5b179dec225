"""The ZeroSpeech 2021 sLM21 submission writer, checked by a validator that applies the official rules
and scored by a re-statement of the official scorers (both in tests/_zerospeech_reference.py)."""
from __future__ import annotations

import csv
import logging
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _data_helpers import VOICES, make_sblimp, make_swuggy
from _zerospeech_reference import official_lexical, official_syntactic, validate
from slmeval.data.zerospeech import read_sblimp, read_swuggy
from slmeval.metrics.items import voice_averaged_metrics, zerospeech_lexical_metrics
from slmeval.metrics.families import pair_credit
from slmeval.task_loader.registry import Grouping
from slmeval.exports.zerospeech import (SubmissionError, TrackScores, check_tracks, official_label_columns,
                                           positional_mispairs, validator_command, write_submission)


# --- fixtures ------------------------------------------------------------------------------------

def fake_samples(pairs, seed: int) -> list[dict]:
    """samples_<task>.jsonl rows with scores drawn from a few values, so ties happen too."""
    rng = random.Random(seed)
    return [{"id": p.id, "positive_key": p.positive.key, "negative_key": p.negative.key,
             "positive_file": str(p.positive.audio), "negative_file": str(p.negative.audio),
             "positive_score": rng.choice([-3.5, -2.25, -2.0]), "negative_score": rng.choice([-3.0, -2.25, -1.5])}
            for p in pairs]


def credit_frame(pairs, samples) -> pd.DataFrame:
    return pd.DataFrame([{**p.meta, "correct": pair_credit(s["positive_score"], s["negative_score"], 0.5)}
                         for p, s in zip(pairs, samples)])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("sLM21-dataset")
    make_sblimp(root, "dev", voices=VOICES, items_per_type=2, release_columns=True)
    make_swuggy(root, "dev", skip=frozenset({("3", VOICES[1])}), release_columns=True)
    return root


def _tracks(dataset):
    syn_pairs, lex_pairs = read_sblimp(dataset, "dev"), read_swuggy(dataset, "dev")
    syn, lex = fake_samples(syn_pairs, 0), fake_samples(lex_pairs, 1)
    return (syn_pairs, syn, lex_pairs, lex,
            [TrackScores("sblimp", "syntactic", "dev", syn), TrackScores("swuggy", "lexical", "dev", lex)])


def test_submission_passes_the_official_rules_and_scores_as_reported(dataset, tmp_path, caplog):
    syn_pairs, syn, lex_pairs, lex, tracks = _tracks(dataset)
    out = tmp_path / "zerospeech"
    with caplog.at_level(logging.INFO):
        written = write_submission(out, tracks)
    assert {p.relative_to(out).as_posix() for p in written} == {"syntactic/dev.txt", "lexical/dev.txt", "meta.yaml"}
    assert validate(dataset, out, only_dev=True, tracks=("lexical", "syntactic")) == []
    assert "--no-phonetic --no-semantic --only-dev" in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # nothing else to object to but the word SWUGGY_ITEMS leaves without a frequency count ("candle",
    # item 6, said by both voices), which stops the official lexical scorer
    assert len(warnings) == 2 and "meta.yaml is a template" in warnings[1]
    assert "swuggy: 2 word row(s) of" in warnings[0] and "have no frequency" in warnings[0]
    # the official numbers, computed from the written files alone, equal slmeval's headline
    sblimp_grouping = Grouping(item=("type", "subtype", "item"), breakdown=("type",), voice="voice")
    ours = voice_averaged_metrics(credit_frame(syn_pairs, syn), sblimp_grouping)[0]["acc"]
    assert official_syntactic(dataset / "syntactic/dev/gold.csv", out / "syntactic/dev.txt") == pytest.approx(ours)
    lex_m = zerospeech_lexical_metrics(credit_frame(lex_pairs, lex), Grouping(item=("item",), breakdown=(),
                                                                                      voice="voice"))[0]
    assert official_lexical(dataset / "lexical/dev/gold.csv", out / "lexical/dev.txt") == pytest.approx(
        (lex_m["acc"], lex_m["acc_in_vocab"]))
    # meta.yaml is a template the user edits; a second export keeps the edited file
    (out / "meta.yaml").write_text((out / "meta.yaml").read_text().replace("unknown (edit before submitting)", "A. Author"))
    write_submission(out, tracks[:1])
    assert "A. Author" in (out / "meta.yaml").read_text()
    assert validate(dataset, out, only_dev=True, tracks=("lexical", "syntactic")) == []


def test_the_validator_here_can_fail(dataset, tmp_path):
    _, _, _, _, tracks = _tracks(dataset)
    out = tmp_path / "zerospeech"
    write_submission(out, tracks)
    lines = (out / "lexical/dev.txt").read_text().splitlines()
    (out / "lexical/dev.txt").write_text("\n".join(lines[1:]) + "\n")
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    (out / "meta.yaml").write_text(yaml.safe_dump({**meta, "slmeval": "extra key"}))
    (out / "README.txt").write_text("x")
    errors = validate(dataset, out, only_dev=True, tracks=("lexical", "syntactic"))
    assert any("entries" in e for e in errors)
    (out / "meta.yaml").write_text(yaml.safe_dump(meta))
    errors = validate(dataset, out, only_dev=True, tracks=("lexical", "syntactic"))
    assert any("root folder" in e for e in errors) and any("lexical/dev.txt: mismatch" in e for e in errors)
    (out / "README.txt").unlink()
    assert validate(dataset, out, only_dev=False, tracks=("syntactic",)) == ["syntactic/ holds ['dev.txt']"]


def test_reordered_gold_would_make_the_official_scorer_mis_pair(dataset, tmp_path, caplog):
    root = tmp_path / "sLM21-dataset"
    shutil.copytree(dataset / "syntactic", root / "syntactic")
    gold = root / "syntactic/dev/gold.csv"
    rows = list(csv.DictReader(open(gold)))
    assert positional_mispairs(gold) == (0, None)    # the helper's order pairs right
    # move the first incorrect row to the end: every incorrect row shifts by one position
    first_bad = next(i for i, r in enumerate(rows) if r["correct"] == "0")
    rows.append(rows.pop(first_bad))
    with open(gold, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    count, first = positional_mispairs(gold)
    assert count == 8 and first.startswith("correct row 1 (line ")
    pairs = read_sblimp(root, "dev")           # slmeval pairs by key: unaffected
    samples = fake_samples(pairs, 2)
    with caplog.at_level(logging.WARNING):
        write_submission(tmp_path / "zs", [TrackScores("sblimp", "syntactic", "dev", samples)])
    assert "would mis-pair 8 pair(s)" in caplog.text and str(gold) in caplog.text
    ours = voice_averaged_metrics(credit_frame(pairs, samples), Grouping(
        item=("type", "subtype", "item"), breakdown=(), voice=None))[0]["acc"]
    assert official_syntactic(gold, tmp_path / "zs/syntactic/dev.txt") != pytest.approx(ours)


def test_files_the_validator_wants_but_were_not_scored(tmp_path, caplog):
    make_sblimp(tmp_path, "dev", voices=VOICES[:1], ext=".flac")
    pairs = read_sblimp(tmp_path, "dev")
    with caplog.at_level(logging.WARNING):
        write_submission(tmp_path / "zs", [TrackScores("mini", "syntactic", "dev", fake_samples(pairs, 0))])
    assert "4 scored files are not .wav there" in caplog.text


def test_tracks_that_cannot_form_one_submission():
    with pytest.raises(SubmissionError, match="nothing to export"):
        write_submission("unused", [])
    with pytest.raises(SubmissionError, match="'a' and 'b' would both write zerospeech/syntactic/dev.txt"):
        check_tracks([("a", "syntactic", "dev"), ("b", "syntactic", "dev")])
    with pytest.raises(SubmissionError, match="split 'train'"):
        check_tracks([("a", "lexical", "train")])
    with pytest.raises(SubmissionError, match="track 'semantic'"):
        check_tracks([("a", "semantic", "dev")])
    command = validator_command(Path("out"), [TrackScores("t", "syntactic", "test", [])])
    assert command.startswith("zerospeech2021-validate <sLM21-dataset> out --no-phonetic --no-semantic --no-lexical  (")
    assert "run both splits" in command


# --- gold.csv column order: the official by-pair tables read labels by position ------------------

def test_which_column_the_official_scorer_labels_from():
    """Hand-derived from the frame zerospeech2021's load_data builds (correct row's columns minus the
    dropped ones, then the incorrect row's kept ones, then the score; labels read at positions 2..5),
    and confirmed by running the official scorer on these orders (docs/zerospeech.md)."""
    release_syn = ["filename", "id", "voice", "type", "subtype", "correct", "transcription"]
    release_lex = ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]
    assert official_label_columns(release_syn, "syntactic") == {}
    assert official_label_columns(release_lex, "lexical") == {}
    # filename / correct / phones may sit anywhere: the scorer drops them
    assert official_label_columns(["correct", "id", "voice", "type", "filename", "subtype", "transcription"],
                                  "syntactic") == {}
    # the order slmeval's bundled mini_sblimp had: by_type was grouped by the item id
    assert official_label_columns(["filename", "type", "subtype", "id", "voice", "correct", "transcription"],
                                  "syntactic") == {"type": "id", "subtype": "voice"}
    # an extra column after transcription takes the non-sentence's place
    assert official_label_columns(release_syn + ["extra"], "syntactic") == {"non sentence": "extra"}
    # the tests' own lexical order: word <-> length swapped, the non-word's label from the word's `extra`
    assert official_label_columns(["id", "voice", "correct", "filename", "frequency", "length", "phones", "word",
                                   "extra"], "lexical") == {"word": "length", "length": "word", "non word": "extra"}
    # id and voice last: every label of the correct row shifts, the incorrect row's transcription stays at 5
    assert official_label_columns(["filename", "type", "subtype", "correct", "transcription", "id", "voice"],
                                  "syntactic") == {"type": "transcription", "subtype": "id", "sentence": "voice"}


def test_export_warns_when_the_official_tables_would_be_mislabelled(tmp_path, caplog):
    make_sblimp(tmp_path / "ours", "dev", voices=VOICES[:1])                    # helper order + extra column
    make_sblimp(tmp_path / "release", "dev", voices=VOICES[:1], release_columns=True)
    for name in ("ours", "release"):
        caplog.clear()
        pairs = read_sblimp(tmp_path / name, "dev")
        assert [p.meta for p in pairs] == [p.meta for p in read_sblimp(tmp_path / "ours", "dev")]  # same data
        with caplog.at_level(logging.WARNING):
            write_submission(tmp_path / f"zs_{name}", [TrackScores("sblimp", "syntactic", "dev",
                                                                   fake_samples(pairs, 0))])
        said = "reads each pair's labels by column position" in caplog.text
        assert said == (name == "ours")
    caplog.clear()
    make_swuggy(tmp_path / "lex", "dev", voices=VOICES[:1])
    with caplog.at_level(logging.WARNING):
        write_submission(tmp_path / "zs_lex", [TrackScores("swuggy", "lexical", "dev",
                                                           fake_samples(read_swuggy(tmp_path / "lex", "dev"), 0))])
    assert "it would take 'word' from 'length', 'length' from 'word'" in caplog.text
    assert "1 word row(s)" in caplog.text and "have no frequency" in caplog.text
