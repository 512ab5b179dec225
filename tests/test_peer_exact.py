"""Peer-exact options (issue 10 §4): each reproduces one peer's own computation, decision for decision,
against that computation written out here independently (facts cited in docs/models.md)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import N_UNITS
from slmeval.models import load_lm
from slmeval.scoring import get_protocol, score_sequences
from slmeval.scoring.protocol import ProtocolError


def _near_pairs(n: int, length: int, seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """n positive/negative unit sequences of one length, one unit apart: scores close enough that
    rounding decides, and batches that need no padding (so batching cannot change bf16 arithmetic)."""
    rng = np.random.default_rng(seed)
    pos = [rng.integers(0, N_UNITS, size=length).tolist() for _ in range(n)]
    neg = []
    for units in pos:
        changed = list(units)
        i = int(rng.integers(0, length))
        changed[i] = int((changed[i] + rng.integers(1, N_UNITS)) % N_UNITS)
        neg.append(changed)
    return pos, neg


def _slamkit_style_mean_loglik(model: torch.nn.Module, unit_seqs: list[list[int]], batch_size: int) -> list[float]:
    """slamkit's scoring rule as its code runs it with the model in bfloat16 (slp-rl/slamkit
    slamkit/model/unit_lm.py `log_likelihood` + slamkit/utils/calculation_utils.py `calc_nll`):
    BOS(1) + units+2 + EOS(1), right-padded with 0, logits straight from the model (no upcast),
    cross_entropy(reduction='none'), pad targets masked, sum over the sequence / token count, negated.

    The division is written as CUDA (where slamkit runs) computes bf16 / int64: the count is cast to
    bfloat16 first (PyTorch aten/src/ATen/native/cuda/BinaryDivTrueKernel.cu, DivFunctor<scalar_t>);
    CPU's one-element path skips that cast, which only matters past 256 tokens."""
    from torch.nn.functional import cross_entropy
    from torch.nn.utils.rnn import pad_sequence

    out: list[float] = []
    for start in range(0, len(unit_seqs), batch_size):
        seqs = [torch.tensor([1, *(u + 2 for u in units), 1]) for units in unit_seqs[start:start + batch_size]]
        x = pad_sequence(seqs, batch_first=True, padding_value=0)
        with torch.no_grad():
            logits = model(input_ids=x).logits
        assert logits.dtype == torch.bfloat16
        targets = x[:, 1:].clone()
        targets[targets == 0] = -100
        losses = cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1),
                               reduction="none").view(targets.shape)
        mask = targets.ne(-100)
        total = (losses * mask).sum(-1)
        out += (-(total / mask.sum(-1).to(total.dtype))).tolist()
    return out


def _credit(pos: float, neg: float) -> float:
    return 1.0 if pos > neg else 0.5 if pos == neg else 0.0     # slamkit/metric/modelling_metric.py


@pytest.fixture(scope="module")
def bf16_slamkit(tiny_opt_dir):
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(tiny_opt_dir, dtype=torch.bfloat16).eval()
    return reference, load_lm(tiny_opt_dir, dtype="bfloat16", model_args="convention=slamkit")


def test_bf16_logprobs_reproduce_slamkit_decision_for_decision(bf16_slamkit):
    reference, lm = bf16_slamkit
    exact, default = get_protocol("slamkit", {"logprob_dtype": "bfloat16"}), get_protocol("slamkit")
    n_differ = 0
    # 300 units: more than 256 scored tokens, where the bf16 token count itself rounds.
    for n_pairs, length in ((60, 24), (2, 300)):
        pos, neg = _near_pairs(n_pairs, length, seed=length)
        # Equal lengths, no padding: in bfloat16 the padded width of a batch changes the attention
        # arithmetic (in slamkit as in slmeval), so only unpadded batches are comparable bit for bit.
        ref = [_slamkit_style_mean_loglik(reference, seqs, batch_size=n_pairs) for seqs in (pos, neg)]
        ref_credit = [_credit(p, n) for p, n in zip(*ref)]
        names = [f"pair{i}" for i in range(n_pairs)]
        ours = [[s.score("mean") for s in score_sequences(lm, seqs, exact, names=names, batch_size=n_pairs,
                                                          backend="torch", progress=False)] for seqs in (pos, neg)]
        assert ours == ref, f"length {length}: not bit-equal to slamkit's bf16 scores"
        assert [_credit(p, n) for p, n in zip(*ours)] == ref_credit
        f32 = [[s.score("mean") for s in score_sequences(lm, seqs, default, names=names, batch_size=n_pairs,
                                                         backend="torch", progress=False)] for seqs in (pos, neg)]
        n_differ += sum(_credit(p, n) != c for p, n, c in zip(*f32, ref_credit))
    # The default (float32 log-softmax, float64 mean) decides differently on these near pairs: the option matters.
    assert n_differ >= 5, n_differ


