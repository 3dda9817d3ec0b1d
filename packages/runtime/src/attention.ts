import type { KVCache } from "./kv-cache";
import type { ResidentKV } from "./kv-resident";
import { decoderKernels, put, scratchRegions, useWasm, viewF32 } from "./kernels/modules";
import { runDecoderSplit, splitParts } from "./kernels/split";
import type { RopeTable } from "./ops";

/**
 * Causal grouped-query attention for a run of T query rows.
 *
 * Query row t (absolute position startPos + t) attends to key/value rows kvRow0 .. kvRow0 +
 * startPos + t of `k`/`v` (row stride kvDim = nKvHeads * headDim). Query heads are grouped:
 * head h reads key/value head floor(h / (nHeads / nKvHeads)). Writes rows qRow0 .. qRow0 + T of
 * `out` ([rows, nHeads * headDim], the same row numbering as `q`).
 */
export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Attend to at most this many most recent positions (self included); undefined: all. */
  window?: number;
}

// small integers only: a double (Infinity) here would make the loop indices doubles
const NO_WINDOW = 0x3fffffff;

/**
 * Causal attention (see AttentionShape) through the WebAssembly SIMD kernel (f32 softmax), or
 * causalAttentionRef under the "ref" kernel backend.
 */
export function causalAttention(
  shape: AttentionShape,
  q: Float32Array,
  qRow0: number,
  T: number,
  k: Float32Array,
  v: Float32Array,
  kvRow0: number,
  startPos: number,
  out: Float32Array,
): void {
  if (!useWasm() || T === 0) {
    causalAttentionRef(shape, q, qRow0, T, k, v, kvRow0, startPos, out);
    return;
  }
  const { nHeads, nKvHeads, headDim } = shape;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const n = startPos + T;
  const parts = attentionParts(shape, T, startPos);
  const ws = workStride(n, headDim);
  const [pq, pk, pv, po, pw] = scratchRegions([T * qDim * 4, n * kvDim * 4, n * kvDim * 4, T * qDim * 4, parts * ws]) as [
    number,
    number,
    number,
    number,
    number,
  ];
  put(pq, q.subarray(qRow0 * qDim, (qRow0 + T) * qDim));
  put(pk, k.subarray(kvRow0 * kvDim, (kvRow0 + n) * kvDim));
  put(pv, v.subarray(kvRow0 * kvDim, (kvRow0 + n) * kvDim));
  runAttention(shape, pq, pk, pv, po, T, startPos, pw, parts, ws);
  out.set(viewF32(po, T * qDim), qRow0 * qDim);
}

/** Bytes of one part's attention work space for n key positions (64-byte multiples: parts never share a cache line). */
function workStride(n: number, headDim: number): number {
  return (decoderKernels().attention_work_bytes(n, headDim) + 63) & ~63;
}

/**
 * How many threads one attention call of T query rows after startPos cached positions uses:
 * split by query heads once the multiply-adds (scores and weighted values over the keys each row
 * attends to) are enough to pay for a dispatch. A decoding step over a short context stays on
 * one thread.
 */
export function attentionParts(shape: AttentionShape, T: number, startPos: number): number {
  const window = shape.window ?? NO_WINDOW;
  // keys attended by rows 0 .. T-1: min(window, startPos + t + 1) each
  const full = Math.max(0, Math.min(T, window - startPos)); // rows that see all earlier positions
  const keys = full * startPos + (full * (full + 1)) / 2 + (T - full) * window;
  return splitParts(2 * keys * shape.nHeads * shape.headDim, shape.nHeads, T < 4 ? MIN_DECODE_WORK : MIN_PREFILL_WORK);
}

/**
 * Multiply-adds below which a share of attention is not worth a thread. Measured on 2 threads
 * (12 heads of 64): a 128-token prefill's attention drops from 1.7 to 1.15 ms with the copies in
 * and out, and from 0.08 to 0.04 ms at 16 tokens; a decoding step (one query row, reading the
 * cached rows in place, bound by memory) gains only from about 1000 cached positions (2.05 ->
 * 1.75 ms) and loses at 256 (0.23 -> 0.27 ms).
 */
const MIN_PREFILL_WORK = 1 << 17;
const MIN_DECODE_WORK = 1 << 19;

/**
 * The kernel call, or `parts` calls on disjoint head ranges (aligned to key/value groups when
 * there are enough of them, so no group's keys are transposed twice), each with its own work
 * space at pw + part * ws.
 */
function runAttention(
  shape: AttentionShape,
  pq: number,
  pk: number,
  pv: number,
  po: number,
  T: number,
  startPos: number,
  pw: number,
  parts: number,
  ws: number,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  const scale = 1 / Math.sqrt(headDim);
  const window = shape.window ?? NO_WINDOW;
  const align = nKvHeads >= parts ? nHeads / nKvHeads : 1;
  runDecoderSplit("attention_f32", nHeads, parts, align, (h0, h1, i) => [
    pq,
    pk,
    pv,
    po,
    T,
    startPos,
    nHeads,
    nKvHeads,
    headDim,
    window,
    scale,
    pw + i * ws,
    h0,
    h1,
  ]);
}

