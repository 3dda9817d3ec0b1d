/**
 * The GGUF files of the end-to-end suite, made with lowbit's own tools outside the repository
 * (default folder /tmp/lowbit-e2e, or $LOWBIT_E2E_DIR) and reused when present:
 *
 * - stories260K: `pnpm lowbit convert stories260K.bin --to gguf --gguf-type q8_0|q4_0`;
 * - gen-100m: `gen-model.ts --preset 100m` (a seeded random LLaMA as a Hugging Face folder with a
 *   tokenizer), then the same conversion.
 *
 * Both runtimes read the very same file.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dataFile } from "@lowbit/testing";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../../..");

export type GgufType = "q8_0" | "q4_0";

export interface E2EModel {
  /** "stories260K" or "gen-100m". */
  name: string;
  /** The command that made the source model (for the records). */
  source: string;
}

export const MODELS: readonly E2EModel[] = [
  { name: "stories260K", source: "/work/shared/data/stories260K/stories260K.bin (llama2.c)" },
  { name: "gen-100m", source: "node --conditions=@lowbit/source --import tsx tools/bench/src/gen-model.ts --preset 100m --out DIR (seed 0)" },
];

export function workDir(): string {
  const dir = process.env.LOWBIT_E2E_DIR ?? "/tmp/lowbit-e2e";
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function node(args: string[], log: (m: string) => void): void {
  log(`$ node ${args.join(" ")}`);
  execFileSync(process.execPath, ["--conditions=@lowbit/source", "--import", "tsx", ...args], { cwd: repoRoot, stdio: ["ignore", "ignore", "inherit"] });
}

/** The source model of `name` (converted on first use). */
function sourceModel(name: string, log: (m: string) => void): string {
  if (name === "stories260K") return dataFile("stories260K", "stories260K.bin");
  if (name === "gen-100m") {
    const dir = path.join(workDir(), "gen-100m");
    if (!fs.existsSync(path.join(dir, "generated.json"))) {
      node([path.join(repoRoot, "tools/bench/src/gen-model.ts"), "--preset", "100m", "--out", dir, "--force"], log);
    }
    return dir;
  }
  throw new Error(`unknown e2e model ${name}`);
}

/** The GGUF of model `name` in `type`, written by `lowbit convert` when missing. Returns its path. */
export function ggufFile(name: string, type: GgufType, log: (m: string) => void): { file: string; command: string } {
  const file = path.join(workDir(), `${name}-${type}.gguf`);
  const src = sourceModel(name, log);
  const command = `pnpm lowbit convert ${src} --to gguf --gguf-type ${type} --out ${file}`;
  if (!fs.existsSync(file)) {
    node([path.join(repoRoot, "apps/cli/src/main.ts"), "convert", src, "--to", "gguf", "--gguf-type", type, "--out", file], log);
  }
  return { file, command };
}
