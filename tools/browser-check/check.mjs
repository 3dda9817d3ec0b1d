#!/usr/bin/env node
// Browser bundle check (issue 10): pack @lowbit/int4 and @lowbit/gptq with the lowbit packages they
// depend on (pnpm pack rewrites workspace: ranges, as a registry install would see them), install
// the tarballs in an empty project with no workspace around it, bundle page/ (which imports them)
// with Vite, serve the bundle on 127.0.0.1 and open it in headless Chromium (Debian's package, driven
// by playwright-core; no browser download): the bundle must build, the WebAssembly kernels must load,
// and real calls must give right answers (see page/main.js). The page is opened twice: served cross-
// origin isolated (COOP + COEP), where kernel threads run as Web Workers over shared memory, and
// plain, where they fall back to one thread. Needs `pnpm build` first.
// Prints one line per check and closes with "N passed, N failed"; exit code 1 on any failure.
//
//   pnpm --filter @lowbit/browser-check check [--keep] [--shim-node-builtins]
//     --keep                 leave the temporary project (printed) for inspection
//     --shim-node-builtins   bundle with stand-ins for Node built-ins (what the docs site does), to
//                            see the in-browser checks while a package still imports node:fs at its
//                            top level; an application without such a plugin would not build, so a
//                            run with this flag never counts as the check passing

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { build } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const keep = process.argv.includes("--keep");
const shim = process.argv.includes("--shim-node-builtins");
const CHROMIUM = process.env.LOWBIT_CHROMIUM ?? "/usr/bin/chromium";
const ENTRY = ["@lowbit/int4", "@lowbit/gptq"];

let passed = 0;
let failed = 0;
const ok = (name, detail) => {
  passed++;
  console.log(`ok   ${name}${detail ? `: ${detail}` : ""}`);
};
const fail = (name, detail) => {
  failed++;
  const lines = String(detail).trim().split("\n").slice(0, 40);
  console.log(`FAIL ${name}\n${lines.map((l) => `  ${l}`).join("\n")}`);
};
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const output = (e) => `${e.message ?? e}\n${e.stdout ?? ""}${e.stderr ?? ""}`;

/** The lowbit packages a package needs at run time (itself included), from the package.json files. */
function closure(name, acc = new Set()) {
  if (acc.has(name)) return acc;
  acc.add(name);
  const pj = JSON.parse(fs.readFileSync(path.join(root, "packages", name.replace("@lowbit/", ""), "package.json"), "utf8"));
  for (const d of Object.keys(pj.dependencies ?? {})) if (d.startsWith("@lowbit/")) closure(d, acc);
  return acc;
}

