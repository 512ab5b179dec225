"""Plain-number formatting shared by the leaderboard and the `slmeval fit` figures and console."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from slmeval.fmt import format_compute, format_count  # noqa: E402
from slmeval.scaling.axes import readable_axes  # noqa: E402


@pytest.mark.parametrize("value, text", [(358e6, "358M"), (1.3e9, "1.3B"), (720e9, "720B"), (6e21, "6e21"),
                                         (1e21, "1e21"), (2.5, "2.5"), (100, "100"), (1234, "1.23K"),
                                         (2.5e-5, "2.5e-5"), (None, ""), (0, "0"),
                                         (999.7, "1K"), (999.7e9, "1T")])   # rounding crosses a suffix
def test_format_count(value, text):
    assert format_count(value) == text


@pytest.mark.parametrize("value, digits, text", [(100, 1, "100"), (1e8, 1, "100M"), (0.525, 3, "0.525"),
                                                 (0.525, 2, "0.53")])
def test_format_count_digits_never_exponent_below_1000(value, digits, text):
    assert format_count(value, digits) == text


@pytest.mark.parametrize("value, text", [(6e21, "6e21"), (1.23e20, "1.2e20"), (1e13, "1e13"), (1e14, "1e14"),
                                         (9.96e17, "1e18"), (None, "")])
def test_format_compute_is_one_notation(value, text):
    assert format_compute(value) == text


def _labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_text()]


def test_log_axes_get_plain_numbers():
    fig, ax = plt.subplots()
    ax.plot([1e12, 1e22], [2.2, 4.5])
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)")
    fig.canvas.draw()
    default = _labels(ax.xaxis) + _labels(ax.yaxis)
    assert any("10^" in t or "\\times" in t for t in default)     # matplotlib's own: mathtext powers of ten
    readable_axes(ax)
    fig.canvas.draw()
    xs, ys = _labels(ax.xaxis), _labels(ax.yaxis)
    # view 10^11.5..10^22.5 (5 % margins): 11 decades, every 2nd; compute notation, never "1T" / "100T"
    assert xs == ["1e12", "1e14", "1e16", "1e18", "1e20", "1e22"]
    # view ~2.12..4.67: no 1-2-5 or 1..9 triple inside, so plain steps of 0.5
    assert ys == ["2.5", "3", "3.5", "4", "4.5"]
    assert not any("$" in t or "10^" in t for t in xs + ys)
    plt.close(fig)


def test_leaderboard_uses_the_compute_notation_of_the_figures():
    """The scatter's ticks, its tooltips and the table's compute cells: "1e13", never "10T" or "1e+13"."""
    from slmeval.leaderboard.entries import Entry
    from slmeval.leaderboard.site import build_scatter, render_page

    def entry(model, acc, compute):
        return Entry(kind="reported", model=model, section="sblimp", task="t", acc=acc, acc_stderr=None,
                     acc_macro=None, n_pairs=None, params=1e8, tokens=None, compute=compute, compute_approx=False,
                     data_status="", data_note="", protocol="", tokenizer="", provenance="p", category="")

    entries = [entry("a", 55.0, 1.2e12), entry("b", 60.0, 6e13)]
    scatter = build_scatter(entries)
    assert [label for _, label in scatter.x_ticks] == ["1e12", "1e13", "1e14"]
    assert {p.title.split(", ")[-2] for p in scatter.points} == {"1.2e12 FLOPs", "6e13 FLOPs"}
    html = render_page(entries, "2026-01-01T00:00:00+00:00")
    assert 'data-value="60000000000000.0">6e13</td>' in html and "e+" not in html.split("<tbody")[1]
