import { activeKernelThreads, getEngine, type KernelBuffer, type KernelPart, LowbitError, runKernelParts } from "@lowbit/tensor";
import { wasmBase64 } from "../wasm/int4.generated";
import { roundHalfEven } from "../group-params";
import { type GroupedLayout, layoutCode } from "./layout";

type Ptr = number;
interface Int4Exports {
  quant_act(x: Ptr, xq: Ptr, dx: Ptr, xs: Ptr, m: number, kp: number, gp: number): void;
  group_sums(x: Ptr, xsum: Ptr, m: number, kp: number, gp: number): void;
  prescale_act_b4(xq: Ptr, xa: Ptr, n: number): void;
}

/** Largest group (padded codes) the pre-scaled 4-bit GEMV takes: its i32 group sums stay in range. */
const PRESCALED_MAX_GP = 2048;

/** The compiled int4 kernel module (for `engine.ready()` in browsers). */
export const INT4_KERNEL_MODULE = { name: "int4/int4", base64: wasmBase64 } as const;
const MODULE = INT4_KERNEL_MODULE;

/** Multiply-adds below which a share of a call is not worth a thread (about 0.1 ms of work). */
const MIN_MACS_PER_THREAD = 1 << 18;

/** How many parts (threads) a call of `macs` multiply-adds over `tiles` 4-row tiles uses. */
export function threadParts(macs: number, tiles: number): number {
  const t = activeKernelThreads();
  if (t <= 1) return 1;
  return Math.max(1, Math.min(t, tiles, Math.floor(macs / MIN_MACS_PER_THREAD)));
}

/** Boundaries [0, ..., total] of `parts` near-equal ranges of whole units. */
export function splitUnits(total: number, parts: number): number[] {
  const out = [0];
  for (let i = 1; i < parts; i++) out.push(Math.round((i * total) / parts));
  out.push(total);
  return out;
}

function kernels(): Int4Exports & Record<string, unknown> {
  return getEngine().exports<Int4Exports & Record<string, unknown>>(MODULE);
}

function kernel<T>(name: string): T {
  const k = kernels()[name];
  if (typeof k !== "function") throw new LowbitError("E_KERNEL", `int4 kernel "${name}" is missing from the wasm module`);
  return k as T;
}

/** A layout whose weights, scales and zeros live in kernel memory. */
export interface ResidentLayout {
  layout: Omit<GroupedLayout, "weights" | "scales" | "zeros">;
  weights: KernelBuffer;
  /** scales (n4*ng*4 f32) then zeros at the same indices: f32, or u8 when `zeroBytes` is 1. */
  params: KernelBuffer;
  /** 1: integer zeros 0..255 kept as u8 (the `_z8` kernels); 4: f32 zeros. */
  zeroBytes: 1 | 4;
}

/** True when every zero is an integer in 0..255 (RTN, GPTQ, AWQ, MatMulNBits codes; not Q4_1/Q4_K). */
export function integerZeros(zeros: Float32Array): boolean {
  for (let i = 0; i < zeros.length; i++) {
    const z = zeros[i]!;
    if (!(Number.isInteger(z) && z >= 0 && z <= 255)) return false;
  }
  return true;
}

/**
 * Moves a layout into kernel memory. Integer zeros 0..255 are kept as u8 (`compactZeros`, default
 * when they all are; false forces f32 zeros: tests), which the kernels turn into the same f32.
 */
export function makeResident(l: GroupedLayout, compactZeros = integerZeros(l.zeros)): ResidentLayout {
  const engine = getEngine();
  const weights = engine.buffer(l.weights.byteLength);
  weights.u8().set(l.weights);
  const zeroBytes = compactZeros ? 1 : 4;
  const params = engine.buffer(l.scales.byteLength + l.zeros.length * zeroBytes);
  params.f32().set(l.scales, 0);
  if (compactZeros) params.u8().set(l.zeros, l.scales.byteLength);
  else params.f32().set(l.zeros, l.scales.length);
  const { weights: _w, scales: _s, zeros: _z, ...layout } = l;
  return { layout, weights, params, zeroBytes };
}

/** The resident scales (a view) and zeros (as f32), n4*ng*4 each. */
export function residentParams(r: ResidentLayout): { scales: Float32Array; zeros: Float32Array } {
  const n = r.layout.n4 * r.layout.ng * 4;
  const scales = r.params.f32().subarray(0, n);
  const zeros = r.zeroBytes === 1 ? Float32Array.from(r.params.u8().subarray(4 * n, 5 * n)) : r.params.f32().subarray(n, 2 * n);
  return { scales, zeros };
}

