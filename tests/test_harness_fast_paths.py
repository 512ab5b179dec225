"""The per-pair fast paths of issue 22 against the plain code they replace (written out here, or the general
function they shortcut): same bytes, same values, same errors — at the edges where a shortcut could differ."""
from __future__ import annotations

import hashlib
import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

from _units_helpers import SENTENCES, CountingTokenizer, speech
from slmeval.audio import write_audio
from slmeval.io import atomic_write_text, int_list_json, jsonl_line, write_files_together, write_text_parts
from slmeval.models.base import UnitMapping
from slmeval.results.files import meta_sha256
from slmeval.results.samples import Samples, metric_frame, partial_text, sample_line
from slmeval.scoring import PRESETS, build_tokens, distinct_sequences
from slmeval.scoring.batch import ScoringError, _padded_batch, _sums, token_arrays
from slmeval.units import LogMelTokenizer, UnitCache, tokenize_sources

KEYS = ("id", "positive_key", "negative_key", "positive_file", "negative_file", "positive_logprob", "negative_logprob",
        "positive_n", "negative_n", "positive_units", "negative_units", "positive_score", "negative_score", "correct",
        "meta")


def _row(values: tuple) -> dict:
    flat = (values[0], *values[1], *values[2], *values[3], *values[4], *values[5], *values[6], values[7], values[8])
    return dict(zip(KEYS, flat))


@pytest.mark.parametrize("values", [
    ("p1", ("p1/positive", "p1/negative"), (None, None), (-12.25, -13.5), (40, 41), (40, 41), (-0.30625, -0.3292682926829268), 1.0, {}),
    ("pé\u2028\"x\\", ("a/ü", "b\n"), ("/d/ä.wav", None), (-1e-310, -3.0), (1, 2), (1, 2), (-1e-310, -1.5), 0.5,
     {"type": "ü", "n": 3, "f": 1.5, "b": True, "z": None, "l": [1, (2, 3)], "nested": {"k": "v"}}),
    (7, ("7/positive", "7/negative"), (None, None), (-2.0, -2.0), (2, 2), (2, 2), (np.float64(-1.0), -1.0), 0,
     {"bad": float("nan"), "inf": float("-inf"), "np": np.int64(4), "f32": np.float32(0.5)}),
    ("q", ("a", "b"), (None, None), (-1.0, float("nan")), (1, 1), (1, 1), (-1.0, float("inf")), 0.0, {}),
])
def test_sample_line_is_jsonl_line_of_the_sample_dict(values):
    assert sample_line(*values) == jsonl_line(_row(values))


def test_samples_and_the_partial_file_read_back_as_the_rows():
    rows = [_row(("p1", ("a", "b"), (None, None), (-1.0, -2.0), (1, 2), (1, 2), (-1.0, -1.0), 0.5, {"t": float("nan")})),
            _row(("p2", ("c", "d"), ("f", None), (-3.0, -2.0), (3, 2), (3, 2), (-1.0, -1.0), 0.5, {}))]
    samples = Samples.from_rows(rows)
    assert len(samples) == 2 and samples[1] == json.loads(jsonl_line(rows[1])) and list(samples) == samples[:]
    assert samples.text() == "".join(jsonl_line(r) for r in rows)
    for body in ({"metrics": {"acc": float("nan")}, "hashes": {"items_sha256": "x"}}, {}):
        for got in (samples, Samples([])):
            text = "".join(partial_text("fp", {**body, "samples": got}))   # the pieces written one by one
            # what write_json(path, {"fingerprint", "run"}) gave: the same JSON value
            want = json.loads(json.dumps({"fingerprint": "fp", "run": {**body, "samples": list(got)}}).replace("NaN", "null"))
            assert json.loads(text) == want


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 9])
def test_text_written_in_pieces_is_the_joined_text(tmp_path, n):
    """Samples files and partials are written a block of lines at a time (memory bounded by the block):
    the file holds exactly the joined pieces at every block edge (block 4 here: 3, 4, 5 and 9 pieces),
    empty pieces and non-ASCII included."""
    pieces = [f"é{i}\n" if i % 3 else "" for i in range(n)]
    atomic_write_text(tmp_path / "a.jsonl", iter(pieces))
    with open(tmp_path / "b.jsonl", "wb") as fh:
        write_text_parts(fh, pieces, block=4)
    write_files_together({tmp_path / "c.jsonl": pieces, tmp_path / "d.json": "x"})
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        assert (tmp_path / name).read_bytes() == "".join(pieces).encode("utf-8")
    assert (tmp_path / "d.json").read_text() == "x"


