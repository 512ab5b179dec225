"""Each layout reader against layouts written by tests/_data_helpers.py (real espeak-ng speech).

The helpers compute the expected pairs independently of the readers; audio is additionally decoded
and compared with the synthesised waveform, so "positive" is checked to be the grammatical sentence.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from _data_helpers import (SENTENCES, VOICES, make_hf_arrow, make_hf_parquet, make_paired,
                           make_sblimp, make_storycloze, make_units_jsonl, speech)
from slmeval.audio import load_audio
from slmeval.data import READERS, DataLayoutError, read_pairs, reader_options

PCM16_STEP = 1.0 / 32768


def assert_same(got, expected):
    assert [p.id for p in got] == [p.id for p in expected]
    assert got == expected                                    # ids, keys, audio paths/bytes, units
    assert [p.meta for p in got] == [p.meta for p in expected]


def assert_speech(source, text, voice):
    """Decoded audio equals the espeak-ng waveform up to 16-bit quantisation."""
    wav = load_audio(source)
    ref = speech(text, voice)
    assert wav.shape == ref.shape
    assert np.max(np.abs(wav - ref)) <= PCM16_STEP


# --- sBLIMP -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_sblimp_voice_pairs(tmp_path, ext):
    expected = make_sblimp(tmp_path, ext=ext, items_per_type=2)
    got = read_pairs("zerospeech_sblimp", tmp_path)
    assert_same(got, expected)
    assert len(got) == 2 * 2 * len(VOICES)          # 2 types x 2 items x voices
    assert {p.meta["voice"] for p in got} == set(VOICES)
    pair = next(p for p in got if p.meta["type"] == "anaphor_agreement" and p.meta["voice"] == VOICES[1])
    assert pair.meta["transcription_positive"] == "she saw herself"
    assert_speech(pair.positive.audio, "she saw herself", VOICES[1])
    assert_speech(pair.negative.audio, "she saw himself", VOICES[1])
    assert pair.positive.audio.suffix == ext


def test_sblimp_test_split_and_order(tmp_path):
    make_sblimp(tmp_path, split="dev")
    expected = make_sblimp(tmp_path, split="test", items_per_type=11)
    got = read_pairs("zerospeech_sblimp", tmp_path, split="test")
    assert_same(got, sorted(expected, key=lambda p: (p.meta["type"], p.meta["subtype"],
                                                      int(p.meta["item"]), p.meta["voice"])))
    assert [p.meta["item"] for p in got[: 2 * len(VOICES) + 1 : len(VOICES)]] == ["1", "2", "3"]


def test_sblimp_unlisted_files_are_reported(tmp_path, caplog):
    make_sblimp(tmp_path)
    folder = tmp_path / "syntactic" / "dev"
    for name in ("stray1.wav", "stray2.flac"):
        (folder / name).write_bytes((folder / "d00000x.wav").read_bytes())
    with caplog.at_level(logging.WARNING, logger="slmeval.data"):
        pairs = read_pairs("zerospeech_sblimp", tmp_path)
    assert len(pairs) == 2 * len(VOICES)
    assert "2 audio file(s) not listed in gold.csv" in caplog.text
    assert "stray1" in caplog.text and "stray2" in caplog.text


# --- StoryCloze ---------------------------------------------------------------------------------

def test_storycloze_single_speaker(tmp_path):
    expected = make_storycloze(tmp_path)
    got = read_pairs("storycloze", tmp_path)
    assert_same(got, expected)
    assert [p.id for p in got] == ["10", "a1b2-c3", "story_two"]
    story = next(p for p in got if p.id == "story_two")       # underscore inside the story id
    assert story.positive.key == "2_story_two_correct" and story.negative.key == "3_story_two_incorrect"
    assert story.meta == {"story": "story_two", "speaker": None}
    good, bad = SENTENCES[1]
    assert_speech(story.positive.audio, good, VOICES[0])
    assert_speech(story.negative.audio, bad, VOICES[0])


@pytest.mark.parametrize("flag", [None, True])
def test_storycloze_multispeaker(tmp_path, flag):
    expected = make_storycloze(tmp_path, multispeaker=True, ext=".flac")
    got = read_pairs("storycloze", tmp_path, multispeaker=flag)
    assert_same(got, expected)
    assert {p.meta["speaker"] for p in got} == set(VOICES)
    assert sum(p.meta["speaker"] == VOICES[1] for p in got) == 3
    p = next(p for p in got if p.id == f"{VOICES[1]}/a1b2-c3")
    assert_speech(p.positive.audio, SENTENCES[0][0], VOICES[1])


def test_storycloze_multispeaker_flag_false_on_speaker_folders(tmp_path):
    make_storycloze(tmp_path, multispeaker=True)
    with pytest.raises(DataLayoutError, match="no .wav/.flac files"):
        read_pairs("storycloze", tmp_path, multispeaker=False)


# --- paired folder ------------------------------------------------------------------------------

@pytest.mark.parametrize("sep", ["_", "+"])
def test_paired_folder_numeric_order(tmp_path, sep):
    expected = make_paired(tmp_path, sep=sep, n_pairs=6)
    got = read_pairs("paired_folder", tmp_path, sep=sep)
    assert_same(got, expected)
    # 12 files: text order would put 10 and 11 between 1 and 2 and pair the wrong files.
    assert [p.id for p in got] == ["0", "2", "4", "6", "8", "10"]
    assert got[5].positive.key == f"10{sep}she-saw-herself"
    assert got[5].negative.key == f"11{sep}she-saw-himself"
    assert_speech(got[5].positive.audio, "she saw herself", VOICES[1])
    assert_speech(got[5].negative.audio, "she saw himself", VOICES[1])


def test_paired_folder_separator_is_never_guessed(tmp_path):
    make_paired(tmp_path, sep="+", n_pairs=2)
    with pytest.raises(DataLayoutError, match=r"do not start with <int>'_'"):
        read_pairs("paired_folder", tmp_path, sep="_")
    with pytest.raises(DataLayoutError, match="needs option.*sep"):
        read_pairs("paired_folder", tmp_path)


# --- Hugging Face datasets on disk --------------------------------------------------------------

PRODUCERS = ["pyarrow", pytest.param("datasets", marks=pytest.mark.slow)]


def _needs(producer):
    if producer == "datasets":
        pytest.importorskip("datasets")


@pytest.mark.parametrize("producer", PRODUCERS)
def test_hf_parquet_file_and_folder(tmp_path, producer):
    _needs(producer)
    expected = make_hf_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", producer=producer)
    for path in (tmp_path / "data" / "test-00000-of-00001.parquet", tmp_path):
        got = read_pairs("hf_pairs", path)
        assert_same(got, expected)
    assert got[0].meta == {"text": "the cat sleeps", "n_words": 3}
    assert got[1].positive.key == "item1/positive"
    assert_speech(got[1].positive.audio, "she saw herself", VOICES[1])
    assert_speech(got[1].negative.audio, "she saw himself", VOICES[1])


def test_hf_pairs_fill_gives_missing_columns_and_keeps_present_ones(tmp_path):
    """The built-in StoryCloze pins fill `speaker: null` (what the local single-speaker reader gives): a copy
    without the column gets it on every pair; a column the copy has is never overwritten."""
    make_hf_parquet(tmp_path / "d.parquet", producer="pyarrow")
    got = read_pairs("hf_pairs", tmp_path / "d.parquet", fill={"speaker": None, "n_words": -1})
    assert [p.meta["speaker"] for p in got] == [None] * len(got)
    assert got[0].meta["n_words"] == 3
    with pytest.raises(DataLayoutError, match="fill must be a mapping"):
        read_pairs("hf_pairs", tmp_path / "d.parquet", fill="speaker")


@pytest.mark.parametrize("producer", PRODUCERS)
def test_hf_save_to_disk_shards_and_row_ids(tmp_path, producer):
    _needs(producer)
    expected = make_hf_arrow(tmp_path / "ds", producer=producer, n_pairs=12, with_id=False, num_shards=3)
    got = read_pairs("hf_pairs", tmp_path / "ds")
    assert_same(got, expected)
    assert [p.id for p in got] == [str(i) for i in range(12)]   # row numbers, in numeric order
    assert_speech(got[11].negative.audio, "she saw himself", VOICES[1])


@pytest.mark.slow
def test_hf_datasetdict_split_and_custom_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    from _data_helpers import encoded
    audio = datasets.Audio(decode=False)
    def split(n):
        return datasets.Dataset.from_dict({
            "sid": [f"s{i}" for i in range(n)],
            "correct": [{"bytes": encoded("the cat sleeps", "en-us"), "path": None}] * n,
            "wrong": [{"bytes": encoded("the cat sleep", "en-us", "FLAC"), "path": None}] * n,
        }).cast_column("correct", audio).cast_column("wrong", audio)
    datasets.DatasetDict({"validation": split(2), "test": split(3)}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataLayoutError, match="splits validation, test"):
        read_pairs("hf_pairs", tmp_path / "dd", positive="correct", negative="wrong", id_column="sid")
    got = read_pairs("hf_pairs", tmp_path / "dd", positive="correct", negative="wrong",
                     id_column="sid", split="test")
    assert [p.id for p in got] == ["s0", "s1", "s2"]
    assert all(p.meta == {} for p in got)
    assert_speech(got[2].negative.audio, "the cat sleep", "en-us")


def test_hf_parquet_folder_with_several_splits_needs_a_split(tmp_path):
    make_hf_parquet(tmp_path / "data" / "train-00000-of-00001.parquet", n_pairs=2)
    expected = make_hf_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", n_pairs=3)
    with pytest.raises(DataLayoutError, match="several splits"):
        read_pairs("hf_pairs", tmp_path)
    assert_same(read_pairs("hf_pairs", tmp_path, split="test"), expected)


# --- pre-tokenised units ------------------------------------------------------------------------

def test_units_jsonl(tmp_path):
    expected = make_units_jsonl(tmp_path / "u.jsonl", n_pairs=12)
    got = read_pairs("units_jsonl", tmp_path / "u.jsonl")
    assert_same(got, expected)
    assert [p.id for p in got] == [str(i) for i in range(12)]
    assert got[3].positive.audio is None and got[3].positive.key == "3/positive"
    assert got[3].meta == {"source": "s0"}


# --- dispatch -----------------------------------------------------------------------------------

def test_dispatch_table_names_and_options():
    assert set(READERS.names()) == {"zerospeech_sblimp", "zerospeech_lexical", "storycloze", "paired_folder",
                                    "paired_subfolders", "salmon", "hf_pairs", "units_jsonl", "slm_scaling_shard",
                                    "salmon_parquet", "zerospeech_sblimp_webdataset", "zerospeech_lexical_webdataset",
                                    "webdataset_pairs"}
    assert reader_options("paired_folder") == ["sep"]
    assert reader_options("hf_pairs") == ["positive", "negative", "id_column", "split", "fill"]
    assert reader_options("slm_scaling_shard") == ["verify_checksums"]


def test_unknown_source_lists_known_ones(tmp_path):
    with pytest.raises(DataLayoutError) as err:
        read_pairs("blimp_csv", tmp_path)
    for name in READERS.names():
        assert name in str(err.value)


def test_unknown_option_is_rejected(tmp_path):
    with pytest.raises(DataLayoutError, match="does not take option.*sep.*it takes: split"):
        read_pairs("zerospeech_sblimp", tmp_path, sep="+")
