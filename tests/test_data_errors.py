"""Bad input (issue 2 §7) at the data layer: one clear error naming the file/field, or a logged
conversion — never a silent skip."""
from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from _data_helpers import (make_hf_arrow, make_hf_parquet, make_paired, make_sblimp, make_storycloze,
                           make_units_jsonl, speech)
from slmeval.audio import AudioError, load_audio
from slmeval.data import DataLayoutError, read_pairs
from slmeval.data.zerospeech import GOLD_COLUMNS


def sblimp_dir(tmp_path):
    make_sblimp(tmp_path)
    return tmp_path / "syntactic" / "dev"


def edit_gold(folder, change):
    gold = pd.read_csv(folder / "gold.csv", dtype=str, keep_default_na=False)
    change(gold).to_csv(folder / "gold.csv", index=False)


# --- sBLIMP -------------------------------------------------------------------------------------

def test_sblimp_wrong_root_says_where_it_looked(tmp_path):
    with pytest.raises(DataLayoutError) as err:
        read_pairs("zerospeech_sblimp", tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "syntactic" / "dev" / "gold.csv") in msg
    assert "expected <root>/syntactic/dev/gold.csv" in msg


def test_sblimp_root_given_as_split_folder_gets_a_hint(tmp_path):
    folder = sblimp_dir(tmp_path)
    with pytest.raises(DataLayoutError, match="pass the dataset root"):
        read_pairs("zerospeech_sblimp", folder)
    with pytest.raises(DataLayoutError, match="splits found under .*: dev"):
        read_pairs("zerospeech_sblimp", tmp_path, split="test")


@pytest.mark.parametrize("column", GOLD_COLUMNS)
def test_sblimp_missing_gold_column(tmp_path, column):
    folder = sblimp_dir(tmp_path)
    edit_gold(folder, lambda g: g.drop(columns=[column]))
    with pytest.raises(DataLayoutError) as err:
        read_pairs("zerospeech_sblimp", tmp_path)
    msg = str(err.value)
    assert f"missing column(s) {column};" in msg
    assert "expected a header with filename, type, subtype, id, voice, correct, transcription" in msg
    assert str(folder / "gold.csv") in msg


def test_sblimp_voice_pair_with_two_correct_rows(tmp_path):
    folder = sblimp_dir(tmp_path)
    # d00000x / d00001x are the correct / incorrect files of the first voice-pair
    edit_gold(folder, lambda g: g.assign(correct=g["correct"].where(g["filename"] != "d00001x", "1")))
    with pytest.raises(DataLayoutError, match=r"has 2 row\(s\) with 2 correct .*exactly one correct=1 and one correct=0"):
        read_pairs("zerospeech_sblimp", tmp_path)


def test_sblimp_voice_pair_missing_its_partner_row(tmp_path):
    folder = sblimp_dir(tmp_path)
    edit_gold(folder, lambda g: g[g["filename"] != "d00001x"])       # incorrect file of the first pair
    (folder / "d00001x.wav").unlink()
    with pytest.raises(DataLayoutError, match=r"voice=.*has 1 row\(s\) with 1 correct \(files: d00000x\)"):
        read_pairs("zerospeech_sblimp", tmp_path)


def test_sblimp_duplicate_filename(tmp_path):
    folder = sblimp_dir(tmp_path)
    edit_gold(folder, lambda g: g.assign(filename=g["filename"].replace("d00003x", "d00002x")))
    with pytest.raises(DataLayoutError, match=r"filename 'd00002x' is listed more than once \(lines \[\d+, \d+\]\)"):
        read_pairs("zerospeech_sblimp", tmp_path)


def test_sblimp_listed_files_missing_on_disk(tmp_path):
    folder = sblimp_dir(tmp_path)
    for name in ("d00002x", "d00005x"):
        (folder / f"{name}.wav").unlink()
    with pytest.raises(DataLayoutError, match=r"2 file\(s\) listed in gold.csv are not on disk.*: d00002x, d00005x"):
        read_pairs("zerospeech_sblimp", tmp_path)


def test_sblimp_bad_correct_value_and_empty_field(tmp_path):
    folder = sblimp_dir(tmp_path)
    edit_gold(folder, lambda g: g.assign(correct=g["correct"].replace("1", "yes")))
    with pytest.raises(DataLayoutError, match=r"line \d+: correct='yes', expected 1 or 0 \(4 such row\(s\)\)"):
        read_pairs("zerospeech_sblimp", tmp_path)
    edit_gold(folder, lambda g: g.assign(correct="1", voice=[""] + list(g["voice"][1:])))
    with pytest.raises(DataLayoutError, match=r"empty 'voice' on line\(s\) 2"):
        read_pairs("zerospeech_sblimp", tmp_path)


# --- StoryCloze ---------------------------------------------------------------------------------

