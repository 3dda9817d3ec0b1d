/**
 * End to end (issue 9): prefill and decode tokens/s of lowbit's runtime against llama.cpp
 * (node-llama-cpp 3.21.1, prebuilt CPU binary) on the same GGUF files, greedy, same prompt ids:
 * stories260K and a generated LLaMA (gen-model.ts --preset 100m) in Q8_0 and Q4_0.
 *
 * - Prefill: a `prefill`-token prompt (BOS + TinyStories text through the file's own tokenizer) in
 *   one forward pass, up to the first greedy token. lowbit: LlamaModel.forward(prompt, cache,
 *   "last") (every linear's GEMM with M = prompt length); llama.cpp: sequence.evaluate(prompt) up
 *   to its first token, the prompt in one batch.
 * - Decode: `decode` more greedy tokens, one forward pass each.
 * - Both at 1 thread (lowbit's kernel threads 1, llama.cpp threads {ideal: 1, min: 1}), then both at
 *   2 threads (lowbit: setKernelThreads(2) of @lowbit/tensor, which only kernels that split their
 *   work use). Runs are interleaved (every repeat runs each backend once, in an order rotated per
 *   repeat) after one warm-up each; medians of the repeats.
 * - lowbit as loadGguf loads the file ("lowbit": Q8_0 and Q4_0 with Q8_0 activation blocks,
 *   llama.cpp's arithmetic; Q4_0 through the dedicated Q4_0TiledLinear) and, for Q4_0, also with
 *   `activations: "f32"` ("lowbit-f32": f32 activations, weights dequantized on the fly).
 * - Agreement: length of the common prefix of the greedy token lists (decode + 1 tokens).
 *
 * Records: kernel "prefill" / "decode", backend "lowbit" / "llama.cpp", shape {m: tokens per
 * phase, n: dim, k: layers}; `ms` is the median wall time of the phase; extra has tokens/s, tokens
 * per CPU-second (tokens/s over the CPU share: the figure that survives a busy machine), the model,
 * type, file and load average; decode records add the weight bytes read per token and the GB/s
 * that makes, per CPU-second too, as a fraction of the read bandwidth measured at the start
 * (WASM SIMD sum over 128 MiB, the "read-bandwidth" records). "prefill-ratio" / "decode-ratio" records give lowbit / llama.cpp
 * (ratio of the medians, median of the per-repeat ratios, and ratio of tokens per CPU-second).
 *
 * Environment: LOWBIT_E2E_ONLY=stories260K|gen-100m, LOWBIT_E2E_TYPES=q8_0,q4_0,
 * LOWBIT_E2E_THREADS=1,2, LOWBIT_E2E_REPEATS (default 7 for stories260K, 5 for gen-100m),
 * LOWBIT_E2E_PREFILL (128), LOWBIT_E2E_DECODE (128 for stories260K, 64 for gen-100m),
 * LOWBIT_E2E_DIR (where the GGUF files are made, default /tmp/lowbit-e2e).
 */
import os from "node:os";
import fs from "node:fs";
import { type LlamaModel, loadGguf, loadGgufTokenizer } from "@lowbit/runtime";
import { kernelThreadsReady, setKernelThreads } from "@lowbit/tensor";
import { dataFile } from "@lowbit/testing";
import { LlamaCppRunner, disposeLlamaCpp } from "../e2e-llamacpp";
import { type GgufType, MODELS, ggufFile } from "../e2e-models";
import { type PhaseTimes, agreeing, lowbitRun, median, topTwoGap } from "../e2e-run";
import { type Extra, type SuiteContext, defineSuite, measureBandwidth, recordBandwidth, round } from "../harness";

const env = (k: string): string | undefined => process.env[`LOWBIT_E2E_${k}`];
const list = (k: string, fallback: string): string[] => (env(k) ?? fallback).split(",").map((s) => s.trim()).filter(Boolean);

async function useThreads(n: number): Promise<void> {
  setKernelThreads(n);
  const got = await kernelThreadsReady();
  if (got !== n) throw new Error(`asked for ${n} lowbit kernel threads, got ${got}`);
}

const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(" ");

/** Prompt ids: BOS + the file's tokenizer on TinyStories text, cut to `n`. */
async function promptIds(file: string, n: number, vocab: number): Promise<number[]> {
  const text = fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8").slice(0, 20000);
  const tok = await loadGgufTokenizer(file);
  const ids = tok.encode(text, { bos: true }).slice(0, n);
  if (ids.length < n || ids.some((id) => id >= vocab)) throw new Error(`${file}: could not make a ${n}-token prompt`);
  return ids;
}

