/**
 * lowbit's benchmark harness. A suite is a module in src/suites/ whose default export is
 * `defineSuite({ name, run })`; `pnpm --filter @lowbit/bench bench [name-or-prefix...]` runs the
 * suites (all of them, or those whose name equals or starts with an argument), prints one table and
 * writes tools/bench/results/<suite>.json: an array of BenchRecord, one per kernel, backend and shape.
 *
 * The whole API:
 *
 *   export default defineSuite({
 *     name: "f32",
 *     async run(ctx) {
 *       await ctx.bench(
 *         { kernel: "gemv", backend: "wasm", shape: { m: 1, n, k }, ops: 2 * n * k, bytes: 4 * n * k },
 *         () => lin.forward(x, 1, y),
 *       );
 *       ctx.record({ kernel: "cholesky", backend: "js", shape: { m: n, n, k: n }, ms, ops, extra: { residual } });
 *       const gbps = (await measureBandwidth()).best; // read bandwidth, measured once per process
 *     },
 *   });
 *
 * - `ctx.bench(spec, fn, opts?)` warms up, then calls `fn` (sync or async) repeatedly until
 *   `opts.minTimeMs` (default 1000) and `opts.minRepeats` (default 5) are both met, at most
 *   `opts.maxRepeats` (default 200). It records the median time (`ms`), the fastest (`minMs`),
 *   GOP/s from `spec.ops` (operations per call; 2·m·n·k for a GEMM) and GB/s from `spec.bytes`
 *   (bytes that must move per call, e.g. the weights of a GEMV). Returns the record.
 * - `ctx.record(spec & { ms, cpuShare? })` adds a record timed some other way, e.g. a one-shot
 *   factorisation with `const { result, timing } = timeOnce(() => cholesky(h, n))`.
 * - Every record carries `cpuShare` (process CPU time / wall time while timing) and `cpuMs` (CPU
 *   time per call): a cpuShare well below 1 means the machine was busy with other work and the
 *   wall times are inflated; then `minMs` and `cpuMs` are the better guides.
 * - `spec.extra` carries anything else (fraction of bandwidth, residuals, peer versions).
 * - `spec.extra` may be a function of the timing, e.g. `(t) => ({ fraction: bytes / t.ms / 1e6 / bw.best })`.
 * - `await measureBandwidth(bytes?)` sums a buffer (default 256 MiB) with the WASM SIMD kernel (1
 *   and 4 streams) and with a plain JS loop, once per process and size; `best` is the larger WASM
 *   figure (median), the ceiling for a GEMV streaming that many bytes; `peak` the same at the
 *   fastest repeat. `recordBandwidth(ctx, bw)` adds those figures to a suite's results.
 * - `ctx.log(message)` prints a line under the suite's heading.
 *
 * Timings are wall-clock (performance.now) on one thread unless a record says otherwise. The
 * machine may be shared: compare `ms` (median) with `minMs` to see the noise.
 */
import { getEngine, sumF32 } from "@lowbit/tensor";

