/**
 * Generates the reference pages before `vitepress build`, so they never drift from the code:
 *
 * - reference/cli.md from the CLI's own command definitions (apps/cli/src/cli.ts: `commands`,
 *   lazy loaders of citty commands with `args`, and `rootCommand` for the descriptions);
 * - reference/api/ from the packages' TSDoc with typedoc + typedoc-plugin-markdown, one page per
 *   package (reference/api/<package>.md) and an index.
 *
 * Run with the source condition (sibling packages and the CLI are imported from their sources):
 *   node --conditions=@lowbit/source --import tsx scripts/gen-reference.ts [--cli-only|--api-only]
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderCliReference } from "./cli-reference";
import { API_PACKAGES, renderApiReference } from "./api-reference";

const here = path.dirname(fileURLToPath(import.meta.url));
const docs = path.resolve(here, "..");
const root = path.resolve(docs, "../..");

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const t0 = performance.now();
  if (!argv.includes("--api-only")) {
    const md = await renderCliReference(root);
    fs.mkdirSync(path.join(docs, "reference"), { recursive: true });
    fs.writeFileSync(path.join(docs, "reference/cli.md"), md);
    console.log(`reference: cli.md (${md.length} chars, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  if (!argv.includes("--cli-only")) {
    const t1 = performance.now();
    const pages = await renderApiReference(root, path.join(docs, "reference/api"));
    console.log(`reference: api/ (${pages} pages for ${API_PACKAGES.length} packages, ${((performance.now() - t1) / 1000).toFixed(1)} s)`);
  }
}

await main();