def test_storycloze_file_without_partner(tmp_path):
    make_storycloze(tmp_path)
    (tmp_path / "3_story_two_incorrect.wav").unlink()
    with pytest.raises(DataLayoutError) as err:
        read_pairs("storycloze", tmp_path)
    assert str(tmp_path / "2_story_two_correct.wav") in str(err.value)
    assert "no incorrect partner for story 'story_two'" in str(err.value)


def test_storycloze_partner_with_wrong_number(tmp_path):
    make_storycloze(tmp_path)
    (tmp_path / "3_story_two_incorrect.wav").rename(tmp_path / "7_story_two_incorrect.wav")
    with pytest.raises(DataLayoutError, match="2_story_two_correct.wav pairs with 7_story_two_incorrect.wav.*should be 3"):
        read_pairs("storycloze", tmp_path)


def test_storycloze_name_not_matching_the_pattern(tmp_path):
    make_storycloze(tmp_path)
    (tmp_path / "0_a1b2-c3_correct.wav").rename(tmp_path / "story-a1b2-c3-good.wav")
    with pytest.raises(DataLayoutError, match=r"1 file name\(s\) do not match <k>_<storyid>_correct.*story-a1b2-c3-good.wav"):
        read_pairs("storycloze", tmp_path)


def test_storycloze_multispeaker_root_with_loose_files(tmp_path):
    make_storycloze(tmp_path, multispeaker=True)
    (tmp_path / "0_x_correct.wav").write_bytes(b"")
    with pytest.raises(DataLayoutError, match="both audio files .*0_x_correct.wav.* and sub-folders"):
        read_pairs("storycloze", tmp_path)
    with pytest.raises(DataLayoutError, match="multi-speaker root holds loose audio files"):
        read_pairs("storycloze", tmp_path, multispeaker=True)


def test_storycloze_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataLayoutError, match=re.escape(f"{tmp_path}: no .wav/.flac files (expected <k>_<storyid>_correct.wav")):
        read_pairs("storycloze", tmp_path)
    with pytest.raises(DataLayoutError, match="does not exist"):
        read_pairs("storycloze", tmp_path / "missing")


def test_storycloze_speakers_with_different_stories_warn(tmp_path, caplog):
    make_storycloze(tmp_path, multispeaker=True)
    speaker = sorted(p.name for p in tmp_path.iterdir())[1]
    for f in (tmp_path / speaker).glob("*_10_*"):
        f.unlink()
    with caplog.at_level(logging.WARNING, logger="slmeval.data"):
        assert len(read_pairs("storycloze", tmp_path)) == 5
    assert "cover different stories (1 differ, e.g. 10)" in caplog.text


# --- paired folder ------------------------------------------------------------------------------

def test_paired_odd_number_names_the_unpaired_file(tmp_path):
    make_paired(tmp_path, sep="+", n_pairs=6)
    (tmp_path / "12+extra.wav").write_bytes((tmp_path / "0+the-cat-sleeps.wav").read_bytes())
    with pytest.raises(DataLayoutError, match=re.escape(f"{tmp_path / '12+extra.wav'}: unpaired file")):
        read_pairs("paired_folder", tmp_path, sep="+")


def test_paired_duplicate_number(tmp_path):
    make_paired(tmp_path, sep="_", n_pairs=1)
    (tmp_path / "01_again.wav").write_bytes((tmp_path / "0_the-cat-sleeps.wav").read_bytes())
    with pytest.raises(DataLayoutError, match="share the number 1"):
        read_pairs("paired_folder", tmp_path, sep="_")


# --- Hugging Face datasets on disk --------------------------------------------------------------

def _blank_audio(path, row, column, value):
    table = pq.read_table(path)
    cells = table.column(column).to_pylist()
    cells[row] = value
    idx = table.schema.get_field_index(column)
    pq.write_table(table.set_column(idx, column, pa.array(cells, type=table.schema.field(column).type)), path)


@pytest.mark.parametrize("value", [None, {"bytes": None, "path": "x.wav"}, {"bytes": b"", "path": None}])
def test_hf_row_without_audio_bytes(tmp_path, value):
    path = tmp_path / "t.parquet"
    make_hf_parquet(path, n_pairs=4)
    _blank_audio(path, 2, "negative", value)
    with pytest.raises(DataLayoutError, match=re.escape(f"{path} row 2: column 'negative' has no audio bytes")):
        read_pairs("hf_pairs", path)


def test_hf_row_number_counts_across_shards(tmp_path):
    make_hf_arrow(tmp_path, n_pairs=6, num_shards=2)
    shard = tmp_path / "data-00001-of-00002.arrow"
    with pa.OSFile(str(shard)) as source:
        table = pa.ipc.open_stream(source).read_all()
    cells = table.column("positive").to_pylist()
    cells[1] = {"bytes": b"", "path": None}
    table = table.set_column(1, "positive", pa.array(cells, type=table.schema.field("positive").type))
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    with pytest.raises(DataLayoutError, match=re.escape(f"{shard} row 1: column 'positive'")):
        read_pairs("hf_pairs", tmp_path)


