// Copies the demo model trained by tools/demo-model (model.bin, tokenizer.bin, calibration.txt,
// heldout.txt, model-card.json) into assets/demo-model, so the built package ships it and
// `lowbit demo` runs on a fresh install with nothing downloaded. Run by `pnpm build`; does nothing
// (and says so) when the model has not been trained yet.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const from = resolve(here, "../../../tools/demo-model/model");
const to = resolve(here, "../assets/demo-model");
const files = ["model.bin", "tokenizer.bin", "calibration.txt", "heldout.txt"];
if (!files.every((f) => existsSync(join(from, f)))) {
  console.log(`copy-demo-model: no trained demo model in ${from}; lowbit demo will look there or use the real-data folder`);
  process.exit(0);
}
const tmp = `${to}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
for (const f of [...files, "model-card.json"]) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(tmp, f));
rmSync(to, { recursive: true, force: true });
renameSync(tmp, to);
console.log(`copy-demo-model: ${from} -> ${to}`);
