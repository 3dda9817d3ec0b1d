/**
 * Turns the records tools/bench writes (tools/bench/results/<suite>.json, an array of BenchRecord)
 * into what the benchmarks page draws: per suite, one bar chart per kernel and shape comparing
 * backends (lowbit's WebAssembly kernels, their TypeScript reference twins, peers), and a table of
 * every record. Pure functions: used by the data loader at build time and by the tests.
 */

import type { GoalRow } from "./goals";

/** One record as tools/bench/src/harness.ts writes it (only the fields the page reads). */
export interface BenchRecordJson {
  suite?: string;
  kernel: string;
  backend: string;
  shape: { m: number; n: number; k: number };
  ms: number;
  minMs?: number;
  repeats?: number;
  gops: number | null;
  gbps: number | null;
  threads?: number;
  extra?: Record<string, number | string | boolean | null>;
  machine?: MachineInfo;
}

/** The machine results were measured on, when the results say (see `machineOf`). */
export interface MachineInfo {
  cpu?: string;
  cores?: number;
  memoryGiB?: number;
  node?: string;
  os?: string;
  date?: string;
  [key: string]: string | number | boolean | undefined;
}

export type BackendClass = "lowbit" | "reference" | "peer";

export interface Bar {
  label: string;
  /** Second line under the label (input layout, activations, ...). */
  note: string;
  value: number;
  /** Median and fastest time, milliseconds. */
  ms: number;
  minMs: number;
  backendClass: BackendClass;
  /** A fill colour overriding the backend class's. */
  color?: string;
}

export interface Chart {
  title: string;
  /** What the bars measure, e.g. "GOP/s" (higher is better). */
  metric: "GOP/s" | "GB/s";
  bars: Bar[];
}

export interface SuiteView {
  name: string;
  file: string;
  /** True when the results file exists and holds records. */
  present: boolean;
  /** When the file was last written (ISO date), if present. */
  written?: string;
  charts: Chart[];
  /** Every record, for the table. */
  rows: BenchRecordJson[];
  /** Why the file could not be read, if it exists but is not valid. */
  error?: string;
}

/** One row of an accuracy protocol (tools/bench/src/ptq-protocol.ts): a method and what it cost. */
export interface AccuracyRow {
  id: string;
  label: string;
  ppl: number;
  kl: number;
  top1: number;
  bitsPerWeight: number;
  quantSeconds?: number;
  peakRssMB?: number;
  /** The value the issue or a reference implementation gives for the same setting. */
  reference?: { ppl?: number; kl?: number; top1?: number; what?: string };
}

/** A results file of the form { protocol, machine, rows }: accuracy of the methods on one model. */
export interface AccuracyView {
  name: string;
  file: string;
  written: string;
  protocol: Record<string, string | number>;
  rows: AccuracyRow[];
}

/** One measured quantization run of tools/bench/src/memory.ts (peak memory and time). */
export interface MemoryRow {
  id: string;
  path: string;
  method: string;
  model: string;
  params: number;
  weightBytes: number;
  layerBytes: number;
  ok: boolean;
  error?: string;
  peakRssBytes: number;
  peakOverModel: number | null;
  peakOverLayer: number | null;
  wallSeconds: number;
  userSeconds: number | null;
  load: string;
  command: string;
  /** Calibration windows x tokens, for methods that calibrate (e.g. "32 x 512 tokens"). */
  calibration?: string;
}

export interface MemoryView {
  name: string;
  file: string;
  written: string;
  description: string;
  notes: string[];
  rows: MemoryRow[];
}

export interface BenchPageData {
  suites: SuiteView[];
  accuracy: AccuracyView[];
  memory: MemoryView[];
  machine?: MachineInfo;
  /** Read-bandwidth records (the machine's memory ceiling), if any suite measured it. */
  bandwidth: Array<{ backend: string; gbps: number }>;
  /** The performance goals and what the result files record against them (goals.ts). */
  goals: GoalRow[];
}

