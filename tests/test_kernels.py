"""Fused LM-head kernel (slmeval.kernels) against a float64 naive reference, on CPU.

The kernels run in Triton's interpreter (TRITON_INTERPRET=1): slow, so shapes are tiny and
deliberately odd (V, d not powers of two, not multiples of the tiles) so that every masked
edge — last row block, last V tile, last d step, partial split — is exercised. The output is
poisoned before each call so an element the kernel fails to write cannot pass.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed")

POISON = 1.0e30
FP32_TOL = 1e-4


@pytest.fixture(scope="module")
def kernels():
    """slmeval.kernels with its Triton kernels built for the CPU interpreter.

    triton.jit picks interpreter vs GPU compilation when a kernel is decorated, so the variable
    must be set while the kernel module is (re)imported; it is restored afterwards so other
    test modules see the environment they started with.
    """
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        triton_kernels = importlib.import_module("slmeval.kernels._triton_kernels")
        if type(triton_kernels._head_tile_kernel).__name__ != "InterpretedFunction":
            importlib.reload(triton_kernels)
        head = importlib.import_module("slmeval.kernels._fused_head")
        assert head.is_interpreting()
        import slmeval.kernels as package

        yield package
    finally:
        if previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = previous


def reference_logprobs(hidden, weight, targets, bias=None, softcap=None, ignore_index=-100):
    """Naive float64: full logits, log-softmax, gather; 0 where ignored."""
    logits = hidden.double() @ weight.double().T
    if bias is not None:
        logits = logits + bias.double()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    logp = torch.log_softmax(logits, dim=-1)
    keep = targets != ignore_index
    picked = logp.gather(1, torch.where(keep, targets, 0)[:, None])[:, 0]
    return torch.where(keep, picked, torch.zeros_like(picked))


def make_inputs(T, V, d, dtype, *, seed, scale=3.0, ignore_index=-100, n_ignored=3):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(T, d, generator=gen).to(dtype)
    weight = (torch.randn(V, d, generator=gen) * scale / d**0.5).to(dtype)
    targets = torch.randint(0, V, (T,), generator=gen)
    targets[0], targets[-1] = 0, V - 1  # first and last vocabulary column
    ignored = torch.randperm(T, generator=gen)[:n_ignored]
    targets[ignored[ignored != 0]] = ignore_index
    return hidden, weight, targets


def run_poisoned(package, hidden, weight, targets, bias=None, **kwargs):
    out = torch.full((hidden.shape[0],), POISON, dtype=torch.float32)
    result = package.fused_target_logprobs(hidden, weight, targets, bias, out=out, **kwargs)
    assert result.data_ptr() == out.data_ptr()
    return result


# (T, V, d): odd sizes; T=40 spans 3 row blocks of 16, V=131 five V tiles of 32, d=37 three K steps.
SHAPES = [(40, 131, 37), (17, 300, 72), (1, 97, 16)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("splits", [1, 3], ids=lambda s: f"splits{s}")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-V{}-d{}".format(*s))
def test_matches_float64_reference(kernels, dtype, splits, shape):
    T, V, d = shape
    hidden, weight, targets = make_inputs(T, V, d, dtype, seed=hash((T, V, d, splits)) % 2**31)
    got = run_poisoned(kernels, hidden, weight, targets, splits=splits)
    # Reference on the same (rounded) inputs: the kernel accumulates in fp32, so even 16-bit
    # inputs must agree to fp32 accuracy.
    want = reference_logprobs(hidden, weight, targets)
    assert got.dtype == torch.float32
    assert (got.double() - want).abs().max().item() <= FP32_TOL
    assert torch.all(got[targets == -100] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("splits", [1, 4], ids=lambda s: f"splits{s}")
def test_bias_softcap_and_custom_ignore_index(kernels, dtype, splits):
    T, V, d = 33, 151, 45
    hidden, weight, targets = make_inputs(T, V, d, dtype, seed=7 + splits, ignore_index=-1, n_ignored=5)
    bias = torch.randn(V, generator=torch.Generator().manual_seed(11)) * 2
    got = run_poisoned(kernels, hidden, weight, targets, bias, softcap=4.0, ignore_index=-1, splits=splits)
    want = reference_logprobs(hidden, weight, targets, bias, softcap=4.0, ignore_index=-1)
    assert (got.double() - want).abs().max().item() <= FP32_TOL
    assert torch.all(got[targets == -1] == 0) and (targets == -1).sum() >= 3
    # The cap must actually change the result at these logit scales (else the test is vacuous).
    uncapped = reference_logprobs(hidden, weight, targets, bias, ignore_index=-1)
    assert (uncapped - want).abs().max().item() > 1e-2


def test_large_logits_stay_finite(kernels):
    """Online max: logits of several hundred must not overflow exp (naive exp would give inf)."""
    hidden, weight, targets = make_inputs(24, 113, 40, torch.float32, seed=3, scale=150.0)
    assert (hidden @ weight.T).abs().max() > 200
    got = run_poisoned(kernels, hidden, weight, targets, splits=2)
    want = reference_logprobs(hidden, weight, targets)
    assert torch.isfinite(got).all()
    assert (got.double() - want).abs().max().item() <= FP32_TOL * 10  # |logit| ~ 300: fp32 ulp 3e-5


def test_strided_inputs_and_mixed_dtypes(kernels):
    """Views with non-unit strides (a column slice, a transposed buffer) and fp16 x fp32 promotion."""
    gen = torch.Generator().manual_seed(5)
    T, V, d = 21, 77, 29
    hidden = torch.randn(d, T, generator=gen).T  # stride (1, T)
    weight_full = torch.randn(V, d + 11, generator=gen) / d**0.5
    weight = weight_full[:, 5:5 + d]  # stride (d + 11, 1), offset 5
    targets = torch.randint(0, V, (T,), generator=gen)
    got = run_poisoned(kernels, hidden, weight, targets)
    assert (got.double() - reference_logprobs(hidden, weight, targets)).abs().max().item() <= FP32_TOL

    half_hidden = hidden.half()
    got = run_poisoned(kernels, half_hidden, weight, targets)
    want = reference_logprobs(half_hidden.float(), weight, targets)
    assert (got.double() - want).abs().max().item() <= FP32_TOL


def test_matches_scoring_torch_path(kernels):
    """Same numbers as the scorer's chunked torch backend (the other side of the switch)."""
    logprobs = pytest.importorskip("slmeval.scoring.logprobs")
    hidden, weight, targets = make_inputs(36, 143, 50, torch.float32, seed=21)
    bias = torch.randn(143, generator=torch.Generator().manual_seed(2))
    ours = run_poisoned(kernels, hidden, weight, targets, bias, softcap=6.0, splits=2)
    theirs = logprobs.torch_target_logprobs(hidden, weight, targets, bias, softcap=6.0, max_chunk_bytes=4 * 143 * 8)
    assert (ours - theirs).abs().max().item() <= FP32_TOL


