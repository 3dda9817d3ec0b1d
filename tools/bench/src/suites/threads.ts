/**
 * Kernel threads of @lowbit/tensor (issue 9): f32 GEMV 1x4096x4096 and GEMM 64x2048x2048 through
 * F32Linear (weights resident in kernel memory) at 1 and 2 threads, the 2-thread / 1-thread speed-up,
 * GEMV against the read bandwidth measured with 1 and with 2 threads, and the cost of one dispatch
 * to a worker that is spinning and to one that sleeps in Atomics.wait.
 *
 * CPU time: `cpuMs` is process CPU time per call, which includes the worker threads (and their
 * spinning), so at 2 threads it can be up to twice the wall time; `cpuShare` is CPU / wall, up to
 * 2 with two busy threads. On a loaded machine the wall times are inflated: compare `minMs` too.
 */
import {
  F32Linear,
  F32_KERNEL_MODULE,
  Rng,
  getEngine,
  kernelThreadsReady,
  runKernelParts,
  setKernelThreads,
  shutdownKernelThreads,
} from "@lowbit/tensor";
import { type BenchRecord, type SuiteContext, defineSuite, measureBandwidth, recordBandwidth, round, timeit } from "../harness";

async function useThreads(t: number): Promise<void> {
  setKernelThreads(t);
  const got = await kernelThreadsReady();
  if (got !== t) throw new Error(`asked for ${t} kernel threads, got ${got}`);
}

