/**
 * The built site in a real browser (Debian's headless Chromium driven by playwright-core): every page
 * renders without console errors, every internal link (and #anchor) resolves, and the playground
 * quantizes the demo model and shows the perplexity the packages compute in Node for the same
 * settings. Uses .vitepress/dist, building it first when it is missing or older than its sources.
 * A screenshot of the playground goes to test-output/playground.png.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type QuantizeReport, quantizeModel } from "@lowbit/calibration";
import { buildModel, evaluate, Llama2cTokenizer, loadLlama2c, memorySource, splitDocuments } from "@lowbit/runtime";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DemoModel, makeDemoModel } from "../.vitepress/theme/playground/demo-model";
import { calibrationSet, DEFAULT_EVAL_TOKENS, DEFAULT_SETTINGS, evalTokens, type ModelInput, pluginFor } from "../.vitepress/theme/playground/session";
import { type DemoManifest, demoModelDir } from "../scripts/demo-asset";
import { hasChromium, launchChromium, openPage } from "./chromium";
import { ensureBuilt, sitePages } from "./site-files";
import { type StaticServer, serveStatic } from "./static-server";

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(docs, ".vitepress/dist");
const outDir = path.join(docs, "test-output");

if (!hasChromium()) {
  throw new Error("these tests need Chromium at /usr/bin/chromium (Debian's package: apt-get install chromium) or LOWBIT_CHROMIUM");
}

let server: StaticServer;
let browser: Browser;

beforeAll(async () => {
  ensureBuilt(docs, (cmd, args) => execFileSync(cmd, args, { cwd: docs, stdio: "inherit" }));
  server = await serveStatic(dist);
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

interface PageVisit {
  errors: string[];
  links: string[];
  h1: string;
}

/** Opens a page, waits until it has rendered (the playground: until its model is ready), and collects errors and links. */
async function visit(page: Page, route: string): Promise<PageVisit> {
  const errors: string[] = [];
  const onConsole = (m: { type(): string; text(): string }) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  };
  const onError = (e: Error) => errors.push(`page error: ${e.message}`);
  // prefetches of linked pages that a navigation cancels fail with ERR_ABORTED: not an error of the page
  const onFailed = (r: { url(): string; failure(): { errorText: string } | null }) => {
    const why = r.failure()?.errorText ?? "";
    if (!why.includes("ERR_ABORTED")) errors.push(`request failed: ${r.url()} ${why}`);
  };
  page.on("console", onConsole);
  page.on("pageerror", onError);
  page.on("requestfailed", onFailed);
  try {
    const res = await page.goto(`${server.url}${route}`, { waitUntil: "load" });
    if (res?.status() !== 200) errors.push(`HTTP ${res?.status()} for ${route}`);
    await page.waitForSelector(".VPContent");
    if (route.includes("playground")) {
      await page.waitForSelector("[data-testid=status][data-state=ready], [data-testid=status][data-state=error]", { timeout: 120_000 });
      const state = await page.getAttribute("[data-testid=status]", "data-state");
      if (state !== "ready") errors.push(`playground: ${await page.textContent("[data-testid=status]")}`);
    }
    const links = await page.$$eval("a[href]", (as) => as.map((a) => (a as HTMLAnchorElement).href));
    // rendered with .VPContent: a page without an h1 fails below, after seconds rather than minutes
    const h1 = (await page.textContent("h1", { timeout: 5_000 }).catch(() => "")) ?? "";
    return { errors, links, h1 };
  } finally {
    page.off("console", onConsole);
    page.off("pageerror", onError);
    page.off("requestfailed", onFailed);
  }
}

/** The file a site URL maps to (as the static server does), or undefined. */
function fileFor(url: URL): string | undefined {
  let file = path.join(dist, decodeURIComponent(url.pathname));
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
  if (!fs.existsSync(file) && fs.existsSync(`${file}.html`)) file = `${file}.html`;
  return fs.existsSync(file) ? file : undefined;
}

