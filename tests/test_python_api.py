"""The Python API as a researcher meets it: `slmeval.evaluate`'s real signature, tasks as one string, and
a transformers model object in memory (lm-eval's HFLM takes one) scored exactly as the same model loaded
from its folder, and against a float64 forward."""
from __future__ import annotations

import inspect
import json
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import slmeval
from _data_helpers import make_units_jsonl
from conftest import N_UNITS, naive_logprobs
from slmeval.models import ModelError

ROOT = Path(__file__).resolve().parents[1]
TASK = "- {name: api_units, family: pairs, source: units_jsonl, path: units.jsonl}\n"


@pytest.fixture(scope="module")
def units_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    make_units_jsonl(root / "units.jsonl", n_pairs=6, n_units=N_UNITS, seed=3)
    tasks = tmp_path_factory.mktemp("api_tasks")
    (tasks / "api.yaml").write_text(TASK)
    return {"data_root": root, "include_path": [tasks]}


def test_evaluate_shows_its_real_signature_and_docstring():
    from slmeval.evaluator import evaluate

    assert slmeval.evaluate is evaluate
    params = inspect.signature(slmeval.evaluate).parameters
    assert list(params)[:2] == ["model", "tasks"]
    assert {"data_root", "tokenizer", "protocol", "model_args", "output", "limit"} <= set(params)
    assert "*args" not in str(inspect.signature(slmeval.evaluate))
    text = pydoc.render_doc(slmeval.evaluate, renderer=pydoc.plaintext)
    assert "data_root" in text and "comma-separated" in text


def test_import_slmeval_stays_light():
    code = "import sys, slmeval; print('torch' in sys.modules, 'slmeval.evaluator' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout.split()
    assert out == ["False", "False"]


def test_tasks_as_one_comma_separated_string(units_task, tiny_llama_dir):
    as_list = slmeval.evaluate(tiny_llama_dir, ["api_units"], progress=False, **units_task)
    as_text = slmeval.evaluate(tiny_llama_dir, "api_units", progress=False, **units_task)
    assert set(as_text["results"]) == {"api_units"}       # not {"a", "p", "i", ...}
    assert as_text["results"] == as_list["results"]


def _samples(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp / "samples_api_units.jsonl").read_text().splitlines()]


def test_model_object_scores_equal_the_model_loaded_from_disk(units_task, tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.train()                   # as a training loop holds it: slmeval must score in eval mode ...
    disk = slmeval.evaluate(tiny_llama_dir, "api_units", output=tmp_path / "disk", progress=False, **units_task)
    mem = slmeval.evaluate(model, "api_units", output=tmp_path / "mem", progress=False, **units_task)
    assert model.training           # ... and give it back as it was
    assert mem["results"] == disk["results"]
    a, b = _samples(tmp_path / "disk"), _samples(tmp_path / "mem")
    assert [(s["positive_logprob"], s["negative_logprob"]) for s in a] == \
           [(s["positive_logprob"], s["negative_logprob"]) for s in b]
    # independent reference: a float64 forward of the saved model, one sequence at a time ([BOS] + unit + 3)
    pairs = {json.loads(line)["id"]: json.loads(line)
             for line in (units_task["data_root"] / "units.jsonl").read_text().splitlines()}
    for s in b:
        units = pairs[int(s["id"])]["positive"]
        expected = float(naive_logprobs(tiny_llama_dir, [1] + [u + 3 for u in units]).sum())
        assert s["positive_logprob"] == pytest.approx(expected, abs=1e-4)
    assert mem["config"]["unit_mapping"]["offset"] == 3
    assert mem["config"]["unit_mapping"]["sources"]["offset"] == "config.json:offset"
    assert mem["config"]["model"].startswith("in-memory LlamaForCausalLM")
    assert len(mem["provenance"]["model_sha256"]) == 64


def test_model_object_identity_follows_its_weights(units_task, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    first = slmeval.evaluate(model, "api_units", progress=False, **units_task)["provenance"]["model_sha256"]
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    second = slmeval.evaluate(model, "api_units", progress=False, **units_task)["provenance"]["model_sha256"]
    assert first != second


def test_model_object_mapping_from_model_args(units_task, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    del model.config.offset                    # a model built in code: its config says nothing about units
    with pytest.raises(ModelError, match="cannot tell which token id each unit is"):
        slmeval.evaluate(model, "api_units", progress=False, **units_task)
    res = slmeval.evaluate(model, "api_units", model_args="offset=3", progress=False, **units_task)
    ref = slmeval.evaluate(tiny_llama_dir, "api_units", progress=False, **units_task)
    assert res["results"] == ref["results"]
    assert res["config"]["unit_mapping"]["sources"]["offset"] == "model_args"


def test_model_object_errors_name_the_fix(units_task, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with pytest.raises(ModelError, match=r"holds float32 weights but dtype='bfloat16'.*dtype='float32'"):
        slmeval.evaluate(model, "api_units", dtype="bfloat16", progress=False, **units_task)
    with pytest.raises(ModelError, match=r"do not apply to a model object"):
        slmeval.evaluate(model, "api_units", model_args="revision=main", progress=False, **units_task)
    with pytest.raises(ModelError, match="no LM head"):
        slmeval.evaluate(model.model, "api_units", progress=False, **units_task)
    with pytest.raises(ModelError, match="not a transformers model"):
        slmeval.evaluate(torch.nn.Linear(2, 2), "api_units", progress=False, **units_task)