def test_hf_missing_column_duplicate_ids_and_bad_path(tmp_path):
    path = tmp_path / "t.parquet"
    make_hf_parquet(path, n_pairs=3)
    with pytest.raises(DataLayoutError, match=r"no column 'correct' \(columns: id, positive, negative, text, n_words\)"):
        read_pairs("hf_pairs", path, positive="correct")
    table = pq.read_table(path)
    pq.write_table(table.set_column(0, "id", pa.array(["a", "b", "a"])), path)
    with pytest.raises(DataLayoutError, match="duplicate pair ids: a"):
        read_pairs("hf_pairs", path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match="no state.json and no .parquet files found"):
        read_pairs("hf_pairs", tmp_path / "empty")
    with pytest.raises(DataLayoutError, match="does not exist"):
        read_pairs("hf_pairs", tmp_path / "nope.parquet")


# --- units JSONL --------------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ('{"id": 9, "positive": [1, 2], "negative": [3]', "invalid JSON"),
    ('{"id": 9, "positive": [1, -2], "negative": [3]}', r"positive\[1\] = -2; unit ids are non-negative"),
    ('{"id": 9, "positive": [1, 2.5], "negative": [3]}', r"positive\[1\] = 2.5"),
    ('{"id": 9, "positive": [true], "negative": [3]}', r"positive\[0\] = true"),
    ('{"id": 9, "positive": [1], "negative": []}', "'negative' must be a non-empty list"),
    ('{"id": 9, "positive": [1]}', "missing key\\(s\\) negative"),
    ('[1, 2]', "expected a JSON object"),
])
def test_units_jsonl_bad_line_is_named(tmp_path, line, message):
    path = tmp_path / "u.jsonl"
    make_units_jsonl(path, n_pairs=3)
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(DataLayoutError, match=re.escape(f"{path}:4: ") + ".*" + message):
        read_pairs("units_jsonl", path)


def test_units_jsonl_duplicate_id_names_both_lines(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text('{"id": "a", "positive": [1], "negative": [2]}\n\n'
                    '{"id": "a", "positive": [3], "negative": [4]}\n')
    with pytest.raises(DataLayoutError, match=re.escape(f"{path}:3: duplicate id 'a' (first on line 1)")):
        read_pairs("units_jsonl", path)


# --- audio problems surface when a task's files are loaded --------------------------------------

def test_corrupt_and_empty_files_in_a_task_raise_naming_the_file(tmp_path):
    make_storycloze(tmp_path)
    corrupt, empty = tmp_path / "0_a1b2-c3_correct.wav", tmp_path / "5_10_incorrect.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    empty.write_bytes(b"")
    pairs = {p.id: p for p in read_pairs("storycloze", tmp_path)}    # layout is fine: no decoding here
    with pytest.raises(AudioError, match=re.escape(f"{corrupt}: cannot decode audio")):
        load_audio(pairs["a1b2-c3"].positive.audio)
    with pytest.raises(AudioError, match=re.escape(str(empty))):
        load_audio(pairs["10"].negative.audio)
    # a silent-but-valid header with zero frames is "no samples", also named
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000, format="WAV")
    with pytest.raises(AudioError, match=re.escape(f"{empty}: audio file has no samples")):
        load_audio(pairs["10"].negative.audio)


def test_stereo_and_44k_files_are_converted_with_a_log_line(tmp_path, caplog):
    make_paired(tmp_path, sep="_", n_pairs=1)
    pos, neg = tmp_path / "0_the-cat-sleeps.wav", tmp_path / "1_the-cat-sleep.wav"
    mono = speech("the cat sleeps", "en-us")
    sf.write(pos, np.stack([mono, mono], axis=1), 16000, subtype="PCM_16")   # stereo, 16 kHz
    t = np.arange(44100) / 44100
    sf.write(neg, 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32), 44100, subtype="FLOAT")
    (pair,) = read_pairs("paired_folder", tmp_path, sep="_")
    with caplog.at_level(logging.INFO, logger="slmeval.audio"):
        stereo = load_audio(pair.positive.audio)
        resampled = load_audio(pair.negative.audio)
    assert f"{pos}: 2 channels, averaged to mono" in caplog.text
    assert f"{neg}: resampled 44100 Hz -> 16000 Hz" in caplog.text
    assert stereo.shape == mono.shape and np.max(np.abs(stereo - mono)) <= 1 / 32768
    assert resampled.shape == (16000,)
    # the tone survives resampling: same frequency and amplitude (naive float64 reference)
    ref = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000, dtype=np.float64) / 16000)
    assert np.max(np.abs(resampled[200:-200] - ref[200:-200])) < 1e-3
