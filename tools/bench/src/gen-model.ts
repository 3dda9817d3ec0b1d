/**
 * Generates a seeded random LLaMA-architecture model as a Hugging Face folder, for memory and
 * timing measurements on models larger than any real one on this machine:
 *
 * - config.json (architectures ["LlamaForCausalLM"], model_type "llama", half-split RoPE as HF
 *   checkpoints use), generation_config.json;
 * - sharded safetensors through @lowbit/formats' writeSafetensors, one shard for the embedding,
 *   one per decoder layer, one for the final norm and lm_head, plus model.safetensors.index.json
 *   (metadata.total_size, weight_map). Each shard is generated, written and dropped before the
 *   next, so generation holds at most one decoder layer in memory;
 * - tokenizer.bin: stories260K's llama2.c tokenizer extended to the vocabulary size with distinct
 *   extra pieces (see gen-tokenizer.ts); the CLI reads it and `lowbit convert --to gguf` carries it
 *   into llama.cpp's tokenizer metadata;
 * - generated.json: the generator's settings (preset, dims, seed, parameter count, bytes).
 *
 * Weights: projections N(0, 1/fan_in) (std 1/sqrt(in)), the embedding N(0, 1), lm_head
 * N(0, 1/dim), RMSNorm weights 1 + N(0, 0.05^2), so activations and logits stay O(1) through any
 * depth. Every tensor has its own stream seeded from (seed, tensor name): the same seed gives the
 * same bytes whatever the order or dtype option.
 *
 * Usage: pnpm --filter @lowbit/bench gen-model --preset 100m|4g|tiny --out /ABS/DIR [--seed S]
 *          [--dim N --hidden N --layers N --heads N --kv-heads N --vocab N --seq-len N]
 *          [--dtype f32|f16|bf16] [--tied] [--force]
 * (pnpm runs the script in tools/bench, so give --out as an absolute path outside the repository.)
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { type SafetensorsTensorInput, writeSafetensors } from "@lowbit/formats";
import { encodeBf16, encodeF16, LowbitError, Rng } from "@lowbit/tensor";
import { dataFile, repoRoot } from "@lowbit/testing";
import { generatedTokenizerBytes } from "./gen-tokenizer";

export interface GenModelSpec {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  maxSeqLen: number;
  tied: boolean;
  dtype: "f32" | "f16" | "bf16";
}

export const PRESETS: Record<string, GenModelSpec> = {
  /** A few MB: for checking the generator and the tools quickly. */
  tiny: { dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 4, nKvHeads: 4, vocabSize: 1024, maxSeqLen: 512, tied: false, dtype: "f32" },
  /** 134M parameters (85M in the 12 decoder layers, 24.6M each in embedding and lm_head), 537 MB f32. */
  "100m": { dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 32000, maxSeqLen: 2048, tied: false, dtype: "f32" },
  /** LLaMA-7B-wide layers, 5 of them: 1.27B parameters, 5.10 GB f32 (> 4 GiB); 810 MB per decoder layer. */
  "4g": { dim: 4096, hiddenDim: 11008, nLayers: 5, nHeads: 32, nKvHeads: 32, vocabSize: 32000, maxSeqLen: 2048, tied: false, dtype: "f32" },
};

interface GenTensor {
  name: string;
  shape: [number] | [number, number];
  /** Standard deviation around `mean`. */
  std: number;
  mean: number;
}

function layerTensors(s: GenModelSpec, i: number): GenTensor[] {
  const headDim = s.dim / s.nHeads;
  const kv = s.nKvHeads * headDim;
  const p = `model.layers.${i}.`;
  const w = (name: string, out: number, inn: number): GenTensor => ({ name: p + name, shape: [out, inn], std: 1 / Math.sqrt(inn), mean: 0 });
  const norm = (name: string): GenTensor => ({ name: p + name, shape: [s.dim], std: 0.05, mean: 1 });
  return [
    norm("input_layernorm.weight"),
    w("self_attn.q_proj.weight", s.dim, s.dim),
    w("self_attn.k_proj.weight", kv, s.dim),
    w("self_attn.v_proj.weight", kv, s.dim),
    w("self_attn.o_proj.weight", s.dim, s.dim),
    norm("post_attention_layernorm.weight"),
    w("mlp.gate_proj.weight", s.hiddenDim, s.dim),
    w("mlp.up_proj.weight", s.hiddenDim, s.dim),
    w("mlp.down_proj.weight", s.dim, s.hiddenDim),
  ];
}

