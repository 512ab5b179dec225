"""Audio -> discrete units: the tokenizer interface, the `logmel` and `hubert` encoders, centroids,
consecutive-duplicate removal and the on-disk unit cache. See docs/units.md."""
from __future__ import annotations

from slmeval.units.base import TokenizerError, UnitTokenizer, dedup_units, nearest_centroid
from slmeval.units.cache import UnitCache, default_cache_dir, tokenize_sources
from slmeval.units.centroids import centroids_sha256, convert_kmeans_pickle, load_centroids
from slmeval.units.logmel import LogMelParams, LogMelTokenizer, fit_logmel_kmeans
from slmeval.units.presets import PRESETS, TokenizerPreset
from slmeval.units.spec import TOKENIZERS, TokenizerKind, load_spec_file, load_tokenizer

__all__ = [
    "LogMelParams", "LogMelTokenizer", "PRESETS", "TOKENIZERS", "TokenizerPreset", "load_spec_file", "TokenizerError", "TokenizerKind", "UnitCache", "UnitTokenizer", "centroids_sha256",
    "convert_kmeans_pickle", "dedup_units", "default_cache_dir", "fit_logmel_kmeans", "load_centroids",
    "load_tokenizer", "nearest_centroid", "tokenize_sources",
]
