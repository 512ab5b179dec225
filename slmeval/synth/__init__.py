"""`slmeval synth`: text in, spoken benchmark out, in the layouts slmeval's own tasks read.

sources  — StoryCloze CSV / stories JSONL / minimal-pair JSONL readers, tStoryCloze negatives
layout   — file names (slprl StoryCloze, ZeroSpeech sBLIMP + gold.csv), voice folder names, shards
manifest — manifest.jsonl (how each file was made), resume checks, shard-part merging
runner   — the resumable, sharded synthesis loop
"""
from __future__ import annotations

from slmeval.synth.layout import Job, TASKS, parse_shard, safe_name
from slmeval.synth.manifest import merge_manifest, read_manifest
from slmeval.synth.runner import Plan, SynthReport, build_plan, run_synth
from slmeval.synth.sources import MinimalPair, SourceError, Story, read_minimal_pairs, read_stories, topic_negatives

__all__ = ["Job", "MinimalPair", "Plan", "SourceError", "Story", "SynthReport", "TASKS", "build_plan",
           "merge_manifest", "parse_shard", "read_manifest", "read_minimal_pairs", "read_stories", "run_synth",
           "safe_name", "topic_negatives"]
