import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { LowbitError } from "@lowbit/tensor";
import { multiFlag } from "../args";
import { commonArgs, lowbitCommand } from "../command";
import { packageRoot } from "../demo-assets";
import { formatNumber } from "../ui/format";
import { io } from "../ui/io";
import { renderTable } from "../ui/table";

/** One measurement as tools/bench writes it (results/<suite>.json is an array of these). */
export interface BenchRecord {
  suite: string;
  kernel: string;
  backend: string;
  shape: { m: number; n: number; k: number };
  ms: number;
  minMs?: number;
  repeats?: number;
  gops?: number | null;
  gbps?: number | null;
  threads?: number;
  extra?: Record<string, unknown>;
}

function benchDir(): string {
  return resolve(packageRoot(), "../../tools/bench");
}

/** A row of an accuracy protocol file (tools/bench results/ptq-protocol.json: { protocol, machine, rows }). */
export interface AccuracyRow {
  id?: string;
  label: string;
  ppl: number;
  kl?: number;
  top1?: number;
  bitsPerWeight?: number;
  reference?: { ppl?: number };
}

/** A run of a memory/time file (results/memory.json: { runs }). */
export interface MemoryRun {
  id: string;
  path?: string;
  method?: string;
  ok?: boolean;
  wallSeconds?: number;
  peakRssBytes?: number;
  peakOverModel?: number;
  model?: { preset?: string; weightBytes?: number };
}

