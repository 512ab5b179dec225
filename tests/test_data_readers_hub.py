"""The readers of the Hub layouts on files written here with tarfile / pyarrow (tests/_data_helpers.py):
WebDataset tar shards (sLM21 gold.csv + shards; one sample per pair) and SALMon parquet per part. The
reference is the local layout's reader on the same items: equal ids, keys, meta and audio bytes."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from _data_helpers import make_salmon, make_sblimp, make_swuggy, pairs_to_parquet, to_webdataset
from slmeval.data import DataLayoutError, read_pairs


def same_pairs(got, want) -> None:
    assert [(p.id, p.positive.key, p.negative.key, p.meta) for p in got] == \
           [(p.id, p.positive.key, p.negative.key, p.meta) for p in want]
    for g, w in zip(got, want):
        for side in ("positive", "negative"):
            audio = getattr(w, side).audio
            assert getattr(g, side).audio == (audio if isinstance(audio, bytes) else Path(audio).read_bytes())


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_sblimp_and_swuggy_shards_give_the_local_pairs(tmp_path):
    make_sblimp(tmp_path / "local", items_per_type=2)
    make_swuggy(tmp_path / "local")
    to_webdataset(tmp_path / "local" / "syntactic" / "dev", tmp_path / "syn", n_shards=3)
    to_webdataset(tmp_path / "local" / "lexical" / "dev", tmp_path / "lex", n_shards=2)
    same_pairs(read_pairs("zerospeech_sblimp_webdataset", tmp_path / "syn", shards="audio/*.tar"),
               read_pairs("zerospeech_sblimp", tmp_path / "local", split="dev"))
    same_pairs(read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", shards="audio/*.tar"),
               read_pairs("zerospeech_lexical", tmp_path / "local", split="dev"))


def test_shard_problems_are_errors_naming_the_file(tmp_path):
    make_swuggy(tmp_path / "local")
    repo = to_webdataset(tmp_path / "local" / "lexical" / "dev", tmp_path / "lex", n_shards=2)
    first = sorted(p for p in (tmp_path / "local" / "lexical" / "dev").glob("*.wav"))[0]
    (tmp_path / "lex" / "audio" / "dev-000001.tar").unlink()            # half the files gone
    with pytest.raises(DataLayoutError, match=r"gold.csv: \d+ file\(s\) listed are in no shard"):
        read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", shards="audio/*.tar")
    (tmp_path / "lex" / "audio" / "dev-000001.tar").write_bytes(repo["audio/dev-000001.tar"])
    (tmp_path / "lex" / "audio" / "dev-000002.tar").write_bytes(tar_bytes({first.name: first.read_bytes()}))
    with pytest.raises(DataLayoutError, match=f"dev-000002.tar: sample '{first.stem}' has two 'wav' members"):
        read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", shards="audio/*.tar")
    (tmp_path / "lex" / "audio" / "dev-000002.tar").write_bytes(tar_bytes({first.stem + ".flac": b"x"}))
    with pytest.raises(DataLayoutError, match="has 2 audio members"):
        read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", shards="audio/*.tar")
    (tmp_path / "lex" / "audio" / "dev-000002.tar").write_bytes(b"not a tar at all" * 64)
    with pytest.raises(DataLayoutError, match="dev-000002.tar: not a readable tar shard"):
        read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", shards="audio/*.tar")
    with pytest.raises(DataLayoutError, match="no WebDataset shard matches"):
        read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", shards="nothing/*.tar")
    with pytest.raises(DataLayoutError, match="no gold file"):
        read_pairs("zerospeech_lexical_webdataset", tmp_path / "lex", gold="other.csv")


def test_one_sample_per_pair_shards(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "0.tar").write_bytes(tar_bytes({"10.positive.wav": b"P10", "10.negative.wav": b"N10",
                                                      "10.txt": b"ten", "2.positive.flac": b"P2",
                                                      "2.negative.flac": b"N2"}))
    got = read_pairs("webdataset_pairs", tmp_path / "s")
    assert [(p.id, p.positive.audio, p.negative.audio, p.meta) for p in got] == \
           [("2", b"P2", b"N2", {}), ("10", b"P10", b"N10", {"txt": "ten"})]
    (tmp_path / "s" / "1.tar").write_bytes(tar_bytes({"3.positive.wav": b"P3"}))
    with pytest.raises(DataLayoutError, match="sample '3' has 0 'negative' audio member"):
        read_pairs("webdataset_pairs", tmp_path / "s")


@pytest.mark.parametrize("layout", ["{part}/train/0000.parquet", "data/{part}-00000-of-00001.parquet"])
def test_salmon_parquet_by_part_gives_the_local_pairs_audio(tmp_path, layout):
    parts = ["bg_alignment", "gender_consistency"]
    local = make_salmon(tmp_path / "local", tuple(parts))
    for part in parts:
        target = tmp_path / "hub" / layout.format(part=part)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pairs_to_parquet([p for p in local if p.meta["part"] == part], "positive_audio",
                                            "negative_audio"))
    got = read_pairs("salmon_parquet", tmp_path / "hub", parts=parts)
    assert [p.id for p in got] == [p.id for p in local] and [p.meta for p in got] == [p.meta for p in local]
    assert all(g.positive.audio == Path(w.positive.audio).read_bytes() and
               g.negative.audio == Path(w.negative.audio).read_bytes() for g, w in zip(got, local))
    with pytest.raises(DataLayoutError, match="no parquet file for SALMon part 'bg_all_consistency'"):
        read_pairs("salmon_parquet", tmp_path / "hub")               # all eight parts by default
    with pytest.raises(DataLayoutError, match="no column 'positive'"):
        read_pairs("salmon_parquet", tmp_path / "hub", parts=parts, positive="positive")