def test_logprob_dtype_is_validated_and_recorded():
    proto = get_protocol("slamkit", {"logprob_dtype": "bfloat16"})
    assert proto.to_dict()["logprob_dtype"] == "bfloat16" and proto.name == "slamkit+custom"
    assert get_protocol("slmeval").to_dict()["logprob_dtype"] == "float32"
    with pytest.raises(ProtocolError, match="logprob_dtype='float8'"):
        get_protocol("slamkit", {"logprob_dtype": "float8"})


# -- slamkit's HuBERT input padding ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    from _units_helpers import save_tiny_hubert

    root = tmp_path_factory.mktemp("hubert_pad")
    np.save(root / "km.npy", np.random.default_rng(0).normal(size=(24, 32)).astype(np.float32))
    return save_tiny_hubert(root / "model", n_layers=2), root / "km.npy"


def _slamkit_style_units(model_dir, centroids: np.ndarray, wav: np.ndarray, layer: int) -> list[int]:
    """slamkit's HubertFeatureExtractor.extract at batch 1 (slp-rl/slamkit
    slamkit/feature_extractor/hubert_feature_extractor.py): the raw waveform zero-padded by 40 samples
    at each end, hidden_states[layer], every frame kept (lens = the full length), nearest centroid
    (here by explicit float64 differences), then consecutive duplicates merged
    (slamkit/tokeniser/unit_tokeniser.py, dedup=True)."""
    from itertools import groupby

    from torch.nn.functional import pad
    from transformers import HubertModel

    model = HubertModel.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        feats = model(pad(torch.tensor(wav)[None], (40, 40)), output_hidden_states=True).hidden_states[layer][0]
    diff = feats.double().numpy()[:, None, :] - centroids.astype(np.float64)[None]
    return [k for k, _ in groupby((diff ** 2).sum(-1).argmin(1).tolist())]


def test_hubert_input_pad_reproduces_slamkit_units(tiny_hubert, tmp_path):
    from _units_helpers import SENTENCES, speech
    from slmeval.units import UnitCache, load_tokenizer

    model_dir, km = tiny_hubert
    padded = load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={km},input_pad=40")
    plain = load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={km}")
    changed = 0
    for text in SENTENCES:
        wav = speech(text)
        ours = padded.encode(wav).tolist()
        assert ours == _slamkit_style_units(model_dir, np.load(km), wav, layer=2), text
        changed += ours != plain.encode(wav).tolist()
        assert padded.encode_batch([wav, wav.copy()])[1].tolist() == ours     # batching changes nothing
    assert changed > 0, "padding 40 samples should change the units of real speech even one file at a time"
    # Part of the tokenizer identity, so the unit cache keeps the two apart; unpadded identities stay as they were.
    assert padded.identity["input_pad"] == 40 and "input_pad" not in plain.identity
    assert UnitCache(tmp_path, padded.identity).key != UnitCache(tmp_path, plain.identity).key
    # Shorter input is accepted: the padding supplies part of the encoder's receptive field.
    assert padded.min_samples == plain.min_samples - 80
    with pytest.raises(Exception, match="input_pad=-1"):
        load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={km},input_pad=-1")


# -- tie credit per metric family (slm_scaling: ties count 0.5 on sBLIMP, 0 on StoryCloze) -------------

