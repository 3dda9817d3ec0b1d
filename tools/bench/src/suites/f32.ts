/**
 * f32 kernels of @lowbit/tensor against their reference twins and the machine's bandwidth:
 * GEMV 1x4096x4096 (weights resident in kernel memory, and plain arrays copied per call),
 * GEMM 64x2048x2048 (A·B^T and A·B), and the f64 Cholesky / GPTQ inverse factor at n = 4096.
 */
import {
  F32Linear,
  Rng,
  cholesky,
  setKernelBackend,
  gemv,
  gemvRef,
  matmulAB,
  matmulABRef,
  matmulABt,
  matmulABtRef,
  upperCholeskyOfInverse,
} from "@lowbit/tensor";
import { defineSuite, measureBandwidth, recordBandwidth, round, timeOnce } from "../harness";

export default defineSuite({
  name: "f32",
  description: "f32 GEMV/GEMM (WASM SIMD vs reference) against memory bandwidth; f64 Cholesky 4096",
  async run(ctx) {
    const rng = new Rng(2024);
    // the 256 MiB probe, and one the size of the GEMV's weights (4096 x 4096 f32 = 64 MiB)
    const bw256 = await measureBandwidth(256 * 2 ** 20);
    const bw = await measureBandwidth(64 * 2 ** 20);
    for (const b of [bw256, bw]) {
      recordBandwidth(ctx, b);
      ctx.log(
        `read bandwidth over ${b.bytes / 2 ** 20} MiB (median): wasm 1 stream ${b.wasm1} GB/s, 4 streams ${b.wasm4} GB/s, ` +
          `js ${b.js} GB/s; peak ${b.peak} GB/s`,
      );
    }

    // ---- GEMV 1 x 4096 x 4096 -------------------------------------------------------------
    {
      const n = 4096;
      const k = 4096;
      const w = rng.fillNormal(new Float32Array(n * k), 0, 0.02);
      const x = rng.fillNormal(new Float32Array(k));
      const y = new Float32Array(n);
      const shape = { m: 1, n, k };
      const ops = 2 * n * k;
      const bytes = 4 * n * k;
      const lin = new F32Linear(w, n, k);
      const fast = await ctx.bench(
        {
          kernel: "gemv",
          backend: "wasm",
          shape,
          ops,
          bytes,
          extra: (t) => ({
            input: "weights resident (F32Linear)",
            // against the 64 MiB probe (same bytes as the weights): medians, and fastest repeats
            fractionOfBandwidth: round(bytes / t.ms / 1e6 / bw.best, 3),
            fractionAtMinMs: round(bytes / t.minMs / 1e6 / bw.peak, 3),
            fractionOf256MiBProbe: round(bytes / t.ms / 1e6 / bw256.best, 3),
          }),
        },
        () => lin.forward(x, 1, y),
        { minTimeMs: 2000 },
      );
      ctx.log(`gemv resident: ${fast.gbps} GB/s = ${((100 * (fast.gbps ?? 0)) / bw.best).toFixed(1)}% of ${bw.best} GB/s`);
      await ctx.bench({ kernel: "gemv", backend: "wasm", shape, ops, bytes, extra: { input: "js arrays (copied per call)" } }, () =>
        gemv(w, x, n, k, y),
      );
      await ctx.bench({ kernel: "gemv", backend: "ref", shape, ops, bytes }, () => gemvRef(w, x, n, k, y), { minTimeMs: 1000 });
      lin.dispose();
    }

    // ---- GEMM 64 x 2048 x 2048 ------------------------------------------------------------
    {
      const m = 64;
      const n = 2048;
      const k = 2048;
      const a = rng.fillNormal(new Float32Array(m * k));
      const w = rng.fillNormal(new Float32Array(n * k), 0, 0.02);
      const c = new Float32Array(m * n);
      const shape = { m, n, k };
      const ops = 2 * m * n * k;
      const bytes = 4 * (m * k + n * k + m * n);
      const lin = new F32Linear(w, n, k);
      await ctx.bench({ kernel: "matmulABt", backend: "wasm", shape, ops, bytes, extra: { input: "weights resident (F32Linear)" } }, () =>
        lin.forward(a, m, c),
      );
      await ctx.bench({ kernel: "matmulABt", backend: "wasm", shape, ops, bytes, extra: { input: "js arrays (copied per call)" } }, () =>
        matmulABt(a, w, m, n, k, c),
      );
      await ctx.bench({ kernel: "matmulABt", backend: "ref", shape, ops, bytes }, () => matmulABtRef(a, w, m, n, k, c), {
        minRepeats: 3,
        warmup: 1,
      });
      lin.dispose();
      const b = rng.fillNormal(new Float32Array(k * n), 0, 0.02);
      await ctx.bench({ kernel: "matmulAB", backend: "wasm", shape, ops, bytes, extra: { input: "js arrays (copied per call)" } }, () =>
        matmulAB(a, b, m, n, k, c),
      );
      await ctx.bench({ kernel: "matmulAB", backend: "ref", shape, ops, bytes }, () => matmulABRef(a, b, m, n, k, c), {
        minRepeats: 3,
        warmup: 1,
      });
    }

    // ---- f64 Cholesky and GPTQ's Hinv at n = 4096 -----------------------------------------
    {
      const n = 4096;
      const tokens = 512;
      // a GPTQ-like Hessian: H = 2/T X^T X + 1% mean-diagonal damping (rank-deficient before damping)
      const xt = rng.fillNormal(new Float32Array(n * tokens));
      const g = matmulABt(xt, xt, n, n, tokens);
      const h = new Float64Array(n * n);
      let meanDiag = 0;
      for (let i = 0; i < n * n; i++) h[i] = (2 / tokens) * g[i]!;
      for (let i = 0; i < n; i++) meanDiag += h[i * n + i]! / n;
      for (let i = 0; i < n; i++) h[i * n + i]! += 0.01 * meanDiag;
      const shape = { m: n, n, k: n };

      for (const backend of ["wasm", "ref"] as const) {
        setKernelBackend(backend);
        try {
          const chol = timeOnce(() => cholesky(h, n));
          const l = chol.result;
          const cholMs = chol.timing.ms;
          const cholRes = probeResidual(n, rng, (v) => mulLower(l, mulUpperT(l, v, n), n), (v) => mulSym(h, v, n));
          ctx.record({
            kernel: "cholesky",
            backend,
            shape,
            ...chol.timing,
            ops: n ** 3 / 3,
            extra: { relativeResidual: cholRes, note: "||L L^T v - H v|| / ||H v||, 3 random v" },
          });
          const inv = timeOnce(() => upperCholeskyOfInverse(h, n));
          const u = inv.result;
          const invMs = inv.timing.ms;
          // U^T U H v = v
          const invRes = probeResidual(n, rng, (v) => mulUpperT(u, mulUpper(u, mulSym(h, v, n), n), n), (v) => v);
          ctx.record({
            kernel: "upperCholeskyOfInverse",
            backend,
            shape,
            ...inv.timing,
            ops: (2 * n ** 3) / 3,
            extra: { relativeResidual: invRes, note: "||U^T U H v - v|| / ||v||, 3 random v; ops = n^3/3 multiply-adds" },
          });
          ctx.log(`${backend}: cholesky ${n} ${(cholMs / 1000).toFixed(2)} s, upperCholeskyOfInverse ${(invMs / 1000).toFixed(2)} s`);
        } finally {
          setKernelBackend("wasm");
        }
      }
    }
  },
});

