#!/usr/bin/env node
// Totals the vitest JSON reports every package wrote under CI (test-output/vitest.json) and prints
// one closing line "N passed, N failed, N skipped". Exits 1 when a report is missing for a package
// that has a test script, or when any test failed.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
for (const group of ["packages", "apps", "tools"]) {
  for (const dir of fs.readdirSync(path.join(root, group))) {
    const pkgDir = path.join(root, group, dir);
    const pjPath = path.join(pkgDir, "package.json");
    if (!fs.existsSync(pjPath)) continue;
    const pj = JSON.parse(fs.readFileSync(pjPath, "utf8"));
    if (!pj.scripts?.test?.includes("vitest")) continue;
    const report = path.join(pkgDir, "test-output/vitest.json");
    if (!fs.existsSync(report)) {
      console.log(`test-summary: no report from ${pj.name}`);
      missing++;
      continue;
    }
    const r = JSON.parse(fs.readFileSync(report, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
    console.log(`test-summary: ${pj.name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing > 0 ? 1 : 0);
