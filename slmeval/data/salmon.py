"""SALMon (Maimon, Roth & Adi 2024: acoustic consistency and alignment), as released by slp-rl:
`<root>/<part>/sample_<index>_<option>.wav`, one folder per part.

Facts from the official scorer (slp-rl/salmon, salmon.py `SalmonDataset`; the same code in
slp-rl/slamkit, slamkit/metric/modelling_metric.py): files are grouped by the integer after the first
`_`, each group's paths are sorted as strings, the first is the positive and the second the negative —
which, for the released names, is option 0 (the consistent / aligned sample, written as
`sample_<index>_0.wav` by data_generation/*.py) against option 1. Options beyond 1 (the generators'
`--n_options` > 2) are never scored by slamkit and stop salmon.py (its collate_fn unpacks exactly two
files per sample); here they are ignored with a warning. A part's score is the
mean pair credit (ties 0.5); the official scorer reports parts only, no overall number.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from slmeval.data._common import examples, list_audio, natural_key, require_dir
from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance

log = logging.getLogger(__name__)

# The parts `salmon.py -p all` evaluates, in its order.
PARTS = ("bg_alignment", "bg_all_consistency", "bg_domain_consistency", "gender_consistency",
         "rir_consistency", "sentiment_alignment", "sentiment_consistency", "speaker_consistency")
NAME = re.compile(r"^(?P<prefix>[^_]+)_(?P<index>\d+)_(?P<option>\d+)$")
EXPECTED = "<part>/sample_<index>_0.wav (positive) and <part>/sample_<index>_1.wav (negative)"


def _read_part(folder: Path, part: str) -> list[Pair]:
    files = list_audio(folder)
    if not files:
        raise DataLayoutError(f"{folder}: no .wav/.flac files (expected {EXPECTED})")
    groups: dict[int, dict[int, Path]] = {}
    bad = []
    for stem, path in files.items():
        m = NAME.match(stem)
        if m is None:
            bad.append(path.name)
            continue
        options = groups.setdefault(int(m["index"]), {})
        option = int(m["option"])
        if option in options:
            raise DataLayoutError(f"{folder}: {options[option].name} and {path.name} are both option "
                                  f"{option} of sample {m['index']}")
        options[option] = path
    if bad:
        raise DataLayoutError(f"{folder}: {len(bad)} file name(s) do not match <prefix>_<index>_<option>: "
                              f"{examples(bad)} (expected {EXPECTED})")
    incomplete = sorted(i for i, options in groups.items() if 0 not in options or 1 not in options)
    if incomplete:
        have = groups[incomplete[0]]
        raise DataLayoutError(
            f"{folder}: sample {incomplete[0]} has option(s) {sorted(have)} "
            f"({', '.join(p.name for p in have.values())}); expected options 0 (positive) and 1 (negative). "
            f"{len(incomplete)} such sample(s) in all")
    extra = sorted(p.name for options in groups.values() for o, p in options.items() if o > 1)
    if extra:
        log.warning("%s: %d file(s) with option > 1 are ignored, as slamkit's SALMon scorer ignores "
                    "them: %s", folder, len(extra), examples(extra))
    return [Pair(id=f"{part}/{index}",
                 positive=Utterance(key=f"{part}/{groups[index][0].stem}", audio=groups[index][0]),
                 negative=Utterance(key=f"{part}/{groups[index][1].stem}", audio=groups[index][1]),
                 meta={"part": part, "sample": index})
            for index in sorted(groups)]


@READERS.register("salmon")
def read_salmon(root: Path, parts: list[str] | None = None) -> list[Pair]:
    """<path>/<part>/sample_<index>_<option>.wav; option 0 positive, 1 negative, one folder per part.

    `parts=None`: the eight parts the official `-p all` runs, every one required."""
    root = require_dir(Path(root), f"the SALMon release folder ({', '.join(PARTS)})")
    wanted = list(PARTS if parts is None else parts)
    if isinstance(parts, str) or not wanted or not all(isinstance(p, str) and p for p in wanted):
        raise DataLayoutError(f"salmon: `parts` must be a non-empty list of part folder names, got {parts!r}")
    found = sorted((p.name for p in root.iterdir() if p.is_dir()), key=natural_key)
    missing = [p for p in wanted if not (root / p).is_dir()]
    if missing:
        raise DataLayoutError(f"{root}: no part folder(s) {', '.join(missing)} (found: {', '.join(found) or 'none'}); "
                              f"pass the folder that holds the parts, or choose parts with the `parts` option")
    return [pair for part in dict.fromkeys(wanted) for pair in _read_part(root / part, part)]