def test_bad_targets(kernels):
    hidden, weight, targets = make_inputs(20, 64, 16, torch.float32, seed=9)
    targets[4] = 64  # == V: out of range
    with pytest.raises(ValueError, match=r"targets\[4\]=64 is outside the vocabulary \[0, 64\)"):
        kernels.fused_target_logprobs(hidden, weight, targets)
    targets[4] = -5
    with pytest.raises(ValueError, match=r"targets\[4\]=-5"):
        kernels.fused_target_logprobs(hidden, weight, targets)
    # Unchecked: the bad row is NaN (never a plausible number), the others are still right.
    targets[4] = 2**40  # would alias a real column if narrowed to int32 naively
    got = run_poisoned(kernels, hidden, weight, targets, check_targets=False, splits=2)
    assert torch.isnan(got[4])
    keep = torch.arange(20) != 4
    want = reference_logprobs(hidden[keep], weight, targets[keep])
    assert (got[keep].double() - want).abs().max().item() <= FP32_TOL


def test_shape_and_argument_errors(kernels):
    hidden, weight, targets = make_inputs(8, 40, 16, torch.float32, seed=1)
    f = kernels.fused_target_logprobs
    with pytest.raises(ValueError, match="does not match weight width"):
        f(hidden, weight[:, :15], targets)
    with pytest.raises(ValueError, match=r"targets must be \[T\]=8"):
        f(hidden, weight, targets[:7])
    with pytest.raises(ValueError, match="integer token ids"):
        f(hidden, weight, targets.float())
    with pytest.raises(ValueError, match=r"bias must be \[V\]=40"):
        f(hidden, weight, targets, torch.zeros(39))
    with pytest.raises(ValueError, match="softcap must be a positive"):
        f(hidden, weight, targets, softcap=0.0)
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        f(hidden.double(), weight, targets)
    assert f(hidden[:0], weight, targets[:0]).shape == (0,)


def test_split_plan_covers_vocabulary():
    """Every split owns >= 1 column, splits tile [0, V) exactly, and chunks align to BLOCK_V."""
    head = importlib.import_module("slmeval.kernels._fused_head")
    for cfg in head._candidates(torch.bfloat16) + [head._INTERPRETER_TILE]:
        for V in (1, 31, 502, 50304, 151936):
            for T in (1, 100, 8192, 65536):
                for requested in (None, 1, 3, 1000):
                    n, per = head._split_plan(cfg, T, V, requested, n_sms=132)
                    assert per % cfg.block_v == 0 and 1 <= n <= head.MAX_SPLITS
                    assert (n - 1) * per < V <= n * per
                    if requested is None and cfg.waves == 0:
                        assert n == 1


def test_import_is_lazy_and_triton_optional():
    """Importing slmeval.kernels never imports triton; without triton the call says what to do."""
    script = textwrap.dedent("""
        import sys
        import slmeval.kernels as k
        assert "triton" not in sys.modules, "import slmeval.kernels pulled in triton"
        sys.modules["triton"] = None  # simulate an environment without triton
        assert k.triton_available() is False
        import torch
        try:
            k.fused_target_logprobs(torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
        except ImportError as err:
            assert "needs Triton" in str(err)
        else:
            raise AssertionError("expected ImportError")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
