/**
 * Timing and comparison helpers for suites that measure lowbit against onnxruntime at several
 * thread counts (tools/bench/src/suites/threads.ts): the fastest call by CPU time next to the
 * harness's wall times, the load average on every record, the peers at 1 and 2 intra-op threads,
 * and ratio records (peer time / lowbit time, > 1 = lowbit faster).
 */
import os from "node:os";
import { type BenchRecord, type BenchSpec, type SuiteContext, type TimeOptions, round } from "../harness";
import { type OnnxRuntimeName, createOnnxSession } from "./onnx";

export const load1 = (): number => round(os.loadavg()[0]!, 3);

/** Fastest call by process CPU time (all threads), ms. */
export async function cpuMin(fn: () => unknown, reps: number): Promise<number> {
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

export interface Measured {
  rec: BenchRecord;
  cpuMin: number;
}

/** ctx.bench plus the fastest call by CPU time, with the load average in `extra`. */
export async function measure(
  ctx: SuiteContext,
  spec: BenchSpec & { extra?: Record<string, number | string | boolean | null> },
  fn: () => unknown,
  opts: TimeOptions & { cpuReps: number },
): Promise<Measured> {
  await fn();
  const c = await cpuMin(fn, opts.cpuReps);
  const rec = await ctx.bench({ ...spec, extra: () => ({ ...spec.extra, cpuMinMs: round(c, 4), load1: load1() }) }, fn, opts);
  return { rec, cpuMin: c };
}

/** onnxruntime peers: node at 1 and 2 intra-op threads, web at 1. */
export const PEERS: ReadonlyArray<[OnnxRuntimeName, number]> = [
  ["onnxruntime-node", 1],
  ["onnxruntime-node", 2],
  ["onnxruntime-web", 1],
];

export type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

/** Measures a peer model in each runtime of PEERS (lowbit threads off meanwhile). */
export async function measurePeers(
  ctx: SuiteContext,
  spec: BenchSpec & { extra?: Record<string, number | string | boolean | null> },
  model: Uint8Array,
  feeds: Feeds,
  fast: TimeOptions & { cpuReps: number },
  web: TimeOptions & { cpuReps: number },
): Promise<Map<string, Measured>> {
  const out = new Map<string, Measured>();
  for (const [rt, threads] of PEERS) {
    let session: Awaited<ReturnType<typeof createOnnxSession>>;
    try {
      session = await createOnnxSession(model, rt, { threads });
    } catch (e) {
      ctx.log(`${rt} ${spec.kernel}: not available (${(e as Error).message.split("\n")[0]})`);
      continue;
    }
    out.set(
      `${rt}/${threads}`,
      await measure(ctx, { ...spec, backend: `${rt} ${spec.backend}`, threads }, () => session.run(feeds), rt === "onnxruntime-web" ? web : fast),
    );
    await session.release();
  }
  return out;
}

/** Records lowbit (1 and 2 threads) against each peer: peer time / lowbit time, > 1 = lowbit faster. */
export function compare(ctx: SuiteContext, label: string, ours: Measured[], peers: Map<string, Measured>): Record<string, number> {
  const flat: Record<string, number> = {};
  for (const o of ours) {
    const t = o.rec.threads;
    const x: Record<string, number> = {};
    for (const [key, p] of peers) {
      const [rt, pt] = key.split("/");
      const tag = `${rt === "onnxruntime-web" ? "web" : "node"}${pt}t`;
      x[`x_${tag}_wall`] = round(p.rec.ms / o.rec.ms, 3);
      x[`x_${tag}_minWall`] = round(p.rec.minMs / o.rec.minMs, 3);
      x[`x_${tag}_cpu`] = round(p.cpuMin / o.cpuMin, 3);
      for (const [k, v] of Object.entries(x)) flat[`${t}t_${k}`] = v;
    }
    ctx.record({
      kernel: `${o.rec.kernel}-vs-peers`,
      backend: o.rec.backend,
      shape: o.rec.shape,
      threads: t,
      ms: o.rec.ms,
      minMs: o.rec.minMs,
      repeats: o.rec.repeats,
      extra: { ...x, load1: load1() },
    });
    ctx.log(
      `${label} ${t} thread(s): ${round(o.rec.ms, 4)} ms (min ${round(o.rec.minMs, 4)}, cpu ${round(o.cpuMin, 4)}) ` +
        Object.entries(x)
          .filter(([k]) => !k.endsWith("_cpu") || t === 1)
          .map(([k, v]) => `${k.slice(2)} x${v}`)
          .join(", "),
    );
  }
  return flat;
}

/** Goal line: lowbit at t threads vs the node peer at t threads and web at 1 (wall medians, fastest calls). */
export function goalLine(what: string, flat: Record<string, number>, t: number, node: number, web: number): string {
  const n = flat[`${t}t_x_node${t}t_wall`];
  const nMin = flat[`${t}t_x_node${t}t_minWall`];
  const w = flat[`${t}t_x_web1t_wall`];
  const ok = (v: number | undefined, goal: number) => (v === undefined ? "?" : v >= goal ? "met" : "NOT met");
  return (
    `${what} at ${t} thread(s): vs onnxruntime-node ${t}t x${n} median / x${nMin} fastest (goal >= ${node}: ${ok(n, node)}), ` +
    `vs onnxruntime-web 1t x${w} (goal >= ${web}: ${ok(w, web)}); load ${load1()}`
  );
}