def test_tie_credit_is_resolved_per_metric_family_and_recorded(tiny_llama_dir, tmp_path):
    import json

    import slmeval

    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        pos = rng.integers(0, N_UNITS, 8).tolist()
        neg = list(pos) if i % 2 == 0 else rng.integers(0, N_UNITS, 8).tolist()   # even ids: exact ties
        lines.append(json.dumps({"id": i, "positive": pos, "negative": neg}))
    (tmp_path / "units.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "tasks.yaml").write_text("- {name: t_ties, family: pairs, source: units_jsonl, path: ./units.jsonl}\n")
    from slmeval.results.verify import verify_run

    runs = {}
    for args, dtype in ((None, "float32"), ("tie_value_by_family=pairs:0;other_family:1", "float32"),
                        ("logprob_dtype=bfloat16", "bfloat16")):
        res = slmeval.evaluate(tiny_llama_dir, ["t_ties"], include_path=[tmp_path], protocol_args=args,
                               dtype=dtype, output=tmp_path / f"run{len(runs)}", progress=False)
        samples = [json.loads(x) for x in (tmp_path / f"run{len(runs)}" / "samples_t_ties.jsonl").read_text().splitlines()]
        # The numbers follow from the samples under the recorded protocol (tie rule, bf16 mean included).
        verify_run(res, {"t_ties": samples}, source=str(args))
        runs[args] = res, samples
    (default, old_samples), (by_family, _) = runs[None], runs["tie_value_by_family=pairs:0;other_family:1"]
    bf16_samples = runs["logprob_dtype=bfloat16"][1]
    assert all(s["positive_score"] == float(torch.tensor(s["positive_score"], dtype=torch.bfloat16))
               for s in bf16_samples), "bf16 scores are bf16 values"
    # A run recorded before these fields existed still verifies: their defaults are what it computed.
    legacy = json.loads(json.dumps(default))
    for key in ("tie_value_by_family", "logprob_dtype"):
        del legacy["config"]["protocol"][key]
    verify_run(legacy, {"t_ties": old_samples}, source="legacy")
    assert default["configs"]["t_ties"]["tie_value"] == 0.5 and by_family["configs"]["t_ties"]["tie_value"] == 0.0
    assert by_family["config"]["protocol"]["tie_value_by_family"] == {"pairs": 0.0, "other_family": 1.0}
    # Three exact ties: each moves the accuracy by 0.5 / 6 between the two rules; non-ties are untouched.
    assert default["results"]["t_ties"]["acc"] - by_family["results"]["t_ties"]["acc"] == pytest.approx(3 * 0.5 / 6)
    with pytest.raises(ProtocolError, match="FAMILY:CREDIT"):
        get_protocol("cuervo", {"tie_value_by_family": "pairs=0"})
    with pytest.raises(ProtocolError, match=r"tie_value_by_family pairs=2.0"):
        get_protocol("cuervo", {"tie_value_by_family": "pairs:2"})


def test_cuervo_preset_scores_ties_as_slm_scaling_does(tiny_llama_dir, tmp_path):
    """slm_scaling's `summarize` (tiagoCuervo/slm_scaling src/slm/evaluate.py): positive NLL below the
    negative's → 1; an exact tie → 0.5 when `task == "sblimp"`, 0 on every other task; else 0. The 0.5 is
    the sBLIMP task file's rule (tasks/sblimp/_template.yaml `tie_value_by_protocol`), not its metric
    family's: another `voice_averaged` task gets the protocol's 0 (issue 24: the rule was keyed on the family)."""
    import json

    import slmeval
    from slmeval.task_loader.registry import builtin_task_dir

    rng = np.random.default_rng(1)
    rows = []
    for i in range(8):
        pos = rng.integers(0, N_UNITS, 6).tolist()
        neg = list(pos) if i % 2 == 0 else rng.integers(0, N_UNITS, 6).tolist()
        rows.append({"id": i, "positive": pos, "negative": neg, "type": f"t{i % 2}", "subtype": "s", "item": str(i),
                     "voice": "v"})
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    grouping = "grouping: {item: [type, subtype, item], breakdown: [type], voice: voice}"
    # the bundled sBLIMP template, read from units: its scoring rules on this data
    (tmp_path / "sblimp_units.yaml").write_text(
        f"include: {builtin_task_dir() / 'sblimp' / '_template.yaml'}\n"
        "name: t_sblimp_like\nsource: units_jsonl\npath: ./pairs.jsonl\n")
    (tmp_path / "tasks.yaml").write_text(
        f"- {{name: t_voice_other, family: voice_averaged, source: units_jsonl, path: ./pairs.jsonl, {grouping}}}\n"
        "- {name: t_cloze_like, family: pairs, source: units_jsonl, path: ./pairs.jsonl}\n")
    names = ["t_sblimp_like", "t_voice_other", "t_cloze_like"]
    res = slmeval.evaluate(tiny_llama_dir, names, include_path=[tmp_path], protocol="cuervo",
                           output=tmp_path / "run", progress=False)
    assert {t: res["configs"][t]["tie_value"] for t in names} == {"t_sblimp_like": 0.5, "t_voice_other": 0.0,
                                                                  "t_cloze_like": 0.0}
    assert res["configs"]["t_voice_other"]["family"] == res["configs"]["t_sblimp_like"]["family"] == "voice_averaged"
    assert res["config"]["protocol"]["tie_value_by_family"] == {}
    for task in names:
        samples = [json.loads(x) for x in (tmp_path / "run" / f"samples_{task}.jsonl").read_text().splitlines()]
        ties = 0
        for s in samples:
            pos_nll, neg_nll = -s["positive_score"], -s["negative_score"]
            expected = 1.0 if pos_nll < neg_nll else 0.5 if (task == "t_sblimp_like" and pos_nll == neg_nll) else 0.0
            assert s["correct"] == expected, (task, s["id"])
            ties += pos_nll == neg_nll
        assert ties == 4
