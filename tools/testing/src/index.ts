import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * The real-data folder: $LOWBIT_DATA, else ../shared/data beside the checkout. Returns undefined
 * when absent so tests can say so clearly.
 */
export function dataDir(): string | undefined {
  const candidates = [process.env.LOWBIT_DATA, path.resolve(repoRoot, "../shared/data")];
  for (const c of candidates) {
    if (c && fs.existsSync(path.join(c, "stories260K", "stories260K.bin"))) return c;
  }
  return undefined;
}

/** Path of a file in the real-data folder; throws a clear error when the folder is missing. */
export function dataFile(...parts: string[]): string {
  const dir = dataDir();
  if (!dir) {
    throw new Error(
      "real data not found: set LOWBIT_DATA or place the shared data folder at ../shared/data beside the checkout",
    );
  }
  return path.join(dir, ...parts);
}

export const hasData = dataDir() !== undefined;

/** A fresh temporary directory under the OS temp folder. */
export function tmpDir(prefix = "lowbit-test-"): string {
  return fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", prefix));
}


export { bitsEqual, CountingMap, fnv1a } from "./helpers";
export { ggmlGoldenInput } from "./ggml-golden";
export { repoRoot };