/** The model's tensors grouped into shards: embedding, each decoder layer, final norm + lm_head. */
export function shardPlan(s: GenModelSpec): GenTensor[][] {
  const shards: GenTensor[][] = [[{ name: "model.embed_tokens.weight", shape: [s.vocabSize, s.dim], std: s.tied ? 1 / Math.sqrt(s.dim) : 1, mean: 0 }]];
  for (let i = 0; i < s.nLayers; i++) shards.push(layerTensors(s, i));
  const last: GenTensor[] = [{ name: "model.norm.weight", shape: [s.dim], std: 0.05, mean: 1 }];
  if (!s.tied) last.push({ name: "lm_head.weight", shape: [s.vocabSize, s.dim], std: 1 / Math.sqrt(s.dim), mean: 0 });
  shards.push(last);
  return shards;
}

const numelOf = (t: GenTensor) => t.shape.reduce((a, b) => a * b, 1);

/** Parameter counts: total, in decoder layers, and of the largest decoder layer. */
export function countParams(s: GenModelSpec): { total: number; decoder: number; perLayer: number } {
  const shards = shardPlan(s);
  const total = shards.flat().reduce((a, t) => a + numelOf(t), 0);
  const perLayer = shards[1]!.reduce((a, t) => a + numelOf(t), 0);
  return { total, decoder: perLayer * s.nLayers, perLayer };
}

const BYTES = { f32: 4, f16: 2, bf16: 2 } as const;
const ST_DTYPE = { f32: "F32", f16: "F16", bf16: "BF16" } as const;
const TORCH_DTYPE = { f32: "float32", f16: "float16", bf16: "bfloat16" } as const;

/** FNV-1a of a tensor name, mixed with the seed into the tensor's own stream seed. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) + seed * 4294967296;
}

function generate(t: GenTensor, seed: number, dtype: GenModelSpec["dtype"]): ArrayBufferView {
  const data = new Rng(tensorSeed(seed, t.name)).fillNormal(new Float32Array(numelOf(t)), t.mean, t.std);
  return dtype === "f32" ? data : dtype === "f16" ? encodeF16(data) : encodeBf16(data);
}

export function hfConfig(s: GenModelSpec): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: s.dim,
    intermediate_size: s.hiddenDim,
    num_hidden_layers: s.nLayers,
    num_attention_heads: s.nHeads,
    num_key_value_heads: s.nKvHeads,
    vocab_size: s.vocabSize,
    max_position_embeddings: s.maxSeqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: "silu",
    tie_word_embeddings: s.tied,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: TORCH_DTYPE[s.dtype],
  };
}

export interface GeneratedModel {
  dir: string;
  spec: GenModelSpec;
  seed: number;
  params: { total: number; decoder: number; perLayer: number };
  /** Tensor bytes of the whole model and of one decoder layer. */
  weightBytes: number;
  layerBytes: number;
  seconds: number;
}

/** Writes the model folder `dir` (created if missing; refuses a non-empty folder unless `force`). */
export async function generateModel(dir: string, spec: GenModelSpec, seed: number, options: { force?: boolean; log?: (msg: string) => void } = {}): Promise<GeneratedModel> {
  const { dim, nHeads, nKvHeads } = spec;
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0 || nHeads % nKvHeads !== 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `dim ${dim} must split into ${nHeads} heads of even size, and ${nHeads} heads into ${nKvHeads} key/value heads`);
  }
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    if (!options.force) throw new LowbitError("E_INVALID_ARGUMENT", `${dir} is not empty; pass --force to overwrite it`);
    fs.rmSync(dir, { recursive: true });
  }
  fs.mkdirSync(dir, { recursive: true });
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  const shards = shardPlan(spec);
  const n = shards.length;
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let k = 0; k < n; k++) {
    const file = `model-${String(k + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
    const tensors: SafetensorsTensorInput[] = shards[k]!.map((t) => ({ name: t.name, dtype: ST_DTYPE[spec.dtype], shape: t.shape, data: generate(t, seed, spec.dtype) }));
    await writeSafetensors(path.join(dir, file), tensors, { format: "pt" });
    for (const t of tensors) {
      weightMap[t.name] = file;
      totalSize += t.data.byteLength;
    }
    log(`  ${file}: ${tensors.length} tensors, ${(tensors.reduce((a, t) => a + t.data.byteLength, 0) / 1e6).toFixed(1)} MB`);
  }
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, "config.json"), `${JSON.stringify(hfConfig(spec), null, 2)}\n`);
  fs.writeFileSync(path.join(dir, "generation_config.json"), `${JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, "tokenizer.bin"), await generatedTokenizerBytes(dataFile("stories260K", "tok512.bin"), spec.vocabSize, seed));
  const params = countParams(spec);
  const result: GeneratedModel = {
    dir,
    spec,
    seed,
    params,
    weightBytes: totalSize,
    layerBytes: params.perLayer * BYTES[spec.dtype],
    seconds: (performance.now() - t0) / 1000,
  };
  const { dir: _dir, ...record } = result;
  fs.writeFileSync(path.join(dir, "generated.json"), `${JSON.stringify({ generator: "tools/bench/src/gen-model.ts", ...record }, null, 2)}\n`);
  return result;
}