/** Activations rearranged into the padded, grouped column order [m, kp] (padding 0). */
export function gatherActivations(l: ResidentLayout["layout"], x: Float32Array, m: number, dst: Float32Array): void {
  const { kp, cols, colMap } = l;
  if (!colMap) {
    dst.set(x.subarray(0, m * cols));
    return;
  }
  for (let t = 0; t < m; t++) {
    const xo = t * cols;
    const o = t * kp;
    for (let k = 0; k < kp; k++) {
      const c = colMap[k]!;
      dst[o + k] = c < 0 ? 0 : x[xo + c]!;
    }
  }
}

/**
 * Runs the fast path: y [m, rows] = x [m, cols] · W^T with f32 or int8 (per token and group)
 * activations. Single token uses the fused GEMV; more tokens decode a 4-row tile once and reuse it.
 * With kernel threads on (`setKernelThreads` of @lowbit/tensor), the tiles (4 output rows each) are
 * split into one contiguous range per thread, one dispatch per call; every output sees the same
 * arithmetic as on one thread, so results are bit-identical. Activations are prepared (gathered,
 * quantized, summed) once on the calling thread before the dispatch. One token with int8
 * activations and 4-bit codes runs the pre-scaled GEMV (bit-identical to gemv_i8_b4, which
 * `allowPrescaled = false` forces: tests). u8 zeros run the `_z8` twin of each kernel (same bits).
 */
export function gemmWasm(r: ResidentLayout, x: Float32Array, m: number, out: Float32Array, int8: boolean, allowPrescaled = true): void {
  const l = r.layout;
  const { kp, ng, gp, n4, cbits } = l;
  const engine = getEngine();
  const ldy = n4 * 4;
  const parts = threadParts(m * ldy * kp, n4);
  const xBytes = m * kp * 4;
  // one token, int8 activations, 4-bit codes: the pre-scaled GEMV (same bits, fewer operations)
  const prescaled = allowPrescaled && m === 1 && int8 && cbits === 4 && gp <= PRESCALED_MAX_GP;
  const xqBytes = int8 ? m * kp * 2 * (prescaled ? 2 : 1) + (prescaled ? 128 : 0) : 0;
  const grpBytes = m * ng * 4;
  const yBytes = m * ldy * 4;
  // per thread part: the GEMMs' packed activations, or the group sums of the pre-scaled and the
  // f32-activation GEMVs (ng x 64 bytes)
  const partScratch = m > 1 ? Math.ceil(((int8 ? 8 : 16) * kp) / 64) * 64 : prescaled || !int8 ? ng * 64 : 0;
  const total = xBytes + xqBytes + 2 * grpBytes + yBytes + parts * partScratch;
  // one reusable region for the whole call (valid until the next engine.scratch())
  const base = engine.scratch(total + 64 * 6);
  const align = (p: number) => Math.ceil(p / 64) * 64;
  const px = align(base);
  const pxq = align(px + xBytes);
  const pdx = align(pxq + xqBytes);
  const pxs = align(pdx + grpBytes);
  const py = align(pxs + grpBytes);
  const ps = align(py + yBytes);
  gatherActivations(l, x, m, engine.f32(px, m * kp));
  const w = r.weights.ptr;
  const sc = r.params.ptr;
  const zr = sc + n4 * ng * 16;
  const k = kernels();
  const pxa = align(pxq + m * kp * 2);
  if (int8) k.quant_act(px, pxq, pdx, pxs, m, kp, gp);
  else if (m === 1) k.group_sums(px, pxs, m, kp, gp);
  if (prescaled) k.prescale_act_b4(pxq, pxa, kp);
  // the nibble masks 0x000f, 0x00f0, 0x0f00 (i16 lanes) after the pre-scaled activations
  const pmk = pxa + kp * 2;
  if (prescaled) {
    const mk = engine.u16(pmk, 24);
    for (let i = 0; i < 8; i++) [mk[i], mk[8 + i], mk[16 + i]] = [0x000f, 0x00f0, 0x0f00];
  }
  const z8 = r.zeroBytes === 1 ? "_z8" : "";
  const fn = `${prescaled ? (gp === 32 ? "gemv_i8p_b4_g32" : "gemv_i8p_b4") : `${m === 1 ? "gemv" : "gemm"}_${int8 ? "i8" : "f32"}_b${cbits}`}${z8}`;
  const rowBytes = (kp / (128 / cbits)) * 16;
  // the kernel's arguments for tiles [t0, t1): weights, scales, zeros and y advanced to tile t0
  const args = (t0: number, t1: number, scratch: number): number[] => {
    const wt = w + t0 * 4 * rowBytes;
    const st = sc + t0 * ng * 16;
    const zt = zr + t0 * ng * 4 * r.zeroBytes;
    const yt = py + t0 * 16;
    const nt = t1 - t0;
    if (prescaled) return gp === 32 ? [wt, st, zt, pxa, pdx, pxs, yt, nt, ng, pmk, scratch] : [wt, st, zt, pxa, pdx, pxs, yt, nt, ng, gp, 15, scratch];
    if (m === 1) return int8 ? [wt, st, zt, pxq, pdx, pxs, yt, nt, ng, gp] : [wt, st, zt, px, pxs, yt, nt, ng, gp, scratch];
    return int8
      ? [wt, st, zt, pxq, pdx, pxs, yt, m, nt, ng, gp, scratch, ldy]
      : [wt, st, zt, px, yt, m, nt, ng, gp, scratch, ldy];
  };
  if (parts === 1) {
    kernel<(...a: number[]) => void>(fn)(...args(0, n4, ps));
  } else {
    const b = splitUnits(n4, parts);
    const list: KernelPart[] = [];
    for (let i = 0; i < parts; i++) {
      if (b[i]! < b[i + 1]!) list.push({ module: MODULE, fn, args: args(b[i]!, b[i + 1]!, ps + i * partScratch) });
    }
    runKernelParts(list);
  }
  const y = engine.f32(py, m * ldy);
  const n = l.rows;
  if (ldy === n) out.set(y.subarray(0, m * n));
  else for (let t = 0; t < m; t++) out.set(y.subarray(t * ldy, t * ldy + n), t * n);
}