/** Bytes of the token embedding in the file (llama.cpp reads one row of it per token). */
function embeddingFileBytes(model: LlamaModel): number {
  const w = model.weights;
  if (w.outputShared) return 0; // tied: the classifier streams it
  return w.embeddingTable?.storageBytes ?? w.embedding.byteLength;
}

/** Weight bytes read per decoded token: every linear and the classifier (one embedding row aside). */
function streamedBytes(model: LlamaModel): number {
  const w = model.weights;
  const emb = w.embedding.byteLength + (w.embeddingTable?.storageBytes ?? 0);
  return w.outputShared ? model.storageBytes : model.storageBytes - emb;
}

/** The runs of each backend ("llama.cpp", "lowbit", "lowbit-f32"), index r = repeat r. */
type Series = Map<string, PhaseTimes[]>;

const PEER = "llama.cpp";

function phaseRecords(
  ctx: SuiteContext,
  phase: "prefill" | "decode",
  tokens: number,
  s: Series,
  threads: number,
  base: Extra,
  shape: { n: number; k: number },
  bytesPerToken: Map<string, number>,
  bandwidth: number,
): void {
  const pick = (r: PhaseTimes) => (phase === "prefill" ? r.prefillMs : r.decodeMs);
  const pickCpu = (r: PhaseTimes) => (phase === "prefill" ? r.prefillCpuMs : r.decodeCpuMs);
  const tps = new Map<string, number>();
  const tpc = new Map<string, number>();
  for (const [backend, runs] of s) {
    const ms = runs.map(pick);
    const med = median(ms);
    const cpuMed = median(runs.map(pickCpu));
    tps.set(backend, (tokens * 1000) / med);
    tpc.set(backend, (tokens * 1000) / cpuMed);
    const bytes = bytesPerToken.get(backend) ?? bytesPerToken.get("lowbit")!;
    ctx.record({
      kernel: phase,
      backend,
      shape: { m: tokens, ...shape },
      ms: med,
      minMs: Math.min(...ms),
      repeats: runs.length,
      threads,
      cpuShare: round(cpuMed / med, 3),
      cpuMs: round(cpuMed, 4),
      extra: {
        ...base,
        tokensPerSec: round(tps.get(backend)!, 4),
        tokensPerSecBest: round((tokens * 1000) / Math.min(...ms), 4),
        tokensPerCpuSec: round(tpc.get(backend)!, 4),
        ...(phase === "decode"
          ? {
              bytesPerToken: bytes,
              weightGBps: round((bytes * tps.get(backend)!) / 1e9, 3),
              weightGBpsPerCpuSec: round((bytes * tpc.get(backend)!) / 1e9, 3),
              fractionOfReadBandwidth: round((bytes * tpc.get(backend)!) / 1e9 / bandwidth, 3),
            }
          : {}),
      },
    });
  }
  const peer = s.get(PEER)!;
  const parts: string[] = [`${PEER} ${round(tps.get(PEER)!, 4)} tok/s (${round(tpc.get(PEER)!, 4)} per cpu-s)`];
  for (const [backend, runs] of s) {
    if (backend === PEER) continue;
    const paired = median(runs.map((r, i) => pick(peer[i]!) / pick(r)));
    const ratio = tps.get(backend)! / tps.get(PEER)!;
    const ratioCpu = tpc.get(backend)! / tpc.get(PEER)!;
    ctx.record({
      kernel: `${phase}-ratio`,
      backend: `${backend}/${PEER}`,
      shape: { m: tokens, ...shape },
      ms: median(runs.map(pick)),
      threads,
      extra: {
        ...base,
        ratio: round(ratio, 3),
        ratioPairedMedian: round(paired, 3),
        ratioCpu: round(ratioCpu, 3),
        lowbitTokensPerSec: round(tps.get(backend)!, 4),
        llamaCppTokensPerSec: round(tps.get(PEER)!, 4),
      },
    });
    parts.push(`${backend} ${round(tps.get(backend)!, 4)} tok/s (${round(tpc.get(backend)!, 4)} per cpu-s): x${round(ratio, 3)} (paired ${round(paired, 3)}, cpu ${round(ratioCpu, 3)})`);
  }
  ctx.log(`${String(base.model)} ${String(base.type)} ${phase} @${threads}t: ${parts.join("; ")}`);
}