/** The settings of a folder written by generateModel, or undefined when it is not one (or incomplete). */
export function readGenerated(dir: string): (Omit<GeneratedModel, "dir"> & { generator: string }) | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "generated.json"), "utf8"));
  } catch {
    return undefined;
  }
}

/** A spec from a preset name and optional overrides of single dimensions. */
export function specFrom(preset: string | undefined, o: Partial<GenModelSpec>): GenModelSpec {
  const base = preset === undefined ? undefined : PRESETS[preset];
  if (preset !== undefined && !base) throw new LowbitError("E_INVALID_ARGUMENT", `unknown preset "${preset}"; choose ${Object.keys(PRESETS).join(", ")}`);
  const merged = { ...(base ?? PRESETS.tiny!), ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as GenModelSpec;
  if (!base && merged.nKvHeads > merged.nHeads) merged.nKvHeads = merged.nHeads;
  return merged;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preset: { type: "string" },
      out: { type: "string" },
      seed: { type: "string", default: "0" },
      dim: { type: "string" },
      hidden: { type: "string" },
      layers: { type: "string" },
      heads: { type: "string" },
      "kv-heads": { type: "string" },
      vocab: { type: "string" },
      "seq-len": { type: "string" },
      dtype: { type: "string" },
      tied: { type: "boolean" },
      force: { type: "boolean", default: false },
    },
  });
  if (!values.out) throw new LowbitError("E_INVALID_ARGUMENT", "--out DIR is required (use a temporary folder, e.g. /tmp/lowbit-gen/100m, never the repository)");
  const int = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isSafeInteger(x) || x <= 0) throw new LowbitError("E_INVALID_ARGUMENT", `--${flag} must be a positive integer, got ${v}`);
    return x;
  };
  const dtype = values.dtype as GenModelSpec["dtype"] | undefined;
  if (dtype !== undefined && !(dtype in BYTES)) throw new LowbitError("E_INVALID_ARGUMENT", `--dtype must be f32, f16 or bf16, got ${dtype}`);
  const spec = specFrom(values.preset, {
    dim: int(values.dim, "dim"),
    hiddenDim: int(values.hidden, "hidden"),
    nLayers: int(values.layers, "layers"),
    nHeads: int(values.heads, "heads"),
    nKvHeads: int(values["kv-heads"], "kv-heads"),
    vocabSize: int(values.vocab, "vocab"),
    maxSeqLen: int(values["seq-len"], "seq-len"),
    tied: values.tied,
    dtype,
  });
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 20) throw new LowbitError("E_INVALID_ARGUMENT", `--seed must be an integer in [0, 2^20), got ${values.seed}`);
  const dir = path.resolve(values.out);
  if (dir === repoRoot || dir.startsWith(repoRoot + path.sep)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `--out ${dir} is inside the repository; generated models go in a temporary folder (e.g. /tmp/lowbit-gen/100m)`);
  }
  const p = countParams(spec);
  console.log(
    `generating ${dir}: dim ${spec.dim}, hidden ${spec.hiddenDim}, ${spec.nLayers} layers, ${spec.nHeads}/${spec.nKvHeads} heads, vocab ${spec.vocabSize}, ` +
      `${(p.total / 1e6).toFixed(1)}M params (${(p.total * BYTES[spec.dtype] / 1e9).toFixed(2)} GB ${spec.dtype}), seed ${seed}`,
  );
  const g = await generateModel(dir, spec, seed, { force: values.force, log: console.log });
  console.log(`wrote ${(g.weightBytes / 1e9).toFixed(2)} GB of weights in ${g.seconds.toFixed(1)} s; one decoder layer is ${(g.layerBytes / 1e6).toFixed(1)} MB`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
