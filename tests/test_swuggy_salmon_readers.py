"""sWUGGY (ZeroSpeech 2021 lexical and slamkit's paired sub-folders) and SALMon readers against layouts
written by tests/_data_helpers.py with espeak-ng speech; the helpers compute the expected pairs."""
from __future__ import annotations

import csv
import logging

import pytest

from _data_helpers import (SALMON_TEXTS, SWUGGY_ITEMS, VOICES, make_salmon, make_swuggy, make_swuggy_slamkit,
                           speech)
from slmeval.audio import load_audio
from slmeval.data import DataLayoutError
from slmeval.data.paired import read_paired_subfolders
from slmeval.data.salmon import PARTS, read_salmon
from slmeval.data.zerospeech import read_swuggy

import numpy as np


def assert_same(got, expected):
    assert [p.id for p in got] == [p.id for p in expected]
    assert got == expected
    assert [p.meta for p in got] == [p.meta for p in expected]


@pytest.fixture(scope="module")
def swuggy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("slm21")
    # unbalanced: item 2 lacks the second voice
    expected = make_swuggy(root, "dev", skip=frozenset({("2", VOICES[1])}))
    return root, expected


def test_swuggy_zr2021_layout(swuggy_root):
    root, expected = swuggy_root
    pairs = read_swuggy(root, split="dev")
    assert_same(pairs, expected)
    assert len(pairs) == 2 * len(SWUGGY_ITEMS) - 1
    first = pairs[0]   # item 1 = "water" said by VOICES[0]... decoded audio is the word, not the non-word
    word, nonword = SWUGGY_ITEMS[0][:2]
    voice = first.meta["voice"]
    assert np.abs(load_audio(first.positive.audio) - speech(word, voice)).max() < 1e-3
    assert np.abs(load_audio(first.negative.audio) - speech(nonword, voice)).max() < 1e-3
    bands = {p.meta["item"]: p.meta["frequency_band"] for p in pairs}
    assert bands == {"1": ">100", "2": "21-100", "3": "6-20", "4": "1-5", "5": "oov", "6": None}


def test_swuggy_split_missing_names_the_splits_found(swuggy_root):
    root, _ = swuggy_root
    with pytest.raises(DataLayoutError, match=r"lexical/test/gold.csv.*splits found under .*: dev"):
        read_swuggy(root, split="test")


def _rewrite_gold(folder, edit):
    with open(folder / "gold.csv") as fh:
        rows = list(csv.DictReader(fh))
    rows = edit(rows)
    with open(folder / "gold.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_swuggy_gold_errors_name_file_and_line(tmp_path):
    make_swuggy(tmp_path, "dev", voices=VOICES[:1])
    folder = tmp_path / "lexical" / "dev"
    _rewrite_gold(folder, lambda rows: [{**r, "frequency": "many"} if r["correct"] == "1" and r["id"] == "3" else r
                                        for r in rows])
    with pytest.raises(DataLayoutError, match=r"gold.csv: line \d+: frequency_pos='many', expected an integer"):
        read_swuggy(tmp_path)
    _rewrite_gold(folder, lambda rows: [{k: v for k, v in r.items() if k != "phones"} for r in rows])
    with pytest.raises(DataLayoutError, match="missing column.s. phones"):
        read_swuggy(tmp_path)


def test_swuggy_word_without_its_non_word(tmp_path):
    make_swuggy(tmp_path, "dev", voices=VOICES[:1])
    _rewrite_gold(tmp_path / "lexical" / "dev",
                  lambda rows: [r for r in rows if not (r["id"] == "4" and r["correct"] == "0")])
    with pytest.raises(DataLayoutError, match=r"voice-pair id='4' voice='en-us' has 1 row"):
        read_swuggy(tmp_path)


def test_swuggy_slamkit_paired_subfolders(tmp_path):
    expected = make_swuggy_slamkit(tmp_path / "swuggy_inter")
    pairs = read_paired_subfolders(tmp_path / "swuggy_inter", sep="_")
    assert_same(pairs, expected)
    # numeric order inside a folder: 10_ (the sixth word) after 8_
    assert [p.id for p in pairs[:6]] == [f"{min(VOICES)}/{2 * k}" for k in range(6)]


def test_paired_subfolders_odd_folder_is_an_error_not_a_cross_folder_pair(tmp_path, caplog):
    make_swuggy_slamkit(tmp_path, folders=VOICES)
    (tmp_path / VOICES[0] / f"11_{SWUGGY_ITEMS[5][1]}.wav").unlink()
    with pytest.raises(DataLayoutError, match=r"10_candle.wav: unpaired file"):
        read_paired_subfolders(tmp_path, sep="_")
    with pytest.raises(DataLayoutError, match="no sub-folders"):
        read_paired_subfolders(tmp_path / VOICES[1], sep="_")


@pytest.fixture(scope="module")
def salmon_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("salmon")
    expected = make_salmon(root, PARTS, n_samples=2)
    return root, expected


def test_salmon_release_layout(salmon_root):
    root, expected = salmon_root
    pairs = read_salmon(root)
    assert_same(pairs, expected)
    assert len(pairs) == 16 and [p.meta["part"] for p in pairs[::2]] == list(PARTS)
    # option 0 is the consistent sample: one voice throughout
    first, second = SALMON_TEXTS[0]
    consistent = np.concatenate([speech(first, VOICES[0]), speech(second, VOICES[0])])
    assert np.abs(load_audio(pairs[0].positive.audio) - consistent).max() < 1e-3
    assert [p.id for p in read_salmon(root, parts=["rir_consistency"])] == ["rir_consistency/0", "rir_consistency/1"]


def test_salmon_errors_and_ignored_options(tmp_path, caplog):
    make_salmon(tmp_path, ("speaker_consistency",), n_samples=3, extra_option=True)
    with caplog.at_level(logging.WARNING):
        pairs = read_salmon(tmp_path, parts=["speaker_consistency"])
    assert [p.negative.key for p in pairs] == [f"speaker_consistency/sample_{i}_1" for i in range(3)]
    assert "3 file(s) with option > 1 are ignored" in caplog.text
    with pytest.raises(DataLayoutError, match=r"no part folder.s. bg_alignment, .* \(found: speaker_consistency\)"):
        read_salmon(tmp_path)
    (tmp_path / "speaker_consistency" / "sample_1_1.wav").unlink()
    with pytest.raises(DataLayoutError, match=r"sample 1 has option.s. \[0, 2\].*expected options 0 .positive. and 1"):
        read_salmon(tmp_path, parts=["speaker_consistency"])
    (tmp_path / "speaker_consistency" / "take1.wav").write_bytes(b"")
    with pytest.raises(DataLayoutError, match="do not match <prefix>_<index>_<option>: take1.wav"):
        read_salmon(tmp_path, parts=["speaker_consistency"])


def test_reader_functions_are_named_after_their_readers_and_old_names_still_import():
    """Issue 24: reader `zerospeech_lexical` was the function `read_swuggy`; the old names stay aliases."""
    import slmeval.data as data
    from slmeval.data import READERS
    from slmeval.data import zerospeech

    assert READERS.get("zerospeech_lexical") is zerospeech.read_zerospeech_lexical is data.read_swuggy
    assert READERS.get("zerospeech_sblimp") is zerospeech.read_zerospeech_sblimp is data.read_sblimp
    assert zerospeech.read_zerospeech_lexical.__name__ == "read_zerospeech_lexical"