def test_metric_frame_is_the_frame_of_one_dict_per_pair():
    rng = np.random.default_rng(0)
    cases = [[{}] * 4,
             [{"type": "a", "voice": 1}, {"type": "b", "voice": None}, {"type": "a", "voice": 2}],
             [{"a": 1, "correct": "meta-correct"}, {"c": "x"}, {"a": None, "b": 2.5, "positive_score": 9}],
             [{"item": i % 3, "v": f"v{i}"} for i in range(9)]]
    for metas in cases:
        pos, neg = rng.normal(size=len(metas)).tolist(), rng.normal(size=len(metas)).tolist()
        credit = [1.0 if p > n else 0.0 for p, n in zip(pos, neg)]
        old = pd.DataFrame([{**m, "positive_score": p, "negative_score": n, "correct": c}
                            for m, p, n, c in zip(metas, pos, neg, credit)])
        pd.testing.assert_frame_equal(metric_frame(metas, pos, neg, credit), old)
        pd.testing.assert_frame_equal(metric_frame(metas, np.array(pos), np.array(neg), np.array(credit)), old)


@pytest.mark.parametrize("seq", [(), (0,), (3, 14, 15), [10**18, 2**63 - 1], (-1, 5), (2**64, 1), (True, False, 2),
                                 (1.0, 2.0), np.array([0, 9, 10, 99, 100], np.int64), np.array([5, 6], np.int32),
                                 np.array([], np.int64), (np.int64(7), np.int16(8)), np.arange(12)[::2]])
def test_int_list_json_is_json_dumps_of_the_ints(seq):
    assert int_list_json(seq) == json.dumps(list(map(int, seq))).encode()


def test_meta_hash_skips_the_round_trip_only_where_it_changes_nothing():
    metas = [{}, {"b": 1, "a": "é\u2028", "c": None, "d": True, "e": 1.5e-300}, {"f": float("nan")}, {1: 2, "a": 3},
             {"a": [1, (2, 3)], "n": np.float32(1.5)}, {"z": float("inf"), "y": -0.0, "x": {"q": 1}}, {"10": 1, "9": 2}]
    rows = [(f"i{k}", m) for k, m in enumerate(metas)]
    lines = sorted(f"{i}\t{json.dumps(json.loads(jsonl_line(m)), sort_keys=True)}\n" for i, m in rows)
    assert meta_sha256(rows) == hashlib.sha256("".join(lines).encode()).hexdigest()


class _LM:
    def __init__(self, mapping: UnitMapping, vocab_size: int, max_length: int | None = None):
        self.mapping, self.vocab_size, self.max_length = mapping, vocab_size, max_length


MAPPINGS = [UnitMapping(offset=3, bos_id=1, eos_id=2, pad_id=0),
            UnitMapping(offset=None, bos_id=0, eos_id=1, pad_id=None, unit_ids=tuple(range(40, 10, -1)), prefix_ids=(5, 6)),
            UnitMapping(offset=0, bos_id=None, eos_id=30, pad_id=31)]


@pytest.mark.parametrize("mapping", MAPPINGS)
@pytest.mark.parametrize("protocol", ["slmeval", "slamkit", "cuervo"])
def test_token_arrays_are_build_tokens(mapping, protocol):
    lm, proto = _LM(mapping, 60), PRESETS[protocol]
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 25, int(rng.integers(1, 30))) for _ in range(50)] + [(1,), [0, 24]]
    try:
        want = [build_tokens(list(map(int, s)), lm, proto, name=f"s{i}") for i, s in enumerate(seqs)]
    except ScoringError as err:
        with pytest.raises(ScoringError) as got:
            token_arrays(seqs, lm, proto, names=[f"s{i}" for i in range(len(seqs))])
        assert str(got.value) == str(err)
        return
    got = token_arrays(seqs, lm, proto, names=[f"s{i}" for i in range(len(seqs))])
    assert [g.tolist() for g in got] == want and all(g.dtype == np.int64 for g in got)


@pytest.mark.parametrize("bad, lm", [([0, 57], _LM(MAPPINGS[0], 60)), ([-1], _LM(MAPPINGS[0], 60)),
                                     ([1] * 40, _LM(MAPPINGS[0], 60, max_length=30)),
                                     ([3], _LM(UnitMapping(offset=3, bos_id=None, eos_id=2, pad_id=0), 60))])
def test_token_arrays_refuse_what_build_tokens_refuses_naming_the_first(bad, lm):
    seqs, names = [[1, 2], bad, [5], bad], ["a", "b", "c", "d"]
    with pytest.raises(ScoringError) as want:
        [build_tokens(s, lm, PRESETS["slmeval"], name=n) for s, n in zip(seqs, names)]
    with pytest.raises(ScoringError) as got:
        token_arrays(seqs, lm, PRESETS["slmeval"], names=names)
    assert str(got.value) == str(want.value) and "b" in str(got.value)