export default defineSuite({
  name: "threads",
  description: "f32 GEMV/GEMM at 1 and 2 kernel threads (shared WASM memory), dispatch cost, 2-thread bandwidth",
  async run(ctx) {
    const rng = new Rng(99);
    // Threads need the shared memory; move the engine there first so 1 and 2 threads run on the same memory.
    await useThreads(2);
    await useThreads(1);
    const engine = getEngine();
    ctx.log(`engine memory shared: ${engine.shared}`);

    // ---- read bandwidth, 64 MiB (the GEMV's weights): 1 thread (harness) and 2 threads ----------
    const bw = await measureBandwidth(64 * 2 ** 20);
    recordBandwidth(ctx, bw);
    const bytes64 = 64 * 2 ** 20;
    const nf = bytes64 / 4;
    const buf = engine.buffer(bytes64);
    buf.f32().fill(1e-3);
    await useThreads(2);
    const half = nf / 2;
    const bw2 = await ctx.bench(
      {
        kernel: "read-bandwidth",
        backend: "wasm-simd-4-streams",
        shape: { m: 1, n: nf, k: 1 },
        bytes: bytes64,
        threads: 2,
        extra: { bufferMiB: 64, note: "sum_f32 over each half on its own thread" },
      },
      () =>
        runKernelParts([
          { module: F32_KERNEL_MODULE, fn: "sum_f32", args: [buf.ptr, half, 4] },
          { module: F32_KERNEL_MODULE, fn: "sum_f32", args: [buf.ptr + half * 4, half, 4] },
        ]),
      { minRepeats: 9, minTimeMs: 2000 },
    );
    buf.dispose();
    ctx.log(`read bandwidth 64 MiB: 1 thread ${bw.best} GB/s (peak ${bw.peak}), 2 threads ${bw2.gbps} GB/s`);

    // ---- dispatch cost -------------------------------------------------------------------------
    const empty = [
      { module: F32_KERNEL_MODULE, fn: "dot_f32", args: [0, 0, 0] },
      { module: F32_KERNEL_MODULE, fn: "dot_f32", args: [0, 0, 0] },
    ];
    const shape0 = { m: 0, n: 0, k: 0 };
    // back-to-back dispatches, 1000 per timed call: ms per call = microseconds per dispatch
    const backToBack = async (spinMicros: number) => {
      setKernelThreads(2, { spinMicros });
      await kernelThreadsReady();
      return ctx.bench(
        {
          kernel: "dispatch-x1000",
          backend: "wasm",
          shape: shape0,
          threads: 2,
          extra: { worker: `back-to-back calls, spinMicros=${spinMicros}`, note: "ms per 1000 dispatches = us per dispatch" },
        },
        () => {
          for (let i = 0; i < 1000; i++) runKernelParts(empty);
        },
        { minTimeMs: 500, minRepeats: 3 },
      );
    };
    const spinNone = await backToBack(0);
    const spin = await backToBack(200);
    // after 5 ms idle the worker has left its 200 us spin and sleeps in Atomics.wait
    const wakes: number[] = [];
    const sleepT = await timeit(
      async () => {
        await new Promise((r) => setTimeout(r, 5));
        const t0 = performance.now();
        runKernelParts(empty);
        wakes.push(performance.now() - t0);
      },
      { minRepeats: 50, minTimeMs: 0, maxRepeats: 50 },
    );
    void sleepT;
    wakes.sort((a, b) => a - b);
    const med = wakes[wakes.length >> 1]!;
    ctx.record({
      kernel: "dispatch",
      backend: "wasm",
      shape: shape0,
      threads: 2,
      ms: med,
      minMs: wakes[0]!,
      repeats: wakes.length,
      extra: { worker: "sleeping (Atomics.wait), woken by Atomics.notify", p90Ms: round(wakes[Math.floor(wakes.length * 0.9)]!, 4) },
    });
    ctx.log(
      `dispatch round trip: back to back ${round(spin.ms, 2)} us with 200 us spinning, ${round(spinNone.ms, 2)} us without; ` +
        `after 5 ms idle (worker asleep) median ${round(med * 1000, 1)} us (min ${round(wakes[0]! * 1000, 1)} us)`,
    );

    // ---- GEMV 1x4096x4096 and GEMM 64x2048x2048 at 1 and 2 threads ------------------------------
    const cases = [
      { kernel: "gemv", m: 1, n: 4096, k: 4096 },
      { kernel: "matmulABt", m: 64, n: 2048, k: 2048 },
    ];
    for (const c of cases) {
      const { m, n, k } = c;
      const w = rng.fillNormal(new Float32Array(n * k), 0, 0.02);
      const x = rng.fillNormal(new Float32Array(m * k));
      const y = new Float32Array(m * n);
      const lin = new F32Linear(w, n, k);
      const ops = 2 * m * n * k;
      const bytes = 4 * (n * k + m * k + m * n);
      const recs: BenchRecord[] = [];
      for (const t of [1, 2]) {
        await useThreads(t);
        const bwT = t === 1 ? bw.best : (bw2.gbps ?? bw.best);
        recs.push(
          await ctx.bench(
            {
              kernel: c.kernel,
              backend: "wasm",
              shape: { m, n, k },
              ops,
              bytes,
              threads: t,
              extra: (tm) => ({
                input: "weights resident (F32Linear)",
                ...(m === 1
                  ? {
                      fractionOf1ThreadBandwidth: round(bytes / tm.ms / 1e6 / bw.best, 3),
                      fractionOfSameThreadsBandwidth: round(bytes / tm.ms / 1e6 / bwT, 3),
                      fractionAtMinMs: round(bytes / tm.minMs / 1e6 / bw.peak, 3),
                    }
                  : {}),
              }),
            },
            () => lin.forward(x, m, y),
            { minTimeMs: 2000 },
          ),
        );
      }
      lin.dispose();
      ratio(ctx, recs[0]!, recs[1]!);
    }
    await shutdownKernelThreads();
  },
});

/** Records the 2-thread / 1-thread speed-up (wall medians, fastest repeats, and CPU ms per call). */
function ratio(ctx: SuiteContext, one: BenchRecord, two: BenchRecord): void {
  const speedup = round(one.ms / two.ms, 3);
  const speedupMin = round(one.minMs / two.minMs, 3);
  ctx.record({
    kernel: `${one.kernel}-speedup-2-threads`,
    backend: "wasm",
    shape: one.shape,
    threads: 2,
    ms: two.ms,
    minMs: two.minMs,
    repeats: two.repeats,
    extra: {
      speedup,
      speedupAtMinMs: speedupMin,
      cpuMs1: one.cpuMs,
      cpuMs2: two.cpuMs,
      cpuShare1: one.cpuShare,
      cpuShare2: two.cpuShare,
    },
  });
  ctx.log(
    `${one.kernel} ${one.shape.m}x${one.shape.n}x${one.shape.k}: 1 thread ${round(one.ms, 3)} ms (min ${round(one.minMs, 3)}, cpu ${one.cpuMs}), ` +
      `2 threads ${round(two.ms, 3)} ms (min ${round(two.minMs, 3)}, cpu ${two.cpuMs}): x${speedup} median, x${speedupMin} fastest`,
  );
}