const idsCache = new Map<string, Set<string>>();
function idsOf(file: string): Set<string> {
  let ids = idsCache.get(file);
  if (!ids) {
    const html = fs.readFileSync(file, "utf8");
    ids = new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => decodeHtml(m[1]!)));
    idsCache.set(file, ids);
  }
  return ids;
}
const decodeHtml = (s: string) => s.replace(/&amp;/g, "&").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">");

describe("docs site in Chromium", () => {
  // listed once the site is built (beforeAll)
  let pages: string[] = [];
  const visits = new Map<string, PageVisit>();
  beforeAll(() => {
    pages = sitePages(dist);
  });

  it("has the pages the issue asks for", () => {
    for (const p of ["/index.html", "/guide/getting-started.html", "/reference/cli.html", "/reference/api/index.html", "/reference/api/int4.html", "/benchmarks.html", "/playground.html"]) {
      expect(pages, p).toContain(p);
    }
    expect(pages.filter((p) => p.startsWith("/concepts/")).length).toBeGreaterThanOrEqual(8);
    expect(pages.filter((p) => p.startsWith("/how-to/")).length).toBeGreaterThanOrEqual(6);
  });

  it("renders every page without console errors", async () => {
    // three tabs side by side
    const lanes = 3;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        const page = await openPage(browser);
        try {
          for (const route of pages.filter((_, i) => i % lanes === lane)) visits.set(route, await visit(page, route));
        } finally {
          await page.close();
        }
      }),
    );
    for (const route of pages) {
      const v = visits.get(route)!;
      expect(v.errors, route).toEqual([]);
      expect(v.h1.trim().length, `${route} has a title`).toBeGreaterThan(0);
    }
  }, 900_000);

  it("resolves every internal link and anchor", () => {
    expect(visits.size, "pages visited by the test above").toBe(pages.length);
    const broken: string[] = [];
    let checked = 0;
    for (const [route, v] of visits) {
      for (const href of v.links) {
        const url = new URL(href);
        if (url.origin !== server.url) continue;
        checked++;
        const file = fileFor(url);
        if (!file) {
          broken.push(`${route} -> ${url.pathname}`);
          continue;
        }
        const anchor = decodeURIComponent(url.hash.slice(1));
        if (anchor && file.endsWith(".html") && !idsOf(file).has(anchor)) broken.push(`${route} -> ${url.pathname}#${anchor} (no such anchor)`);
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(pages.length * 10);
  });

  it("shows the benchmark charts, or a no-results note, for every suite", async () => {
    const page = await openPage(browser);
    try {
      await page.goto(`${server.url}/benchmarks.html`);
      const suites = await page.$$eval(".lb-suite", (els) => els.length);
      const charts = await page.$$eval(".lb-chart svg rect", (els) => els.length);
      const missing = await page.$$eval(".lb-missing", (els) => els.length);
      expect(suites).toBeGreaterThan(0);
      expect(charts + missing).toBeGreaterThan(0);
      const resultsDir = path.resolve(docs, "../../tools/bench/results");
      const resultFiles = fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir).filter((f) => f.endsWith(".json") && f !== "machine.json") : [];
      const kernelFiles = resultFiles.filter((f) => Array.isArray(JSON.parse(fs.readFileSync(path.join(resultsDir, f), "utf8"))));
      if (kernelFiles.length > 0) expect(charts).toBeGreaterThan(0);
      // accuracy protocols: a table row per method, or the no-results note
      const objectFiles = resultFiles.filter((f) => !kernelFiles.includes(f)).map((f) => JSON.parse(fs.readFileSync(path.join(resultsDir, f), "utf8")));
      const accuracyRows = await page.$$eval(".lb-acc-table tbody tr", (els) => els.length);
      if (objectFiles.some((o) => Array.isArray(o.rows))) expect(accuracyRows).toBeGreaterThan(1);
      else expect(await page.textContent("body")).toContain("No accuracy protocol has been run");
      // whole-model memory and time (tools/bench/src/memory.ts): a row per run, or the no-results note
      const memoryRuns = objectFiles.flatMap((o) => (Array.isArray(o.runs) ? o.runs : []));
      const memoryRows = await page.$$eval(".lb-mem-table tbody tr", (els) => els.length);
      if (memoryRuns.length > 0) expect(memoryRows).toBe(memoryRuns.length);
      else expect(await page.textContent("body")).toContain("No memory measurements yet");
    } finally {
      await page.close();
    }
  }, 300_000);
});

