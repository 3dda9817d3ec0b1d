/**
 * Interleaved measurement of lowbit against onnxruntime at 1 and 2 threads, for a machine shared
 * with other jobs (tools/bench/src/suites/threads.ts). Instead of timing each contender for a few
 * seconds one after the other (so that a burst of load elsewhere lands on one of them), the
 * contenders take turns: in every round each runs a warm-up call and then a few timed calls, and
 * the rounds repeat. Per contender: median and fastest wall time, CPU time per call, the 1-minute
 * load average. Per pair: peer time / lowbit time (> 1 = lowbit faster) on wall medians, fastest
 * calls, fastest CPU times (meaningful at 1 thread only: process CPU time undercounts a thread
 * that is running on the other core at the moment of reading), and the median of the per-round
 * ratios ("paired": both sides of a round saw about the same load).
 */
import os from "node:os";
import { type BenchRecord, round, type SuiteContext } from "../harness";
import { createOnnxSession, type OnnxPeerSession, type OnnxRuntimeName } from "./onnx";

export const load1 = (): number => round(os.loadavg()[0]!, 3);

type Extra = Record<string, number | string | boolean | null>;

/** One thing to time: lowbit at some thread count, or a peer session. */
export interface Contender {
  /** Unique key, e.g. "ours/int8/2" or "onnxruntime-node/2". */
  readonly key: string;
  readonly kernel: string;
  readonly backend: string;
  readonly threads: number;
  /** Called before the contender's turn (e.g. sets lowbit's kernel threads). */
  readonly prepare: () => Promise<void>;
  readonly fn: () => unknown;
  /** Timed calls per round. */
  readonly calls: number;
  readonly extra?: Extra;
  /** Overrides of the shared shape/bytes/ops (a contender of another kind, e.g. a bandwidth probe). */
  readonly shape?: BenchRecord["shape"];
  readonly bytes?: number;
  readonly ops?: number;
}

export interface Measured {
  readonly rec: BenchRecord;
  /** Fastest call by process CPU time, ms. */
  readonly cpuMin: number;
  /** Median wall time of each round, ms. */
  readonly roundMs: readonly number[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

/** Times the contenders in `rounds` interleaved rounds and records one BenchRecord each. */
export async function interleave(
  ctx: SuiteContext,
  base: { shape: BenchRecord["shape"]; ops?: number; bytes?: number },
  contenders: readonly Contender[],
  rounds: number,
): Promise<Map<string, Measured>> {
  const wall = new Map<string, number[]>(contenders.map((c) => [c.key, []]));
  const cpu = new Map<string, number[]>(contenders.map((c) => [c.key, []]));
  const perRound = new Map<string, number[]>(contenders.map((c) => [c.key, []]));
  const loads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const c of contenders) {
      await c.prepare();
      await c.fn(); // warm-up: wakes workers, loads modules after a thread switch
      const w: number[] = [];
      for (let i = 0; i < c.calls; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const res = c.fn();
        if (res && typeof (res as PromiseLike<unknown>).then === "function") await res;
        w.push(performance.now() - t0);
        const u = process.cpuUsage(c0);
        cpu.get(c.key)!.push((u.user + u.system) / 1000);
      }
      wall.get(c.key)!.push(...w);
      perRound.get(c.key)!.push(median(w));
    }
    loads.push(os.loadavg()[0]!);
  }
  const out = new Map<string, Measured>();
  for (const c of contenders) {
    const w = wall.get(c.key)!;
    const u = cpu.get(c.key)!;
    const sumW = w.reduce((a, b) => a + b, 0);
    const sumU = u.reduce((a, b) => a + b, 0);
    const cpuMin = Math.min(...u);
    const rec = ctx.record({
      kernel: c.kernel,
      backend: c.backend,
      shape: c.shape ?? base.shape,
      ...(c.shape ? (c.ops ? { ops: c.ops } : {}) : base.ops ? { ops: base.ops } : {}),
      ...((c.bytes ?? base.bytes) ? { bytes: c.bytes ?? base.bytes } : {}),
      threads: c.threads,
      ms: median(w),
      minMs: Math.min(...w),
      repeats: w.length,
      cpuShare: round(sumU / sumW, 3),
      cpuMs: round(sumU / u.length, 4),
      extra: {
        ...c.extra,
        cpuMinMs: round(cpuMin, 4),
        rounds,
        load1: round(median(loads), 3),
        load1Max: round(Math.max(...loads), 3),
      },
    });
    out.set(c.key, { rec, cpuMin, roundMs: perRound.get(c.key)! });
  }
  return out;
}

/** onnxruntime peers: node at 1 and 2 intra-op threads, web at 1. */
export const PEERS: ReadonlyArray<[OnnxRuntimeName, number]> = [
  ["onnxruntime-node", 1],
  ["onnxruntime-node", 2],
  ["onnxruntime-web", 1],
];

