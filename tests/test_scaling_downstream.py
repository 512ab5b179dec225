"""γq on the envelope, the Table 4 efficiency ratios, metric vs loss with saturation, mixed-modal laws."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from _scaling_helpers import GAMMA, envelope_runs
from slmeval.scaling import barrier_crossing, envelope_mask, fit_accuracy_vs_loss, fit_gamma_q, fit_mixed_modal
from slmeval.scaling import optimal_allocation, relative_efficiency


def test_envelope_is_the_running_maximum_by_compute():
    c = [5, 1, 3, 2, 4, 4, 6]
    q = [0.7, 0.5, 0.6, 0.4, 0.65, 0.62, 0.69]
    # by C: 1→0.5 (on), 2→0.4, 3→0.6 (on), 4→0.65 (on; the 0.62 tie at C=4 is below), 5→0.7 (on), 6→0.69
    assert envelope_mask(c, q).tolist() == [True, True, True, False, True, False, False]


def test_gamma_q_recovered_from_a_synthetic_envelope():
    c, q = envelope_runs(0.021, 0.2, 200, seed=0)
    fit = fit_gamma_q(c, q, bootstrap=200, seed=0)
    assert fit.gamma == pytest.approx(0.021, abs=0.002)
    lo, hi = fit.ci["gamma"]
    assert lo <= 0.021 <= hi and hi - lo < 0.01
    on = envelope_mask(c, q)
    ref = stats.linregress(np.log(c[on]), np.log(q[on]))            # the stated rule, redone by hand
    assert fit.gamma == pytest.approx(ref.slope, rel=1e-12) and fit.k == pytest.approx(np.exp(ref.intercept))
    assert fit.predict(fit.compute_for(0.9)) == pytest.approx(0.9)
    assert fit_gamma_q(c, q, bootstrap=50, seed=5).ci == fit_gamma_q(c, q, bootstrap=50, seed=5).ci


@pytest.mark.parametrize("metric,published_ratio", [("blimp", 3.14), ("tstorycloze", 1.56), ("sstorycloze", 2.7)])
def test_table4_efficiency_ratio_recovered(metric, published_ratio):
    g_text, g_speech = GAMMA[metric]
    text = fit_gamma_q(*envelope_runs(g_text, 0.02, 300, seed=1), bootstrap=100, seed=0)
    speech = fit_gamma_q(*envelope_runs(g_speech, 0.2, 300, seed=2), bootstrap=100, seed=0)
    eff = relative_efficiency(text, speech, targets=[0.8])
    assert g_text / g_speech == pytest.approx(published_ratio, abs=0.01)    # the table's own arithmetic
    assert eff["ratio"] == pytest.approx(published_ratio, rel=0.12)
    lo, hi = eff["ratio_ci"]
    assert lo < eff["ratio"] < hi
    t = eff["targets"][0]
    assert t["C_fast"] == pytest.approx((0.8 / text.k) ** (1 / text.gamma)) and "saturate" in eff["caveat"]


def test_gamma_q_rejects_bad_input():
    with pytest.raises(ValueError, match="finite and > 0"):
        fit_gamma_q([1e18, 0, 1e19], [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="envelope is a single point"):
        fit_gamma_q([1e18, 1e19, 1e20], [0.7, 0.6, 0.5])


def _acc_loss_data(seed=0):
    rng = np.random.default_rng(seed)
    loss = np.linspace(3.0, 1.8, 30)
    acc = 1.2 - 0.25 * loss + rng.normal(0, 0.004, 30)
    acc[loss < 2.1] = (1.2 - 0.25 * 2.1) + rng.normal(0, 0.004, (loss < 2.1).sum())   # plateau
    return loss, acc


def test_accuracy_vs_loss_excludes_the_saturated_plateau():
    loss, acc = _acc_loss_data()
    fit = fit_accuracy_vs_loss(loss, acc)
    sat = np.asarray(fit.saturated)
    assert sat.sum() >= 5 and (loss[sat] < 2.15).all()
    assert fit.slope == pytest.approx(-0.25, abs=0.02)
    assert fit.pearson_r == pytest.approx(np.corrcoef(loss[~sat], acc[~sat])[0, 1], rel=1e-12)
    lo, hi = fit.ci["slope"]
    assert lo < -0.25 < hi
    every = fit_accuracy_vs_loss(loss, acc, rule="none")
    assert every.n_saturated == 0 and every.pearson_r == pytest.approx(np.corrcoef(loss, acc)[0, 1], rel=1e-12)
    assert abs(every.slope + 0.25) > abs(fit.slope + 0.25)          # the plateau biases an all-points line
    manual = fit_accuracy_vs_loss(loss, acc, rule="max-loss", max_loss=2.5)
    assert manual.n_saturated == int((loss < 2.5).sum())


def test_accuracy_vs_loss_keeps_a_straight_line_whole():
    rng = np.random.default_rng(1)
    loss = np.linspace(3, 2, 20)
    assert fit_accuracy_vs_loss(loss, 1 - 0.2 * loss + rng.normal(0, 0.002, 20)).n_saturated == 0


SPEECH_AG = {"E": 3.02, "A": 154.45, "B": 205.10, "alpha": 0.31, "beta": 0.24}   # Aghajanyan et al. Table 1
TEXT_AG = {"E": 2.42, "A": 492.51, "B": 1987.40, "alpha": 0.18, "beta": 0.22}


def _uni(p, n, d):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def test_mixed_modal_law_and_barrier_recovered():
    truth = {"C": 0.2, "A": 50.0, "alpha": 0.3, "B": 300.0, "beta": 0.3}
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e8), np.log(3e10), 60))
    di = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 60))
    dj = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 60))
    loss = ((_uni(SPEECH_AG, n, di) + _uni(TEXT_AG, n, dj)) / 2 - truth["C"] + truth["A"] / n ** truth["alpha"]
            + truth["B"] / (di + dj) ** truth["beta"]) * np.exp(rng.normal(0, 0.0005, 60))
    fit = fit_mixed_modal(n, di, dj, loss, SPEECH_AG, TEXT_AG, modalities=("speech", "text"))
    assert fit.C == pytest.approx(truth["C"], abs=0.03)
    assert fit.alpha == pytest.approx(0.3, abs=0.05) and fit.beta == pytest.approx(0.3, abs=0.05)
    b = fit.barrier
    assert b["crossed"]
    # at the crossing the optimally allocated interaction term equals C_ij, and N·D = C/6
    assert fit.A / b["N"] ** fit.alpha + fit.B / b["D"] ** fit.beta == pytest.approx(fit.C, rel=1e-6)
    assert 6 * b["N"] * b["D"] == pytest.approx(b["C"], rel=1e-9)
    n_half, d_half = optimal_allocation(b["C"] / 2, fit.A, fit.B, fit.alpha, fit.beta)
    assert fit.A / n_half ** fit.alpha + fit.B / d_half ** fit.beta > fit.C      # half the budget: still competing
    assert fit.synergy_per_run == list(fit.C > fit.interaction(n, di + dj))


def test_barrier_not_crossed_when_modalities_always_compete():
    assert barrier_crossing(-0.1, 10, 0.3, 10, 0.3)["crossed"] is False