/** Named imports of Node built-ins at the top level of the installed packages' bundles (they break browser bundles). */
function nodeImports(proj) {
  const found = [];
  const dir = path.join(proj, "node_modules/@lowbit");
  for (const pkg of fs.readdirSync(dir)) {
    const file = path.join(dir, pkg, "dist/index.js");
    if (!fs.existsSync(file)) continue;
    const src = fs.readFileSync(file, "utf8");
    for (const m of src.matchAll(/^import\s*\{([^}]*)\}\s*from\s*["'](node:)?(fs|fs\/promises|path|os|url|crypto|worker_threads|child_process)["']/gm)) {
      found.push(`@lowbit/${pkg}: import {${m[1].trim()}} from "${m[2] ?? ""}${m[3]}"`);
    }
  }
  return found;
}

/** Stand-ins for Node built-ins (--shim-node-builtins only): every export a function that throws. */
function nodeShimPlugin() {
  const prefix = "\0node-shim:";
  return {
    name: "node-builtins-shim",
    enforce: "pre",
    resolveId: (id) => (/^(node:)?(fs|fs\/promises|path|os|url|crypto|worker_threads|child_process)$/.test(id) ? prefix + id.replace(/^node:/, "") : null),
    async load(id) {
      if (!id.startsWith(prefix)) return null;
      const name = id.slice(prefix.length);
      const keys = Object.keys(await import(`node:${name}`)).filter((k) => k !== "default" && /^[A-Za-z_$][\w$]*$/.test(k));
      return [
        "const fail = (w) => () => { throw new Error(w + ' is not available in the browser'); };",
        ...keys.map((k) => `export const ${k} = fail(${JSON.stringify(`${name}.${k}`)});`),
        `export default { ${keys.join(", ")} };`,
      ].join("\n");
    },
  };
}

/** A static server for the built page on 127.0.0.1 and a free port. */
async function serve(dir) {
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const file = path.resolve(dir, `.${p === "/" ? "/index.html" : decodeURIComponent(p)}`);
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    // served cross-origin isolated (what kernel threads need) unless the page is asked for ?plain
    const plain = new URL(req.url ?? "/", "http://127.0.0.1").searchParams.has("plain") || (req.headers.referer ?? "").includes("?plain");
    const isolation = plain ? {} : { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream", ...isolation });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

async function main() {
  const t0 = performance.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lowbit-browser-check-"));
  try {
    // 1. pack the packages the page imports and everything they need
    const names = [...new Set(ENTRY.flatMap((n) => [...closure(n)]))].sort();
    const tarDir = path.join(work, "tarballs");
    fs.mkdirSync(tarDir);
    const tarballs = {};
    for (const name of names) {
      const dir = path.join(root, "packages", name.replace("@lowbit/", ""));
      if (!fs.existsSync(path.join(dir, "dist/index.js"))) {
        fail(`pack ${name}`, `${name} has no dist/ — run \`pnpm build\` first`);
        return;
      }
      const out = run("pnpm", ["pack", "--pack-destination", tarDir], dir);
      const tgz = out.trim().split("\n").filter((l) => l.endsWith(".tgz")).pop();
      tarballs[name] = path.isAbsolute(tgz) ? tgz : path.join(tarDir, path.basename(tgz));
    }
    ok("pack", `${names.length} tarballs (${names.join(", ")})`);

    // 2. an empty project with only those tarballs (other dependencies from the registry)
    const proj = path.join(work, "app");
    fs.mkdirSync(proj);
    fs.cpSync(path.join(here, "page"), proj, { recursive: true });
    const deps = Object.fromEntries(names.map((n) => [n, `file:${tarballs[n]}`]));
    fs.writeFileSync(path.join(proj, "package.json"), JSON.stringify({ name: "lowbit-browser-app", private: true, type: "module", dependencies: deps }, null, 2));
    try {
      run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], proj);
      ok("install", `npm install of the tarballs in ${path.basename(work)}/app`);
    } catch (e) {
      fail("install", output(e));
      return;
    }

    // 3. bundle with Vite, exactly as an application would (no plugins, no aliases)
    const dist = path.join(proj, "dist");
    const warnings = [];
    try {
      const t = performance.now();
      await build({
        root: proj,
        configFile: false,
        logLevel: "silent",
        customLogger: {
          info() {},
          warn: (m) => warnings.push(m),
          warnOnce: (m) => warnings.push(m),
          error: (m) => warnings.push(m),
          clearScreen() {},
          hasErrorLogged: () => false,
          hasWarned: false,
        },
        build: { outDir: dist, target: "es2022", emptyOutDir: true, chunkSizeWarningLimit: 8192 },
        plugins: shim ? [nodeShimPlugin()] : [],
      });
      const files = fs.readdirSync(path.join(dist, "assets"));
      const bytes = files.reduce((a, f) => a + fs.statSync(path.join(dist, "assets", f)).size, 0);
      (shim ? fail : ok)(shim ? "vite build (only with --shim-node-builtins: an application without it would not build)" : "vite build", `${files.length} assets, ${(bytes / 1024).toFixed(0)} KiB in ${((performance.now() - t) / 1000).toFixed(1)} s${warnings.length ? `; ${warnings.length} warning(s): ${warnings[0].split("\n")[0]}` : ""}`);
    } catch (e) {
      const culprits = nodeImports(proj);
      const hint = culprits.length
        ? `\nThese packages import Node built-ins by name at the top level of their bundles, which a browser bundler cannot satisfy:\n${culprits.join("\n")}\n` +
          "Fix in those packages: keep file access out of the module top level (import the built-in inside the function that needs it, " +
          "e.g. `const { open } = await import(\"node:fs/promises\")`, or use a namespace import), so the browser-safe exports bundle."
        : "";
      fail("vite build", output(e) + hint);
      return;
    }

    // 4. headless Chromium: the page runs its checks and reports them
    if (!fs.existsSync(CHROMIUM)) {
      fail("chromium", `${CHROMIUM} not found (Debian: apt-get install chromium), or set LOWBIT_CHROMIUM`);
      return;
    }
    const server = await serve(dist);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      // once cross-origin isolated (COOP + COEP: kernel threads), once plain (the one-thread fallback)
      for (const [label, url] of [
        ["page", server.url],
        ["plain page", `${server.url}?plain`],
      ]) {
        const page = await browser.newPage();
        // a slow machine is not a failure here: Playwright's 30 s default is too short on a loaded one
        page.setDefaultTimeout(120_000);
        const errors = [];
        page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
        page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
        await page.goto(url);
        await page.waitForFunction(() => window.__lowbitCheck?.done === true, null, { timeout: 120_000 });
        const result = await page.evaluate(() => window.__lowbitCheck);
        const isolated = await page.evaluate(() => globalThis.crossOriginIsolated === true);
        if (isolated !== (label === "page")) fail(`${label}: cross-origin isolation`, `crossOriginIsolated = ${isolated}`);
        for (const c of result.checks) {
          // the plain page repeats the main checks; only its thread check is new (and any failure)
          if (label === "page" || c.name.startsWith("threads") || !c.ok) (c.ok ? ok : fail)(`${label}: ${c.name}`, c.detail);
        }
        if (result.checks.length === 0) fail(label, "the page ran no check");
        if (!result.checks.some((c) => c.name.startsWith("threads"))) fail(label, "the page ran no kernel-threads check");
        if (errors.length) fail(`${label}: no console errors`, errors.join("\n"));
        else ok(`${label}: no console errors`);
        await page.close();
      }
    } catch (e) {
      fail("chromium", output(e));
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    if (keep) console.log(`kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
    console.log(`browser-check: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

try {
  await main();
} catch (e) {
  fail("browser-check", e?.stack ?? e);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
