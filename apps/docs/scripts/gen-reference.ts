/**
 * Generates the reference pages before `vitepress build`, so they never drift from the code:
 *
 * - reference/cli.md from the CLI's own command definitions (apps/cli/src/cli.ts: `commands`,
 *   lazy loaders of citty commands with `args`, and `rootCommand` for the descriptions);
 * - reference/api/ from the packages' TSDoc with typedoc + typedoc-plugin-markdown, one page per
 *   package (reference/api/<package>.md) and an index;
 * - .vitepress/generated/figures.json, the concept pages' figures computed by the packages;
 * - public/demo/, the playground's trained demo model as GGUF when tools/demo-model has one.
 *
 * Run with the source condition (sibling packages and the CLI are imported from their sources):
 *   node --conditions=@lowbit/source --import tsx scripts/gen-reference.ts [--cli-only|--api-only] [--force]
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderCliReference } from "./cli-reference";
import { API_PACKAGES, renderApiReference } from "./api-reference";
import { writeDemoAsset } from "./demo-asset";
import { computeFigures } from "./figures";

const here = path.dirname(fileURLToPath(import.meta.url));
const docs = path.resolve(here, "..");
const root = path.resolve(docs, "../..");

/** A hash of everything the API pages are generated from (sources, generator, tool versions). */
function apiInputsHash(): string {
  const h = createHash("sha256");
  const add = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) add(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) h.update(p).update(fs.readFileSync(p));
    }
  };
  for (const p of API_PACKAGES) add(path.join(root, "packages", p, "src"));
  add(here);
  for (const dep of ["typedoc", "typedoc-plugin-markdown", "typescript"]) {
    h.update(fs.readFileSync(path.join(docs, "node_modules", dep, "package.json")));
  }
  h.update(fs.readFileSync(path.join(docs, "tsconfig.api.json")));
  return h.digest("hex");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const t0 = performance.now();
  if (!argv.includes("--api-only")) {
    const md = await renderCliReference(root);
    fs.mkdirSync(path.join(docs, "reference"), { recursive: true });
    fs.writeFileSync(path.join(docs, "reference/cli.md"), md);
    console.log(`reference: cli.md (${md.length} chars, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  {
    const t2 = performance.now();
    const figures = computeFigures();
    fs.mkdirSync(path.join(docs, ".vitepress/generated"), { recursive: true });
    fs.writeFileSync(path.join(docs, ".vitepress/generated/figures.json"), `${JSON.stringify(figures)}\n`);
    console.log(`reference: figures.json (${Object.keys(figures).length} figures, ${((performance.now() - t2) / 1000).toFixed(1)} s)`);
  }
  {
    const t3 = performance.now();
    const demo = await writeDemoAsset(root, path.join(docs, "public"));
    console.log(
      demo.available
        ? `reference: public/demo/ (${demo.name} from ${demo.source}, as GGUF, ${((performance.now() - t3) / 1000).toFixed(1)} s)`
        : "reference: public/demo/ (no trained demo model in tools/demo-model/model; the playground makes a random one)",
    );
  }
  if (!argv.includes("--cli-only")) {
    const t1 = performance.now();
    const out = path.join(docs, "reference/api");
    const stamp = path.join(docs, "reference/.api-inputs");
    const hash = apiInputsHash();
    // typedoc takes most of this script's time: skip it when nothing it reads has changed
    if (!argv.includes("--force") && fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === hash && fs.existsSync(path.join(out, "index.md"))) {
      console.log("reference: api/ is up to date with the packages' sources (--force regenerates)");
    } else {
      fs.rmSync(stamp, { force: true });
      const pages = await renderApiReference(root, out);
      fs.writeFileSync(stamp, hash);
      console.log(`reference: api/ (${pages} pages for ${API_PACKAGES.length} packages, ${((performance.now() - t1) / 1000).toFixed(1)} s)`);
    }
  }
}

await main();
