import { getEngine, type KernelBuffer, LowbitError } from "@lowbit/tensor";
import { wasmBase64 } from "../wasm/int4.generated";
import { roundHalfEven } from "../group-params";
import { type GroupedLayout, layoutCode } from "./layout";

type Ptr = number;
interface Int4Exports {
  quant_act(x: Ptr, xq: Ptr, dx: Ptr, xs: Ptr, m: number, kp: number, gp: number): void;
  group_sums(x: Ptr, xsum: Ptr, m: number, kp: number, gp: number): void;
}
type GemvI8 = (w: Ptr, sc: Ptr, zr: Ptr, xq: Ptr, dx: Ptr, xs: Ptr, y: Ptr, n4: number, ng: number, gp: number) => void;
type GemvF32 = (w: Ptr, sc: Ptr, zr: Ptr, x: Ptr, xsum: Ptr, y: Ptr, n4: number, ng: number, gp: number) => void;
type GemmI8 = (w: Ptr, sc: Ptr, zr: Ptr, xq: Ptr, dx: Ptr, xs: Ptr, y: Ptr, m: number, n4: number, ng: number, gp: number, scratch: Ptr) => void;
type GemmF32 = (w: Ptr, sc: Ptr, zr: Ptr, x: Ptr, y: Ptr, m: number, n4: number, ng: number, gp: number, scratch: Ptr) => void;

const MODULE = { name: "int4/int4", base64: wasmBase64 };

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
  /** scales then zeros, each n4*ng*4 f32. */
  params: KernelBuffer;
}

export function makeResident(l: GroupedLayout): ResidentLayout {
  const engine = getEngine();
  const weights = engine.buffer(l.weights.byteLength);
  weights.u8().set(l.weights);
  const params = engine.buffer(l.scales.byteLength * 2);
  const p = params.f32();
  p.set(l.scales, 0);
  p.set(l.zeros, l.scales.length);
  const { weights: _w, scales: _s, zeros: _z, ...layout } = l;
  return { layout, weights, params };
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
 */
export function gemmWasm(r: ResidentLayout, x: Float32Array, m: number, out: Float32Array, int8: boolean): void {
  const l = r.layout;
  const { kp, ng, gp, n4, cbits } = l;
  const engine = getEngine();
  const ldy = n4 * 4;
  const xBytes = m * kp * 4;
  const xqBytes = int8 ? m * kp * 2 : 0;
  const grpBytes = m * ng * 4;
  const yBytes = m * ldy * 4;
  const scratchBytes = m > 1 ? (int8 ? 8 : 16) * kp : 0;
  const total = xBytes + xqBytes + 2 * grpBytes + yBytes + scratchBytes;
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
  if (int8) {
    k.quant_act(px, pxq, pdx, pxs, m, kp, gp);
    if (m === 1) kernel<GemvI8>(`gemv_i8_b${cbits}`)(w, sc, zr, pxq, pdx, pxs, py, n4, ng, gp);
    else kernel<GemmI8>(`gemm_i8_b${cbits}`)(w, sc, zr, pxq, pdx, pxs, py, m, n4, ng, gp, ps);
  } else if (m === 1) {
    k.group_sums(px, pxs, m, kp, gp);
    kernel<GemvF32>(`gemv_f32_b${cbits}`)(w, sc, zr, px, pxs, py, n4, ng, gp);
  } else {
    kernel<GemmF32>(`gemm_f32_b${cbits}`)(w, sc, zr, px, py, m, n4, ng, gp, ps);
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
  const { kp, ng, gp, rows, cbits, n4 } = l;
  const w = r.weights.u8();
  const p = r.params.f32();
  const zOff = n4 * ng * 4;
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
        const s = p[i]!;
        const z = p[zOff + i]!;
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
