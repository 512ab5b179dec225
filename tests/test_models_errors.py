"""Bad model input: one clear error naming what is wrong, exit 2, nothing written; no silent wrong mapping;
--model-args that contradict the checkpoint need force=true (recorded); K checked before audio work."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _model_replicas import save_slamkit, save_slm_scaling, squash, units_task
from _units_helpers import CountingTokenizer
from conftest import N_UNITS
from slmeval.cli import app
from slmeval.models import ModelError, load_lm
from test_models_formats import TWIST_OFFSET, save_twist

ROOT = Path(__file__).resolve().parents[1]
DEMO_TOKENIZER = ROOT / "audio_assets" / "demo_tokenizer"      # logmel, K = 100


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("err_task")
    units_task(folder, "err_units", n_pairs=3, n_units=N_UNITS, seed=1)
    return folder


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small_models")
    return {"slamkit": save_slamkit(root / "slamkit", "llama", n_units=N_UNITS),
            "twist": save_twist(root / "twist")}


def run_fails(model: str, task: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["run", "--model", model, "--tasks", "err_units", "--include-path", str(task),
                                      "--output", str(out), "--no-progress", "--no-cache", *extra])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not out.exists()
    return squash(result.output)


def test_unknown_model_type(tmp_path, task):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "nonesuch", "hidden": 3}))
    (model / "model.safetensors").write_bytes(b"\0" * 16)
    message = run_fails(str(model), task, tmp_path / "out")
    assert squash("model_type 'nonesuch' is not a format slmeval can load") in message
    assert squash("hf, slamkit, slm_scaling") in message and "adapter=NAME" in message


def test_missing_and_broken_weights(tmp_path, task, small):
    model = tmp_path / "m"
    shutil.copytree(small["slamkit"], model)
    (model / "model.safetensors").unlink()
    assert squash("no weight files found (adapter slamkit expects model.safetensors") in run_fails(str(model), task,
                                                                                           tmp_path / "o1")
    (model / "model.safetensors").write_bytes(b"not a safetensors file")
    assert squash("model.safetensors: cannot read the weights") in run_fails(str(model), task, tmp_path / "o2")
    slm = save_slm_scaling(tmp_path / "slm", shards=2)
    next(iter(sorted(slm.glob("model-0000*")))).unlink()
    assert squash("shard named by the index is missing") in run_fails(str(slm), task, tmp_path / "o3")


def test_hf_weights_that_do_not_fit_the_config_are_refused(tmp_path, task, small):
    """transformers initialises a missing or mis-shaped tensor at random and only logs it: slmeval refuses,
    in one line (no load report, no traceback), for a TWIST-style hf checkpoint."""
    from safetensors.torch import load_file, save_file

    model = tmp_path / "m"
    shutil.copytree(small["twist"], model)
    weights = model / "model.safetensors"
    state = load_file(weights)
    name = next(k for k in sorted(state) if "fc1.weight" in k)
    save_file({k: v for k, v in state.items() if k != name}, weights, metadata={"format": "pt"})
    message = run_fails(str(model), task, tmp_path / "o1")
    assert squash(f"weights do not match the architecture in config.json (missing ['{name}'])") in message
    assert "LOADREPORT" not in message
    save_file(state, weights, metadata={"format": "pt"})
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "vocab_size": cfg["vocab_size"] + 5}))
    message = run_fails(str(model), task, tmp_path / "o2")
    assert squash(f"({cfg['vocab_size']}, 32) in the file, ({cfg['vocab_size'] + 5}, 32) in config.json") in message
    (model / "config.json").write_text(json.dumps(cfg))
    weights.write_bytes(weights.read_bytes()[:1000])                  # cut short by a full disk
    assert squash("transformers cannot load this checkpoint as a causal LM") in run_fails(str(model), task,
                                                                                          tmp_path / "o3")


def test_config_values_of_the_wrong_type_name_their_field(tmp_path, small):
    twist = tmp_path / "twist"
    shutil.copytree(small["twist"], twist)
    cfg = json.loads((twist / "config.json").read_text())
    (twist / "config.json").write_text(json.dumps({**cfg, "offset": 3.7}))      # int() would make it 3
    with pytest.raises(ModelError, match=r"config.json:offset=3.7: expected an integer"):
        load_lm(twist)
    with pytest.raises(ModelError, match=r"--model-args offset='x': expected an integer"):
        load_lm(small["twist"], model_args="offset=x")
    slm = save_slm_scaling(tmp_path / "slm")
    good = json.loads((slm / "config.json").read_text())
    for key, value in (("dim", "32"), ("n_kv_heads", 2.5), ("norm_eps", "1e-5"), ("n_layers", True)):
        (slm / "config.json").write_text(json.dumps({**good, "model_args": {**good["model_args"], key: value}}))
        with pytest.raises(ModelError, match=rf"model_args.{key} = {value!r}: expected"):
            load_lm(slm)


def test_vocab_smaller_than_the_tokenizer_stops_before_audio_work(tmp_path, tiny_llama_dir, small):
    """K = 100 units cannot map into a vocabulary with room for 16: an error at load, no unit encoded,
    no cache folder, no output folder."""
    from slmeval.evaluator import evaluate
    from slmeval.units import load_tokenizer

    tok = CountingTokenizer(load_tokenizer(str(DEMO_TOKENIZER)))
    out, cache = tmp_path / "out", tmp_path / "cache"
    with pytest.raises(ModelError, match=r"K=100 units but the model .* has room for 16: units 0..99 \+ offset 3 "
                                         r"reach token 102, vocabulary size 19"):
        evaluate(tiny_llama_dir, ["mini_sblimp"], tokenizer=tok, output=out, cache_dir=cache, progress=False)
    assert tok.calls == 0 and not out.exists() and not cache.exists()
    # A slamkit checkpoint pins K (vocab = K + 2): another K is a wrong tokenizer even if it would fit.
    result = CliRunner().invoke(app, ["run", "--model", str(small["slamkit"]), "--tasks", "mini_sblimp",
                                      "--tokenizer", str(DEMO_TOKENIZER), "--output", str(out), "--cache-dir",
                                      str(cache), "--no-progress"])
    assert result.exit_code == 2 and squash("K=100 units but this slamkit checkpoint was trained on K=16") in squash(result.output)
    assert not out.exists() and not cache.exists()


def test_model_args_contradicting_config_need_force(tmp_path, task, small):
    message = run_fails(str(small["twist"]), task, tmp_path / "o1", "--model-args", "offset=0")
    assert squash(f"offset=0 (from model_args) but the checkpoint says offset={TWIST_OFFSET} (config.json:offset)") in message
    assert squash("force=true") in message
    out = tmp_path / "forced"
    result = CliRunner().invoke(app, ["run", "--model", str(small["twist"]), "--model-args", "offset=0,force=true",
                                      "--tasks", "err_units", "--include-path", str(task), "--output", str(out),
                                      "--no-progress", "--no-cache"])
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "results.json").read_text())["config"]
    assert cfg["model_args"] == {"offset": "0", "force": "true"}
    assert cfg["unit_mapping"]["offset"] == 0
    assert cfg["unit_mapping"]["sources"]["offset"] == f"model_args (forced over config.json:offset={TWIST_OFFSET})"
    # Agreeing with the checkpoint is fine, and so is filling in what it does not say.
    assert load_lm(small["twist"], model_args=f"offset={TWIST_OFFSET}").mapping.sources["offset"] == "model_args"


def test_mapping_that_cannot_be_determined_is_an_error(tiny_opt_dir, tmp_path):
    """tiny_opt_dir: an HF OPT over units whose config has no offset (pad 0, BOS = EOS = 1, vocab 18)."""
    with pytest.raises(ModelError, match="cannot tell which token id each unit is.*K is unknown here.*offset=N"):
        load_lm(tiny_opt_dir)
    with pytest.raises(ModelError, match="match no known convention for K=10 units"):
        load_lm(tiny_opt_dir, n_units=10)
    # With K = 16 the specials pin slamkit's convention: used, and the reason recorded.
    m = load_lm(tiny_opt_dir, n_units=N_UNITS).mapping
    assert m.offset == 2 and m.sources["offset"] == "inferred:slamkit (pad 0, BOS = EOS = 1 and vocab 18 = K 16 + 2)"
    assert m.sources["bos_id"] == "config.json:bos_token_id"
    assert load_lm(tiny_opt_dir, model_args="offset=2").mapping.offset == 2


def test_format_specific_errors(tmp_path, small):
    # slamkit: specials that are not the unit tokeniser's (an interleaved text + speech model).
    inter = tmp_path / "inter"
    shutil.copytree(small["slamkit"], inter)
    cfg = json.loads((inter / "config.json").read_text())
    cfg["base_config"].update(pad_token_id=7, bos_token_id=5, eos_token_id=6)
    (inter / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"do not occupy ids 0..7, so this is not slamkit's unit-only layout"):
        load_lm(inter)
    del cfg["base_config"]
    (inter / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="a slamkit config needs `base_config`"):
        load_lm(inter)
    # slm_scaling: other format versions, conditioned models, unknown args, tensors that do not fit.
    slm = save_slm_scaling(tmp_path / "slm")
    good = json.loads((slm / "config.json").read_text())
    for change, message in (({"format_version": 2}, "format_version 2; the slm_scaling adapter reads format 1"),
                            ({"model_args": {**good["model_args"], "prefix_vocab_size": 4}}, "prefix-conditioned"),
                            ({"model_args": {**good["model_args"], "rope_theta": 5.0}}, r"unknown model_args \['rope_theta'\]"),
                            ({"model_args": {**good["model_args"], "n_layers": 3}}, "tensor 'layers.2.attention.wq.weight' is missing"),
                            ({"model_args": {**good["model_args"], "dim": 64}}, "weights do not match the architecture")):
        (slm / "config.json").write_text(json.dumps({**good, **change}))
        with pytest.raises(ModelError, match=message):
            load_lm(slm)


def test_protocol_needing_a_token_the_model_lacks_fails_up_front(tmp_path, task):
    """slm_scaling has no BOS: the default protocol (BOS start) is refused at load, with the preset that fits."""
    slm = save_slm_scaling(tmp_path / "slm", args=None, seed=9)
    message = run_fails(str(slm), task, tmp_path / "out")
    assert squash("protocol 'slmeval' needs the model's BOS token") in message
    assert squash("--protocol cuervo") in message
