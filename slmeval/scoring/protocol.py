"""Scoring protocols: every choice that changes a likelihood-pair accuracy, named and recorded.

Published SLM numbers disagree because tools silently differ on these; a result file always carries
the full protocol, never just its name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal, Mapping

from slmeval.plugins import PluginError, Registry

LOGPROB_DTYPES = ("float32", "bfloat16", "float16")


class ProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Protocol:
    name: str
    score: Literal["mean", "sum"]           # per-sequence score compared within a pair: mean or sum of log-probs
    start_token: Literal["bos", "eos", "none"]   # prepended context token; "none" leaves the first unit unscored
    score_eos: bool                         # append EOS and score it as the last prediction
    tie_value: float = 0.5                  # credit for a pair whose two scores are exactly equal
    # Per metric family (the task file's `family`), a tie credit that replaces tie_value — set by the user
    # (`--protocol-args tie_value_by_family=...`) or a plugin preset; no built-in preset has one: a rule of
    # one benchmark (slm_scaling half-credits ties on sBLIMP only) is its task file's `tie_value_by_protocol`.
    tie_value_by_family: dict[str, float] = field(default_factory=dict)
    # The dtype the log-softmax and the per-sequence sum / mean are computed in. float32: log-softmax in
    # float32, sum and mean in float64. bfloat16 / float16: logits cast to it, log-softmax output, the
    # sum (float32 accumulation) and the mean (sum / count, count cast too) each rounded to it, as
    # torch computes cross_entropy(reduction="none") → sum → divide on logits of that dtype (slamkit
    # run with its model in bfloat16). See docs/models.md, "Reproducing the peers exactly".
    logprob_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    # The fields `--protocol-args` set (sorted): the user's explicit choices, which beat a task file's
    # per-protocol tie rule (`tie_value_for`). Not a scoring choice itself, so never a --protocol-args key;
    # recorded only when non-empty (a preset's record is what it was before this field existed).
    overridden: tuple[str, ...] = ()

    @property
    def first_unit_scored(self) -> bool:
        return self.start_token != "none"

    @property
    def preset(self) -> str:
        """The preset this protocol was built from: "cuervo+custom" → "cuervo"."""
        return self.name.split("+", 1)[0]

    def tie_value_for(self, family: str, declared: Mapping[str, float] | None = None) -> float:
        """The credit of a tie in one task: the one resolution the evaluator (scoring and the record
        `configs.<task>.tie_value`), `slmeval check` / verify, the leaderboard and the run header use.

        `family` is the task's metric family; `declared` its task file's `tie_value_by_protocol`
        ({preset: credit}, a rule of the benchmark, e.g. sBLIMP `{cuervo: 0.5}`). Most specific first:
          1. `--protocol-args tie_value_by_family` naming the task's family (the user, for that family);
          2. `--protocol-args tie_value` (the user, for every task);
          3. the task file's credit for this protocol's preset (a "+custom" protocol counts as its preset);
          4. the protocol's own `tie_value_by_family` for the family (a plugin preset's, or a run recorded
             before task files declared ties, whose cuervo preset carried {voice_averaged: 0.5});
          5. the protocol's `tie_value`.
        """
        user = set(self.overridden)
        if "tie_value_by_family" in user and family in self.tie_value_by_family:
            return self.tie_value_by_family[family]
        if "tie_value" in user:
            return self.tie_value
        if declared and self.preset in declared:
            return declared[self.preset]
        return self.tie_value_by_family.get(family, self.tie_value)

    def to_dict(self) -> dict:
        record = {**asdict(self), "first_unit_scored": self.first_unit_scored}
        if self.overridden:
            record["overridden"] = list(self.overridden)
        else:
            del record["overridden"]
        return record


def sequence_score(logprob: float, n_scored: int, how: str, dtype: str = "float64") -> float:
    """What a protocol compares for one sequence: the mean (sum / count) or the sum of its log-probs.

    `dtype` is what the reduction ran in: float64, or bfloat16 / float16 (Protocol.logprob_dtype), where
    `logprob` is the sum already rounded to it and the mean is computed as torch divides a tensor of
    that dtype by an integer count on CUDA: both operands in that dtype, the quotient rounded to it.
    """
    if how != "mean":
        return logprob
    if dtype in ("float64", "float32"):
        return logprob / n_scored
    import torch

    dt = getattr(torch, dtype)
    return float(torch.tensor(logprob, dtype=dt) / torch.tensor(n_scored).to(dt))


def reduce_dtype(protocol: "Protocol") -> str:
    """The dtype a protocol's per-sequence sum and mean are computed in."""
    return "float64" if protocol.logprob_dtype == "float32" else protocol.logprob_dtype


