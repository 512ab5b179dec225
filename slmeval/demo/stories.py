"""Short topical stories written for the demo: training stories and the mini StoryCloze items.

A story is a two-sentence context and a one-sentence ending:
    "anna went to the beach. she found the shells." + "she was happy with the shells."
Each topic has its own nouns, and the ending refers back to the character (pronoun), to what happened
(found/liked -> happy, lost/feared -> sad) and to the object the context named. That is what a small LM
trained on many such stories can learn, and what the two mini tasks probe:

* mini-tStoryCloze: the negative ending is the ending of another story on a different topic (seeded),
  so the wrong ending's object, and usually its pronoun and mood, do not fit the context.
* mini-sStoryCloze: the negative ending is written for the story and differs in one detail: the wrong
  pronoun, the opposite mood, or an object of the same topic that the context never named.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

CHARACTERS = [("the boy", "he"), ("the girl", "she"), ("tom", "he"), ("anna", "she"), ("ben", "he"),
              ("lucy", "she"), ("the old man", "he"), ("the woman", "she")]
# topic -> (how the character gets there, nouns of the topic)
TOPICS = {
    "farm": ("to the farm", ["cows", "pigs", "sheep", "eggs", "hay", "tractor"]),
    "kitchen": ("into the kitchen", ["soup", "bread", "cake", "oven", "spoon", "pan"]),
    "school": ("to school", ["books", "pencils", "lesson", "desk", "map", "teacher"]),
    "beach": ("to the beach", ["shells", "waves", "sand", "boat", "crabs", "seagulls"]),
    "forest": ("into the forest", ["trees", "owl", "mushrooms", "fox", "path", "river"]),
    "city": ("to the city", ["bus", "shops", "train", "tower", "street", "lights"]),
    "garden": ("into the garden", ["flowers", "seeds", "roses", "carrots", "worms", "bees"]),
    "concert": ("to the concert", ["piano", "drums", "guitar", "singer", "band", "songs"]),
    "zoo": ("to the zoo", ["lions", "monkeys", "elephant", "zebras", "tiger", "parrots"]),
    "mountain": ("up the mountain", ["snow", "sled", "ice", "snowman", "rocks", "goats"]),
}
# (event verb in the context, mood): the ending's mood must match the event's.
EVENTS = [("found", "happy"), ("liked", "happy"), ("loved", "happy"),
          ("lost", "sad"), ("feared", "sad"), ("hated", "sad")]
ENDINGS = {"happy": ["{p} was happy with the {o}", "{p} smiled at the {o}"],
           "sad": ["{p} was sad about the {o}", "{p} cried about the {o}"]}
OPENING = "{c} went {place}"
OTHER_PRONOUN = {"he": "she", "she": "he"}
OPPOSITE_MOOD = {"happy": "sad", "sad": "happy"}


@dataclass(frozen=True)
class Story:
    id: str
    topic: str
    opening: str          # first context sentence
    event: str            # second context sentence (names the objects)
    ending: str

    @property
    def context(self) -> str:
        return f"{self.opening}. {self.event}."

    def spoken(self, ending: str | None = None) -> str:
        return f"{self.context} {ending or self.ending}."


@dataclass(frozen=True)
class ClozeItem:
    story: Story
    negative_ending: str
    kind: str             # how the negative was made: other_story, pronoun, mood, object

    @property
    def positive_text(self) -> str:
        return self.story.spoken()

    @property
    def negative_text(self) -> str:
        return self.story.spoken(self.negative_ending)


@dataclass(frozen=True)
class _Draw:
    topic: str
    character: tuple[str, str]
    opening: str
    verb: str
    mood: str
    obj: str
    ending_template: str


def _draw(rng: random.Random, topic: str | None = None) -> _Draw:
    topic = topic or rng.choice(sorted(TOPICS))
    place, nouns = TOPICS[topic]
    character = rng.choice(CHARACTERS)
    verb, mood = rng.choice(EVENTS)
    obj = rng.choice(nouns)
    return _Draw(topic, character, OPENING.format(c=character[0], place=place), verb, mood, obj,
                 rng.choice(ENDINGS[mood]))


def _story(d: _Draw, story_id: str) -> Story:
    pron = d.character[1]
    event = f"{pron} {d.verb} the {d.obj}"
    return Story(story_id, d.topic, d.opening, event, d.ending_template.format(p=pron, o=d.obj))


def training_story(rng: random.Random) -> Story:
    return _story(_draw(rng), "train")


def _adversarial_ending(rng: random.Random, d: _Draw, kind: str) -> str:
    pron = d.character[1]
    if kind == "pronoun":
        return d.ending_template.format(p=OTHER_PRONOUN[pron], o=d.obj)
    if kind == "mood":
        index = ENDINGS[d.mood].index(d.ending_template)
        return ENDINGS[OPPOSITE_MOOD[d.mood]][index].format(p=pron, o=d.obj)
    unnamed = [n for n in TOPICS[d.topic][1] if n != d.obj]
    return d.ending_template.format(p=pron, o=rng.choice(unnamed))


def _unique_stories(rng: random.Random, n: int, prefix: str) -> tuple[list[Story], list[_Draw]]:
    """`n` stories with distinct contexts, topics cycled so every topic gets its share."""
    topics = sorted(TOPICS)
    stories: list[Story] = []
    draws: list[_Draw] = []
    seen: set[str] = set()
    while len(stories) < n:
        d = _draw(rng, topics[len(stories) % len(topics)])
        story = _story(d, f"{prefix}{len(stories):03d}")
        if story.context in seen:
            continue
        seen.add(story.context)
        stories.append(story)
        draws.append(d)
    return stories, draws


def tstorycloze_items(seed: int, n: int) -> list[ClozeItem]:
    """Negative = the ending of another story on a different topic."""
    rng = random.Random(seed)
    stories, _ = _unique_stories(rng, n, "t")
    items = []
    for story in stories:
        donor = rng.choice([s for s in stories if s.topic != story.topic])
        items.append(ClozeItem(story, donor.ending, "other_story"))
    return items


def sstorycloze_items(seed: int, n: int) -> list[ClozeItem]:
    """Negative = an ending written for the story, wrong in one detail (kinds cycled)."""
    rng = random.Random(seed)
    stories, draws = _unique_stories(rng, n, "s")
    kinds = ["pronoun", "mood", "object"]
    return [ClozeItem(story, _adversarial_ending(rng, d, kinds[i % 3]), kinds[i % 3])
            for i, (story, d) in enumerate(zip(stories, draws))]
