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
 *   work use). Runs are interleaved (lowbit, llama.cpp, then llama.cpp, lowbit, ...) after one
 *   warm-up each; medians of the repeats.
 * - Agreement: length of the common prefix of the two greedy token lists (decode + 1 tokens).
 *
 * Records: kernel "prefill" / "decode", backend "lowbit" / "llama.cpp", shape {m: tokens per
 * phase, n: dim, k: layers}; `ms` is the median wall time of the phase; extra has tokens/s, tokens
 * per CPU-second (tokens/s over the CPU share: the figure that survives a busy machine), the model,
 * type, file and load average. "prefill-ratio" / "decode-ratio" records give lowbit / llama.cpp
 * (ratio of the medians, and median of the per-repeat ratios of interleaved pairs).
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
import { type PhaseTimes, agreeing, lowbitRun, median } from "../e2e-run";
import { type Extra, type SuiteContext, defineSuite, round } from "../harness";

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

/** Weight bytes read per decoded token: every linear and the classifier (one embedding row aside). */
function streamedBytes(model: LlamaModel): number {
  const w = model.weights;
  const emb = w.embedding.byteLength + (w.embeddingTable?.storageBytes ?? 0);
  return w.outputShared ? model.storageBytes : model.storageBytes - emb;
}

interface Series {
  lowbit: PhaseTimes[];
  llama: PhaseTimes[];
}

function phaseRecords(
  ctx: SuiteContext,
  phase: "prefill" | "decode",
  tokens: number,
  s: Series,
  threads: number,
  base: Extra,
  shape: { n: number; k: number },
  bytesPerToken: number,
): void {
  const tps: Record<string, number> = {};
  const tpc: Record<string, number> = {};
  for (const [backend, runs] of [
    ["lowbit", s.lowbit],
    ["llama.cpp", s.llama],
  ] as const) {
    const ms = runs.map((r) => (phase === "prefill" ? r.prefillMs : r.decodeMs));
    const cpu = runs.map((r) => (phase === "prefill" ? r.prefillCpuMs : r.decodeCpuMs));
    const med = median(ms);
    const cpuMed = median(cpu);
    tps[backend] = (tokens * 1000) / med;
    tpc[backend] = (tokens * 1000) / cpuMed;
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
        tokensPerSec: round(tps[backend]!, 4),
        tokensPerSecBest: round((tokens * 1000) / Math.min(...ms), 4),
        tokensPerCpuSec: round(tpc[backend]!, 4),
        ...(phase === "decode" ? { weightGBps: round((bytesPerToken * tps[backend]!) / 1e9, 3) } : {}),
      },
    });
  }
  const paired = s.lowbit.map((r, i) => {
    const l = s.llama[i]!;
    return phase === "prefill" ? l.prefillMs / r.prefillMs : l.decodeMs / r.decodeMs;
  });
  const ratio = tps.lowbit! / tps["llama.cpp"]!;
  ctx.record({
    kernel: `${phase}-ratio`,
    backend: "lowbit/llama.cpp",
    shape: { m: tokens, ...shape },
    ms: median(s.lowbit.map((r) => (phase === "prefill" ? r.prefillMs : r.decodeMs))),
    threads,
    extra: {
      ...base,
      ratio: round(ratio, 3),
      ratioPairedMedian: round(median(paired), 3),
      ratioCpu: round(tpc.lowbit! / tpc["llama.cpp"]!, 3),
      lowbitTokensPerSec: round(tps.lowbit!, 4),
      llamaCppTokensPerSec: round(tps["llama.cpp"]!, 4),
    },
  });
  ctx.log(
    `${String(base.model)} ${String(base.type)} ${phase} @${threads}t: lowbit ${round(tps.lowbit!, 4)} tok/s (${round(tpc.lowbit!, 4)} per cpu-s), ` +
      `llama.cpp ${round(tps["llama.cpp"]!, 4)} tok/s (${round(tpc["llama.cpp"]!, 4)} per cpu-s): x${round(ratio, 3)} (paired ${round(median(paired), 3)}, cpu ${round(tpc.lowbit! / tpc["llama.cpp"]!, 3)})`,
  );
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
    for (const m of MODELS) {
      if (only && m.name !== only) continue;
      const big = m.name !== "stories260K";
      const decode = Number(env("DECODE") ?? (big ? 64 : 128));
      const repeats = Number(env("REPEATS") ?? (big ? 5 : 7));
      for (const type of types) {
        const { file, command } = ggufFile(m.name, type, ctx.log);
        const model = await loadGguf(file);
        const cfg = model.config;
        const prompt = await promptIds(file, prefill, cfg.vocabSize);
        const contextSize = Math.max(256, 2 ** Math.ceil(Math.log2(prefill + decode + 2)));
        const peer = await LlamaCppRunner.open(file, contextSize);
        const bytesPerToken = streamedBytes(model);
        const shape = { n: cfg.dim, k: cfg.nLayers };
        try {
          for (const threads of threadCounts) {
            await useThreads(threads);
            const loadBefore = load();
            // warm-up (and the greedy tokens compared below)
            const w1 = lowbitRun(model, prompt, decode);
            const w2 = await peer.run(prompt, decode, threads);
            const s: Series = { lowbit: [], llama: [] };
            for (let r = 0; r < repeats; r++) {
              if (r % 2 === 0) {
                s.lowbit.push(lowbitRun(model, prompt, decode));
                s.llama.push(await peer.run(prompt, decode, threads));
              } else {
                s.llama.push(await peer.run(prompt, decode, threads));
                s.lowbit.push(lowbitRun(model, prompt, decode));
              }
            }
            const agree = agreeing(w1.tokens, w2.tokens);
            const base: Extra = {
              model: m.name,
              type,
              file: command,
              storageBytes: model.storageBytes,
              bytesPerDecodedToken: bytesPerToken,
              loadBefore,
              loadAfter: load(),
              prompt: prefill,
              decode,
              lowbitLinear: model.backends()[0]?.attn_q ?? "",
            };
            phaseRecords(ctx, "prefill", prefill, s, threads, base, shape, bytesPerToken);
            phaseRecords(ctx, "decode", decode, s, threads, base, shape, bytesPerToken);
            ctx.record({
              kernel: "greedy-agreement",
              backend: "lowbit/llama.cpp",
              shape: { m: decode + 1, ...shape },
              ms: 0,
              threads,
              extra: { ...base, agreeing: agree, of: decode + 1, firstLowbit: w1.tokens.slice(0, 8).join(" "), firstLlamaCpp: w2.tokens.slice(0, 8).join(" ") },
            });
            ctx.log(`${m.name} ${type} @${threads}t: greedy tokens agree ${agree}/${decode + 1}; load ${loadBefore} -> ${load()}`);
          }
        } finally {
          await peer.dispose();
          model.dispose();
          await useThreads(1);
        }
      }
    }
    await disposeLlamaCpp();
  },
});