PRESETS: dict[str, Protocol] = {
    # slmeval's default: mean log-prob per unit given BOS; no EOS (the pair differs in content, not in
    # where it ends), ties half credit. (Which metric a task reports under each preset, e.g. sBLIMP's
    # macro average for cuervo, is the task file's `headline_by_protocol`.)
    "slmeval": Protocol("slmeval", score="mean", start_token="bos", score_eos=False),
    # slamkit: mean NLL over a BOS ... EOS sequence, both boundary predictions scored.
    "slamkit": Protocol("slamkit", score="mean", start_token="bos", score_eos=True),
    # Cuervo & Marxer (slm_scaling): EOS doubles as the start token, terminal EOS not scored; an exact tie
    # scores 0 (src/slm/evaluate.py `summarize`). slm_scaling's one exception, 0.5 on sBLIMP (`task ==
    # "sblimp"`, a benchmark, not a metric family), is the sBLIMP task file's `tie_value_by_protocol`.
    "cuervo": Protocol("cuervo", score="mean", start_token="eos", score_eos=False, tie_value=0.0),
}


# Presets are plugins too: other packages add theirs (a `Protocol` named like its entry point) through
# the `slmeval.protocols` entry-point group.
PROTOCOLS: Registry[Protocol] = Registry("protocol", group="slmeval.protocols")
for _name, _preset in PRESETS.items():
    PROTOCOLS.register(_name, _preset, origin=__name__)


def get_protocol(name: str, overrides: dict[str, str] | None = None) -> Protocol:
    try:
        proto = PROTOCOLS.get(name)
    except PluginError as err:
        raise ProtocolError(str(err)) from None
    if not isinstance(proto, Protocol) or proto.name != name:
        raise ProtocolError(f"protocol {name!r} ({PROTOCOLS.origin(name)}) is not a Protocol named {name!r}")
    if not overrides:
        return proto
    known = {f.name: f for f in fields(Protocol) if f.name not in ("name", "overridden")}
    changes: dict[str, object] = {}
    for key, raw in overrides.items():
        if key not in known:
            raise ProtocolError(f"--protocol-args: unknown field {key!r}; fields: {', '.join(known)}")
        if key == "score_eos":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ProtocolError(f"--protocol-args score_eos={raw!r}: expected true or false")
            changes[key] = raw.lower() in ("true", "1")
        elif key == "tie_value":
            changes[key] = _float(key, raw)
        elif key == "tie_value_by_family":
            changes[key] = _family_credits(raw)
        else:
            changes[key] = raw
    proto = replace(proto, name=f"{name}+custom", overridden=tuple(sorted(changes)), **changes)
    _validate(proto)
    return proto


def _float(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ProtocolError(f"--protocol-args {key}={raw!r}: expected a number") from None


def _family_credits(raw: str) -> dict[str, float]:
    """'voice_averaged:0.5;pairs:0' → {'voice_averaged': 0.5, 'pairs': 0.0} (';' because ',' separates args)."""
    credits: dict[str, float] = {}
    for piece in filter(None, (p.strip() for p in raw.split(";"))):
        family, sep, value = piece.partition(":")
        if not sep or not family.strip():
            raise ProtocolError(f"--protocol-args tie_value_by_family: {piece!r} is not FAMILY:CREDIT "
                                "(e.g. tie_value_by_family=voice_averaged:0.5;pairs:0)")
        credits[family.strip()] = _float(f"tie_value_by_family {family.strip()}", value.strip())
    return credits


def _validate(p: Protocol) -> None:
    allowed = {"score": ("mean", "sum"), "start_token": ("bos", "eos", "none"), "logprob_dtype": LOGPROB_DTYPES}
    for key, options in allowed.items():
        if getattr(p, key) not in options:
            raise ProtocolError(f"protocol field {key}={getattr(p, key)!r}: expected one of {options}")
    for where, value in [("tie_value", p.tie_value),
                         *((f"tie_value_by_family {k}", v) for k, v in p.tie_value_by_family.items())]:
        if not 0.0 <= value <= 1.0:
            raise ProtocolError(f"protocol field {where}={value}: expected a value in [0, 1]")