/** max over 3 random v of ||f(v) - g(v)|| / ||g(v)||. */
function probeResidual(
  n: number,
  rng: Rng,
  f: (v: Float64Array) => Float64Array,
  g: (v: Float64Array) => Float64Array,
): number {
  let worst = 0;
  for (let p = 0; p < 3; p++) {
    const v = rng.fillNormal(new Float64Array(n));
    const a = f(v);
    const b = g(v);
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      num += (a[i]! - b[i]!) ** 2;
      den += b[i]! ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / den));
  }
  return Number(worst.toExponential(3));
}

function mulSym(a: Float64Array, v: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += a[i * n + j]! * v[j]!;
    out[i] = s;
  }
  return out;
}

/** L v, L lower. */
function mulLower(l: Float64Array, v: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j <= i; j++) s += l[i * n + j]! * v[j]!;
    out[i] = s;
  }
  return out;
}

/** U v, U upper. */
function mulUpper(u: Float64Array, v: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = i; j < n; j++) s += u[i * n + j]! * v[j]!;
    out[i] = s;
  }
  return out;
}

/** T^T v for a triangular T stored row-major (either triangle: zeros skip themselves). */
function mulUpperT(t: Float64Array, v: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const vi = v[i]!;
    if (vi === 0) continue;
    for (let j = 0; j < n; j++) out[j]! += t[i * n + j]! * vi;
  }
  return out;
}
