"""Every text the demo speaks: the mini task items and the training corpus, with their seeds and voices.

This module is the single source of truth for what `build_assets` synthesises: the item lists written
next to the audio are regenerated from it in a test, without synthesising anything. The training
corpus never contains a sentence that a mini task speaks (`check_disjoint`), except the story
openings ("anna went to the beach"), which are too few to keep apart and carry no answer.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from slmeval.demo.grammar import MinimalPair, grammatical_sentence, minimal_pairs
from slmeval.demo.stories import (
    ClozeItem,
    sstorycloze_items,
    training_story,
    tstorycloze_items,
)

SBLIMP_SEED, SSTORY_SEED, TSTORY_SEED, CORPUS_SEED = 11, 12, 13, 14
SBLIMP_PER_SUBTYPE = 6                 # x 6 types x 2 subtypes x 2 voices = 144 voice-pairs
N_SSTORY, N_TSTORY, N_MS_STORIES = 60, 60, 12
SBLIMP_VOICES = ["en-us", "en-gb+f3"]
STORY_VOICE = "en-us"
MS_VOICES = ["en-us", "en-gb+f3", "en-gb-scotland+m2", "en-us+f4"]
TRAIN_VOICES = MS_VOICES               # the task voices: the demo model is not a voice-generalisation test
N_TRAIN_SENTENCES, N_TRAIN_STORIES = 6000, 4000


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: str


def sblimp_pairs() -> list[MinimalPair]:
    return minimal_pairs(SBLIMP_SEED, SBLIMP_PER_SUBTYPE)


def sstory_items() -> list[ClozeItem]:
    return sstorycloze_items(SSTORY_SEED, N_SSTORY)


def tstory_items() -> list[ClozeItem]:
    return tstorycloze_items(TSTORY_SEED, N_TSTORY)


def ms_story_items() -> list[ClozeItem]:
    """The multi-speaker task: the first stories of mini-sStoryCloze, each spoken by every MS voice."""
    return sstory_items()[:N_MS_STORIES]


def _sentences(text: str) -> set[str]:
    return {s.strip() for s in text.split(".") if s.strip()}


def task_sentences() -> set[str]:
    """Every sentence a mini task speaks, minus story openings (see module docstring)."""
    out: set[str] = set()
    for p in sblimp_pairs():
        out |= {p.good, p.bad}
    for item in sstory_items() + tstory_items():
        out |= {item.story.event, item.story.ending, item.negative_ending}
    return out


def training_texts(n_sentences: int = N_TRAIN_SENTENCES, n_stories: int = N_TRAIN_STORIES,
                   seed: int = CORPUS_SEED) -> list[Utterance]:
    """The training corpus: grammatical sentences and stories, each in one seeded voice, shuffled.

    Candidates that share a sentence with a mini task are redrawn, so the corpus has exactly the
    requested size and no task sentence.
    """
    rng = random.Random(seed)
    banned = task_sentences()
    texts: list[str] = []
    while len(texts) < n_sentences:
        s = grammatical_sentence(rng)
        if s not in banned:
            texts.append(s + ".")
    while len(texts) < n_sentences + n_stories:
        story = training_story(rng)
        if not ({story.event, story.ending} & banned):
            texts.append(story.spoken())
    rng.shuffle(texts)
    return [Utterance(t, rng.choice(TRAIN_VOICES)) for t in texts]


def check_disjoint(corpus: list[Utterance]) -> None:
    """Raise if a training utterance speaks a mini-task sentence (the build refuses such a corpus)."""
    banned = task_sentences()
    for u in corpus:
        clash = _sentences(u.text) & banned
        if clash:
            raise ValueError(f"training text {u.text!r} contains mini-task sentence(s) {sorted(clash)}")
