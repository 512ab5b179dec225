"""A small English grammar written for the demo: grammatical training sentences and mini-sBLIMP pairs.

The vocabulary is shared between the training corpus and the mini-sBLIMP minimal pairs, so a small LM
trained on the corpus can tell the grammatical side of a pair from the ungrammatical one. The corpus
only ever holds grammatical sentences, and never a sentence used by a mini task (checked in
`slmeval.demo.corpus`). Every choice is drawn from a `random.Random` the caller seeds.

Six phenomena (types), two subtypes each; in each subtype the ungrammatical side is sometimes the
longer and sometimes the shorter one, so utterance length alone cannot decide a pair.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# (singular, plural, gender) — gender m / f for the anaphor pairs, n where it does not apply.
PEOPLE = [("boy", "boys", "m"), ("girl", "girls", "f"), ("man", "men", "m"), ("woman", "women", "f"),
          ("king", "kings", "m"), ("queen", "queens", "f"), ("farmer", "farmers", "n"),
          ("teacher", "teachers", "n")]
ANIMALS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"), ("cow", "cows"),
           ("duck", "ducks")]
THINGS = [("ball", "balls"), ("book", "books"), ("cake", "cakes"), ("apple", "apples"), ("box", "boxes"),
          ("hat", "hats"), ("cup", "cups"), ("car", "cars")]
ADJECTIVES = ["big", "small", "old", "young", "brown", "black", "happy", "little"]
PLACES = ["in the park", "in the house", "on the hill", "every day", "at night", "near the river"]

SG_DETS = ["the", "a", "this", "that"]
PL_DETS = ["the", "these", "those", "some"]

# intransitive verbs: (3rd singular, plural)
INTRANSITIVE = [("sleeps", "sleep"), ("runs", "run"), ("jumps", "jump"), ("sings", "sing"),
                ("swims", "swim"), ("waits", "wait"), ("plays", "play"), ("walks", "walk")]
# intransitive verbs that need a preposition before an object: (3sg, plural, preposition)
PREP_VERBS = [("smiles", "smile", "at"), ("laughs", "laugh", "at"), ("looks", "look", "at"),
              ("listens", "listen", "to"), ("talks", "talk", "to"), ("waves", "wave", "at")]
# transitive verbs: (3sg, plural, regular past)
TRANSITIVE = [("sees", "see", "saw"), ("likes", "like", "liked"), ("chases", "chase", "chased"),
              ("finds", "find", "found"), ("holds", "hold", "held"), ("wants", "want", "wanted"),
              ("helps", "help", "helped"), ("follows", "follow", "followed")]
# irregular verbs: (past, participle, over-regularised past that never appears in training, objects)
IRREGULAR = [("ate", "eaten", "eated", ["cake", "apple"]),
             ("took", "taken", "taked", ["ball", "book", "hat", "cup"]),
             ("wrote", "written", "writed", ["book"]),
             ("broke", "broken", "breaked", ["cup", "box", "car"]),
             ("drove", "driven", "drived", ["car"]),
             ("threw", "thrown", "throwed", ["ball", "apple", "hat"]),
             ("hid", "hidden", "hided", ["ball", "book", "box", "hat"]),
             ("forgot", "forgotten", "forgetted", ["book", "hat", "cup"]),
             ("saw", "seen", "seed", ["dog", "cat", "bird", "horse", "ball", "car"])]
# verbs that take a reflexive object, in the past so they agree with any subject
REFLEXIVE_VERBS = ["saw", "helped", "liked", "hurt", "washed", "found"]
REFLEXIVE = {("m", False): "himself", ("f", False): "herself", ("n", False): "themselves"}


def _np(rng: random.Random, noun: tuple, plural: bool, *, adjective: bool | None = None,
        dets: list[str] | None = None) -> str:
    det = rng.choice(dets or (PL_DETS if plural else SG_DETS))
    if plural and det == "a":
        det = "the"
    words = [det]
    if adjective if adjective is not None else rng.random() < 0.3:
        words.append(rng.choice(ADJECTIVES))
    words.append(noun[1] if plural else noun[0])
    if det == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def _subject_noun(rng: random.Random) -> tuple:
    return rng.choice(PEOPLE + ANIMALS)


def _object_noun(rng: random.Random) -> tuple:
    return rng.choice(PEOPLE + ANIMALS + THINGS)


def _tail(rng: random.Random) -> str:
    return (" " + rng.choice(PLACES)) if rng.random() < 0.5 else ""


def grammatical_sentence(rng: random.Random) -> str:
    """One random grammatical sentence; templates cover every construction the mini-sBLIMP tests."""
    plural = rng.random() < 0.5
    subj = _np(rng, _subject_noun(rng), plural)
    template = rng.randrange(7)
    if template == 0:      # intransitive, present, agreeing
        return f"{subj} {_intransitive(rng, plural)}{_tail(rng)}"
    if template == 1:      # transitive, present, agreeing
        verb = rng.choice(TRANSITIVE)
        obj = _np(rng, _object_noun(rng), rng.random() < 0.5)
        return f"{subj} {verb[1] if plural else verb[0]} {obj}{_tail(rng)}"
    if template == 2:      # verb + preposition + object
        verb = rng.choice(PREP_VERBS)
        obj = _np(rng, _object_noun(rng), rng.random() < 0.5)
        return f"{subj} {verb[1] if plural else verb[0]} {verb[2]} {obj}{_tail(rng)}"
    if template == 3:      # irregular past
        past, _, _, objects = rng.choice(IRREGULAR)
        obj = _np(rng, _thing(rng.choice(objects)), rng.random() < 0.5)
        return f"{subj} {past} {obj}{_tail(rng)}"
    if template == 4:      # perfect with participle, auxiliary agreeing
        _, participle, _, objects = rng.choice(IRREGULAR)
        obj = _np(rng, _thing(rng.choice(objects)), rng.random() < 0.5)
        return f"{subj} {'have' if plural else 'has'} {participle} {obj}"
    if template == 5:      # regular past transitive
        verb = rng.choice(TRANSITIVE)
        obj = _np(rng, _object_noun(rng), rng.random() < 0.5)
        return f"{subj} {verb[2]} {obj}{_tail(rng)}"
    person = rng.choice(PEOPLE)  # reflexive object agreeing with a person subject
    subj = _np(rng, person, plural)
    return f"{subj} {rng.choice(REFLEXIVE_VERBS)} {_reflexive(person[2], plural)}{_tail(rng)}"


def _intransitive(rng: random.Random, plural: bool) -> str:
    verb = rng.choice(INTRANSITIVE)
    return verb[1] if plural else verb[0]


def _thing(singular: str) -> tuple:
    for noun in THINGS + ANIMALS + [p[:2] for p in PEOPLE]:
        if noun[0] == singular:
            return noun
    raise KeyError(singular)


def _reflexive(gender: str, plural: bool) -> str:
    return "themselves" if plural else REFLEXIVE[(gender, False)]


@dataclass(frozen=True)
class MinimalPair:
    type: str
    subtype: str
    id: int
    good: str
    bad: str


def _agreement(rng: random.Random, subtype: str) -> tuple[str, str]:
    noun = _subject_noun(rng)
    verb = rng.choice(INTRANSITIVE)
    place = rng.choice(PLACES)
    if subtype == "singular_subject":
        return f"the {noun[0]} {verb[0]} {place}", f"the {noun[0]} {verb[1]} {place}"
    return f"the {noun[1]} {verb[1]} {place}", f"the {noun[1]} {verb[0]} {place}"


def _determiner_noun(rng: random.Random, subtype: str) -> tuple[str, str]:
    subj = _np(rng, rng.choice(PEOPLE), rng.random() < 0.5, adjective=False, dets=["the"])
    plural_subj = subj.split()[-1] in {p[1] for p in PEOPLE}
    verb = rng.choice(TRANSITIVE)
    v = verb[1] if plural_subj else verb[0]
    noun = rng.choice(ANIMALS + THINGS)
    if subtype == "singular_determiner":
        det = rng.choice(["this", "that"])
        return f"{subj} {v} {det} {noun[0]}", f"{subj} {v} {det} {noun[1]}"
    det = rng.choice(["these", "those"])
    return f"{subj} {v} {det} {noun[1]}", f"{subj} {v} {det} {noun[0]}"


def _word_order(rng: random.Random, subtype: str) -> tuple[str, str]:
    noun = _subject_noun(rng)
    if subtype == "object_before_verb":
        verb = rng.choice(TRANSITIVE)
        obj = f"the {rng.choice(ANIMALS + THINGS)[0]}"
        return f"the {noun[0]} {verb[0]} {obj}", f"the {noun[0]} {obj} {verb[0]}"
    adj = rng.choice(ADJECTIVES)
    verb = rng.choice(INTRANSITIVE)
    return f"the {adj} {noun[0]} {verb[0]}", f"the {noun[0]} {adj} {verb[0]}"


def _argument_structure(rng: random.Random, subtype: str) -> tuple[str, str]:
    subj = f"the {rng.choice(PEOPLE)[0]}"
    obj = f"the {rng.choice(PEOPLE + ANIMALS)[0]}"
    if subtype == "missing_preposition":
        verb = rng.choice(PREP_VERBS)
        return f"{subj} {verb[0]} {verb[2]} {obj}", f"{subj} {verb[0]} {obj}"
    verb = rng.choice(TRANSITIVE)
    prep = rng.choice(["at", "to"])
    return f"{subj} {verb[0]} {obj}", f"{subj} {verb[0]} {prep} {obj}"


def _irregular(rng: random.Random, subtype: str) -> tuple[str, str]:
    subj = f"the {rng.choice(PEOPLE)[0]}"
    past, participle, wrong, objects = rng.choice(IRREGULAR)
    obj = f"the {rng.choice(objects)}"
    if subtype == "past_tense":
        return f"{subj} {past} {obj}", f"{subj} {wrong} {obj}"
    return f"{subj} has {participle} {obj}", f"{subj} has {past} {obj}"


def _anaphor(rng: random.Random, subtype: str) -> tuple[str, str]:
    verb = rng.choice(REFLEXIVE_VERBS)
    person = rng.choice([p for p in PEOPLE if p[2] != "n"])
    if subtype == "gender":
        other = "herself" if person[2] == "m" else "himself"
        return f"the {person[0]} {verb} {_reflexive(person[2], False)}", f"the {person[0]} {verb} {other}"
    if rng.random() < 0.5:
        return f"the {person[1]} {verb} themselves", f"the {person[1]} {verb} {_reflexive(person[2], False)}"
    return f"the {person[0]} {verb} {_reflexive(person[2], False)}", f"the {person[0]} {verb} themselves"


PHENOMENA = {
    "agreement": (_agreement, ["singular_subject", "plural_subject"]),
    "determiner_noun": (_determiner_noun, ["singular_determiner", "plural_determiner"]),
    "word_order": (_word_order, ["object_before_verb", "adjective_after_noun"]),
    "argument_structure": (_argument_structure, ["missing_preposition", "extra_preposition"]),
    "irregular_forms": (_irregular, ["past_tense", "participle"]),
    "anaphor_agreement": (_anaphor, ["gender", "number"]),
}


def minimal_pairs(seed: int, per_subtype: int) -> list[MinimalPair]:
    """`per_subtype` distinct minimal pairs for every (type, subtype), in a fixed order."""
    rng = random.Random(seed)
    pairs: list[MinimalPair] = []
    for type_, (make, subtypes) in PHENOMENA.items():
        for subtype in subtypes:
            seen: set[str] = set()
            attempts = 0
            while len(seen) < per_subtype:
                attempts += 1
                if attempts > 1000 * per_subtype:
                    raise RuntimeError(f"grammar too small for {per_subtype} distinct {type_}/{subtype} pairs")
                good, bad = make(rng, subtype)
                if good in seen or good == bad:
                    continue
                seen.add(good)
                pairs.append(MinimalPair(type_, subtype, len(seen), good, bad))
    return pairs
