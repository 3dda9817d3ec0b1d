/**
 * int4 group-quantized linear layers of @lowbit/int4 (Int4Linear) against their reference twins and
 * against onnxruntime's com.microsoft.MatMulNBits (onnxruntime-node with accuracy_level 4, i.e.
 * int8 activations, and accuracy_level 0; onnxruntime-web's WASM backend), all on one thread.
 *
 * Shapes: GEMV M=1 K=N=4096 and GEMM M=64 K=N=2048, 4-bit asymmetric RTN weights in groups of 32
 * and 128 (the same codes, scales and zero points go to every runtime through packMatMulNBits).
 * lowbit runs with f32 activations (weights dequantized on the fly) and with int8 activations
 * (quantized per token and group at run time, like accuracy_level 4).
 *
 * Every record carries `cpuMs` (fastest call by process CPU time, robust when the machine is
 * shared) next to the harness's wall-clock median; ratios are given on both. Goals (issue "INT8 and
 * INT4"): int4 GEMV >= 20x onnxruntime-web's MatMulNBits and >= 0.6x onnxruntime-node's.
 */
import { Int4Linear, packMatMulNBits, quantizeRTN } from "@lowbit/int4";
import { Rng } from "@lowbit/tensor";
import { type BenchRecord, defineSuite, round, type SuiteContext } from "../harness";
import { createOnnxSession, matMulNBitsModel, type OnnxRuntimeName } from "../peers/onnx";

/** Fastest call by process CPU time (user + system), in ms. */
async function cpuMin(fn: () => unknown, reps: number): Promise<number> {
  await fn();
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
  spec: Parameters<SuiteContext["bench"]>[0],
  fn: () => unknown,
  opts: { minTimeMs?: number; maxRepeats?: number; minRepeats?: number; cpuReps: number },
): Promise<Measured> {
  const cpuMs = await cpuMin(fn, opts.cpuReps);
  const extra = typeof spec.extra === "function" ? undefined : spec.extra;
  const rec = await ctx.bench({ ...spec, extra: { ...extra, cpuMs: round(cpuMs, 4) } }, fn, opts);
  return { rec, cpuMs };
}

