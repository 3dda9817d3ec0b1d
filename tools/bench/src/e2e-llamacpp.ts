/**
 * llama.cpp through node-llama-cpp (its prebuilt CPU binary, never built here) as the peer of the
 * end-to-end suite: greedy prefill + decode on a GGUF file with a fixed number of threads, timed the
 * same way as lowbit's runtime (see e2e-run.ts).
 */
import { type Llama, type LlamaContext, type LlamaModel, LlamaLogLevel, type Token, getLlama } from "node-llama-cpp";
import { type PhaseTimes, cpuMsNow } from "./e2e-run";

let instance: Promise<Llama> | undefined;

/** The process-wide llama.cpp instance (CPU only, up to 2 threads). */
export function llamaCpp(): Promise<Llama> {
  instance ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 2 });
  return instance;
}

export async function disposeLlamaCpp(): Promise<void> {
  if (!instance) return;
  const l = await instance;
  instance = undefined;
  await l.dispose();
}

/** A GGUF loaded by llama.cpp with one context per thread count. */
export class LlamaCppRunner {
  private readonly contexts = new Map<number, LlamaContext>();

  private constructor(
    readonly model: LlamaModel,
    private readonly contextSize: number,
  ) {}

  static async open(path: string, contextSize: number): Promise<LlamaCppRunner> {
    const llama = await llamaCpp();
    const model = await llama.loadModel({ modelPath: path });
    return new LlamaCppRunner(model, contextSize);
  }

  /** The context for `threads` threads (created once; the whole prompt fits one batch). */
  private async context(threads: number): Promise<LlamaContext> {
    let ctx = this.contexts.get(threads);
    if (!ctx) {
      ctx = await this.model.createContext({
        threads: { ideal: threads, min: threads },
        contextSize: this.contextSize,
        batchSize: this.contextSize,
      });
      this.contexts.set(threads, ctx);
    }
    return ctx;
  }

  /**
   * Greedy run: the prompt in one evaluation (prefill ends when the first new token is sampled),
   * then `decode` more tokens one at a time. The sequence starts empty every run.
   */
  async run(prompt: readonly number[], decode: number, threads: number): Promise<PhaseTimes> {
    const ctx = await this.context(threads);
    const seq = ctx.getSequence();
    try {
      const tokens: number[] = [];
      const c0 = cpuMsNow();
      const t0 = performance.now();
      let t1 = t0;
      let c1 = c0;
      for await (const tok of seq.evaluate(prompt as Token[], { temperature: 0 })) {
        if (tokens.length === 0) {
          t1 = performance.now();
          c1 = cpuMsNow();
        }
        tokens.push(tok as number);
        if (tokens.length > decode) break;
      }
      const t2 = performance.now();
      const c2 = cpuMsNow();
      return { prefillMs: t1 - t0, decodeMs: t2 - t1, prefillCpuMs: c1 - c0, decodeCpuMs: c2 - c1, tokens };
    } finally {
      seq.dispose();
    }
  }

  async dispose(): Promise<void> {
    for (const ctx of this.contexts.values()) await ctx.dispose();
    this.contexts.clear();
    await this.model.dispose();
  }
}