export interface Shape {
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

export type Extra = Record<string, number | string | boolean | null>;

export interface BenchSpec {
  /** What ran, e.g. "gemv", "matmulABt", "q4_0-gemv". */
  readonly kernel: string;
  /** Which implementation: "wasm", "ref", "onnxruntime-node", ... */
  readonly backend: string;
  readonly shape: Shape;
  /** Arithmetic operations per call (a multiply-add counts 2). */
  readonly ops?: number;
  /** Bytes that must be read or written per call. */
  readonly bytes?: number;
  /** Worker threads used (default 1). */
  readonly threads?: number;
  /** Anything else; a function gets the timing (e.g. to compute a fraction of bandwidth). */
  readonly extra?: Extra | ((t: Timing) => Extra);
}

export interface BenchRecord {
  readonly suite: string;
  readonly kernel: string;
  readonly backend: string;
  readonly shape: Shape;
  /** Median milliseconds per call. */
  readonly ms: number;
  /** Fastest call, milliseconds. */
  readonly minMs: number;
  readonly repeats: number;
  /** Giga-operations per second at the median time, or null without `ops`. */
  readonly gops: number | null;
  /** Gigabytes per second at the median time, or null without `bytes`. */
  readonly gbps: number | null;
  readonly threads: number;
  /**
   * CPU time of this process over wall time while timing (user + system). Near 1 for one thread
   * on an idle machine; well below 1 means other processes took the CPU and the times are inflated.
   */
  readonly cpuShare: number | null;
  /** Mean CPU milliseconds per call: on a busy machine, closer to the idle-machine time than `ms`. */
  readonly cpuMs: number | null;
  readonly extra?: Extra;
}

export interface TimeOptions {
  readonly warmup?: number;
  readonly minRepeats?: number;
  readonly maxRepeats?: number;
  readonly minTimeMs?: number;
}

export interface SuiteContext {
  readonly suite: string;
  bench(spec: BenchSpec, fn: () => unknown, opts?: TimeOptions): Promise<BenchRecord>;
  record(
    spec: BenchSpec & Partial<Timing> & { readonly ms: number },
  ): BenchRecord;
  log(message: string): void;
}

export interface Suite {
  readonly name: string;
  readonly description?: string;
  run(ctx: SuiteContext): void | Promise<void>;
}

export function defineSuite(suite: Suite): Suite {
  return suite;
}

export interface Timing {
  readonly ms: number;
  readonly minMs: number;
  readonly repeats: number;
  /** Process CPU time / wall time over the timed repeats (see BenchRecord.cpuShare). */
  readonly cpuShare?: number;
  /** Mean CPU milliseconds per call. */
  readonly cpuMs?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Times `fn` (sync or async): warmup calls, then repeats until both minimums are met. */
export async function timeit(fn: () => unknown, opts: TimeOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2;
  const minRepeats = opts.minRepeats ?? 5;
  const maxRepeats = opts.maxRepeats ?? 200;
  const minTimeMs = opts.minTimeMs ?? 1000;
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  let total = 0;
  const cpu0 = process.cpuUsage();
  while (samples.length < maxRepeats && (samples.length < minRepeats || total < minTimeMs)) {
    const t0 = performance.now();
    const r = fn();
    if (r && typeof (r as PromiseLike<unknown>).then === "function") await r;
    const dt = performance.now() - t0;
    samples.push(dt);
    total += dt;
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuTotal = (cpu.user + cpu.system) / 1000;
  return {
    ms: median(samples),
    minMs: Math.min(...samples),
    repeats: samples.length,
    cpuShare: round(total > 0 ? cpuTotal / total : 1, 3),
    cpuMs: round(cpuTotal / samples.length, 4),
  };
}

/** Times one call of `fn` and returns its result with the timing. */
export function timeOnce<T>(fn: () => T): { result: T; timing: Timing } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { result, timing: { ms, minMs: ms, repeats: 1, cpuShare: round(cpuMs / ms, 3), cpuMs: round(cpuMs, 4) } };
}

export function makeRecord(suite: string, spec: BenchSpec, t: Timing): BenchRecord {
  const rec: BenchRecord = {
    suite,
    kernel: spec.kernel,
    backend: spec.backend,
    shape: { m: spec.shape.m, n: spec.shape.n, k: spec.shape.k },
    ms: round(t.ms, 4),
    minMs: round(t.minMs, 4),
    repeats: t.repeats,
    gops: spec.ops ? round(spec.ops / t.ms / 1e6, 3) : null,
    gbps: spec.bytes ? round(spec.bytes / t.ms / 1e6, 3) : null,
    threads: spec.threads ?? 1,
    cpuShare: t.cpuShare ?? null,
    cpuMs: t.cpuMs ?? null,
    ...(spec.extra ? { extra: typeof spec.extra === "function" ? spec.extra(t) : spec.extra } : {}),
  };
  return rec;
}

export function round(x: number, digits: number): number {
  if (!Number.isFinite(x)) return x;
  const p = 10 ** Math.max(0, digits - Math.max(0, Math.floor(Math.log10(Math.abs(x) || 1)) + 1));
  return Math.round(x * p) / p;
}

/** A context that collects records into `out`. */
export function createContext(suite: string, out: BenchRecord[], log: (msg: string) => void): SuiteContext {
  return {
    suite,
    async bench(spec, fn, opts) {
      const rec = makeRecord(suite, spec, await timeit(fn, opts));
      out.push(rec);
      return rec;
    },
    record(spec) {
      const timing = { ...spec, minMs: spec.minMs ?? spec.ms, repeats: spec.repeats ?? 1 };
      const rec = makeRecord(suite, spec, timing);
      out.push(rec);
      return rec;
    },
    log,
  };
}

export interface Bandwidth {
  /** GB/s: WASM SIMD sum, one sequential stream. */
  readonly wasm1: number;
  /** GB/s: WASM SIMD sum over four streams side by side (how a 4-row GEMV reads). */
  readonly wasm4: number;
  /** GB/s: a plain JS loop over a Float32Array. */
  readonly js: number;
  /** max(wasm1, wasm4): the ceiling a weight-streaming GEMV is compared with. */
  readonly best: number;
  /** The same at the fastest repeat (less disturbed by other processes on a shared machine). */
  readonly peak: number;
  readonly bytes: number;
  readonly timings: { readonly wasm1: Timing; readonly wasm4: Timing; readonly js: Timing };
}

const bandwidths = new Map<number, Bandwidth>();

/**
 * The machine's memory read bandwidth over a buffer of `bytes` (default 256 MiB), measured once
 * per process and size. Compare a kernel with the figure for a buffer the size of what it streams:
 * on this kind of VM a 256 MiB walk runs slower than a 64 MiB one (page-table walks), for a sum
 * and a GEMV alike.
 */
export async function measureBandwidth(bytes = 256 * 1024 * 1024): Promise<Bandwidth> {
  const known = bandwidths.get(bytes);
  if (known) return known;
  const n = Math.floor(bytes / 64) * 16;
  const buf = getEngine().buffer(bytes);
  const view = buf.f32(0, n);
  for (let i = 0; i < n; i++) view[i] = (i & 1023) * 1e-3;
  const opts = { warmup: 1, minRepeats: 9, minTimeMs: 2000 };
  const wasm1 = await timeit(() => sumF32(buf.f32(0, n), 1), opts);
  const wasm4 = await timeit(() => sumF32(buf.f32(0, n), 4), opts);
  buf.dispose();
  const plain = new Float32Array(n);
  for (let i = 0; i < n; i++) plain[i] = (i & 1023) * 1e-3;
  const js = await timeit(() => jsSum(plain), { warmup: 1, minRepeats: 3, minTimeMs: 1000 });
  const gb = (t: Timing) => round((n * 4) / t.ms / 1e6, 3);
  const gbPeak = (t: Timing) => round((n * 4) / t.minMs / 1e6, 3);
  const bw: Bandwidth = {
    wasm1: gb(wasm1),
    wasm4: gb(wasm4),
    js: gb(js),
    best: Math.max(gb(wasm1), gb(wasm4)),
    peak: Math.max(gbPeak(wasm1), gbPeak(wasm4)),
    bytes: n * 4,
    timings: { wasm1, wasm4, js },
  };
  bandwidths.set(bytes, bw);
  return bw;
}

function jsSum(x: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length & ~3;
  for (let i = 0; i < n; i += 4) {
    s0 += x[i]!;
    s1 += x[i + 1]!;
    s2 += x[i + 2]!;
    s3 += x[i + 3]!;
  }
  return s0 + s1 + s2 + s3;
}

/** Adds the three measureBandwidth() figures to a suite's results as "read-bandwidth" records. */
export function recordBandwidth(ctx: SuiteContext, bw: Bandwidth): void {
  const shape = { m: 1, n: bw.bytes / 4, k: 1 };
  const base = { kernel: "read-bandwidth", shape, bytes: bw.bytes, extra: { bufferMiB: round(bw.bytes / 2 ** 20, 4) } };
  for (const [backend, t] of [
    ["wasm-simd-1-stream", bw.timings.wasm1],
    ["wasm-simd-4-streams", bw.timings.wasm4],
    ["js", bw.timings.js],
  ] as const) {
    ctx.record({ ...base, backend, ...t });
  }
}

/** One line per record, aligned. */
export function formatTable(records: readonly BenchRecord[]): string {
  const head = ["suite", "kernel", "backend", "m x n x k", "ms", "min ms", "cpu ms", "GOP/s", "GB/s", "thr", "cpu", "extra"];
  const rows = records.map((r) => [
    r.suite,
    r.kernel,
    r.backend,
    `${r.shape.m}x${r.shape.n}x${r.shape.k}`,
    fmt(r.ms),
    fmt(r.minMs),
    r.cpuMs === null ? "" : fmt(r.cpuMs),
    r.gops === null ? "" : fmt(r.gops),
    r.gbps === null ? "" : fmt(r.gbps),
    String(r.threads),
    r.cpuShare === null ? "" : r.cpuShare.toFixed(2),
    r.extra
      ? Object.entries(r.extra)
          .map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : String(v)}`)
          .join(" ")
      : "",
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 4 && i <= 10 ? c.padStart(width[i]!) : c.padEnd(width[i]!)))
      .join("  ")
      .trimEnd();
  return [line(head), line(width.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(round(x, 4));
}