/**
 * Per (token, group) symmetric int8 quantization of padded activations, the reference of the
 * kernel's quant_act: dx = amax/127 (f32), xq = roundHalfEven(f32(x * f32(1/dx))).
 */
export function quantizeActivationsRef(xp: Float32Array, m: number, kp: number, gp: number): { xq: Int16Array; dx: Float32Array; xs: Float32Array } {
  const ng = kp / gp;
  const xq = new Int16Array(m * kp);
  const dx = new Float32Array(m * ng);
  const xs = new Float32Array(m * ng);
  for (let t = 0; t < m; t++) {
    for (let g = 0; g < ng; g++) {
      const o = t * kp + g * gp;
      let amax = 0;
      for (let k = 0; k < gp; k++) amax = Math.max(amax, Math.abs(xp[o + k]!));
      const d = Math.fround(amax / 127);
      const id = d !== 0 ? Math.fround(1 / d) : 0;
      let s = 0;
      for (let k = 0; k < gp; k++) {
        const q = roundHalfEven(Math.fround(xp[o + k]! * id));
        xq[o + k] = q;
        s += q;
      }
      dx[t * ng + g] = d;
      xs[t * ng + g] = s;
    }
  }
  return { xq, dx, xs };
}

/**
 * Reference twin: plain loops over the same resident layout. f32: y = sum_k x * f32(s * (q - z)),
 * accumulated in f64. int8: y = sum_g s * dx * (sum_k q * xq - z * xs).
 */
export function gemmRef(r: ResidentLayout, x: Float32Array, m: number, out: Float32Array, int8: boolean): void {
  const l = r.layout;
  const { kp, ng, gp, rows, cbits } = l;
  const w = r.weights.u8();
  const { scales: sp, zeros: zp } = residentParams(r);
  const xp = new Float32Array(m * kp);
  gatherActivations(l, x, m, xp);
  const act = int8 ? quantizeActivationsRef(xp, m, kp, gp) : undefined;
  const codes = new Uint8Array(kp);
  for (let row = 0; row < rows; row++) {
    for (let k = 0; k < kp; k++) codes[k] = layoutCode(w, cbits, kp, row, k);
    for (let t = 0; t < m; t++) {
      let y = 0;
      for (let g = 0; g < ng; g++) {
        const i = ((row >> 2) * ng + g) * 4 + (row & 3);
        const s = sp[i]!;
        const z = zp[i]!;
        if (act) {
          let isum = 0;
          for (let k = g * gp; k < (g + 1) * gp; k++) isum += codes[k]! * act.xq[t * kp + k]!;
          y += s * act.dx[t * ng + g]! * (isum - z * act.xs[t * ng + g]!);
        } else {
          for (let k = g * gp; k < (g + 1) * gp; k++) y += xp[t * kp + k]! * Math.fround(s * (codes[k]! - z));
        }
      }
      out[t * rows + row] = y;
    }
  }
}
