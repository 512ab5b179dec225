"""Model adapter registry: a third-party adapter through the `slmeval.models` entry-point group, unit
tables + start prefixes in the generalised mapping, adapter choice from config.json."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from conftest import N_UNITS, naive_logprobs
from slmeval.models import ADAPTERS, ModelError, choose_adapter, load_lm
from slmeval.scoring import PRESETS, build_tokens, score_sequences

TOY_ADAPTER = '''
import json
from slmeval.models import ADAPTERS, Adapter, HFCore

class ToyAdapter(Adapter):
    """A format slmeval does not know: an HF Llama saved under config `model_type: toy_slm`, whose
    units are listed token by token (reversed) and whose sequences carry a prefix token."""
    name = "toy"

    def detect(self, config):
        return "model_type=toy_slm" if config.get("model_type") == "toy_slm" else None

    def weight_files(self, ckpt):
        return [p for p in [ckpt.directory / "toy.safetensors"] if p.is_file()]

    def load(self, ckpt, args, dtype):
        from transformers import LlamaConfig, LlamaForCausalLM
        from safetensors.torch import load_file
        cfg = LlamaConfig(**ckpt.config["inner"])
        model = LlamaForCausalLM(cfg).to(dtype)
        model.load_state_dict(load_file(ckpt.directory / "toy.safetensors"))
        return HFCore(model)

    def mapping_facts(self, ckpt, core):
        k = ckpt.config["n_units"]
        return {"unit_ids": (tuple(range(2 + k, 2, -1)), "adapter:toy (reversed table)"),
                "prefix_ids": ((2,), "adapter:toy ([Speech]-like marker)"),
                "bos_id": (1, "adapter:toy"), "eos_id": (0, "adapter:toy"), "pad_id": (0, "adapter:toy")}
'''


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch, tiny_llama_dir):
    """A toy package + its dist-info on sys.path, and a checkpoint in its format (weights of tiny_llama)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    (tmp_path / "toy_adapter.py").write_text(TOY_ADAPTER)
    dist = tmp_path / "toy_adapter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy_adapter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[slmeval.models]\ntoy = toy_adapter:ToyAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # Entry points are scanned once per process: let the registry scan again, and forget it afterwards
    # (built-ins registered first, so the restored registry still holds them).
    ADAPTERS.names()
    monkeypatch.setattr(ADAPTERS, "_entries", dict(ADAPTERS._entries))
    monkeypatch.setattr(ADAPTERS, "_loaded", False)
    src = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    ckpt = tmp_path / "toy_ckpt"
    ckpt.mkdir()
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, ckpt / "toy.safetensors")
    inner = {k: v for k, v in json.loads((tiny_llama_dir / "config.json").read_text()).items()
             if k not in ("architectures", "model_type", "offset", "transformers_version", "dtype", "torch_dtype")}
    (ckpt / "config.json").write_text(json.dumps({"model_type": "toy_slm", "n_units": N_UNITS, "inner": inner}))
    yield ckpt
    sys.modules.pop("toy_adapter", None)


def test_third_party_adapter_with_unit_table_and_prefix(toy_plugin, tiny_llama_dir):
    lm = load_lm(toy_plugin)
    assert lm.adapter == "toy" and lm.adapter_reason == "toy: model_type=toy_slm"
    assert "entry point toy = toy_adapter:ToyAdapter (toy_adapter 1.0)" == ADAPTERS.origin("toy")
    m = lm.mapping
    assert m.offset is None and m.unit_ids == tuple(range(2 + N_UNITS, 2, -1)) and m.prefix_ids == (2,)
    assert m.sources["unit_ids"] == "adapter:toy (reversed table)" and "offset" not in m.sources
    units = [0, 5, 15, 5]
    table = [2 + N_UNITS - u for u in units]
    assert build_tokens(units, lm, PRESETS["slmeval"]) == [1, 2] + table
    assert build_tokens(units, lm, PRESETS["slamkit"]) == [1, 2] + table + [0]
    # The prefix is context: the prediction of token 2 after BOS is not part of the score.
    score = score_sequences(lm, [units], PRESETS["slamkit"], names=["x"], progress=False)[0]
    ref = naive_logprobs(tiny_llama_dir, [1, 2] + table + [0]).numpy()[1:]
    assert score.n_scored == len(units) + 1
    assert score.logprob == pytest.approx(float(np.sum(ref)), abs=1e-5)
    with pytest.raises(ModelError, match="offset=3 .* lists each unit's token"):
        load_lm(toy_plugin, model_args="offset=3")
    with pytest.raises(ModelError, match=f"K={N_UNITS + 1} units but the model .* has room for {N_UNITS}"):
        load_lm(toy_plugin, n_units=N_UNITS + 1)


def test_adapter_choice_and_unknown_formats(tiny_llama_dir, tmp_path):
    adapter, why = choose_adapter({"model_type": "llama"}, None)
    assert adapter.name == "hf" and "transformers architecture" in why
    with pytest.raises(ModelError, match="model_type 'nonesuch' is not a format slmeval can load.*adapter=NAME"):
        choose_adapter({"model_type": "nonesuch"}, None)
    with pytest.raises(ModelError, match="adapter=nope: unknown model adapter 'nope'; registered: .*hf"):
        load_lm(tiny_llama_dir, model_args="adapter=nope")
    empty = tmp_path / "noweights"
    empty.mkdir()
    (empty / "config.json").write_text((tiny_llama_dir / "config.json").read_text())
    with pytest.raises(ModelError, match="noweights: no weight files found"):
        load_lm(empty)
    with pytest.raises(ModelError, match="not a model directory"):
        load_lm(tmp_path)


def test_identity_covers_config_and_weights(tiny_llama_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama_dir, copy)
    base = load_lm(copy)
    assert set(base.files) == {"config.json", "generation_config.json", "model.safetensors"}
    cfg = json.loads((copy / "config.json").read_text())
    cfg["rope_theta"] = 1234.0                      # changes scores: must change the identity
    (copy / "config.json").write_text(json.dumps(cfg))
    edited = load_lm(copy)
    assert edited.sha256 != base.sha256 and edited.files["model.safetensors"] == base.files["model.safetensors"]
    (copy / "modeling_custom.py").write_text("# remote code (auto_map) defines the forward\n")
    with_code = load_lm(copy)
    assert "modeling_custom.py" in with_code.files and with_code.sha256 != edited.sha256
