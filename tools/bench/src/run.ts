/**
 * Runs the benchmark suites in src/suites/ (every *.ts module except tests, in file-name order).
 *
 *   pnpm --filter @lowbit/bench bench            # all suites
 *   pnpm --filter @lowbit/bench bench f32 quant  # suites named f32, or starting with "quant"
 *   pnpm --filter @lowbit/bench bench --list     # names only
 *
 * Prints one table and writes results/<suite>.json per suite that ran (an array of BenchRecord).
 * Exits non-zero if a suite failed (the others still run and write their results).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type BenchRecord, type Suite, createContext, formatTable } from "./harness";

const here = path.dirname(fileURLToPath(import.meta.url));
const suitesDir = path.join(here, "suites");
const resultsDir = path.resolve(here, "../results");

function isSuite(x: unknown): x is Suite {
  return typeof x === "object" && x !== null && typeof (x as Suite).name === "string" && typeof (x as Suite).run === "function";
}

async function loadSuites(): Promise<Suite[]> {
  const files = fs
    .readdirSync(suitesDir)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
    .sort();
  const suites: Suite[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(suitesDir, f)).href)) as { default?: unknown; suite?: unknown };
    const s = mod.default ?? mod.suite;
    if (!isSuite(s)) throw new Error(`${f}: expected \`export default defineSuite({ name, run })\``);
    suites.push(s);
  }
  return suites;
}

function selected(name: string, filters: string[]): boolean {
  return filters.length === 0 || filters.some((f) => name === f || name.startsWith(f));
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const filters = args.filter((a) => !a.startsWith("--"));
  const suites = await loadSuites();
  if (args.includes("--list")) {
    for (const s of suites) console.log(`${s.name}${s.description ? `  ${s.description}` : ""}`);
    return 0;
  }
  const chosen = suites.filter((s) => selected(s.name, filters));
  if (chosen.length === 0) {
    console.error(`no suite matches ${filters.join(", ")}; known: ${suites.map((s) => s.name).join(", ")}`);
    return 1;
  }
  fs.mkdirSync(resultsDir, { recursive: true });
  const all: BenchRecord[] = [];
  let failed = 0;
  for (const s of chosen) {
    console.log(`\n# ${s.name}${s.description ? ` — ${s.description}` : ""}`);
    const records: BenchRecord[] = [];
    const ctx = createContext(s.name, records, (m) => console.log(`  ${m}`));
    const t0 = performance.now();
    try {
      await s.run(ctx);
    } catch (e) {
      failed++;
      console.error(`  suite ${s.name} failed:`, e);
    }
    for (const r of records) console.log(`  ${r.kernel} ${r.backend} ${r.shape.m}x${r.shape.n}x${r.shape.k}: ${r.ms} ms`);
    const file = path.join(resultsDir, `${s.name}.json`);
    if (records.length > 0) {
      fs.writeFileSync(file, `${JSON.stringify(records, null, 2)}\n`);
      console.log(`  ${records.length} records -> ${path.relative(process.cwd(), file)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    all.push(...records);
  }
  console.log(`\n${formatTable(all)}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
