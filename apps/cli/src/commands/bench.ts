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

export async function readBenchResults(dir: string, suites: readonly string[]): Promise<BenchRecord[]> {
  if (!existsSync(dir)) {
    throw new LowbitError(
      "E_FILE_NOT_FOUND",
      `no benchmark results at ${dir}. Run the benchmarks first (lowbit bench --run, from a lowbit checkout), or point --results at a folder of <suite>.json files.`,
    );
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
  const out: BenchRecord[] = [];
  for (const f of files) {
    const suite = f.replace(/\.json$/, "");
    if (suites.length && !suites.some((s) => suite === s || suite.startsWith(s))) continue;
    let records: unknown;
    try {
      records = JSON.parse(await readFile(join(dir, f), "utf8"));
    } catch (e) {
      throw new LowbitError("E_FORMAT", `${join(dir, f)} is not valid JSON (${(e as Error).message}); rerun that suite.`, { cause: e });
    }
    if (!Array.isArray(records)) throw new LowbitError("E_FORMAT", `${join(dir, f)}: expected an array of benchmark records; rerun that suite.`);
    out.push(...(records as BenchRecord[]));
  }
  if (out.length === 0) {
    throw new LowbitError("E_FILE_NOT_FOUND", `no benchmark results${suites.length ? ` for ${suites.join(", ")}` : ""} in ${dir}; run lowbit bench --run${suites.length ? ` ${suites.join(" ")}` : ""}.`);
  }
  return out;
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
      const records = await readBenchResults(dir, suites);
      o.result({ ok: true, results: dir, records });
      o.print(benchTable(records, o.c.bold, o.c.dim));
      o.print(o.c.dim(`${records.length} measurements from ${dir}`));
    },
  },
  { multi: ["suite"], examples: ["lowbit bench", "lowbit bench --suite quant-int4 --json", "lowbit bench --run --suite f32"] },
);