export default defineSuite({
  name: "quant-int4",
  description: "int4 GEMV/GEMM (g32, g128; f32 and int8 activations) vs reference and onnxruntime MatMulNBits",
  async run(ctx) {
    const rng = new Rng(4);
    const shapes = [
      { m: 1, n: 4096, k: 4096 },
      { m: 64, n: 2048, k: 2048 },
    ];
    const summary: string[] = [];
    for (const shape of shapes) {
      const { m, n, k } = shape;
      const kernel = m === 1 ? "int4-gemv" : "int4-gemm";
      const w = rng.fillNormal(new Float32Array(n * k), 0, 0.02);
      const x = rng.fillNormal(new Float32Array(m * k));
      const ops = 2 * m * n * k;
      for (const g of [32, 128]) {
        const qm = quantizeRTN(w, n, k, { bits: 4, groupSize: g, sym: false });
        const lin = new Int4Linear(qm);
        const bytes = lin.storageBytes + 4 * m * (n + k);
        const y = new Float32Array(m * n);
        const fast = m === 1 ? { minTimeMs: 1500, cpuReps: 60 } : { minTimeMs: 2000, cpuReps: 10 };
        const ours: Record<string, Measured> = {};
        const outputs: Record<string, Float32Array> = {};
        for (const act of ["f32", "int8"] as const) {
          const int8 = act === "int8";
          const key = `a${act}`;
          ours[key] = await measure(
            ctx,
            { kernel: `${kernel}-g${g}`, backend: "wasm", shape, ops, bytes, extra: { activations: act } },
            () => lin.run(x, m, y, int8, "wasm"),
            fast,
          );
          outputs[key] = Float32Array.from(lin.run(x, m, y, int8, "wasm"));
          // the reference twin is plain TypeScript: a few calls are enough
          const ref = await measure(
            ctx,
            { kernel: `${kernel}-g${g}`, backend: "ref", shape, ops, bytes, extra: { activations: act } },
            () => lin.run(x, m, y, int8, "ref"),
            { minTimeMs: 0, minRepeats: 1, maxRepeats: m === 1 ? 3 : 1, cpuReps: 1 },
          );
          const refOut = lin.run(x, m, new Float32Array(m * n), int8, "ref");
          ctx.log(
            `g${g} ${act} activations: wasm ${round(ours[key]!.cpuMs, 3)} ms cpu, ref ${round(ref.cpuMs, 1)} ms cpu ` +
              `(x${round(ref.cpuMs / ours[key]!.cpuMs, 3)}), wasm vs ref relative error ${relErr(outputs[key]!, refOut).toExponential(2)}`,
          );
        }

        const mnb = packMatMulNBits(qm, { zeroPoints: true });
        const peers: Array<[OnnxRuntimeName, number]> = [
          ["onnxruntime-node", 4],
          ["onnxruntime-node", 0],
          ["onnxruntime-web", 4],
        ];
        const peerTimes: Record<string, Measured> = {};
        for (const [runtime, acc] of peers) {
          const model = matMulNBitsModel({
            n,
            k,
            bits: 4,
            blockSize: g,
            packed: mnb.B,
            scales: mnb.scales,
            zeroPoints: mnb.zeroPoints,
            accuracyLevel: acc,
          });
          let session: Awaited<ReturnType<typeof createOnnxSession>>;
          try {
            session = await createOnnxSession(model, runtime);
          } catch (e) {
            ctx.log(`${runtime} MatMulNBits accuracy_level ${acc}: not available (${(e as Error).message.split("\n")[0]})`);
            continue;
          }
          const feeds = { X: { data: x, dims: [m, k] } };
          const out = Float32Array.from((await session.run(feeds)) as Float32Array);
          const web = runtime === "onnxruntime-web";
          const key = `${runtime}/${acc}`;
          peerTimes[key] = await measure(
            ctx,
            {
              kernel: `${kernel}-g${g}`,
              backend: `${runtime} MatMulNBits acc${acc}`,
              shape,
              ops,
              bytes,
              extra: {
                relErrVsLowbitF32: round(relErr(out, outputs["af32"]!), 3),
                relErrVsLowbitInt8: round(relErr(out, outputs["aint8"]!), 3),
              },
            },
            () => session.run(feeds),
            web ? { minTimeMs: 1000, minRepeats: 3, maxRepeats: m === 1 ? 10 : 4, cpuReps: m === 1 ? 4 : 2 } : fast,
          );
          await session.release();
        }

        // ratios in this run: peer time / lowbit time (> 1 means lowbit is faster)
        for (const act of ["f32", "int8"] as const) {
          const o = ours[`a${act}`]!;
          const cmp: Record<string, number> = {};
          for (const [key, p] of Object.entries(peerTimes)) {
            const [rt, acc] = key.split("/");
            const tag = `${rt === "onnxruntime-web" ? "web" : "node"}Acc${acc}`;
            cmp[`x_${tag}_cpu`] = round(p.cpuMs / o.cpuMs, 3);
            cmp[`x_${tag}_wall`] = round(p.rec.ms / o.rec.ms, 3);
          }
          ctx.record({
            kernel: `${kernel}-g${g}`,
            backend: "wasm speedup vs peers",
            shape,
            ms: o.rec.ms,
            minMs: o.rec.minMs,
            repeats: o.rec.repeats,
            extra: { activations: act, cpuMs: round(o.cpuMs, 4), ...cmp },
          });
          const web = cmp["x_webAcc4_cpu"];
          const node = cmp["x_nodeAcc4_cpu"];
          summary.push(
            `${kernel} g${g} ${act} act: ${round(o.cpuMs, 3)} ms cpu; vs onnxruntime-web acc4 x${web ?? "?"}` +
              `${m === 1 ? ` (goal >= 20: ${web !== undefined && web >= 20 ? "met" : "NOT met"})` : ""}; ` +
              `vs onnxruntime-node acc4 x${node ?? "?"}${m === 1 ? ` (goal >= 0.6: ${node !== undefined && node >= 0.6 ? "met" : "NOT met"})` : ""}`,
          );
        }
        lin.dispose();
      }
    }
    for (const s of summary) ctx.log(s);
  },
});
