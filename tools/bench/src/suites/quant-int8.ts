/**
 * int8 kernels and linear layers of @lowbit/int8 against their reference twins and against
 * onnxruntime on the same shapes and the same int8 weights, all on one thread:
 *
 * - "int8-gemm": exact i32 = uint8 activations [m, k] x int8 weights [n, k]^T, weights resident
 *   (Int8Weights.gemmI8) vs ONNX MatMulInteger (uint8 x int8 -> int32, zero points 128 / 0).
 * - "w8a8": f32 in, f32 out, activations quantized per tensor to uint8 at run time, per-channel
 *   int8 weights (DynamicW8A8Linear, torch quantize_dynamic semantics) vs com.microsoft
 *   DynamicQuantizeMatMul (the same computation in onnxruntime). Also per-token activations.
 * - "int8-weight-only": f32 activations, int8 weights dequantized on the fly (Int8WeightOnlyLinear).
 * - "q8_0": GGUF Q8_0 weights with Q8_0-quantized activations (llama.cpp's path) and with f32.
 * - "f32": the f32 baseline (F32Linear of @lowbit/tensor vs ONNX MatMul).
 *
 * Shapes: GEMV M=1 K=N=4096 and GEMM M=64 K=N=2048. GB/s counts the weight bytes each call must
 * read. Every record carries `cpuMs`, the fastest call by process CPU time (robust when the machine
 * is shared), next to the wall-clock median. Goal (issue "INT8 and INT4"): int8 GEMM at M=64 at
 * least 1.2x onnxruntime-web.
 */
import {
  DynamicW8A8Linear,
  Int8WeightOnlyLinear,
  Int8Weights,
  Q8_0Linear,
  quantizeQ8_0,
  quantizeWeightInt8,
} from "@lowbit/int8";
import { F32Linear, Rng, setKernelBackend } from "@lowbit/tensor";
import { type BenchRecord, type BenchSpec, defineSuite, round, type SuiteContext, type TimeOptions } from "../harness";
import {
  createOnnxSession,
  dynamicQuantizeMatMulModel,
  matmulF32Model,
  matmulIntegerModel,
  type OnnxPeerSession,
  type OnnxRuntimeName,
} from "../peers/onnx";

const SHAPES = [
  { m: 1, n: 4096, k: 4096 },
  { m: 64, n: 2048, k: 2048 },
] as const;

const RUNTIMES: readonly OnnxRuntimeName[] = ["onnxruntime-node", "onnxruntime-web"];

/** Fastest call by process CPU time (user + system), in ms. */
async function cpuMin(fn: () => unknown, reps: number): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const r = fn();
    if (r && typeof (r as PromiseLike<unknown>).then === "function") await r;
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return best;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

interface Measured {
  rec: BenchRecord;
  cpuMs: number;
}

async function measure(
  ctx: SuiteContext,
  spec: BenchSpec & { extra?: Record<string, number | string | boolean | null> },
  fn: () => unknown,
  opts: TimeOptions & { cpuReps?: number } = {},
): Promise<Measured> {
  await fn();
  const reps = opts.cpuReps ?? 5;
  const cpuMs = reps > 0 ? await cpuMin(fn, reps) : Number.NaN;
  const extra = reps > 0 ? { ...spec.extra, cpuMs: round(cpuMs, 4) } : spec.extra;
  const rec = await ctx.bench({ ...spec, extra }, fn, opts);
  return { rec, cpuMs };
}

/** Runs fn on the reference kernels. */
function onRef<T>(fn: () => T): () => T {
  return () => {
    setKernelBackend("ref");
    try {
      return fn();
    } finally {
      setKernelBackend("wasm");
    }
  };
}