export interface BenchResults {
  records: BenchRecord[];
  accuracy: Array<{ file: string; rows: AccuracyRow[] }>;
  memory: Array<{ file: string; runs: MemoryRun[] }>;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

export async function readBenchResults(dir: string, suites: readonly string[]): Promise<BenchResults> {
  if (!existsSync(dir)) {
    throw new LowbitError(
      "E_FILE_NOT_FOUND",
      `no benchmark results at ${dir}. Run the benchmarks first (lowbit bench --run, from a lowbit checkout), or point --results at a folder of <suite>.json files.`,
    );
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
  const out: BenchRecord[] = [];
  const accuracy: BenchResults["accuracy"] = [];
  const memory: BenchResults["memory"] = [];
  for (const f of files) {
    const suite = f.replace(/\.json$/, "");
    if (suites.length && !suites.some((s) => suite === s || suite.startsWith(s))) continue;
    let records: unknown;
    try {
      records = JSON.parse(await readFile(join(dir, f), "utf8"));
    } catch (e) {
      throw new LowbitError("E_FORMAT", `${join(dir, f)} is not valid JSON (${(e as Error).message}); rerun that suite.`, { cause: e });
    }
    if (isObject(records) && Array.isArray(records.rows) && records.rows.every((r) => isObject(r) && typeof r.label === "string" && typeof r.ppl === "number")) {
      accuracy.push({ file: join(dir, f), rows: records.rows as AccuracyRow[] });
      continue;
    }
    if (isObject(records) && Array.isArray(records.runs) && records.runs.every((r) => isObject(r) && typeof r.id === "string")) {
      memory.push({ file: join(dir, f), runs: records.runs as MemoryRun[] });
      continue;
    }
    if (!Array.isArray(records)) {
      throw new LowbitError(
        "E_FORMAT",
        `${join(dir, f)}: expected an array of benchmark records, an accuracy protocol ({ rows: [{ label, ppl }] }) or memory runs ({ runs: [{ id }] }); rerun that suite.`,
      );
    }
    out.push(...(records as BenchRecord[]));
  }
  if (out.length === 0 && accuracy.length === 0 && memory.length === 0) {
    throw new LowbitError("E_FILE_NOT_FOUND", `no benchmark results${suites.length ? ` for ${suites.join(", ")}` : ""} in ${dir}; run lowbit bench --run${suites.length ? ` ${suites.join(" ")}` : ""}.`);
  }
  return { records: out, accuracy, memory };
}

function shapeText(s: BenchRecord["shape"]): string {
  if (s.m === 1 && s.k === 1) return String(s.n);
  return `${s.m}x${s.n}x${s.k}`;
}

function notes(extra: BenchRecord["extra"]): string {
  if (!extra) return "";
  const text = Object.entries(extra)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "number" ? formatNumber(v, 3) : String(v)}`)
    .join(" ");
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function benchTable(records: readonly BenchRecord[], bold?: (s: string) => string, dim?: (s: string) => string): string {
  return renderTable(
    [
      { header: "suite" },
      { header: "kernel" },
      { header: "backend" },
      { header: "shape (m x n x k)", align: "right" },
      { header: "ms", align: "right" },
      { header: "min ms", align: "right" },
      { header: "GOP/s", align: "right" },
      { header: "GB/s", align: "right" },
      { header: "thr", align: "right" },
      { header: "notes" },
    ],
    records.map((r) => [
      r.suite,
      r.kernel,
      r.backend,
      shapeText(r.shape),
      formatNumber(r.ms, 4),
      formatNumber(r.minMs, 4),
      r.gops == null ? "-" : formatNumber(r.gops, 3),
      r.gbps == null ? "-" : formatNumber(r.gbps, 3),
      r.threads === undefined ? "-" : String(r.threads),
      notes(r.extra),
    ]),
    { bold, dim },
  );
}

const fmt = (x: number | undefined, digits: number): string => (x === undefined || !Number.isFinite(x) ? "-" : formatNumber(x, digits));

export function accuracyTable(rows: readonly AccuracyRow[], bold?: (s: string) => string, dim?: (s: string) => string): string {
  return renderTable(
    [
      { header: "configuration" },
      { header: "bits/weight", align: "right" },
      { header: "perplexity", align: "right" },
      { header: "KL", align: "right" },
      { header: "top-1", align: "right" },
      { header: "reference ppl", align: "right" },
    ],
    rows.map((r) => [r.label, fmt(r.bitsPerWeight, 3), fmt(r.ppl, 5), fmt(r.kl, 3), fmt(r.top1, 3), fmt(r.reference?.ppl, 5)]),
    { bold, dim },
  );
}

export function memoryTable(runs: readonly MemoryRun[], bold?: (s: string) => string, dim?: (s: string) => string): string {
  const gb = (b: number | undefined) => (b === undefined ? undefined : b / 1e9);
  return renderTable(
    [
      { header: "run" },
      { header: "model", align: "right" },
      { header: "f32 GB", align: "right" },
      { header: "peak RSS GB", align: "right" },
      { header: "x model", align: "right" },
      { header: "wall s", align: "right" },
      { header: "ok" },
    ],
    runs.map((r) => [
      r.id,
      r.model?.preset ?? "-",
      fmt(gb(r.model?.weightBytes), 3),
      fmt(gb(r.peakRssBytes), 3),
      fmt(r.peakOverModel, 3),
      fmt(r.wallSeconds, 4),
      r.ok === false ? "no" : "yes",
    ]),
    { bold, dim },
  );
}

export default lowbitCommand(
  {
    args: {
      run: { type: "boolean", description: "Run the benchmark suites first (from a lowbit checkout; takes minutes)" },
      suite: { type: "string", description: "Only these suites (name or prefix: f32, quant-int4, ...)", valueHint: "NAME..." },
      results: { type: "string", description: "Folder of <suite>.json results (default tools/bench/results)", valueHint: "DIR" },
      ...commonArgs,
    },
    async run({ args, rawArgs }) {
      const o = io();
      const suites = multiFlag(rawArgs, "suite");
      const dir = args.results ?? join(benchDir(), "results");
      if (args.run) {
        const script = join(benchDir(), "src", "run.ts");
        if (!existsSync(script)) {
          throw new LowbitError("E_FILE_NOT_FOUND", `the benchmark suites are not here (${script}); --run needs a lowbit checkout. Without --run, lowbit bench shows saved results.`);
        }
        const code = await new Promise<number>((res, rej) => {
          const child = spawn(process.execPath, ["--conditions=@lowbit/source", "--import", "tsx", script, ...suites], {
            cwd: benchDir(),
            stdio: ["ignore", o.json ? "ignore" : "inherit", "inherit"],
          });
          child.on("error", rej);
          child.on("exit", (c) => res(c ?? 1));
        });
        if (code !== 0) throw new LowbitError("E_INTERNAL", `the benchmark run exited with code ${code}; see its output above. Results of suites that finished were still written.`);
      }
      const { records, accuracy, memory } = await readBenchResults(dir, suites);
      o.result({ ok: true, results: dir, records, accuracy, memory });
      if (records.length > 0) {
        o.print(benchTable(records, o.c.bold, o.c.dim));
        o.print(o.c.dim(`${records.length} measurements from ${dir}`));
      }
      for (const a of accuracy) {
        o.print(o.c.bold(`\naccuracy (${a.file})`));
        o.print(accuracyTable(a.rows, o.c.bold, o.c.dim));
      }
      for (const m of memory) {
        o.print(o.c.bold(`\nmemory and time of quantizing (${m.file})`));
        o.print(memoryTable(m.runs, o.c.bold, o.c.dim));
      }
    },
  },
  { multi: ["suite"], examples: ["lowbit bench", "lowbit bench --suite quant-int4 --json", "lowbit bench --run --suite f32"] },
);
