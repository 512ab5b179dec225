"""Issue 24's "done when": a new contributor adds (a) a task on an existing layout, (b) a checkpoint format,
(c) a speech tokenizer, each as ONE new file, as docs/plugins.md shows. The files are taken from the
page, dropped into a copy of slmeval (nothing else in the copy changes: no list to extend), and the
documented commands run in a fresh process with that copy first on the path. References: the new
adapter must give the same per-pair log-probs as the same weights read by the built-in `hf` adapter,
and the new tokenizer's units are recomputed here by hand (numpy) from the audio."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slmeval.audio import load_audio

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "plugins.md").read_text()
NEW = dict(re.findall(r"\*\*New file `([^`]+)`:\*\*\n\n```\w*\n(.*?)\n```", DOC, flags=re.S))
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


def _slmeval(args: list[str], site: Path, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "300"}
    done = subprocess.run([sys.executable, "-c", "from slmeval.cli import main; main()", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"slmeval {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """slmeval as installed (tasks/ and audio_assets/ inside the package, as the wheel maps them), plus
    the three new files from the page; nothing else is edited."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(REPO / "slmeval", site / "slmeval", ignore=SKIP, symlinks=False)
    if (site / "slmeval" / "tasks").is_symlink() or (site / "slmeval" / "tasks").exists():
        shutil.rmtree(site / "slmeval" / "tasks")
    shutil.copytree(REPO / "tasks", site / "slmeval" / "tasks", ignore=SKIP)
    (site / "slmeval" / "audio_assets").symlink_to(REPO / "audio_assets")
    assert set(NEW) == {"tasks/mini/mini_sblimp_pairs.yaml", "slmeval/models/toy_slm.py", "slmeval/units/energy.py"}
    for rel, text in NEW.items():
        target = site / "slmeval" / rel if rel.startswith("tasks/") else site / rel
        assert not target.exists() and target.parent.is_dir(), rel    # a new file in an existing folder
        target.write_text(text + "\n")
    return site


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory, tiny_llama_dir) -> Path:
    """tiny_llama's weights in the new format: config.json {model_type: toy_slm, llama, offset} + toy.safetensors."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("toy_ckpt")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    llama = {k: v for k, v in model.config.to_dict().items() if k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "pad_token_id", "bos_token_id", "eos_token_id",
        "tie_word_embeddings", "rms_norm_eps", "rope_theta")}
    (out / "config.json").write_text(json.dumps({"model_type": "toy_slm", "llama": llama, "offset": config["offset"]}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "toy.safetensors")
    return out


@pytest.mark.slow
def test_listings_show_the_three_new_plugins(copy, tmp_path):
    rows = [line.split("│") for line in _slmeval(["tasks"], copy, tmp_path).splitlines() if "│" in line]
    names, origins = ("".join(r[i].strip() for r in rows) for i in (1, 5))   # cells wrap over lines
    assert "mini_sblimp_pairs[mini]" in names
    assert "built-in(mini/mini_sblimp_pairs.yaml)" in origins.replace(" ", "")
    plugins = _slmeval(["plugins"], copy, tmp_path)
    assert re.search(r"toy_slm\s.*slmeval\.models\.toy_slm", plugins), plugins
    assert re.search(r"energy\s.*slmeval\.units\.energy", plugins), plugins
    # the real slmeval (this checkout) does not have them: the copy's new files alone did it
    assert "toy_slm" not in _slmeval(["plugins"], REPO, tmp_path)


def _samples(folder: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"samples_{task}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_run_uses_the_new_task_adapter_and_tokenizer(copy, toy_checkpoint, tiny_llama_dir, tmp_path):
    run = ["run", "--tasks", "mini_sblimp_pairs", "--tokenizer", "energy:levels=16", "--no-progress",
           "--device", "cpu"]
    _slmeval([*run, "--model", str(toy_checkpoint), "--output", str(tmp_path / "toy")], copy, tmp_path)
    _slmeval([*run, "--model", str(tiny_llama_dir), "--output", str(tmp_path / "hf")], copy, tmp_path)
    toy = json.loads((tmp_path / "toy" / "results.json").read_text())
    assert toy["config"]["adapter"] == "toy_slm"
    assert toy["config"]["unit_mapping"]["sources"]["offset"] == "config.json offset"   # the adapter's facts
    # (b) the new adapter reads the same weights: per-pair log-probs equal the built-in hf adapter's
    a, b = _samples(tmp_path / "toy", "mini_sblimp_pairs"), _samples(tmp_path / "hf", "mini_sblimp_pairs")
    assert len(a) == len(b) == 144                       # mini_sblimp's voice-pairs, one by one
    for x, y in zip(a, b):
        assert (x["id"], x["positive_units"], x["negative_units"]) == (y["id"], y["positive_units"], y["negative_units"])
        assert (x["positive_logprob"], x["negative_logprob"]) == pytest.approx(
            (y["positive_logprob"], y["negative_logprob"]), abs=1e-4)
    # (c) the new tokenizer: unit counts recomputed by hand (20 ms frames, log energy, nearest of 16
    # levels in [-12, 0], consecutive duplicates removed)
    levels = np.linspace(-12.0, 0.0, 16)
    for sample in a[:12]:
        for side in ("positive", "negative"):
            wav = load_audio(sample[f"{side}_file"]).astype(np.float64)
            energy = np.log(np.mean(wav[: len(wav) // 320 * 320].reshape(-1, 320) ** 2, axis=1) + 1e-12)
            units = np.abs(energy[:, None] - levels[None, :]).argmin(axis=1)
            assert sample[f"{side}_units"] == 1 + int(np.count_nonzero(np.diff(units))), sample["id"]
    # (a) the new task: plain pairs, acc = the mean credit over voice-pairs, acc_macro over the types
    metrics = toy["results"]["mini_sblimp_pairs"]
    assert metrics["n_pairs"] == 144
    assert metrics["acc"] == pytest.approx(np.mean([s["correct"] for s in a]), abs=1e-12)
    by_type: dict[str, list[float]] = {}
    for sample in a:
        by_type.setdefault(sample["meta"]["type"], []).append(sample["correct"])
    macro = np.mean([np.mean(v) for v in by_type.values()])
    assert metrics["acc_macro"] == pytest.approx(macro, abs=1e-12)