def test_padded_batch_is_the_row_by_row_construction():
    rng = np.random.default_rng(2)
    seqs = sorted((rng.integers(3, 50, int(rng.integers(2, 20))) for _ in range(17)), key=lambda s: -len(s))
    ids, mask, rows, targets = _padded_batch(seqs, 0, torch.device("cpu"))
    width = len(seqs[0])
    want_ids, want_mask = np.zeros((17, width), np.int64), np.zeros((17, width), np.int64)
    want_rows, want_targets = [], []
    for r, s in enumerate(seqs):
        want_ids[r, :len(s)], want_mask[r, :len(s)] = s, 1
        want_rows += [r * width + j for j in range(len(s) - 1)]
        want_targets += list(s[1:])
    assert ids.tolist() == want_ids.tolist() and mask.tolist() == want_mask.tolist()
    assert rows.tolist() == want_rows and targets.tolist() == [int(t) for t in want_targets]


def test_sums_are_numpys_one_dimensional_sums_bit_for_bit():
    rng = np.random.default_rng(3)
    per_token = [rng.normal(-5, 3, n).astype(np.float32).astype(np.float64) for n in
                 [0, 1, 7, 8, 9, 127, 128, 129, 300, 1025] * 3 + list(rng.integers(0, 200, 60))]
    got = _sums(per_token, "float64")
    assert got == [float(a.sum()) for a in per_token] and all(type(x) is float for x in got)
    assert _sums(per_token[:5], "bfloat16") == [float(torch.as_tensor(a, dtype=torch.float32).sum().to(torch.bfloat16))
                                                 for a in per_token[:5]]
    assert _sums([], "float64") == [] and _sums([np.zeros(0)] * 2, "float64") == [0.0, 0.0]


def test_distinct_sequences_groups_equal_content_whatever_its_container():
    seqs = [np.array([1, 2, 3]), [1, 2, 3], (1, 2), np.array([1, 2], np.int32), np.array([1, 2, 3])[::1], [], ()]
    firsts, index = distinct_sequences(seqs)
    assert firsts == [0, 2, 5] and index == [0, 0, 1, 1, 0, 2, 2]


def test_cache_reads_in_one_pass_equal_reads_one_by_one(tmp_path):
    tok = LogMelTokenizer(np.random.default_rng(0).normal(size=(16, 40)))
    cache = UnitCache(tmp_path, tok.identity)
    shas = [hashlib.sha256(bytes([i])).hexdigest() for i in range(4)]
    cache.put(shas[0], np.array([3, 1, 4], np.int64))
    cache.put(shas[1], np.array([], np.int64), near_silent=True)
    cache.put(shas[2], np.arange(70000, dtype=np.int64))        # a header past one 64-byte block? still one line
    found = cache.get_many([shas[0], shas[3], shas[1], shas[2], shas[0]])
    assert list(found) == [shas[0], shas[1], shas[2]]
    for sha, (units, quiet) in found.items():
        assert units.tolist() == cache.get(sha).tolist() and units.dtype == np.int64 and units.flags.writeable
        assert quiet == cache.near_silent(sha) == (sha == shas[1])
    # an entry np.save wrote differently (big-endian) takes np.load and is refused as it always was
    import io as _io

    buf = _io.BytesIO()
    np.save(buf, np.array([1, 2], dtype=">i8"))
    payload = buf.getvalue()
    cache.path(shas[3]).parent.mkdir(parents=True, exist_ok=True)
    cache.path(shas[3]).write_bytes(b"SLMEVAL-UNITS-1\n" + hashlib.sha256(payload).digest() + payload)
    assert cache.get_many([shas[3]]) == {} and not cache.path(shas[3]).exists()


def test_resampled_and_downmixed_files_are_summarised_once(tmp_path, caplog):
    tok = CountingTokenizer(LogMelTokenizer(np.random.default_rng(0).normal(size=(16, 40))))
    wav = speech(SENTENCES[0])
    files = []
    for i in range(5):                  # 4 at 22050 Hz, one stereo at 16 kHz
        files.append(tmp_path / f"f{i}.wav")
        if i < 4:
            write_audio(files[-1], np.interp(np.arange(0, len(wav), 16000 / 22050), np.arange(len(wav)), wav) * (1 + i / 10),
                        sr=22050)
        else:
            import soundfile as sf

            sf.write(files[-1], np.stack([wav, wav], axis=1), 16000, subtype="PCM_16")
    with caplog.at_level(logging.INFO, logger="slmeval"):
        tokenize_sources(files, [f.name for f in files], tok, None, progress=False)
    lines = [r.getMessage() for r in caplog.records]
    assert "units: resampled 22050 Hz -> 16000 Hz: 4 file(s) (f0.wav, f1.wav, f2.wav, ...)" in lines
    assert "units: 2 channels, averaged to mono: 1 file(s) (f4.wav)" in lines
    assert not any(line.startswith("f0.wav") or "f3.wav" in line for line in lines)   # no line per file
    assert math.isclose(len(lines), 3, abs_tol=1)
