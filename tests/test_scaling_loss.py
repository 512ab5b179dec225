"""`slmeval loss`: rolling windows as lm-eval's loglikelihood_rolling, checked against a naive float64
per-token computation with a tiny random Llama whose context is shorter than the sequences."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from slmeval.cli import app
from slmeval.models import load_lm
from slmeval.scaling.loss import corpus_loss, non_embedding_params, rolling_windows

CONTEXT = 12
N_UNITS = 20
OFFSET = 3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=N_UNITS + OFFSET, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=CONTEXT,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("tiny_llama")
    model = LlamaForCausalLM(cfg)
    model.config.offset = OFFSET
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def units():
    rng = np.random.default_rng(0)
    return [rng.integers(0, N_UNITS, n).tolist() for n in (5, 12, 29)]


def test_windows_predict_every_token_once():
    # W = 4 model inputs: inputs t0..t3 predict t1..t4; t4..t7 predict t5..t8; the last window keeps W
    # inputs (t5..t8) and predicts t9 only (hand-checked).
    assert rolling_windows(10, 4) == [(0, 5, 4), (4, 9, 4), (5, 10, 1)]
    assert rolling_windows(5, 4) == [(0, 5, 4)]                                # W inputs + 1 target: one pass
    assert rolling_windows(6, 4) == [(0, 5, 4), (1, 6, 1)]
    for n, w, c in ((47, 12, 1), (47, 12, 5), (13, 12, 12), (2, 1, 1), (30, 1, 1)):
        wins = rolling_windows(n, w, c)
        predicted = [i for s, e, k in wins for i in range(e - k, e)]
        assert predicted == list(range(1, n))                                   # each position once, in order
        assert all(e - 1 - s <= w and (e - k) - s >= min(c, e - k) for s, e, k in wins)


@pytest.mark.parametrize("n,window,context_len", [(1, 4, 1), (4, 4, 1), (5, 4, 1), (6, 4, 1), (10, 4, 1),
                                                  (47, 12, 1), (47, 12, 5), (47, 12, 12), (30, 1, 1), (13, 12, 3)])
def test_windows_are_lm_evals_rolling_tiling(n, window, context_len):
    """The windows are lm-eval's own get_rolling_token_windows (lm_eval/utils.py) over the tokens after
    the prefix token: the same model inputs and the same predicted tokens, window by window."""
    from lm_eval.utils import get_rolling_token_windows

    tokens = list(range(n))              # token value = position; token 0 is the prefix (start) token
    theirs = list(get_rolling_token_windows(tokens[1:], prefix_token=tokens[0], max_seq_len=window,
                                            context_len=context_len))
    ours = [(tokens[s:e - 1], tokens[e - k:e]) for s, e, k in rolling_windows(n, window, context_len)]
    assert ours == [(list(a), list(b)) for a, b in theirs]


def naive_loss(model_dir, seqs, context_len=1) -> tuple[float, float, list[float]]:
    """float64 model; windows from lm-eval's get_rolling_token_windows, each read in one forward of at
    most CONTEXT inputs, the last len(pred) predictions counted. (token-weighted, utterance-weighted,
    per-utterance mean NLL)."""
    from lm_eval.utils import get_rolling_token_windows
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    total, count, means = 0.0, 0, []
    for units in seqs:
        tokens = [u + OFFSET for u in units]
        nll = []
        for inp, pred in get_rolling_token_windows(tokens, prefix_token=1, max_seq_len=CONTEXT, context_len=context_len):
            assert len(inp) <= CONTEXT
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([inp])).logits[0], -1)
            full = inp + [pred[-1]]
            nll += [-float(logp[j, full[j + 1]]) for j in range(len(inp) - len(pred), len(inp))]
        total += sum(nll)
        count += len(nll)
        means.append(sum(nll) / len(nll))
    return total / count, float(np.mean(means)), means


@pytest.mark.parametrize("context_len", [1, 6])
def test_rolling_loss_matches_naive_float64(tiny_model, units, context_len):
    lm = load_lm(tiny_model)
    assert lm.max_length == CONTEXT and lm.mapping.offset == OFFSET
    res = corpus_loss(lm, units, context_len=context_len, batch_size=3, progress=False)
    token_w, utt_w, means = naive_loss(tiny_model, units, context_len)
    assert res.n_tokens == sum(len(u) for u in units)                          # BOS makes every unit count
    assert res.loss == res.loss_token_weighted == pytest.approx(token_w, rel=1e-6)
    assert res.loss_utterance_weighted == pytest.approx(utt_w, rel=1e-6)
    assert [r["nll"] for r in res.per_utterance] == pytest.approx(means, rel=1e-6)
    assert res.n_windows > len(units)                                          # windows were exercised
    assert res.start_token == "bos"
    by_utt = corpus_loss(lm, units, context_len=context_len, average="utterance", batch_size=3, progress=False)
    assert by_utt.loss == by_utt.loss_utterance_weighted and by_utt.average == "utterance"


def test_loss_cli_writes_json_and_appends_a_run(tiny_model, units, tmp_path):
    data = tmp_path / "held_out.jsonl"
    data.write_text("".join(json.dumps({"id": i, "units": u}) + "\n" for i, u in enumerate(units)))
    runs = tmp_path / "runs.csv"
    pd.DataFrame([{"name": "old", "N": 1e6, "D": 1e8, "loss": 3.0, "modality": "speech"}]).to_csv(runs, index=False)
    out = tmp_path / "loss.json"
    per_utt = tmp_path / "per_utterance.jsonl"
    args = ["loss", "--model", str(tiny_model), "--data", str(data), "--output", str(out),
            "--append-to", str(runs), "--tokens", "1e9", "--name", "tiny", "--average", "utterance",
            "--per-utterance", str(per_utt)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    payload = json.loads(out.read_text())
    _, utt_w, means = naive_loss(tiny_model, units)
    rows = [json.loads(line) for line in per_utt.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2"]                          # the JSONL's own ids
    assert [r["nll"] for r in rows] == pytest.approx(means, rel=1e-6)
    assert [r["n_tokens"] for r in rows] == [len(u) for u in units]
    assert payload["average"] == "utterance" and payload["loss"] == payload["loss_utterance_weighted"]
    assert payload["loss"] == pytest.approx(utt_w, rel=1e-6)
    assert payload["loss_token_weighted"] == pytest.approx(sum(r["nll_sum"] for r in rows) / sum(map(len, units)))
    assert "utterance-weighted" in res.output and "token-weighted" in res.output
    table = pd.read_csv(runs)
    assert table["name"].tolist() == ["old", "tiny"]
    row = table.iloc[1]
    assert row["loss"] == pytest.approx(payload["loss"]) and row["D"] == 1e9
    assert row["loss_average"] == "utterance" and pd.isna(table.iloc[0]["loss_average"])
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    n_ref = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
    assert row["N"] == n_ref == non_embedding_params(model)
    assert payload["perplexity"] == pytest.approx(math.exp(payload["loss"]))
    again = CliRunner().invoke(app, args)                                      # same name twice: refused
    assert again.exit_code == 2 and "already there" in again.output


def test_loss_cli_rejects_bad_units(tiny_model, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"units": [1, -2]}\n')
    res = CliRunner().invoke(app, ["loss", "--model", str(tiny_model), "--data", str(data)])
    assert res.exit_code == 2 and "bad.jsonl:1" in res.output


def test_loss_on_audio_goes_through_tokenizer_and_cache(tmp_path):
    """Audio folder → units via the core tokenizer + cache; equal to encoding the files by hand."""
    import shutil
    from pathlib import Path

    from transformers import LlamaConfig, LlamaForCausalLM

    from slmeval.audio import load_audio
    from slmeval.scaling.loss import load_held_out
    from slmeval.units import load_tokenizer

    repo = Path(__file__).resolve().parents[1]
    tok_dir = repo / "audio_assets" / "demo_tokenizer"
    files = sorted((repo / "audio_assets" / "mini_sblimp").rglob("*.flac"))[:3]
    data = tmp_path / "audio"
    data.mkdir()
    for f in files:
        shutil.copy(f, data / f.name)
    tok = load_tokenizer(str(tok_dir))
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=tok.n_units + OFFSET, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=16,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(cfg)
    model.config.offset = OFFSET
    model.save_pretrained(tmp_path / "m")
    cache = tmp_path / "cache"
    held = load_held_out(data, tokenizer=str(tok_dir), cache_dir=cache, use_cache=True, progress=False)
    seqs = held.units
    by_hand = [tok.encode(load_audio(data / f.name)).tolist() for f in sorted(files)]
    assert seqs == by_hand and held.ids == sorted(f.name for f in files) and held.score_eos(None) is False
    assert any(cache.rglob("*.units"))                                         # the cache was filled
    lm = load_lm(tmp_path / "m")
    assert corpus_loss(lm, seqs, progress=False).loss == pytest.approx(corpus_loss(lm, by_hand, progress=False).loss)
    out = tmp_path / "loss.json"
    res = CliRunner().invoke(app, ["loss", "--model", str(tmp_path / "m"), "--data", str(data), "--tokenizer",
                                   str(tok_dir), "--cache-dir", str(cache), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["n_tokens"] == sum(len(s) for s in seqs)


def test_loss_of_a_model_with_a_speech_prefix_counts_only_unit_tokens(tmp_path):
    """SpiritLM reads `<s>[Speech]` before the units ([Speech] one token or several): the loss is over the
    unit tokens only, given that prefix, as SpiritLM's own string scoring gives it (float64 reference)."""
    from _spiritlm_replica import save_spiritlm_replica, spiritlm_reference_scores

    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, 16, n).tolist() for n in (4, 9, 17)]
    for one_token in (True, False):
        ckpt = save_spiritlm_replica(tmp_path / f"spirit_{one_token}", n_units=16, speech_one_token=one_token)
        lm = load_lm(str(ckpt), n_units=16)
        assert (len(lm.mapping.prefix_ids) == 1) == one_token   # several: the Metaspace "▁" and each character
        result = corpus_loss(lm, seqs, progress=False)
        reference = spiritlm_reference_scores(ckpt, seqs)
        assert result.n_tokens == sum(n for _, n in reference) == sum(map(len, seqs))
        assert result.loss == pytest.approx(-sum(lp for lp, _ in reference) / result.n_tokens, abs=1e-5)
        assert result.to_dict()["prefix_ids"] == list(lm.mapping.prefix_ids)