export default defineSuite({
  name: "e2e",
  description: "prefill/decode tokens/s of lowbit's runtime vs llama.cpp (node-llama-cpp) on the same GGUF files",
  async run(ctx) {
    const only = env("ONLY");
    const types = list("TYPES", "q8_0,q4_0") as GgufType[];
    const threadCounts = list("THREADS", "1,2").map(Number);
    const prefill = Number(env("PREFILL") ?? 128);
    // threads need the engine's memory shared: move it there before any model is loaded, so 1 and
    // 2 threads run on the same memory
    if (threadCounts.includes(2)) {
      await useThreads(2);
      await useThreads(1);
    }
    ctx.log(`load average at start: ${load()} (${os.cpus().length} CPUs)`);
    // the ceiling for streaming weights: WASM SIMD read bandwidth over 128 MiB (about the 100M files)
    const bw = await measureBandwidth(128 * 2 ** 20);
    recordBandwidth(ctx, bw);
    ctx.log(`read bandwidth 128 MiB: ${bw.best} GB/s median, ${bw.peak} GB/s at the fastest repeat (WASM SIMD sum, 1 thread)`);
    for (const m of MODELS) {
      if (only && m.name !== only) continue;
      const big = m.name !== "stories260K";
      const decode = Number(env("DECODE") ?? (big ? 64 : 128));
      const repeats = Number(env("REPEATS") ?? (big ? 5 : 7));
      for (const type of types) {
        const { file, command } = ggufFile(m.name, type, ctx.log);
        // lowbit as loaded by default (llama.cpp's arithmetic); for Q4_0 also with f32 activations
        const variants = new Map<string, LlamaModel>([["lowbit", await loadGguf(file)]]);
        if (type === "q4_0") variants.set("lowbit-f32", await loadGguf(file, { activations: "f32" }));
        const first = variants.get("lowbit")!;
        const cfg = first.config;
        const prompt = await promptIds(file, prefill, cfg.vocabSize);
        const contextSize = Math.max(256, 2 ** Math.ceil(Math.log2(prefill + decode + 2)));
        const peer = await LlamaCppRunner.open(file, contextSize);
        const bytesPerToken = new Map([...variants].map(([k, v]) => [k, streamedBytes(v)] as [string, number]));
        bytesPerToken.set(PEER, fs.statSync(file).size - embeddingFileBytes(first));
        const shape = { n: cfg.dim, k: cfg.nLayers };
        const run = async (backend: string, threads: number): Promise<PhaseTimes> =>
          backend === PEER ? peer.run(prompt, decode, threads) : lowbitRun(variants.get(backend)!, prompt, decode);
        const backends = [...variants.keys(), PEER];
        try {
          for (const threads of threadCounts) {
            await useThreads(threads);
            const loadBefore = load();
            // warm-up (and the greedy tokens compared below)
            const warm = new Map<string, PhaseTimes>();
            for (const b of backends) warm.set(b, await run(b, threads));
            const s: Series = new Map(backends.map((b) => [b, []]));
            for (let r = 0; r < repeats; r++) {
              // rotate the order every repeat so no backend always runs first
              for (let j = 0; j < backends.length; j++) {
                const b = backends[(r + j) % backends.length]!;
                s.get(b)!.push(await run(b, threads));
              }
            }
            const base: Extra = {
              model: m.name,
              type,
              run: "pnpm --filter @lowbit/bench bench e2e",
              source: m.source,
              file: command,
              loadBefore,
              loadAfter: load(),
              prompt: prefill,
              decode,
            };
            phaseRecords(ctx, "prefill", prefill, s, threads, base, shape, bytesPerToken, bw.best);
            phaseRecords(ctx, "decode", decode, s, threads, base, shape, bytesPerToken, bw.best);
            for (const [b, model] of variants) {
              const agree = agreeing(warm.get(b)!.tokens, warm.get(PEER)!.tokens);
              // lowbit's top-2 logit gap where the lists part (the prompt is the same for both)
              const gap = agree <= decode ? round(topTwoGap(model, prompt, warm.get(PEER)!.tokens, agree), 4) : null;
              ctx.record({
                kernel: "greedy-agreement",
                backend: `${b}/${PEER}`,
                shape: { m: decode + 1, ...shape },
                ms: 0,
                threads,
                extra: {
                  ...base,
                  lowbitLinear: model.backends()[0]?.attn_q ?? "",
                  agreeing: agree,
                  of: decode + 1,
                  gapAtDivergence: gap,
                  firstLowbit: warm.get(b)!.tokens.slice(0, 8).join(" "),
                  firstLlamaCpp: warm.get(PEER)!.tokens.slice(0, 8).join(" "),
                },
              });
              ctx.log(`${m.name} ${type} @${threads}t: ${b} (${model.backends()[0]?.attn_q}) greedy tokens agree with llama.cpp ${agree}/${decode + 1}${gap === null ? "" : `, then lowbit's top-2 logit gap ${gap}`}`);
            }
            ctx.log(`load ${loadBefore} -> ${load()}`);
          }
        } finally {
          await peer.dispose();
          for (const v of variants.values()) v.dispose();
          await useThreads(1);
        }
      }
    }
    await disposeLlamaCpp();
  },
});