export function backendClass(backend: string): BackendClass {
  if (backend === "ref" || backend === "js" || backend.startsWith("ref")) return "reference";
  if (backend === "wasm" || backend.startsWith("wasm")) return "lowbit";
  return "peer";
}

const shapeText = (s: BenchRecordJson["shape"]) => `${s.m}×${s.n}×${s.k}`;

/** A short description of a record's variant from its `extra` strings (input layout, activations). */
export function variantNote(r: BenchRecordJson): string {
  const e = r.extra ?? {};
  const parts: string[] = [];
  if (typeof e.activations === "string") parts.push(`${e.activations} activations`);
  if (typeof e.input === "string") parts.push(e.input);
  return parts.join(", ");
}

/** Records that are not timings of one backend (e.g. "speedup vs peers" summaries) are left to the table. */
function isTiming(r: BenchRecordJson): boolean {
  return !/\bvs\b|speedup/i.test(r.backend);
}

/**
 * Groups records by kernel and shape into bar charts: GOP/s when the group has operation counts,
 * else GB/s; groups with neither (one-shot factorisations) appear only in the table.
 */
export function chartsOf(records: readonly BenchRecordJson[]): Chart[] {
  const groups = new Map<string, BenchRecordJson[]>();
  for (const r of records) {
    if (!isTiming(r)) continue;
    const key = `${r.kernel} ${shapeText(r.shape)}`;
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  const charts: Chart[] = [];
  for (const [key, rs] of groups) {
    const metric = rs.some((r) => r.gops !== null) ? "GOP/s" : rs.some((r) => r.gbps !== null) ? "GB/s" : undefined;
    if (!metric) continue;
    const bars = rs
      .map((r) => ({
        label: r.backend,
        note: variantNote(r),
        value: (metric === "GOP/s" ? r.gops : r.gbps) ?? Number.NaN,
        ms: r.ms,
        minMs: r.minMs ?? r.ms,
        backendClass: backendClass(r.backend),
      }))
      .filter((b) => Number.isFinite(b.value));
    if (bars.length > 0) charts.push({ title: key, metric, bars });
  }
  return charts;
}

/** The machine the results name: a `machine` field on any record, or `extra.machine` as text. */
export function machineOf(records: readonly BenchRecordJson[]): MachineInfo | undefined {
  for (const r of records) {
    if (r.machine && typeof r.machine === "object") return r.machine;
    const m = r.extra?.machine;
    if (typeof m === "string" && m) return { cpu: m };
  }
  return undefined;
}

/** An accuracy protocol file ({ protocol, machine?, rows: [{ id, label, ppl, kl, top1, bitsPerWeight }] }), or undefined. */
export function parseAccuracy(json: unknown): { protocol: Record<string, string | number>; machine?: MachineInfo; rows: AccuracyRow[] } | undefined {
  if (!json || typeof json !== "object" || Array.isArray(json)) return undefined;
  const o = json as { protocol?: unknown; machine?: unknown; rows?: unknown };
  if (!Array.isArray(o.rows)) return undefined;
  const rows = o.rows.filter(
    (r): r is AccuracyRow =>
      !!r && typeof r === "object" && typeof r.label === "string" && typeof r.ppl === "number" && typeof r.bitsPerWeight === "number",
  );
  if (rows.length === 0) return undefined;
  const protocol: Record<string, string | number> = {};
  if (o.protocol && typeof o.protocol === "object") {
    for (const [k, v] of Object.entries(o.protocol)) if (typeof v === "string" || typeof v === "number") protocol[k] = v;
  }
  const m = o.machine as { cpus?: unknown; node?: unknown; cpu?: unknown; memoryGiB?: unknown; os?: unknown } | undefined;
  const machine: MachineInfo | undefined = m
    ? {
        ...(typeof m.cpu === "string" ? { cpu: m.cpu } : {}),
        ...(typeof m.cpus === "number" ? { cores: m.cpus } : {}),
        ...(typeof m.memoryGiB === "number" ? { memoryGiB: m.memoryGiB } : {}),
        ...(typeof m.os === "string" ? { os: m.os } : {}),
        ...(typeof m.node === "string" ? { node: m.node } : {}),
      }
    : undefined;
  return { protocol, rows, ...(machine ? { machine } : {}) };
}

function calibrationOf(c: unknown): { calibration?: string } {
  const o = (c ?? {}) as { samples?: unknown; seqLen?: unknown };
  return typeof o.samples === "number" && typeof o.seqLen === "number" ? { calibration: `${o.samples} x ${o.seqLen} tokens` } : {};
}

/** A memory results file ({ description, runs: [...] } from tools/bench/src/memory.ts), or undefined. */
export function parseMemory(json: unknown): Omit<MemoryView, "name" | "file" | "written"> | undefined {
  if (!json || typeof json !== "object" || Array.isArray(json)) return undefined;
  const o = json as { description?: unknown; note?: unknown; notes?: unknown; runs?: unknown };
  if (!Array.isArray(o.runs)) return undefined;
  const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const rows: MemoryRow[] = [];
  for (const r of o.runs as Array<Record<string, unknown>>) {
    if (!r || typeof r !== "object" || typeof r.id !== "string" || typeof r.peakRssBytes !== "number") continue;
    const m = (r.model ?? {}) as Record<string, unknown>;
    const load = (r.load ?? {}) as { before?: unknown; after?: unknown };
    const first = (v: unknown) => (Array.isArray(v) && typeof v[0] === "number" ? v[0].toFixed(1) : "?");
    rows.push({
      id: r.id,
      path: String(r.path ?? ""),
      method: String(r.method ?? ""),
      model: String(m.preset ?? ""),
      params: num(m.params) ?? 0,
      weightBytes: num(m.weightBytes) ?? 0,
      layerBytes: num(m.layerBytes) ?? 0,
      ok: r.ok === true,
      ...(typeof r.error === "string" ? { error: r.error } : {}),
      peakRssBytes: r.peakRssBytes,
      peakOverModel: num(r.peakOverModel),
      peakOverLayer: num(r.peakOverLayer),
      wallSeconds: num(r.wallSeconds) ?? 0,
      userSeconds: num(r.userSeconds),
      load: `${first(load.before)} → ${first(load.after)}`,
      command: String(r.command ?? ""),
      ...calibrationOf(r.calibration),
    });
  }
  if (rows.length === 0) return undefined;
  const notes = [o.note, ...(Array.isArray(o.notes) ? o.notes : [])].filter((x): x is string => typeof x === "string");
  return { description: typeof o.description === "string" ? o.description : "", notes, rows };
}

/** Parses one results file's text; throws with a message naming the file when it is not an array of records. */
export function parseResults(text: string, file: string): BenchRecordJson[] {
  const json: unknown = JSON.parse(text);
  const list = Array.isArray(json) ? json : (json as { records?: unknown })?.records;
  if (!Array.isArray(list)) throw new Error(`${file}: expected an array of benchmark records`);
  for (const [i, r] of list.entries()) {
    const ok =
      r && typeof r === "object" && typeof r.kernel === "string" && typeof r.backend === "string" && typeof r.ms === "number" && r.shape;
    if (!ok) throw new Error(`${file}: record ${i} lacks kernel, backend, shape or ms`);
  }
  return list as BenchRecordJson[];
}

/** The machine description as one line. */
export function machineText(m: MachineInfo): string {
  const parts: string[] = [];
  if (m.cpu) parts.push(String(m.cpu));
  if (m.cores) parts.push(`${m.cores} cores`);
  if (m.memoryGiB) parts.push(`${m.memoryGiB} GiB memory`);
  if (m.os) parts.push(String(m.os));
  if (m.node) parts.push(`Node ${String(m.node).replace(/^v/, "")}`);
  if (m.date) parts.push(`measured ${m.date}`);
  return parts.join(", ");
}
