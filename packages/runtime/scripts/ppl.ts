/**
 * Perplexity of stories260K (f32) on a fixed slice of TinyStories validation text:
 * split tinystories-valid.txt into stories on blank lines, take the second half of the stories,
 * encode each with BOS and concatenate, keep the first 100,000 tokens, and evaluate 256-token
 * windows (see evaluate() for the window convention). Reference FP32 value: 7.4561.
 *
 *   pnpm --filter @lowbit/runtime ppl [--window 256] [--tokens 100000]
 */
import fs from "node:fs";
import { dataFile } from "@lowbit/testing";
import { documentHalf, encodeDocuments, evaluate, Llama2cTokenizer, loadLlama2c, splitDocuments } from "../src/index";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const windowLength = arg("window", 256);
const maxTokens = arg("tokens", 100_000);
const model = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
const tokenizer = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
const stories = splitDocuments(fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8"));
const evalStories = documentHalf(stories, "second");
const tokens = encodeDocuments(tokenizer, evalStories, maxTokens);
const t0 = performance.now();
const r = evaluate(model, tokens, { windowLength });
const s = (performance.now() - t0) / 1000;
console.log(`stories: ${stories.length} (evaluating the second half: ${evalStories.length})`);
console.log(`tokens: ${tokens.length}, windows: ${r.windows} x ${windowLength}, scored predictions: ${r.scored}`);
console.log(`stories260K f32 perplexity: ${r.perplexity.toFixed(4)} (mean NLL ${r.meanNll.toFixed(4)} nats) in ${s.toFixed(1)} s`);
