import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The folder of the `lowbit` package (apps/cli), found from this module's location. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "lowbit") return dir;
      } catch {
        // keep looking
      }
    }
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), "..");
}

export interface DemoSource {
  /** What the demo runs on, said to the user. */
  label: string;
  model: string;
  tokenizer?: string;
  calib: string;
  eval: string;
  /** Split one text file into halves: calibration = first half of its documents, evaluation = second. */
  splitHalves: boolean;
  note?: string;
}

/**
 * The demo model: the one embedded in the package (assets/demo-model), else the one the
 * repository's training script wrote (tools/demo-model/model), else stories260K from the real-data
 * folder ($LOWBIT_DATA or ../shared/data beside the checkout), saying so.
 */
export function findDemoSource(env: Record<string, string | undefined> = process.env): DemoSource | undefined {
  const root = packageRoot();
  const candidates = [
    { dir: join(root, "assets", "demo-model"), label: "the embedded demo model" },
    { dir: resolve(root, "../../tools/demo-model/model"), label: "the demo model trained by tools/demo-model" },
  ];
  for (const c of candidates) {
    const files = ["model.bin", "tokenizer.bin", "calibration.txt", "heldout.txt"].map((f) => join(c.dir, f));
    if (files.every((f) => existsSync(f))) {
      return { label: c.label, model: files[0]!, tokenizer: files[1]!, calib: files[2]!, eval: files[3]!, splitHalves: false };
    }
  }
  const dataDirs = [env.LOWBIT_DATA, resolve(root, "../../../shared/data")].filter((d): d is string => !!d);
  for (const d of dataDirs) {
    const model = join(d, "stories260K", "stories260K.bin");
    const text = join(d, "text", "tinystories-valid.txt");
    if (existsSync(model) && existsSync(text)) {
      return {
        label: "stories260K (from the real-data folder)",
        model,
        tokenizer: join(d, "stories260K", "tok512.bin"),
        calib: text,
        eval: text,
        splitHalves: true,
        note: `The embedded demo model is not in this build yet, so the demo runs on stories260K from ${d}: calibration on the first half of the documents of tinystories-valid.txt, evaluation on the second half.`,
      };
    }
  }
  return undefined;
}
