/**
 * GPTQ on one large linear layer (issues 5 and 9): time and peak memory of the Hessian
 * accumulation and of the quantization step, at 1 and 2 kernel threads, in one run. Defaults
 * follow the issues: a 4096 x 4096 layer, 128 windows of 2048 tokens of seeded random calibration
 * input, 4 bits, group 128, asymmetric. A whole run takes about 10 minutes on 2 cores; for a quick
 * look set LOWBIT_GPTQ_WINDOWS (and LOWBIT_GPTQ_TOKENS, LOWBIT_GPTQ_SIZE) lower.
 *
 * Records: `gptq-hessian` (ms per window, GFLOP/s on the triangle X^T X computes), `gptq-quantize`
 * (dampening, inverse factor, lazy batches: ms for the whole step), each at 1 and 2 threads, with
 * the process's peak RSS so far in `extra`; and `f32-gemm` 256x4096x4096 (A.B^T) at the same
 * thread counts, the machine's own GEMM rate the Hessian is compared with. The 2-thread results
 * are bit-identical to the 1-thread ones (checked here: the suite fails otherwise).
 */
import os from "node:os";
import { gptqQuantize, HessianAccumulator } from "@lowbit/gptq";
import { kernelThreadsInfo, kernelThreadsReady, matmulABt, Rng, setKernelThreads } from "@lowbit/tensor";
import { defineSuite, round, timeOnce } from "../harness";

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}

async function useThreads(t: number): Promise<void> {
  const info = kernelThreadsInfo();
  if (info.threads === t && info.ready) return;
  setKernelThreads(t);
  const got = await kernelThreadsReady();
  if (got !== t) throw new Error(`asked for ${t} kernel threads, got ${got}`);
}

const MB = 2 ** 20;
const maxRssMB = () => round((process.resourceUsage().maxRSS * 1024) / MB, 4);
const load1 = () => round(os.loadavg()[0] ?? 0, 3);

export default defineSuite({
  name: "gptq",
  description: "GPTQ on one 4096x4096 layer, 128 windows x 2048 tokens: Hessian accumulation and quantization step, 1 and 2 threads, peak RSS",
  async run(ctx) {
    const n = envInt("LOWBIT_GPTQ_SIZE", 4096);
    const windows = envInt("LOWBIT_GPTQ_WINDOWS", 128);
    const tokens = envInt("LOWBIT_GPTQ_TOKENS", 2048);
    const bits = 4;
    const group = 128;
    ctx.log(
      `GPTQ layer ${n}x${n}, ${windows} windows x ${tokens} tokens, w${bits} g${group} asym; ` +
        `load average ${os.loadavg().map((v) => round(v, 3)).join(", ")} (${os.cpus().length} cpus)`,
    );
    // threads need the engine on shared memory: move it there before anything is allocated
    await useThreads(2);
    await useThreads(1);

    const w = new Float32Array(n * n);
    new Rng(0).fillNormal(w);
    for (let i = 0; i < w.length; i++) w[i]! /= Math.sqrt(n);
    const x = new Float32Array(tokens * n);
    const baseline = maxRssMB();
    const shape = { m: windows * tokens, n, k: n };
    let first: { h: Float32Array; q: Uint8Array } | undefined;

    for (const threads of [1, 2]) {
      await useThreads(threads);
      // the machine's f32 GEMM rate at this thread count (A.B^T, the Hessian's product shape)
      {
        const m = 256;
        const a = new Float32Array(m * n).fill(0.5);
        const b = new Float32Array(n * n).fill(0.25);
        matmulABt(a, b, m, n, n); // warm-up
        const { timing } = timeOnce(() => matmulABt(a, b, m, n, n));
        ctx.record({
          kernel: "f32-gemm",
          backend: "wasm-simd",
          shape: { m, n, k: n },
          ops: 2 * m * n * n,
          threads,
          ...timing,
          extra: { load1: load1() },
        });
      }

      // phase 1: Hessian accumulation; the same seeded inputs at every thread count
      const rng = new Rng(1);
      const acc = new HessianAccumulator(n);
      let ms = 0;
      let cpuMs = 0;
      for (let b = 0; b < windows; b++) {
        rng.fillNormal(x);
        const { timing } = timeOnce(() => acc.addBatch(x, tokens));
        ms += timing.ms;
        cpuMs += timing.cpuMs ?? 0;
        if ((b + 1) % Math.max(1, Math.floor(windows / 4)) === 0) {
          ctx.log(`  ${threads} thread(s): Hessian ${b + 1}/${windows} windows, ${round(ms / (b + 1), 4)} ms/window`);
        }
      }
      acc.releaseScratch();
      const hessianPeak = maxRssMB();
      const flopsTriangle = windows * tokens * n * (n + 1); // X^T X, lower triangle and diagonal
      ctx.record({
        kernel: "gptq-hessian",
        backend: "wasm-simd",
        shape,
        ms: ms / windows,
        cpuMs: cpuMs / windows,
        cpuShare: round(cpuMs / ms, 3),
        ops: flopsTriangle / windows,
        threads,
        extra: {
          totalSeconds: round(ms / 1000, 4),
          peakRssMB: hessianPeak,
          baselineRssMB: baseline,
          load1: load1(),
        },
      });

      // phase 2: the quantization step
      const { result, timing } = timeOnce(() => gptqQuantize(w, n, n, acc.h, { bits, groupSize: group, sym: false }));
      ctx.record({
        kernel: "gptq-quantize",
        backend: "wasm-simd",
        shape: { m: n, n, k: n },
        threads,
        ...timing,
        extra: {
          peakRssMB: maxRssMB(),
          percdamp: result.percdamp,
          loss: result.loss.toExponential(4),
          load1: load1(),
        },
      });
      ctx.log(
        `${threads} thread(s): Hessian ${round(ms / 1000, 4)} s, quantization ${round(timing.ms / 1000, 4)} s, peak RSS ${maxRssMB()} MB`,
      );

      if (!first) {
        first = { h: acc.h.slice(), q: result.qm.q.slice() };
      } else {
        const sameH = first.h.every((v, i) => Object.is(v, acc.h[i]));
        const sameQ = first.q.every((v, i) => v === result.qm.q[i]);
        if (!sameH || !sameQ) throw new Error(`gptq: ${threads} threads differ from 1 thread (Hessian same: ${sameH}, codes same: ${sameQ})`);
        ctx.log(`${threads} threads: Hessian and codes bit-identical to 1 thread`);
      }
    }
    await useThreads(1);
  },
});
