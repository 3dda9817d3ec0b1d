#!/usr/bin/env node
// Installable-alone check: for every public package under packages/, pack it with pnpm (which rewrites
// workspace: ranges to semver), lint the tarball with publint and arethetypeswrong, then in an empty
// temporary project with no workspace around it install the tarball together with the tarballs of the
// lowbit packages it depends on (other dependencies come from the registry), import it from Node ESM
// and make one real call (smoke.mjs). Needs `pnpm build` first. Exit code 1 on any failure.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { smoke } from "./smoke.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = (name) => path.join(here, "node_modules/.bin", name);
const only = process.argv.slice(2);
const work = fs.mkdtempSync(path.join(os.tmpdir(), "lowbit-pack-check-"));
const tarDir = path.join(work, "tarballs");
fs.mkdirSync(tarDir);

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

// names a requested package needs (read from package.json files, before packing)
function closureNames(name, acc = []) {
  if (acc.includes(name)) return acc;
  acc.push(name);
  const dir = path.join(root, "packages", name.replace("@lowbit/", ""));
  if (!fs.existsSync(path.join(dir, "package.json"))) return acc;
  const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  for (const d of Object.keys(pj.dependencies ?? {})) if (d.startsWith("@lowbit/")) closureNames(d, acc);
  return acc;
}

const pkgs = new Map();
for (const dir of fs.readdirSync(path.join(root, "packages")).sort()) {
  const pkgDir = path.join(root, "packages", dir);
  const pj = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  if (pj.private || (only.length && !only.some((n) => closureNames(n).includes(pj.name)))) continue;
  if (!fs.existsSync(path.join(pkgDir, "dist/index.js"))) {
    console.error(`pack-check: ${pj.name} has no dist/ — run \`pnpm build\` first`);
    process.exit(1);
  }
  const out = run("pnpm", ["pack", "--pack-destination", tarDir], pkgDir);
  const tgz = out.trim().split("\n").filter((l) => l.endsWith(".tgz")).pop();
  pkgs.set(pj.name, { dir: pkgDir, pj, tgz: path.isAbsolute(tgz) ? tgz : path.join(tarDir, path.basename(tgz)) });
}

function closure(name, acc = new Set()) {
  if (acc.has(name)) return acc;
  acc.add(name);
  for (const dep of Object.keys(pkgs.get(name).pj.dependencies ?? {})) if (pkgs.has(dep)) closure(dep, acc);
  return acc;
}

let passed = 0;
let failed = 0;
const fail = (name, what, detail) => {
  failed++;
  console.log(`FAIL ${name}: ${what}\n${String(detail).trim().split("\n").slice(0, 40).map((l) => "  " + l).join("\n")}`);
};

for (const [name, { tgz }] of pkgs) {
  if (only.length && !only.includes(name)) continue;
  // publint on the tarball (what users get), warnings count as errors
  try {
    run(bin("publint"), ["run", tgz, "--strict"], work);
    passed++;
    console.log(`ok   ${name}: publint`);
  } catch (e) {
    fail(name, "publint", (e.stdout ?? "") + (e.stderr ?? ""));
  }
  // types resolve for ESM consumers
  try {
    run(bin("attw"), [tgz, "--profile", "esm-only", "--format", "ascii", "--no-color"], work);
    passed++;
    console.log(`ok   ${name}: arethetypeswrong (esm-only)`);
  } catch (e) {
    fail(name, "arethetypeswrong", (e.stdout ?? "") + (e.stderr ?? ""));
  }
  // installed alone, imported from Node ESM, one real call
  const code = smoke[name];
  if (!code) {
    fail(name, "install and import", "no smoke call for this package in tools/pack-check/smoke.mjs");
    continue;
  }
  const proj = path.join(work, "consumer-" + name.replace(/[@/]/g, "_"));
  fs.mkdirSync(proj);
  const deps = Object.fromEntries([...closure(name)].map((d) => [d, "file:" + pkgs.get(d).tgz]));
  fs.writeFileSync(path.join(proj, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: deps }, null, 2));
  fs.writeFileSync(path.join(proj, "smoke.mjs"), code);
  try {
    run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], proj);
    const out = run("node", ["smoke.mjs"], proj);
    passed++;
    console.log(`ok   ${name}: installed alone (${Object.keys(deps).length} lowbit tarball(s)), imported, ${out.trim()}`);
  } catch (e) {
    fail(name, "install and import", (e.stdout ?? "") + (e.stderr ?? ""));
  }
}
fs.rmSync(work, { recursive: true, force: true });
console.log(`pack-check: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
