/**
 * The performance goals at a glance: one row per measured ratio or figure, read from the result
 * files the suites write (threads.json, e2e.json, gptq.json, memory.json), with the goal it is
 * held to and whether the recorded value meets it. Nothing here measures; a row whose record is
 * missing simply does not appear.
 */
import type { BenchRecordJson, MemoryRow } from "./bench-model";

export interface GoalRow {
  /** Kernels, end to end, GPTQ or memory. */
  area: string;
  what: string;
  threads: number | null;
  /** The recorded value, formatted (e.g. "1.02×", "0.95", "270.6 s"). */
  measured: string;
  /** The goal, formatted ("≥ 1×"), or "" for figures the goals only ask to record. */
  goal: string;
  /** null when there is no numeric goal. */
  met: boolean | null;
  note?: string;
  /** The result file and the command that writes it. */
  source: string;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const x = (v: number) => `${v.toFixed(2)}×`;

function ratioRow(area: string, what: string, threads: number, value: number | null, target: number, source: string, note?: string): GoalRow | undefined {
  if (value === null) return undefined;
  return { area, what, threads, measured: x(value), goal: `≥ ${target}×`, met: value >= target, source, ...(note ? { note } : {}) };
}

const THREADS = "tools/bench/results/threads.json (pnpm --filter @lowbit/bench bench threads)";
const E2E = "tools/bench/results/e2e.json (pnpm --filter @lowbit/bench bench e2e)";
const GPTQ = "tools/bench/results/gptq.json (pnpm --filter @lowbit/bench bench gptq)";
const MEMORY = "tools/bench/results/memory.json (pnpm --filter @lowbit/bench memory)";

/** Rows for the kernel goals: f32 GEMV vs bandwidth, int4 GEMV and W8A8 GEMM vs onnxruntime. */
function kernelRows(records: readonly BenchRecordJson[]): GoalRow[] {
  const rows: Array<GoalRow | undefined> = [];
  const find = (kernel: string, t: number) => records.find((r) => r.kernel === kernel && (r.threads ?? 1) === t);
  for (const t of [1, 2]) {
    const f = num(find("gemv-fraction-of-bandwidth", t)?.extra?.["fractionPaired"]);
    if (f !== null) {
      rows.push({
        area: "kernels",
        what: "f32 GEMV 4096×4096, fraction of the read bandwidth over the same weights at the same thread count",
        threads: t,
        measured: f.toFixed(2),
        goal: "≥ 0.9",
        met: f >= 0.9,
        source: THREADS,
      });
    }
  }
  const ts = (t: number) => `${t} thread${t > 1 ? "s" : ""}`;
  for (const g of [32, 128]) {
    for (const t of [1, 2]) {
      // MatMulNBits at accuracy level 4 quantizes activations to int8: lowbit's int8-activation path is the like-for-like one
      const e = find(`int4-gemv-g${g}-aint8-vs-peers`, t)?.extra;
      const what = `int4 GEMV 4096×4096 g${g}, int8 activations, lowbit on ${ts(t)}`;
      rows.push(ratioRow("kernels", `${what} vs onnxruntime-node MatMulNBits acc4 on ${ts(t)}`, t, num(e?.[`x_node${t}t_paired`]), 1, THREADS));
      rows.push(ratioRow("kernels", `${what} vs onnxruntime-web MatMulNBits acc4 (1 thread)`, t, num(e?.["x_web1t_paired"]), 20, THREADS));
    }
  }
  for (const t of [1, 2]) {
    const e = find("w8a8-gemm-vs-peers", t)?.extra;
    const what = `W8A8 GEMM 64×4096×4096, lowbit on ${ts(t)}`;
    rows.push(ratioRow("kernels", `${what} vs onnxruntime-node DynamicQuantizeMatMul on ${ts(t)}`, t, num(e?.[`x_node${t}t_paired`]), 0.6, THREADS));
    // at 1 thread, what lowbit's own inner loop allows against the same peer (w8a8-vs-wino-loop)
    const loop = t === 1 ? find("w8a8-vs-wino-loop", 1)?.extra : undefined;
    const ceiling = num(loop?.["loopVsOnnxruntimeWeb"]);
    const fraction = num(loop?.["lowbitFractionOfLoop"]);
    const note =
      ceiling !== null && fraction !== null
        ? `the GEMM's own inner loop on L1 operands is ${x(ceiling)} onnxruntime-web in the same run (the most this kernel could show); lowbit runs at ${fraction} of that loop`
        : undefined;
    rows.push(ratioRow("kernels", `${what} vs onnxruntime-web DynamicQuantizeMatMul (1 thread)`, t, num(e?.["x_web1t_paired"]), 1.5, THREADS, note));
  }
  return rows.filter((r): r is GoalRow => r !== undefined);
}

/** Rows for end-to-end decode (goal: parity with llama.cpp) and prefill (recorded). */
function e2eRows(records: readonly BenchRecordJson[]): GoalRow[] {
  const rows: GoalRow[] = [];
  // llama.cpp's own tokens/s per model, type and thread count (to flag its thread overhead on tiny models)
  const peer = (kind: string, r: BenchRecordJson, t: number) =>
    records.find((q) => q.kernel === kind && q.backend === "llama.cpp" && (q.threads ?? 1) === t && q.extra?.["model"] === r.extra?.["model"] && q.extra?.["type"] === r.extra?.["type"]);
  for (const kind of ["decode", "prefill"] as const) {
    for (const r of records.filter((q) => q.kernel === `${kind}-ratio` && q.backend === "lowbit/llama.cpp")) {
      const v = num(r.extra?.["ratio"]);
      if (v === null) continue;
      const t = r.threads ?? 1;
      const what = `${kind} tokens/s, lowbit / llama.cpp: ${String(r.extra?.["model"])} ${String(r.extra?.["type"]).toUpperCase()}`;
      // a ratio far from 1 on more threads is usually the peer slowing down, not lowbit speeding up: say so
      const p1 = peer(kind, r, 1);
      const pt = peer(kind, r, t);
      const note =
        t > 1 && v > 3 && p1 && pt && pt.ms > 2 * p1.ms
          ? `llama.cpp takes ${pt.ms} ms on ${t} threads against ${p1.ms} ms on 1 for this run: its thread overhead dominates a model this small`
          : undefined;
      rows.push({ area: "end to end", what, threads: t, measured: x(v), goal: kind === "decode" ? "≥ 1× (parity)" : "", met: kind === "decode" ? v >= 1 : null, source: E2E, ...(note ? { note } : {}) });
    }
  }
  return rows;
}

/** Rows for GPTQ on one 4096×4096 layer (recorded: time and peak memory). */
function gptqRows(records: readonly BenchRecordJson[]): GoalRow[] {
  const rows: GoalRow[] = [];
  for (const t of [1, 2]) {
    const h = records.find((r) => r.kernel === "gptq-hessian" && (r.threads ?? 1) === t);
    const q = records.find((r) => r.kernel === "gptq-quantize" && (r.threads ?? 1) === t);
    if (!h || !q) continue;
    const total = num(h.extra?.["totalSeconds"]);
    const peak = num(q.extra?.["peakRssMB"]);
    const windows = Math.round(h.shape.m / 2048);
    rows.push({
      area: "GPTQ",
      what: `one 4096×4096 layer, ${windows} windows × 2048 tokens: Hessian + quantization step`,
      threads: t,
      measured: `${total === null ? "?" : total.toFixed(1)} s + ${(q.ms / 1000).toFixed(1)} s, peak ${peak === null ? "?" : peak.toFixed(0)} MB`,
      goal: "",
      met: null,
      source: GPTQ,
      ...(t > 1 ? { note: "peak: the process's peak so far (the suite runs 1 thread first in the same process), an upper bound" } : {}),
    });
  }
  return rows;
}

/** Rows for quantizing whole models: GPTQ on the 100M model, and any model over 4 GB. */
function memoryRows(runs: readonly MemoryRow[]): GoalRow[] {
  const rows: GoalRow[] = [];
  for (const r of runs) {
    if (!r.ok || /before|patch/.test(r.id)) continue;
    const big = r.weightBytes > 4e9;
    const gptq100m = r.method === "gptq" && r.model === "100m" && r.path === "cli";
    if (!big && !gptq100m) continue;
    rows.push({
      area: big ? "memory" : "GPTQ",
      what: `${r.method === "convert" ? "Conversion" : r.method.toUpperCase()} of the generated ${r.model} model (${(r.weightBytes / 1e9).toFixed(2)} GB f32) through the ${r.path === "cli" ? "CLI" : "libraries"}${r.calibration ? `, calibration ${r.calibration}` : ""} (${r.id})`,
      threads: null,
      measured: `${r.wallSeconds.toFixed(0)} s, peak ${(r.peakRssBytes / 1e6).toFixed(0)} MB = ${r.peakOverModel === null ? "?" : r.peakOverModel.toFixed(2)}× the model, ${r.peakOverLayer === null ? "?" : r.peakOverLayer.toFixed(1)}× one layer`,
      goal: "",
      met: null,
      source: MEMORY,
    });
  }
  return rows;
}

/** Every goal row the result files support, kernels first. */
export function goalsOf(suites: ReadonlyArray<{ name: string; rows: readonly BenchRecordJson[] }>, memory: readonly MemoryRow[]): GoalRow[] {
  const rowsOf = (name: string) => suites.find((s) => s.name === name)?.rows ?? [];
  return [...kernelRows(rowsOf("threads")), ...e2eRows(rowsOf("e2e")), ...gptqRows(rowsOf("gptq")), ...memoryRows(memory)];
}