/** Reference twin of causalAttention: plain loops, scores and softmax in f64. */
export function causalAttentionRef(
  shape: AttentionShape,
  q: Float32Array,
  qRow0: number,
  T: number,
  k: Float32Array,
  v: Float32Array,
  kvRow0: number,
  startPos: number,
  out: Float32Array,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  const window = shape.window ?? NO_WINDOW;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(startPos + T);
  const acc = new Float64Array(headDim);
  for (let t = 0; t < T; t++) {
    const n = startPos + t + 1;
    const j0 = n > window ? n - window : 0;
    const qo = (qRow0 + t) * qDim;
    for (let h = 0; h < nHeads; h++) {
      const qh = qo + h * headDim;
      const kvh = Math.floor(h / group) * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = j0; j < n; j++) {
        const ko = (kvRow0 + j) * kvDim + kvh;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qh + d]! * k[ko + d]!;
        s *= scale;
        scores[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = j0; j < n; j++) {
        const e = Math.exp(scores[j]! - max);
        scores[j] = e;
        sum += e;
      }
      acc.fill(0);
      for (let j = j0; j < n; j++) {
        const p = scores[j]! / sum;
        const vo = (kvRow0 + j) * kvDim + kvh;
        for (let d = 0; d < headDim; d++) acc[d] = acc[d]! + p * v[vo + d]!;
      }
      for (let d = 0; d < headDim; d++) out[qh + d] = acc[d]!;
    }
  }
}

/** How a decoder layer's rows are laid out for attention. */
export type AttentionMode =
  /** `rows` = windows of seqLen tokens, each a fresh context at position 0. */
  | { kind: "windows"; seqLen: number }
  /**
   * Rows continue the sequence in `cache` at position pos0 (keys/values of earlier positions
   * cached). With `resident`, the fast path keeps the cache's rows in kernel memory between calls.
   */
  | { kind: "cache"; cache: KVCache; pos0: number; resident?: ResidentKV };

/**
 * The attention block of decoder layer `layer` after the q/k/v projections: RoPE on q and k
 * (never in place: q and k stay the projections' outputs), in cache mode the rotated keys and the
 * values appended to the cache, then causal attention. Returns [rows, nHeads * headDim]. The fast
 * path keeps q, k, v and the tables in kernel memory for the whole block.
 */
export function ropeAttention(
  shape: AttentionShape,
  rope: RopeTable,
  layer: number,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  rows: number,
  mode: AttentionMode,
): Float32Array {
  const { nHeads, nKvHeads, headDim } = shape;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const att = new Float32Array(rows * qDim);
  if (!useWasm()) {
    const qr = q.slice();
    const kr = k.slice();
    if (mode.kind === "windows") {
      const L = mode.seqLen;
      for (let r = 0; r < rows; r++) {
        rope.apply(qr, r * qDim, nHeads, r % L);
        rope.apply(kr, r * kvDim, nKvHeads, r % L);
      }
      for (let b = 0; b * L < rows; b++) causalAttentionRef(shape, qr, b * L, L, kr, v, b * L, 0, att);
    } else {
      const { cache, pos0 } = mode;
      for (let t = 0; t < rows; t++) {
        rope.apply(qr, t * qDim, nHeads, pos0 + t);
        rope.apply(kr, t * kvDim, nKvHeads, pos0 + t);
      }
      cache.write(layer, pos0, kr, v, rows);
      causalAttentionRef(shape, qr, 0, rows, cache.layerKeys(layer), cache.layerValues(layer), 0, pos0, att);
    }
    return att;
  }
  // keys/values in kernel memory: the window rows, or the cached positions followed by the new rows
  // (in the model's resident copy of the cache when there is one: only new rows are copied in)
  const pos0 = mode.kind === "cache" ? mode.pos0 : 0;
  const n = pos0 + rows;
  const tableRows = mode.kind === "windows" ? mode.seqLen : rows;
  const span = mode.kind === "windows" ? mode.seqLen : n;
  const resident = mode.kind === "cache" && mode.resident ? mode.resident.prepare(mode.cache, layer, pos0, rows) : undefined;
  const kvBytes = resident ? 0 : n * kvDim * 4;
  const { cf, ss } = rope.expanded(pos0, tableRows);
  const parts = mode.kind === "windows" ? attentionParts(shape, mode.seqLen, 0) : attentionParts(shape, rows, pos0);
  const ws = workStride(span, headDim);
  const [pq, pkS, pvS, pc, ps, po, pw] = scratchRegions([
    rows * qDim * 4,
    kvBytes,
    kvBytes,
    cf.length * 4,
    ss.length * 4,
    rows * qDim * 4,
    parts * ws,
  ]) as [number, number, number, number, number, number, number];
  const pk = resident ? resident.pk : pkS;
  const pv = resident ? resident.pv : pvS;
  put(pq, q.subarray(0, rows * qDim));
  const pkNew = pk + pos0 * kvDim * 4;
  if (mode.kind === "cache" && pos0 > 0 && !resident) {
    put(pk, mode.cache.layerKeys(layer).subarray(0, pos0 * kvDim));
    put(pv, mode.cache.layerValues(layer).subarray(0, pos0 * kvDim));
  }
  put(pkNew, k.subarray(0, rows * kvDim));
  put(pv + pos0 * kvDim * 4, v.subarray(0, rows * kvDim));
  put(pc, cf);
  put(ps, ss);
  rope.rotateInKernel(pq, rows, qDim, nHeads, pc, ps, tableRows);
  rope.rotateInKernel(pkNew, rows, kvDim, nKvHeads, pc, ps, tableRows);
  if (mode.kind === "windows") {
    const L = mode.seqLen;
    for (let b = 0; b * L < rows; b++) {
      runAttention(shape, pq + b * L * qDim * 4, pk + b * L * kvDim * 4, pv + b * L * kvDim * 4, po + b * L * qDim * 4, L, 0, pw, parts, ws);
    }
  } else {
    if (resident && mode.resident) mode.resident.commit(mode.cache, layer, pos0, rows, pk, pv);
    else mode.cache.write(layer, pos0, viewF32(pkNew, rows * kvDim), v, rows);
    runAttention(shape, pq, pk, pv, po, rows, pos0, pw, parts, ws);
  }
  att.set(viewF32(po, rows * qDim));
  return att;
}