describe("playground in Chromium against Node", () => {
  let random: DemoModel;
  let page: Page;
  const settings = { ...DEFAULT_SETTINGS };
  const root = path.resolve(docs, "../..");

  /** The demo model the build published (public/demo), if any: the page loads it by default. */
  function trainedManifest(): DemoManifest {
    const file = path.join(dist, "demo/manifest.json");
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as DemoManifest) : { available: false };
  }

  /** The page's model as Node sees it: the random model from the same seed, or the trained model read from its llama2.c source. */
  async function nodeInput(kind: "random" | "trained"): Promise<ModelInput> {
    if (kind === "random") {
      return { name: "random", config: random.config, source: () => memorySource(random.tensors), tokenizer: random.tokenizer, calibDocs: random.trainDocs, evalDocs: random.evalDocs };
    }
    const dir = demoModelDir(root);
    const ckpt = path.join(dir, "model.bin");
    const probe = await loadLlama2c(ckpt);
    const config = probe.config;
    probe.dispose();
    const text = (f: string) => splitDocuments(fs.readFileSync(path.join(dir, f), "utf8"));
    return {
      name: "trained",
      config,
      // built by loadLlama2c below; the source is unused
      source: () => {
        throw new Error("unused");
      },
      tokenizer: await Llama2cTokenizer.fromFile(path.join(dir, "tokenizer.bin")),
      calibDocs: text("calibration.txt"),
      evalDocs: text("heldout.txt"),
    };
  }

  /** What the packages compute in Node for a model and a plug-in (data chosen as the page chooses it). */
  async function expected(kind: "random" | "trained", plugin: Parameters<typeof quantizeModel>[2]): Promise<{ ppl: number; fpPpl: number; vocabSize: number; report: QuantizeReport }> {
    const input = await nodeInput(kind);
    const build = () => (kind === "random" ? buildModel(input.config, input.source()) : loadLlama2c(path.join(demoModelDir(root), "model.bin")));
    const fp = await build();
    const q = await build();
    try {
      const report = await quantizeModel(q, calibrationSet(input, settings), plugin);
      const r = evaluate(q, evalTokens(input, settings.seqLen), { windowLength: settings.seqLen, reference: fp });
      return { ppl: r.perplexity, fpPpl: r.referencePerplexity!, vocabSize: input.config.vocabSize, report };
    } finally {
      fp.dispose();
      q.dispose();
    }
  }

  async function waitReady(): Promise<void> {
    await page.waitForSelector("[data-testid=status][data-state=ready], [data-testid=status][data-state=error]", { timeout: 180_000 });
    expect(await page.getAttribute("[data-testid=status]", "data-state"), (await page.textContent("[data-testid=status]")) ?? "").toBe("ready");
  }

  async function useModel(kind: "random" | "trained"): Promise<void> {
    if ((await page.getAttribute("[data-testid=model-summary]", "data-kind")) === kind) return;
    await page.click(kind === "random" ? "[data-testid=load-demo]" : "[data-testid=load-trained]");
    await page.waitForSelector(`[data-testid=model-summary][data-kind=${kind}]`, { timeout: 120_000 });
    await waitReady();
  }

  async function quantizeInPage(method: string, bits: number, groupSize: number): Promise<{ ppl: number; fpPpl: number }> {
    await page.selectOption("[data-testid=method]", method);
    await page.selectOption("[data-testid=bits]", String(bits));
    await page.selectOption("[data-testid=group-size]", String(groupSize));
    await page.click("[data-testid=quantize]");
    await page.waitForSelector("[data-testid=status][data-state=working]", { timeout: 10_000 }).catch(() => {});
    await waitReady();
    return {
      ppl: Number(await page.getAttribute("[data-testid=ppl-q]", "data-value")),
      fpPpl: Number(await page.getAttribute("[data-testid=ppl-fp]", "data-value")),
    };
  }

  beforeAll(async () => {
    random = await makeDemoModel();
    page = await openPage(browser, { viewport: { width: 1280, height: 1000 } });
    await page.goto(`${server.url}/playground.html`);
    await page.waitForSelector("[data-testid=model-summary]", { timeout: 120_000 });
    await waitReady();
    // above the sum of the waits (navigation 120 s, summary 120 s, ready 180 s), so a slow page
    // fails with Playwright's message rather than the hook's
  }, 480_000);

  afterAll(async () => {
    await page?.close();
  });

  it("runs on the WebAssembly SIMD kernels, starting with the trained demo model when the build has one", async () => {
    expect(await page.textContent("[data-testid=kernels]")).toBe("WebAssembly SIMD");
    const kind = await page.getAttribute("[data-testid=model-summary]", "data-kind");
    expect(kind).toBe(trainedManifest().available ? "trained" : "random");
    if (kind === "random") expect(await page.textContent("[data-testid=model-summary]")).toContain("4 layers, dim 128");
  });

  it.each([
    // model, method, bits, group size, tolerance on perplexity (relative): the page runs packed
    // Int4Linear kernels, Node the f32 dequantized weights, so sums differ in rounding only
    ["default", "rtn", 4, 32, 1e-3],
    ["random", "gptq", 3, 64, 1e-3],
    ["random", "awq", 4, 32, 1e-3],
  ] as const)("quantizes the %s demo model with %s at %i bits, group %i, to Node's perplexity", async (which, method, bits, groupSize, tol) => {
    const kind = which === "default" ? (trainedManifest().available ? "trained" : "random") : which;
    await useModel(kind);
    const inPage = await quantizeInPage(method, bits, groupSize);
    // the plug-in the page builds for these settings (AWQ on the page's coarser search grid)
    const plugin = pluginFor({ ...DEFAULT_SETTINGS, method, bits, groupSize });
    const node = await expected(kind, plugin);
    expect(node.report.records.length).toBeGreaterThan(0);
    expect(Math.abs(inPage.fpPpl - node.fpPpl) / node.fpPpl).toBeLessThan(1e-4);
    expect(Math.abs(inPage.ppl - node.ppl) / node.ppl).toBeLessThan(tol);
    // quantization costs something, and the model is better than a uniform guess
    expect(node.ppl).toBeGreaterThan(node.fpPpl);
    expect(node.fpPpl).toBeLessThan(node.vocabSize);
  }, 240_000);

  it("shows the perplexity the CLI reports for the same settings (lowbit demo --json on the trained demo model)", async () => {
    if (!trainedManifest().available) throw new Error("the site build has no trained demo model (demo/manifest.json); the playground-vs-CLI check needs it");
    await useModel("trained");
    const s = DEFAULT_SETTINGS;
    const inPage = await quantizeInPage(s.method, s.bits, s.groupSize);
    const cliDir = path.resolve(docs, "../cli");
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "lowbit-docs-cli-"));
    try {
      const stdout = execFileSync(
        process.execPath,
        ["--conditions=@lowbit/source", "--import", "tsx", "src/main.ts", "demo", "--methods", s.method, "--bits", String(s.bits), "--group-size", String(s.groupSize),
          "--samples", String(s.calibWindows), "--seq-len", String(s.seqLen), "--eval-tokens", String(DEFAULT_EVAL_TOKENS), "--seed", String(s.seed), "--out", out, "--json"],
        { cwd: cliDir, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
      );
      const cli = JSON.parse(stdout) as { baseline: { eval: { perplexity: number } }; runs: Array<{ method: string; bits: number; eval: { perplexity: number } }> };
      const run = cli.runs.find((r) => r.method === s.method && r.bits === s.bits);
      expect(run, stdout.slice(0, 400)).toBeDefined();
      // the page runs packed Int4Linear kernels in the browser, the CLI the same kernels in Node
      expect(Math.abs(inPage.fpPpl - cli.baseline.eval.perplexity) / cli.baseline.eval.perplexity).toBeLessThan(1e-4);
      expect(Math.abs(inPage.ppl - run!.eval.perplexity) / run!.eval.perplexity).toBeLessThan(1e-3);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 240_000);

  it.each([
    ["a llama2.c checkpoint with its tokenizer", ["model.bin", "tokenizer.bin"]],
    ["a GGUF file", ["demo.gguf"]],
  ] as const)("loads %s chosen in the file picker, and quantizes it", async (_what, names) => {
    if (!trainedManifest().available) throw new Error("the site build has no trained demo model; the file-picker check loads its files");
    const files = names.map((n) => (n === "demo.gguf" ? path.join(dist, "demo", n) : path.join(demoModelDir(root), n)));
    for (const f of files) expect(fs.existsSync(f), f).toBe(true);
    await page.setInputFiles("input[type=file]", [...files]);
    await page.waitForSelector("[data-testid=model-summary][data-kind=file]", { timeout: 120_000 });
    await waitReady();
    const summary = (await page.textContent("[data-testid=model-summary]")) ?? "";
    const probe = await loadLlama2c(path.join(demoModelDir(root), "model.bin"));
    const cfg = probe.config;
    probe.dispose();
    expect(summary).toContain(names[0]); // the model row names the file that was read
    expect(summary).toContain(`${cfg.nLayers} layers, dim ${cfg.dim}`);
    expect(summary).toContain(`vocabulary ${cfg.vocabSize}`);
    // no results shown for a freshly loaded model until it is quantized
    expect(await page.$("[data-testid=results]")).toBeNull();
    const r = await quantizeInPage("rtn", 4, 32);
    expect(Number.isFinite(r.ppl) && Number.isFinite(r.fpPpl)).toBe(true);
    expect(r.ppl).toBeGreaterThan(r.fpPpl);
    expect(r.fpPpl).toBeLessThan(cfg.vocabSize);
  }, 240_000);

  it("draws the error chart and histogram, generates from both models, and saves a screenshot", async () => {
    await useModel(trainedManifest().available ? "trained" : "random");
    await quantizeInPage("rtn", 4, 32);
    expect(await page.$$eval("[data-testid=results] svg rect", (els) => els.length)).toBeGreaterThanOrEqual(28 + 60);
    // the group strip: one FP and one quantized dot per weight of the group
    const dots = await page.$$eval("[data-testid=results] svg circle", (els) => els.length);
    expect(dots % 2).toBe(0);
    expect(dots).toBeGreaterThanOrEqual(2 * 16);
    await page.click("[data-testid=generate]");
    await page.waitForSelector("[data-testid=gen-q]", { timeout: 60_000 });
    const prompt = await page.inputValue("[data-testid=prompt]");
    const fpText = (await page.textContent("[data-testid=gen-fp]")) ?? "";
    const qText = (await page.textContent("[data-testid=gen-q]")) ?? "";
    expect(fpText.startsWith(prompt)).toBe(true);
    expect(fpText.length).toBeGreaterThan(prompt.length + 20);
    expect(qText.length).toBeGreaterThan(prompt.length + 20);
    fs.mkdirSync(outDir, { recursive: true });
    // fixed headers would be painted mid-page in a full-page screenshot
    await page.addStyleTag({ content: ".VPNav, .VPLocalNav, .VPSidebar { position: absolute !important; }" });
    await page.screenshot({ path: path.join(outDir, "playground.png"), fullPage: true });
    expect(fs.statSync(path.join(outDir, "playground.png")).size).toBeGreaterThan(50_000);
  }, 240_000);
});
