"""Test fixtures for `slmeval synth`: a tiny random Bark folder laid out like a suno/bark download,
and small text sources."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Bark's token layout (transformers' Bark generation configs): text ids are offset by 10,048 and the
# text pad / semantic infer tokens are 129,595 / 129,599, so the semantic input vocabulary is 129,600;
# semantic output 10,048 (10,000 semantic tokens + EOS/pad 10,000); coarse in/out 12,096 (10,000 +
# 2 x 1,024 codebook entries, pad 12,048, infer 12,050); fine 1,056 over 8 codebooks (pad id 1,024).
SEMANTIC_IN, SEMANTIC_OUT, COARSE_VOCAB, FINE_VOCAB, N_CODEBOOKS = 129_600, 10_048, 12_096, 1_056, 8
VOICES = ("v2/en_speaker_0", "v2/en_speaker_1", "v2/en_speaker_2")


def make_tiny_bark(root: Path, voices: tuple[str, ...] = VOICES, seed: int = 0) -> Path:
    """save_pretrained a random BarkModel + BarkProcessor + speaker presets into `root`."""
    import torch
    from transformers import (BarkCoarseConfig, BarkConfig, BarkFineConfig, BarkModel, BarkProcessor,
                              BarkSemanticConfig, BertTokenizer, EncodecConfig, GenerationConfig)
    from transformers.models.bark.generation_configuration_bark import (BarkCoarseGenerationConfig,
                                                                        BarkFineGenerationConfig,
                                                                        BarkSemanticGenerationConfig)

    root.mkdir(parents=True, exist_ok=True)
    tiny = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "block_size": 1024}
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(input_vocab_size=SEMANTIC_IN, output_vocab_size=SEMANTIC_OUT, **tiny).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=COARSE_VOCAB, output_vocab_size=COARSE_VOCAB,
                                                 **tiny).to_dict(),
        fine_acoustics_config=BarkFineConfig(input_vocab_size=FINE_VOCAB, output_vocab_size=FINE_VOCAB,
                                             n_codes_total=N_CODEBOOKS, n_codes_given=1, **tiny).to_dict(),
        # EnCodec 24 kHz: hop 8*5*4*2 = 320 samples (75 Hz frames), 1,024-entry codebooks.
        codec_config=EncodecConfig(sampling_rate=24_000, target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
                                   num_filters=4, hidden_size=16, codebook_dim=16, codebook_size=1024,
                                   upsampling_ratios=[8, 5, 4, 2], num_residual_layers=1,
                                   num_lstm_layers=1).to_dict(),
    )
    torch.manual_seed(seed)
    model = BarkModel(config)
    # EnCodec initialises its codebooks to zeros (real ones come from the checkpoint), which would make
    # the decoded audio independent of the generated codes: give them random entries.
    with torch.no_grad():
        for layer in model.codec_model.quantizer.layers:
            layer.codebook.embed.normal_()
    # transformers 5.x: BarkGenerationConfig cannot be saved (its validate() trips over missing fields);
    # the hub's suno/bark holds a plain GenerationConfig carrying the three stage configs as dicts.
    model.generation_config = GenerationConfig(
        semantic_config=BarkSemanticGenerationConfig().to_dict(),
        coarse_acoustics_config=BarkCoarseGenerationConfig().to_dict(),
        fine_acoustics_config=BarkFineGenerationConfig().to_dict(),
        sample_rate=24_000, codebook_size=1024)
    model.save_pretrained(root)

    # Bark uses bert-base-multilingual-cased; a tiny cased WordPiece vocab stands in for it.
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *".,!?'-", *(f"##{c}" for c in letters)]
    vocab_file = root / "vocab_src.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    BarkProcessor(BertTokenizer(str(vocab_file), do_lower_case=False)).save_pretrained(root)
    vocab_file.unlink()

    rng = np.random.default_rng(seed)
    listing: dict = {"repo_or_path": str(root)}
    for voice in voices:
        prompts = {"semantic_prompt": rng.integers(0, 10_000, size=40),
                   "coarse_prompt": rng.integers(0, 1024, size=(2, 60)),
                   "fine_prompt": rng.integers(0, 1024, size=(N_CODEBOOKS, 60))}
        listing[voice] = {}
        for key, arr in prompts.items():
            rel = f"speaker_embeddings/{voice}_{key}.npy"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(root / rel, arr.astype(np.int64))
            listing[voice][key] = rel
    (root / "speaker_embeddings_path.json").write_text(json.dumps(listing))
    return root


STORIES = [
    {"id": "s1", "context": "Tom went to the store. He wanted milk. The shop was closed. He went home.",
     "positive": "He drank water instead.", "negative": "He flew to the moon."},
    {"id": "s2", "context": "Ann planted seeds. She watered them daily. Weeks passed. Sprouts appeared.",
     "positive": "She was happy with her garden.", "negative": "She sold her car."},
    {"id": "s3", "context": "The dog barked. A cat ran by. The dog chased it. The cat climbed a tree.",
     "positive": "The dog gave up.", "negative": "The tree sang a song."},
]

MINIMAL_PAIRS = [
    {"id": "0", "type": "morphology", "subtype": "agreement", "good": "The dogs bark.", "bad": "The dogs barks."},
    {"id": "1", "type": "morphology", "subtype": "agreement", "good": "A cat sleeps.", "bad": "A cat sleep."},
    {"id": "0", "type": "syntax", "subtype": "island", "good": "Who did you see?", "bad": "Who did you see him?"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
