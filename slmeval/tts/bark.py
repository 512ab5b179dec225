"""Bark TTS through `transformers.BarkModel` + `BarkProcessor`, loaded from a local directory.

The directory is a downloaded `suno/bark` or `suno/bark-small` (config.json, weights,
generation_config.json, tokenizer files, speaker_embeddings_path.json + speaker_embeddings/). Voices
are the presets listed in speaker_embeddings_path.json (`v2/en_speaker_0` ... `v2/en_speaker_9`, ...)
or a path to a `.npz` preset holding semantic_prompt / coarse_prompt / fine_prompt.

Bark renders 24 kHz (generation_config.sample_rate); output is resampled to 16 kHz mono float32.
Bark speaks at most ~15 s per generation, so each text is split into sentences that are generated
separately (same preset) and joined with 0.25 s of silence, as in Bark's own long-form recipe.
Sampling is seeded per call (`torch.manual_seed`), so one (texts, voice, seed, options) call is
reproducible on the same device and library versions. A batch shares one speaker preset
(BarkModel.generate takes one history prompt per call), which is how `slmeval synth` batches: by voice.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from slmeval.audio import TARGET_SR, resample
from slmeval.tts.base import TTSBackend, TTSError, check_waveform, sha256_files

log = logging.getLogger(__name__)

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
_CONFIG_FILES = ("config.json", "generation_config.json")


class BarkBackend(TTSBackend):
    name = "bark"
    seeded = True

    # Defaults: those of Bark's own `generate_audio` (text_temp=0.7, waveform_temp=0.7; fine stage 0.5)
    # and the early-stop EOS threshold its authors suggest (min_eos_p=0.2).
    def __init__(self, model_dir: str | Path, *, device: str = "cpu", dtype: str = "float32",
                 batch_size: int = 8, semantic_temperature: float = 0.7, coarse_temperature: float = 0.7,
                 fine_temperature: float = 0.5, min_eos_p: float | None = 0.2,
                 semantic_max_new_tokens: int | None = None, split_sentences: bool = True,
                 sentence_gap_s: float = 0.25):
        import torch
        from transformers import BarkModel, BarkProcessor

        self.model_dir = Path(model_dir)
        missing = [f for f in ("config.json", "speaker_embeddings_path.json") if not (self.model_dir / f).is_file()]
        if missing:
            raise TTSError(f"{self.model_dir}: not a Bark model directory (missing {', '.join(missing)}); "
                           "expected a local copy of suno/bark or suno/bark-small")
        dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
        if dtype not in dtypes:
            raise TTSError(f"--dtype {dtype!r}: expected one of {', '.join(dtypes)}")
        self._torch = torch
        self.device, self.dtype = device, dtype
        self.batch_size = max(1, batch_size)
        self.options = {"semantic_temperature": semantic_temperature, "coarse_temperature": coarse_temperature,
                        "fine_temperature": fine_temperature, "min_eos_p": min_eos_p,
                        "semantic_max_new_tokens": semantic_max_new_tokens, "split_sentences": split_sentences,
                        "sentence_gap_s": sentence_gap_s}
        # local_files_only: a folder is what we were given; never reach for the hub.
        self.processor = BarkProcessor.from_pretrained(str(self.model_dir), local_files_only=True)
        self.model = BarkModel.from_pretrained(str(self.model_dir), dtype=dtypes[dtype], local_files_only=True)
        self.model.to(device).eval()
        gen = self.model.generation_config
        self.native_sr = int(getattr(gen, "sample_rate", 24_000))
        # BarkModel.generate reads the three stage configs as dicts off a plain GenerationConfig.
        if not isinstance(getattr(gen, "semantic_config", None), dict):
            raise TTSError(f"{self.model_dir}/generation_config.json: expected semantic_config / "
                           "coarse_acoustics_config / fine_acoustics_config entries (as in suno/bark)")
        self._max_text_tokens = int(gen.semantic_config.get("max_input_semantic_length", 256))
        self._model_hash = self._hash_model()

    def _hash_model(self) -> str:
        weights = [p for pat in _WEIGHT_PATTERNS for p in self.model_dir.glob(pat)]
        # suno/bark ships both .bin and .safetensors; hash the format transformers loads (safetensors first).
        safetensors = [p for p in weights if p.suffix == ".safetensors"]
        files = (safetensors or weights) + [self.model_dir / f for f in _CONFIG_FILES
                                            if (self.model_dir / f).is_file()]
        if not weights:
            raise TTSError(f"{self.model_dir}: no weight files (*.safetensors, *.bin)")
        return sha256_files(files, root=self.model_dir)

    @property
    def identity(self) -> dict:
        import transformers

        return {"backend": self.name, "model": str(self.model_dir), "model_hash": self._model_hash,
                "version": f"transformers {transformers.__version__}",
                "options": {**self.options, "dtype": self.dtype, "native_sample_rate": self.native_sr,
                            "sample_rate": TARGET_SR}}

    def voices(self) -> list[str]:
        return sorted(self.processor.available_voice_presets)

    def check_voice(self, voice: str) -> None:
        if voice in self.processor.available_voice_presets:
            return
        if voice.endswith(".npz") and Path(voice).is_file():
            return
        shown = ", ".join(self.voices()[:12]) or "none"
        raise TTSError(f"Bark voice {voice!r} is neither a preset of {self.model_dir} "
                       f"(speaker_embeddings_path.json lists: {shown}) nor an existing .npz file")

    def voice_hash(self, voice: str) -> str:
        """sha256 of the preset's prompt arrays, so the manifest pins the exact speaker embedding."""
        if voice.endswith(".npz"):
            return sha256_files([Path(voice)])
        paths = self.processor.speaker_embeddings[voice]
        return sha256_files([self.model_dir / paths[k] for k in ("semantic_prompt", "coarse_prompt", "fine_prompt")],
                            root=self.model_dir)

    def synthesize_batch(self, texts: list[str], voice: str, seed: int) -> list[np.ndarray]:
        """Seed once, then generate the texts' sentences in chunks of `batch_size` (in order) and join
        each text's sentences with `sentence_gap_s` of silence."""
        self.check_voice(voice)
        pieces = [split_sentences(t) if self.options["split_sentences"] else [t] for t in texts]
        flat = [p for ps in pieces for p in ps]
        self._torch.manual_seed(seed)   # seeds CPU and every CUDA device
        wavs: list[np.ndarray] = []
        for i in range(0, len(flat), self.batch_size):
            wavs += self._generate(flat[i:i + self.batch_size], voice)
        gap = np.zeros(int(round(self.options["sentence_gap_s"] * TARGET_SR)), dtype=np.float32)
        out, k = [], 0
        for text, ps in zip(texts, pieces):
            parts = wavs[k:k + len(ps)]
            k += len(ps)
            joined = np.concatenate([x for part in parts for x in (gap, part)][1:]) if len(parts) > 1 else parts[0]
            out.append(check_waveform(joined, f"bark[{voice}] {text[:40]!r}"))
        return out

    def _generate(self, texts: list[str], voice: str) -> list[np.ndarray]:
        torch = self._torch
        inputs = self.processor(texts, voice_preset=voice, max_length=self._max_text_tokens)
        for text, n in zip(texts, inputs["attention_mask"].sum(dim=1).tolist()):
            if n >= self._max_text_tokens:
                log.warning("Bark: text truncated to %d tokens: %r", self._max_text_tokens, text[:60])
        history = {k: v.to(self.device) for k, v in inputs.pop("history_prompt").items()}
        kwargs = {"do_sample": True,
                  "semantic_temperature": self.options["semantic_temperature"],
                  "coarse_temperature": self.options["coarse_temperature"],
                  "fine_temperature": self.options["fine_temperature"]}
        if self.options["min_eos_p"] is not None:
            kwargs["min_eos_p"] = self.options["min_eos_p"]
        if self.options["semantic_max_new_tokens"] is not None:
            kwargs["semantic_max_new_tokens"] = self.options["semantic_max_new_tokens"]
        with torch.inference_mode():
            audio, lengths = self.model.generate(
                input_ids=inputs["input_ids"].to(self.device),
                attention_mask=inputs["attention_mask"].to(self.device),
                history_prompt=history, return_output_lengths=True, **kwargs)
        return [resample(row[: int(n)].float().cpu().numpy(), self.native_sr, TARGET_SR)
                for row, n in zip(audio, lengths)]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? followed by whitespace. Bark speaks at most ~15 s per call (767 semantic
    tokens at 49.9 Hz fit its 1,024-token window), so a StoryCloze story is spoken sentence by sentence."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p] or [text]


def preset_names(model_dir: str | Path) -> list[str]:
    """Voice presets listed by a Bark directory, without loading the model."""
    path = Path(model_dir) / "speaker_embeddings_path.json"
    try:
        listing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise TTSError(f"{path}: cannot read the speaker preset listing ({err})") from err
    return sorted(k for k in listing if k != "repo_or_path")
