"""`slmeval run` writes the same bytes as before the per-pair overhead work (issue 22).

The reference files in tests/regression/ were written by the code before that work (tests/_regression.py
says how, and how to rewrite them after a deliberate change of the output). On the machine shape they
were recorded on (torch version, CPU capability) every file must be byte-identical; elsewhere a float32
forward may differ in its last bits, so there everything except floats is compared exactly and floats to
1e-6 relative.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from _regression import FIXTURE, environment, read_fixture, runs, torchrun_run

EXPECTED = read_fixture()
SAME_MACHINE = json.loads((FIXTURE / "environment.json").read_text()) == environment()


@pytest.fixture()
def one_thread():
    # the fixture was recorded with one intra-op thread; a float32 matmul's bits may depend on the split
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return type(a) is type(b) and a == b


def _parse(name: str, text: str) -> object:
    return [json.loads(x) for x in text.splitlines()] if name.endswith(".jsonl") else json.loads(text)


def assert_same_files(run: str, got: dict[str, str]) -> None:
    want = EXPECTED[run]
    assert sorted(got) == sorted(want), run
    for name, text in want.items():
        if SAME_MACHINE:
            if got[name] != text:
                lines = [(i, a, b) for i, (a, b) in enumerate(zip(text.splitlines(), got[name].splitlines()), 1) if a != b]
                first = lines[0] if lines else ("length", len(text), len(got[name]))
                pytest.fail(f"{run}/{name} differs from the recorded bytes; first difference (line, was, now): {first}. "
                            "If the output changed on purpose (a new results.json field), re-record the fixture: "
                            "python tests/_regression.py --write")
        else:
            assert _close(_parse(name, got[name]), _parse(name, text)), f"{run}/{name}"


def test_every_run_writes_the_recorded_bytes(tmp_path, one_thread):
    got = runs(tmp_path)
    assert sorted(got) == sorted(set(EXPECTED) - {"torchrun_2"})
    for run, files in got.items():
        assert_same_files(run, files)


@pytest.mark.slow
def test_torchrun_two_ranks_write_the_recorded_bytes(tmp_path):
    assert_same_files("torchrun_2", torchrun_run(tmp_path))


def test_the_fixture_holds_the_cases_it_claims():
    """Ties, a sequence shared by many pairs, both tie credits, a reused task: a fixture without them
    would pass whatever the tie / de-duplication / resume code did."""
    samples = _parse("x.jsonl", EXPECTED["units_slmeval"]["samples_reg_units.jsonl"])
    ties = [s for s in samples if s["positive_score"] == s["negative_score"]]
    assert len(ties) >= 32 and all(s["correct"] == 0.5 for s in ties)
    cuervo = _parse("x.jsonl", EXPECTED["units_cuervo"]["samples_reg_units.jsonl"])
    assert all(s["correct"] == 0.0 for s in cuervo if s["positive_score"] == s["negative_score"])
    # a voice_averaged task with no tie rule of its own: cuervo's 0, not sBLIMP's 0.5 (issue 24)
    voices = _parse("x.jsonl", EXPECTED["units_cuervo"]["samples_reg_units_voices.jsonl"])
    assert [s["correct"] for s in voices if s["positive_score"] == s["negative_score"]] == [0.0] * 12
    lengths = [s["positive_units"] for s in samples if s["meta"]["kind"] == "shared"]
    assert lengths.count(17) >= 10
    assert "reg_units" in json.loads(EXPECTED["units_resumed"]["results.json"])["provenance"]["resumed"]
    assert json.loads(EXPECTED["torchrun_2"]["results.json"])["config"]["distributed"]["world_size"] == 2
