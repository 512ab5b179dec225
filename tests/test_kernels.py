"""Fused LM-head kernel (slmeval.kernels) against a float64 naive reference, on CPU.

The kernels run in Triton's interpreter (TRITON_INTERPRET=1): slow, so shapes are tiny and
deliberately odd (V, d not powers of two, not multiples of the tiles) so that every masked
edge — last row block, last V tile, last d step, partial split — is exercised. The output is
poisoned before each call so an element the kernel fails to write cannot pass.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

POISON = 1.0e30
FP32_TOL = 1e-4


def _import_kernels_for_interpreter():
    """Import triton and the kernel module with TRITON_INTERPRET=1, then restore the variable.

    Triton decides interpreter vs GPU compilation when each @jit function is decorated —
    including its own standard library (tl.zeros, tl.sum ...) at `import triton` — so the
    variable must be set before triton is first imported in this process. It is restored right
    away so other modules are collected in their own environment; the `kernels` fixture sets it
    again only while these tests run. Returns None when triton was already imported in compiled
    mode (it cannot be re-imported safely); the tests then run in a fresh subprocess instead.
    """
    if "triton" in sys.modules:
        standard = sys.modules.get("triton.language.standard")
        if standard is None or type(standard.zeros).__name__ != "InterpretedFunction":
            return None
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        return importlib.import_module("slmeval.kernels._fused_head")
    finally:
        if previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = previous


_HEAD = _import_kernels_for_interpreter()


def test_in_fresh_process_when_triton_was_preimported():
    """Fallback: another module imported triton for the GPU first; rerun this file in isolation."""
    if _HEAD is not None:
        pytest.skip("kernels run in this process (triton imported in interpreter mode)")
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def kernels():
    """slmeval.kernels with kernels built for the CPU interpreter (variable set while in use)."""
    if _HEAD is None:
        pytest.skip("triton was imported in compiled mode before this module; see the subprocess test")
    assert _HEAD.is_interpreting()
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import slmeval.kernels as package

        # The package imports _fused_head lazily by name, so it picks up the interpreted one.
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


def test_split_plan_covers_vocabulary(kernels):
    """Every split owns >= 1 column, splits tile [0, V) exactly, and chunks align to BLOCK_V."""
    head = _HEAD
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


@pytest.mark.slow
def test_compiles_for_hopper_without_a_gpu():
    """The interpreter cannot catch GPU-compile failures: compile for sm_90 (Triton ships ptxas)
    with the launch-time specialisation of aligned inputs and check the tiles use wgmma, are
    software-pipelined (cp.async), fit shared memory and do not spill registers."""
    script = textwrap.dedent("""
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from slmeval.kernels import _triton_kernels as K

        head = K._head_tile_kernel
        sig = {n: "*bf16" for n in ("h_ptr", "w_ptr")}
        sig.update({n: "*fp32" for n in ("b_ptr", "out_ptr", "part_max_ptr", "part_sum_ptr", "part_tgt_ptr")})
        sig.update(tgt_ptr="*i64", softcap="fp32")
        for n in ("T", "V", "D", "v_per_split", "stride_ht", "stride_hd", "stride_wv", "stride_wd", "ignore_index"):
            sig[n] = "i32"
        consts = dict(HAS_BIAS=True, HAS_SOFTCAP=True, SINGLE_SPLIT=False, UPCAST=False, DOT_PRECISION="tf32",
                      BLOCK_T=128, BLOCK_V=128, BLOCK_D=64, stride_hd=1, stride_wd=1)
        for n in consts:
            sig[n] = "constexpr"
        aligned = ("h_ptr", "w_ptr", "b_ptr", "out_ptr", "D", "stride_ht", "stride_wv", "v_per_split")
        attrs = {(head.arg_names.index(n),): [["tt.divisibility", 16]] for n in aligned}
        k = triton.compile(ASTSource(head, sig, consts, attrs), target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": 8, "num_stages": 3})
        ptx = k.asm["ptx"]
        assert "wgmma.mma_async" in ptx, "no Hopper tensor-core MMA"
        assert "cp.async" in ptx, "inner d loop not software-pipelined"
        assert "st.local" not in ptx, "register spills"
        assert k.metadata.shared <= 227 * 1024, k.metadata.shared

        comb = K._combine_splits_kernel
        csig = {n: "*fp32" for n in ("part_max_ptr", "part_sum_ptr", "part_tgt_ptr", "out_ptr")}
        csig.update(tgt_ptr="*i64", T="i32", V="i32", n_splits="i32", ignore_index="i32",
                    BLOCK_T="constexpr", BLOCK_S="constexpr")
        triton.compile(ASTSource(comb, csig, dict(BLOCK_T=128, BLOCK_S=8)), target=GPUTarget("cuda", 90, 32))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0 and ("ptxas" in proc.stderr and "not found" in proc.stderr):
        pytest.skip("this triton build ships no ptxas")
    assert proc.returncode == 0, proc.stderr[-3000:]