def test_runs_table_records_which_average_its_loss_is(tmp_path):
    """`loss_average` is token / utterance; one table never mixes them (they differ systematically)."""
    from slmeval.scaling.tables import RunsTableError, load_runs, loss_average

    base = pd.DataFrame({"name": ["a", "b", "c"], "N": [1e6, 2e6, 4e6], "D": [1e8] * 3, "loss": [3.0, 2.9, 2.8]})
    path = tmp_path / "runs.csv"
    base.to_csv(path, index=False)
    assert loss_average(load_runs(path)).startswith("not recorded")
    base.assign(loss_average=["utterance"] * 3).to_csv(path, index=False)
    assert loss_average(load_runs(path)) == "utterance-weighted mean NLL (slm_scaling's mean_nll)"
    base.assign(loss_average=["token", None, "token"]).to_csv(path, index=False)
    assert loss_average(load_runs(path)) == "token-weighted mean NLL per unit; not recorded for runs ['b']"
    base.assign(loss_average=["token", "utterance", "token"]).to_csv(path, index=False)
    with pytest.raises(RunsTableError, match=r"mix loss averages \(token: \['a', 'c'\]; utterance: \['b'\]\)"):
        load_runs(path)
    base.assign(loss_average=["token", "tokens", "token"]).to_csv(path, index=False)
    with pytest.raises(RunsTableError, match=r"'loss_average' must be one of token, utterance.*\['b'\]"):
        load_runs(path)


def test_fit_says_which_average_it_fitted(tmp_path):
    from _scaling_helpers import study_table

    table = study_table()
    path = tmp_path / "runs.csv"
    table[table["modality"] == "speech"].drop(columns="blimp").assign(loss_average="utterance").to_csv(path, index=False)
    out = tmp_path / "fit"
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(out), "--bootstrap", "0", "--no-plots"])
    assert res.exit_code == 0, res.output
    said = "loss fitted: utterance-weighted mean NLL (slm_scaling's mean_nll)"
    assert said in " ".join(res.output.split())
    assert json.loads((out / "fit.json").read_text())["input"]["loss_average"] == said.split(": ", 1)[1]
    assert said in (out / "report.md").read_text()