export default defineSuite({
  name: "quant-int8",
  description: "int8 GEMM/GEMV, W8A8, weight-only int8 and Q8_0 (WASM SIMD vs reference) vs onnxruntime-node/web",
  async run(ctx) {
    const rng = new Rng(8);
    for (const { m, n, k } of SHAPES) {
      const shape = { m, n, k };
      const ops = 2 * m * n * k;
      const gemv = m === 1;
      const refOpts: TimeOptions & { cpuReps?: number } = gemv
        ? { minTimeMs: 500, cpuReps: 2 }
        : { warmup: 0, minRepeats: 1, maxRepeats: 1, minTimeMs: 0, cpuReps: 0 };
      const w = rng.fillNormal(new Float32Array(n * k), 0, 0.02);
      const x = rng.fillNormal(new Float32Array(m * k));
      const xu8 = new Uint8Array(m * k).map(() => rng.int(256));
      const y = new Float32Array(m * n);
      const yi = new Int32Array(m * n);
      const { q, scale } = quantizeWeightInt8(w, n, k, { name: "bench.weight" });
      const i8Bytes = n * k + 4 * n;
      const exact = new Float64Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += x[i * k + t]! * w[j * k + t]!;
          exact[i * n + j] = s;
        }
      }
      ctx.log(`shape m=${m} n=${n} k=${k}`);
      const results: Record<string, Measured> = {};

      // ---- lowbit -------------------------------------------------------------------------
      const weights = new Int8Weights(q, n, k);
      const spec = (kernel: string, backend: string, bytes: number, extra: Record<string, number | string> = {}) => ({
        kernel,
        backend,
        shape,
        ops,
        bytes,
        extra,
      });
      results["int8-gemm wasm"] = await measure(ctx, spec("int8-gemm", "wasm", i8Bytes, { input: "uint8 x int8 -> i32, weights resident" }), () =>
        weights.gemmI8(xu8, m, yi),
      );
      await measure(ctx, spec("int8-gemm", "ref", i8Bytes), onRef(() => weights.gemmI8(xu8, m, yi)), refOpts);
      const lowbitI32 = weights.gemmI8(xu8, m);
      weights.dispose();

      const layers: Array<[string, string, () => { forward(x: Float32Array, m: number, out?: Float32Array): Float32Array; dispose?(): void }, number, boolean]> = [
        ["w8a8", "per-tensor uint8 activations (torch quantize_dynamic)", () => DynamicW8A8Linear.fromInt8(q, scale, n, k), i8Bytes, true],
        ["w8a8-per-token", "per-token uint8 activations", () => DynamicW8A8Linear.fromInt8(q, scale, n, k, { activation: "per-token" }), i8Bytes, false],
        ["int8-weight-only", "f32 activations, per-channel int8 weights", () => Int8WeightOnlyLinear.fromInt8(q, scale, n, k), i8Bytes, true],
        ["q8_0", "Q8_0 weights x Q8_0 activations (llama.cpp path)", () => Q8_0Linear.fromBytes(quantizeQ8_0(w), n, k), (n * k * 34) / 32, true],
        ["q8_0-f32", "Q8_0 weights x f32 activations", () => Q8_0Linear.fromBytes(quantizeQ8_0(w), n, k, { activation: "f32" }), (n * k * 34) / 32, false],
        ["f32", "F32Linear (@lowbit/tensor)", () => new F32Linear(w, n, k), 4 * n * k, false],
      ];
      for (const [kernel, input, make, bytes, withRef] of layers) {
        const layer = make();
        const err = round(relErr(layer.forward(x, m), exact), 3);
        results[`${kernel} wasm`] = await measure(ctx, spec(kernel, "wasm", bytes, { input, relErrVsF64: err }), () => layer.forward(x, m, y));
        if (withRef) await measure(ctx, spec(kernel, "ref", bytes, { input }), onRef(() => layer.forward(x, m, y)), refOpts);
        layer.dispose?.();
      }

      // ---- onnxruntime peers ----------------------------------------------------------------
      const peers: Array<[string, Uint8Array, Record<string, { data: Float32Array | Uint8Array; dims: number[] }>, number, string]> = [
        ["int8-gemm", matmulIntegerModel(q, n, k, "uint8"), { A: { data: xu8, dims: [m, k] } }, i8Bytes, "MatMulInteger uint8 x int8 -> int32"],
        ["w8a8", dynamicQuantizeMatMulModel(q, scale, n, k), { X: { data: x, dims: [m, k] } }, i8Bytes, "com.microsoft DynamicQuantizeMatMul"],
        ["f32", matmulF32Model(w, n, k), { X: { data: x, dims: [m, k] } }, 4 * n * k, "MatMul f32"],
      ];
      for (const rt of RUNTIMES) {
        for (const [kernel, model, feeds, bytes, op] of peers) {
          let session: OnnxPeerSession;
          try {
            session = await createOnnxSession(model, rt);
          } catch (e) {
            ctx.log(`${rt} ${kernel}: could not load (${(e as Error).message.slice(0, 160)})`);
            continue;
          }
          const out = await session.run(feeds);
          const check: Record<string, string | number> =
            kernel === "int8-gemm"
              ? { maxAbsDiffVsExact: maxAbsDiff(out, (i) => lowbitI32[i]! - 128 * rowSum(q, i % n, k)) }
              : { relErrVsF64: round(relErr(out, exact), 3) };
          results[`${kernel} ${rt}`] = await measure(ctx, spec(kernel, rt, bytes, { input: op, ...check }), () => session.run(feeds));
          await session.release();
        }
      }

      // ---- ratios -----------------------------------------------------------------------------
      for (const kernel of ["int8-gemm", "w8a8", "f32"]) {
        const ours = results[`${kernel} wasm`];
        for (const rt of RUNTIMES) {
          const peer = results[`${kernel} ${rt}`];
          if (!ours || !peer) continue;
          ctx.log(
            `${kernel} m=${m}: lowbit ${ours.rec.ms} ms vs ${rt} ${peer.rec.ms} ms -> ${round(peer.rec.ms / ours.rec.ms, 3)}x ` +
              `(by min CPU time ${round(ours.cpuMs, 4)} vs ${round(peer.cpuMs, 4)} ms -> ${round(peer.cpuMs / ours.cpuMs, 3)}x)`,
          );
        }
      }
    }
  },
});

/** Largest |out[i] - want(i)| (0: the peer's integer GEMM is exact). */
function maxAbsDiff(out: ArrayLike<number>, want: (i: number) => number): number {
  let d = 0;
  for (let i = 0; i < out.length; i++) d = Math.max(d, Math.abs(out[i]! - want(i)));
  return d;
}

/** Sum of weight row j (MatMulInteger subtracts the activation zero point 128 times it). */
const rowSums = new WeakMap<Int8Array, Int32Array>();
function rowSum(q: Int8Array, j: number, k: number): number {
  let sums = rowSums.get(q);
  if (!sums) {
    const n = q.length / k;
    sums = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += q[r * k + t]!;
      sums[r] = s;
    }
    rowSums.set(q, sums);
  }
  return sums[j]!;
}
