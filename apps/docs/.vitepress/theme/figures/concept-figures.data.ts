/**
 * VitePress data loader for the concept pages' figures (granularity, AWQ, QAT, mixed precision,
 * file formats). The figures are computed by lowbit's packages, which load from their TypeScript
 * sources under the `@lowbit/source` condition, so the computation runs in its own Node process
 * with that condition and tsx (as scripts/gen-reference.ts is run) and hands back JSON.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ConceptFigure } from "./concept-figures";

const here = path.dirname(fileURLToPath(import.meta.url));
const docs = path.resolve(here, "../../..");
const script = path.join(here, "concept-figures.ts");

export type { ConceptFigure };

/** What pages and components import: the figures by id. */
export declare const data: Record<string, ConceptFigure>;

export default {
  watch: [path.join(here, "concept-figures.ts"), path.resolve(docs, "../../tools/bench/results/ptq-protocol.json")],
  load(): Record<string, ConceptFigure> {
    const out = execFileSync(process.execPath, ["--conditions=@lowbit/source", "--import", "tsx", script], {
      cwd: docs,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["ignore", "pipe", "inherit"],
    });
    return JSON.parse(out) as Record<string, ConceptFigure>;
  },
};
