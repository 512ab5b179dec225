"""Bark backend against a tiny random BarkModel saved like a suno/bark download (offline)."""
from __future__ import annotations

import json
from math import gcd

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from slmeval.synth import build_plan, read_manifest, run_synth
from slmeval.tts.base import TTSError, make_backend, sha256_files

from tests._synth_helpers import (COARSE_VOCAB, FINE_VOCAB, N_CODEBOOKS, SEMANTIC_IN, SEMANTIC_OUT, STORIES,
                                  VOICES, make_tiny_bark, write_jsonl)

torch = pytest.importorskip("torch")
MAX_SEMANTIC = 12     # ~0.24 s of speech: keeps every stage tiny


@pytest.fixture(scope="module")
def bark_dir(tmp_path_factory):
    return make_tiny_bark(tmp_path_factory.mktemp("tiny_bark"))


@pytest.fixture(scope="module")
def backend(bark_dir):
    torch.set_num_threads(1)
    return make_backend("bark", model=bark_dir, batch_size=2,
                        options={"semantic_max_new_tokens": MAX_SEMANTIC})


def test_tiny_model_keeps_barks_token_layout(bark_dir):
    """The issue's vocabulary claims, checked against transformers' own Bark generation constants."""
    from transformers.models.bark.generation_configuration_bark import (BarkCoarseGenerationConfig,
                                                                        BarkFineGenerationConfig,
                                                                        BarkSemanticGenerationConfig)
    sem, coarse, fine = BarkSemanticGenerationConfig(), BarkCoarseGenerationConfig(), BarkFineGenerationConfig()
    assert max(sem.text_pad_token, sem.semantic_infer_token) == SEMANTIC_IN - 1
    assert sem.semantic_vocab_size == 10_000 and sem.eos_token_id < SEMANTIC_OUT
    assert coarse.coarse_infer_token < COARSE_VOCAB
    assert sem.semantic_vocab_size + coarse.n_coarse_codebooks * 1024 <= COARSE_VOCAB
    assert fine.n_fine_codebooks == N_CODEBOOKS and 1024 < FINE_VOCAB
    assert sem.max_input_semantic_length == 256
    config = json.loads((bark_dir / "config.json").read_text())
    assert config["semantic_config"]["input_vocab_size"] == SEMANTIC_IN
    assert config["codec_config"]["sampling_rate"] == 24_000
    gen = json.loads((bark_dir / "generation_config.json").read_text())
    assert {"semantic_config", "coarse_acoustics_config", "fine_acoustics_config"} <= set(gen)


def test_bark_generation_config_class_cannot_be_saved_in_transformers_5(tmp_path):
    """Why the fixture (and suno/bark) use a plain GenerationConfig: a BarkGenerationConfig fails to save."""
    from transformers.models.bark.generation_configuration_bark import BarkGenerationConfig

    with pytest.raises(AttributeError):
        BarkGenerationConfig().save_pretrained(tmp_path)


def test_backend_matches_a_direct_transformers_call(backend, bark_dir):
    """Our wavs == BarkModel.generate as the HF docs use it (same seed and options), scipy 24k→16k, and a
    two-sentence text joined from its sentences with 0.25 s of silence."""
    from transformers import BarkModel, BarkProcessor

    texts, voice, seed = ["hello there. a cat sat.", "the dog ran home."], VOICES[1], 1234
    ours = backend.synthesize_batch(texts, voice, seed)

    proc = BarkProcessor.from_pretrained(str(bark_dir))
    model = BarkModel.from_pretrained(str(bark_dir))
    options = dict(do_sample=True, semantic_temperature=0.7, coarse_temperature=0.7, fine_temperature=0.5,
                   min_eos_p=0.2, semantic_max_new_tokens=MAX_SEMANTIC, return_output_lengths=True)
    torch.manual_seed(seed)
    ref = []
    for chunk in (["hello there.", "a cat sat."], ["the dog ran home."]):    # batch_size=2, in order
        audio, lengths = model.generate(**proc(chunk, voice_preset=voice), **options)
        g = gcd(24_000, 16_000)
        ref += [resample_poly(row[:n].double().numpy(), 16_000 // g, 24_000 // g) for row, n in zip(audio, lengths)]
    expected = [np.concatenate([ref[0], np.zeros(4_000), ref[1]]), ref[2]]
    assert len(ours) == 2
    for wav, want in zip(ours, expected):
        assert wav.dtype == np.float32 and wav.ndim == 1 and np.isfinite(wav).all()
        assert len(wav) == len(want) > 0
        np.testing.assert_allclose(wav, want, atol=1e-5)


def test_seeded_reproducible_and_voices_differ(backend):
    text = ["the dog ran home."]
    a = backend.synthesize_batch(text, VOICES[0], 7)[0]
    b = backend.synthesize_batch(text, VOICES[0], 7)[0]
    other_seed = backend.synthesize_batch(text, VOICES[0], 8)[0]
    other_voice = backend.synthesize_batch(text, VOICES[2], 7)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other_seed)
    assert len(other_voice) != len(a) or not np.allclose(a, other_voice)


def test_unknown_voice_and_non_bark_folder_fail_clearly(backend, tmp_path):
    with pytest.raises(TTSError, match=r"v2/en_speaker_0"):
        backend.check_voice("v2/de_speaker_9")
    with pytest.raises(TTSError, match="not a Bark model directory"):
        make_backend("bark", model=tmp_path)
    assert backend.voices() == sorted(VOICES)


@pytest.mark.slow
def test_synth_with_bark_writes_seeded_manifest_and_resumes(backend, bark_dir, tmp_path):
    source = write_jsonl(tmp_path / "stories.jsonl", STORIES[:1])
    plan = build_plan(source, "sstorycloze", list(VOICES[:2]))
    out = tmp_path / "bark_sStoryCloze"
    report = run_synth(plan, backend, out, seed=3, progress=False)
    assert (report.written, report.skipped, report.complete) == (4, 0, True)
    entries = read_manifest(out)
    assert sorted(entries) == sorted(j.file for j in plan.jobs)
    weights_and_configs = [bark_dir / "model.safetensors", bark_dir / "config.json", bark_dir / "generation_config.json"]
    for file, e in entries.items():
        info = sf.info(str(out / file))
        assert (info.samplerate, info.channels, info.frames) == (16_000, 1, e["frames"])
        assert e["backend"] == "bark" and e["seed"] == 3 and isinstance(e["call_seed"], int)
        assert e["model_hash"] == sha256_files(weights_and_configs, root=bark_dir)
        assert e["options"]["semantic_max_new_tokens"] == MAX_SEMANTIC
        assert e["voice_dir"] == e["voice"].replace("/", "_") and file.startswith(e["voice_dir"] + "/")
    again = run_synth(plan, backend, out, seed=3, progress=False)
    assert (again.written, again.skipped) == (0, 4)


def test_sentence_split():
    from slmeval.tts.bark import split_sentences

    assert split_sentences("Tom went home.  He ran! Why? ok") == ["Tom went home.", "He ran!", "Why?", "ok"]
    assert split_sentences("no end mark") == ["no end mark"]
