"""Triton kernels of the fused LM head: log p(target) without a [T, V] logits tensor.

Imported only on first use (see ``slmeval.kernels``): ``triton.jit`` decides at decoration
time whether kernels are compiled for a GPU or run by the CPU interpreter
(``TRITON_INTERPRET=1``), so this module must be imported after that variable is set.

Work decomposition (grid = row blocks x V splits):
  program (i, j) owns rows [i*BLOCK_T, (i+1)*BLOCK_T) and vocabulary columns
  [j*v_per_split, (j+1)*v_per_split). It walks its columns in BLOCK_V tiles; each tile of
  logits is a blockwise ``tl.dot`` over d accumulated in fp32 registers, then folded into a
  running (max, sum of exponentials) per row and discarded. The split over V exists so that a
  small T (few row blocks) still puts work on every SM; with one split the kernel writes the
  final log-probability itself, otherwise it writes per-split partials that
  ``_combine_splits_kernel`` merges (a [splits, T] read, negligible next to the head).

The target logit is picked out of each logit tile as it streams past (compare the tile's
column ids with the row's target) instead of being recomputed as a separate dot of h with
W[target]. Recomputing would gather T scattered rows of W — at small V that doubles the HBM
traffic of a bandwidth-bound head — and would round differently from the logit that entered
the logsumexp; the in-tile pick costs one compare/select per logit, far below the dot's
2*d flops per logit, and makes log p <= 0 hold exactly.
"""

from __future__ import annotations

import triton
import triton.language as tl

# Base-2 online softmax: exp2/log2 map to single hardware instructions; scaling by log2(e)
# once per logit is cheaper than the natural-base versions.
LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def _head_tile_kernel(
    h_ptr, w_ptr, b_ptr, tgt_ptr, out_ptr, part_max_ptr, part_sum_ptr, part_tgt_ptr,
    T, V, D, v_per_split,
    stride_ht, stride_hd, stride_wv, stride_wd,
    softcap, ignore_index,
    HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr, SINGLE_SPLIT: tl.constexpr,
    UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):
    pid_t = tl.program_id(0)
    pid_s = tl.program_id(1)

    rows = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    row_mask = rows < T
    rows64 = rows.to(tl.int64)  # T*stride can exceed 2**31 for long batches
    tgt = tl.load(tgt_ptr + rows64, mask=row_mask, other=ignore_index)
    ignored = tgt == ignore_index
    valid = (tgt >= 0) & (tgt < V) & (~ignored)
    # Compare in int32 inside the loop; out-of-range ids become -1 so they match no column
    # (they would otherwise wrap around when narrowed from int64).
    tgt32 = tl.where(valid, tgt, -1).to(tl.int32)

    v_start = pid_s * v_per_split
    v_end = tl.minimum(v_start + v_per_split, V)

    run_max = tl.full([BLOCK_T], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_T], tl.float32)
    tgt_logit = tl.zeros([BLOCK_T], tl.float32)

    h_rows = h_ptr + rows64[:, None] * stride_ht
    for v0 in range(v_start, v_end, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        col_mask = cols < v_end
        w_cols = w_ptr + cols.to(tl.int64)[None, :] * stride_wv

        logits = tl.zeros([BLOCK_T, BLOCK_V], tl.float32)
        for k0 in range(0, D, BLOCK_D):
            ks = k0 + tl.arange(0, BLOCK_D)
            k_mask = ks < D
            h = tl.load(h_rows + ks[None, :] * stride_hd,
                        mask=row_mask[:, None] & k_mask[None, :], other=0.0)
            w = tl.load(w_cols + ks[:, None] * stride_wd,
                        mask=k_mask[:, None] & col_mask[None, :], other=0.0)
            if UPCAST:  # CPU interpreter only: its dot is wrong on bf16 storage
                h = h.to(tl.float32)
                w = w.to(tl.float32)
            logits = tl.dot(h, w, logits, input_precision=DOT_PRECISION)

        if HAS_BIAS:
            bias = tl.load(b_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
            logits = logits + bias[None, :]
        if HAS_SOFTCAP:
            # cap * tanh(x / cap), tanh written via exp2 (no tanh primitive on every backend);
            # saturates correctly: exp2 -> inf gives 1, exp2 -> 0 gives -1.
            e = tl.exp2(logits * (2.0 * LOG2E) / softcap)
            logits = softcap * (1.0 - 2.0 / (e + 1.0))

        hit = cols[None, :] == tgt32[:, None]
        tgt_logit += tl.sum(tl.where(hit, logits, 0.0), axis=1)

        scaled = tl.where(col_mask[None, :], logits * LOG2E, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(scaled, axis=1))
        run_sum = run_sum * tl.exp2(run_max - new_max) + tl.sum(tl.exp2(scaled - new_max[:, None]), axis=1)
        run_max = new_max

    if SINGLE_SPLIT:
        lse = (run_max + tl.log2(run_sum)) * LN2
        logprob = tl.where(valid, tgt_logit - lse, float("nan"))
        logprob = tl.where(ignored, 0.0, logprob)
        tl.store(out_ptr + rows64, logprob, mask=row_mask)
    else:
        part = pid_s.to(tl.int64) * T + rows64
        tl.store(part_max_ptr + part, run_max, mask=row_mask)
        tl.store(part_sum_ptr + part, run_sum, mask=row_mask)
        tl.store(part_tgt_ptr + part, tgt_logit, mask=row_mask)


@triton.jit
def _combine_splits_kernel(
    part_max_ptr, part_sum_ptr, part_tgt_ptr, tgt_ptr, out_ptr,
    T, V, n_splits, ignore_index,
    BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """Merge per-split (max, sum, target logit) partials (base-2 scaled) into log-probs."""
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    row_mask = rows < T
    rows64 = rows.to(tl.int64)
    splits = tl.arange(0, BLOCK_S)
    mask = (splits[:, None] < n_splits) & row_mask[None, :]
    offs = splits.to(tl.int64)[:, None] * T + rows64[None, :]

    part_max = tl.load(part_max_ptr + offs, mask=mask, other=float("-inf"))
    part_sum = tl.load(part_sum_ptr + offs, mask=mask, other=0.0)
    part_tgt = tl.load(part_tgt_ptr + offs, mask=mask, other=0.0)

    # Every split owns at least one column, so each real partial max is finite; padded
    # split slots carry (-inf, 0) and contribute exp2(-inf) * 0 = 0.
    # Rows past T are all padding; give them a finite max and unit sum so no inf-inf arises.
    row_max = tl.where(row_mask, tl.max(part_max, axis=0), 0.0)
    total = tl.sum(tl.where(mask, part_sum * tl.exp2(part_max - row_max[None, :]), 0.0), axis=0)
    total = tl.where(row_mask, total, 1.0)
    lse = (row_max + tl.log2(total)) * LN2
    tgt_logit = tl.sum(part_tgt, axis=0)

    tgt = tl.load(tgt_ptr + rows64, mask=row_mask, other=ignore_index)
    ignored = tgt == ignore_index
    valid = (tgt >= 0) & (tgt < V) & (~ignored)
    logprob = tl.where(valid, tgt_logit - lse, float("nan"))
    logprob = tl.where(ignored, 0.0, logprob)
    tl.store(out_ptr + rows64, logprob, mask=row_mask)