/** Loads `model` in every runtime of PEERS that can run it; keys "runtime/threads". */
export async function openPeers(ctx: SuiteContext, model: Uint8Array, what: string): Promise<Map<string, OnnxPeerSession>> {
  const out = new Map<string, OnnxPeerSession>();
  for (const [rt, threads] of PEERS) {
    try {
      out.set(`${rt}/${threads}`, await createOnnxSession(model, rt, { threads }));
    } catch (e) {
      ctx.log(`${rt} ${what}: not available (${(e as Error).message.split("\n")[0]})`);
    }
  }
  return out;
}

/**
 * Records lowbit (`ours`, one per thread count) against each peer (keys "runtime/threads"):
 * peer time / lowbit time, > 1 = lowbit faster. Returns the ratios flat, keyed "<t>t_x_<peer>_<how>".
 */
export function compare(ctx: SuiteContext, label: string, ours: readonly Measured[], peers: ReadonlyMap<string, Measured>): Record<string, number> {
  const flat: Record<string, number> = {};
  const [one, two] = ours;
  if (one && two) {
    // lowbit's own 2-thread speed-up, same three ways
    flat["speedup2t_paired"] = round(median(one.roundMs.map((v, r) => v / two.roundMs[r]!)), 3);
    flat["speedup2t_wall"] = round(one.rec.ms / two.rec.ms, 3);
    flat["speedup2t_minWall"] = round(one.rec.minMs / two.rec.minMs, 3);
    ctx.log(
      `${label}: 2 threads vs 1 x${flat["speedup2t_paired"]} paired, x${flat["speedup2t_wall"]} median, x${flat["speedup2t_minWall"]} fastest`,
    );
  }
  for (const o of ours) {
    const t = o.rec.threads;
    const x: Record<string, number> = {};
    for (const [key, p] of peers) {
      const [rt, pt] = key.split("/");
      const tag = `${rt === "onnxruntime-web" ? "web" : "node"}${pt}t`;
      x[`x_${tag}_wall`] = round(p.rec.ms / o.rec.ms, 3);
      x[`x_${tag}_minWall`] = round(p.rec.minMs / o.rec.minMs, 3);
      x[`x_${tag}_paired`] = round(median(o.roundMs.map((v, r) => p.roundMs[r]! / v)), 3);
      if (t === 1 && pt === "1") x[`x_${tag}_cpu`] = round(p.cpuMin / o.cpuMin, 3);
    }
    for (const [k, v] of Object.entries(x)) flat[`${t}t_${k}`] = v;
    ctx.record({
      kernel: `${o.rec.kernel}-vs-peers`,
      backend: o.rec.backend,
      shape: o.rec.shape,
      threads: t,
      ms: o.rec.ms,
      minMs: o.rec.minMs,
      repeats: o.rec.repeats,
      extra: {
        ...x,
        ...(t === 2 && flat["speedup2t_paired"] !== undefined
          ? { speedupVs1t_paired: flat["speedup2t_paired"], speedupVs1t_wall: flat["speedup2t_wall"]!, speedupVs1t_minWall: flat["speedup2t_minWall"]! }
          : {}),
        load1: o.rec.extra?.["load1"] ?? null,
      },
    });
    ctx.log(
      `${label} ${t} thread(s): ${round(o.rec.ms, 4)} ms (min ${round(o.rec.minMs, 4)}, cpu ${round(o.cpuMin, 4)}) ` +
        Object.entries(x)
          .map(([k, v]) => `${k.slice(2)} x${v}`)
          .join(", "),
    );
  }
  return flat;
}

/** Goal line: lowbit at t threads vs the node peer at t threads and web at 1 (paired, median, fastest). */
export function goalLine(what: string, flat: Record<string, number>, t: number, node: number, web: number): string {
  const ok = (v: number | undefined, goal: number) => (v === undefined ? "?" : v >= goal ? "met" : "NOT met");
  const n = flat[`${t}t_x_node${t}t_paired`];
  const w = flat[`${t}t_x_web1t_paired`];
  const cpu = t === 1 ? `, cpu x${flat["1t_x_node1t_cpu"]}` : "";
  return (
    `${what} at ${t} thread(s): vs onnxruntime-node ${t}t paired x${n} (median x${flat[`${t}t_x_node${t}t_wall`]}, ` +
    `fastest x${flat[`${t}t_x_node${t}t_minWall`]}${cpu}) goal >= ${node}: ${ok(n, node)}; vs onnxruntime-web 1t paired x${w} ` +
    `(median x${flat[`${t}t_x_web1t_wall`]}${t === 1 ? `, cpu x${flat["1t_x_web1t_cpu"]}` : ""}) goal >= ${web}: ${ok(w, web)}`
  );
}
