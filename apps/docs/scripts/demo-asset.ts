/**
 * The playground's trained demo model, when the repository has one: tools/demo-model/model/ holds a
 * llama2.c checkpoint (model.bin), its tokenizer (tokenizer.bin), held-out and calibration text and
 * a model card. The build converts the model to one GGUF file (checkpoint and vocabulary together)
 * with @lowbit/formats' own writer and publishes it with the texts under public/demo/ (git-ignored);
 * the page reads it from bytes with parseGguf. public/demo/manifest.json says whether a trained
 * model is there; without one the playground makes its seeded random model.
 *
 * LOWBIT_DEMO_MODEL_DIR points at another folder of the same layout (tests, experiments).
 */
import fs from "node:fs";
import path from "node:path";
import { llama2cToGguf, readLlama2cCheckpoint, readLlama2cTokenizer, writeGguf } from "@lowbit/formats";

export interface DemoManifest {
  available: boolean;
  /** Shown in the page. */
  name?: string;
  /** Files under /demo/. */
  gguf?: string;
  heldout?: string;
  calibration?: string;
  /** The model card's held-out perplexity and description, when it has them. */
  card?: { perplexity?: number; corpus?: string; parameters?: number };
  /** Where it came from (relative to the repository). */
  source?: string;
}

export function demoModelDir(root: string): string {
  return process.env.LOWBIT_DEMO_MODEL_DIR ? path.resolve(process.env.LOWBIT_DEMO_MODEL_DIR) : path.join(root, "tools/demo-model/model");
}

/** Writes public/demo/ (manifest.json always; the model and texts when a trained model exists). */
export async function writeDemoAsset(root: string, publicDir: string): Promise<DemoManifest> {
  const src = demoModelDir(root);
  const out = path.join(publicDir, "demo");
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const model = path.join(src, "model.bin");
  const tok = path.join(src, "tokenizer.bin");
  let manifest: DemoManifest = { available: false };
  if (fs.existsSync(model) && fs.existsSync(tok)) {
    const ckpt = await readLlama2cCheckpoint(model);
    const tokenizer = await readLlama2cTokenizer(tok, { expectedVocabSize: ckpt.config.vocabSize });
    let cardJson: Record<string, unknown> = {};
    const cardFile = path.join(src, "model-card.json");
    if (fs.existsSync(cardFile)) cardJson = JSON.parse(fs.readFileSync(cardFile, "utf8")) as Record<string, unknown>;
    const name = typeof cardJson.name === "string" ? cardJson.name : "lowbit demo model";
    await writeGguf(path.join(out, "demo.gguf"), llama2cToGguf(ckpt, tokenizer, { name }));
    manifest = { available: true, name, gguf: "demo.gguf", source: path.relative(root, src) || src };
    for (const f of ["heldout.txt", "calibration.txt"] as const) {
      if (!fs.existsSync(path.join(src, f))) continue;
      fs.copyFileSync(path.join(src, f), path.join(out, f));
      manifest[f === "heldout.txt" ? "heldout" : "calibration"] = f;
    }
    const held = cardJson.heldOut as { perplexity?: unknown } | undefined;
    manifest.card = {
      ...(typeof held?.perplexity === "number" ? { perplexity: held.perplexity } : {}),
      ...(typeof cardJson.corpus === "string" ? { corpus: cardJson.corpus } : {}),
      ...(typeof cardJson.parameters === "number" ? { parameters: cardJson.parameters } : {}),
    };
  }
  fs.writeFileSync(path.join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
