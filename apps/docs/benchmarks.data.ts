/**
 * VitePress data loader for the benchmarks page: reads every tools/bench/results/*.json at build
 * time, and lists the suites that tools/bench defines (tools/bench/src/suites/*.ts) so a suite
 * without results shows a "no results yet" note. A machine description comes from the records
 * (`machine`) or from tools/bench/results/machine.json when the harness writes one.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  type AccuracyView,
  type BenchPageData,
  type BenchRecordJson,
  chartsOf,
  type MachineInfo,
  type MemoryView,
  machineOf,
  parseAccuracy,
  parseMemory,
  parseResults,
  type SuiteView,
} from "./.vitepress/theme/bench/bench-model";
import { goalsOf } from "./.vitepress/theme/bench/goals";

const here = path.dirname(fileURLToPath(import.meta.url));
const benchDir = path.resolve(here, "../../tools/bench");

export function loadBenchPage(dir = benchDir): BenchPageData {
  const resultsDir = path.join(dir, "results");
  const suitesDir = path.join(dir, "src/suites");
  const defined = fs.existsSync(suitesDir)
    ? fs
        .readdirSync(suitesDir)
        .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
        .map((f) => f.replace(/\.ts$/, ""))
    : [];
  const written = fs.existsSync(resultsDir)
    ? fs
        .readdirSync(resultsDir)
        .filter((f) => f.endsWith(".json") && f !== "machine.json")
        .map((f) => f.replace(/\.json$/, ""))
    : [];
  const names = [...new Set([...defined, ...written])].sort();
  const all: BenchRecordJson[] = [];
  const accuracy: AccuracyView[] = [];
  const memory: MemoryView[] = [];
  let protocolMachine: MachineInfo | undefined;
  const suites: SuiteView[] = [];
  for (const name of names) {
    const file = path.join(resultsDir, `${name}.json`);
    const rel = `tools/bench/results/${name}.json`;
    // accuracy protocols ({ protocol, machine, rows }) get their own section
    if (fs.existsSync(file)) {
      try {
        const acc = parseAccuracy(JSON.parse(fs.readFileSync(file, "utf8")));
        if (acc) {
          accuracy.push({ name, file: rel, written: fs.statSync(file).mtime.toISOString().slice(0, 10), protocol: acc.protocol, rows: acc.rows });
          protocolMachine ??= acc.machine;
          continue;
        }
        const mem = parseMemory(JSON.parse(fs.readFileSync(file, "utf8")));
        if (mem) {
          memory.push({ name, file: rel, written: fs.statSync(file).mtime.toISOString().slice(0, 10), ...mem });
          continue;
        }
      } catch {
        // not JSON: reported below
      }
    }
    suites.push(suiteView(name, file, rel, all));
  }
  // the machine: named by the records, or by results/machine.json, or by an accuracy protocol
  let machine: MachineInfo | undefined = machineOf(all);
  const machineFile = path.join(resultsDir, "machine.json");
  if (!machine && fs.existsSync(machineFile)) {
    try {
      machine = JSON.parse(fs.readFileSync(machineFile, "utf8")) as MachineInfo;
    } catch {
      machine = undefined;
    }
  }
  machine ??= protocolMachine;
  const bandwidth = all
    .filter((r) => r.kernel === "read-bandwidth" && r.gbps !== null)
    .map((r) => ({ backend: r.backend, gbps: r.gbps as number }));
  const goals = goalsOf(suites, memory.flatMap((m) => m.rows));
  return { suites, accuracy, memory, bandwidth, goals, ...(machine ? { machine } : {}) };
}

/** A kernel suite's results file (an array of BenchRecord), or a "no results yet" view. */
function suiteView(name: string, file: string, rel: string, all: BenchRecordJson[]): SuiteView {
  if (!fs.existsSync(file)) return { name, file: rel, present: false, charts: [], rows: [] };
  try {
    const rows = parseResults(fs.readFileSync(file, "utf8"), rel);
    all.push(...rows);
    const writtenAt = fs.statSync(file).mtime.toISOString().slice(0, 10);
    return { name, file: rel, present: rows.length > 0, written: writtenAt, charts: chartsOf(rows), rows };
  } catch (e) {
    return { name, file: rel, present: false, charts: [], rows: [], error: (e as Error).message };
  }
}

export default {
  watch: ["../../tools/bench/results/*.json"],
  load(): BenchPageData {
    return loadBenchPage();
  },
};
