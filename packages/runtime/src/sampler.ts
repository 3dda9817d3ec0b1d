import { LowbitError, Rng } from "@lowbit/tensor";
import { argmax } from "./ops";

export interface SamplingOptions {
  /** 0 (the default) is greedy; otherwise logits are divided by it before the softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: no limit). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or undefined: no limit). */
  topP?: number;
  /** Seed of the sampling Rng (default 0). */
  seed?: number;
  /** An Rng to draw from instead of a new seeded one. */
  rng?: Rng;
}

/** Chooses the next token from logits: greedy, or temperature + top-k + top-p sampling. */
export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  private readonly rng: Rng;
  private order = new Int32Array(0);
  private probs = new Float64Array(0);

  constructor(options: SamplingOptions = {}) {
    this.temperature = options.temperature ?? 0;
    this.topK = options.topK ?? 0;
    this.topP = options.topP ?? 1;
    if (!(this.temperature >= 0) || !Number.isFinite(this.temperature)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `sampling: temperature must be >= 0, got ${this.temperature}`);
    }
    if (!Number.isInteger(this.topK) || this.topK < 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `sampling: topK must be a non-negative integer, got ${this.topK}`);
    }
    if (!(this.topP > 0 && this.topP <= 1)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `sampling: topP must be in (0, 1], got ${this.topP}`);
    }
    this.rng = options.rng ?? new Rng(options.seed ?? 0);
  }

  get greedy(): boolean {
    return this.temperature === 0 || this.topK === 1;
  }

  /** The next token id for a row of logits. */
  sample(logits: Float32Array): number {
    if (this.greedy) return argmax(logits);
    const n = logits.length;
    if (this.probs.length !== n) {
      this.probs = new Float64Array(n);
      this.order = new Int32Array(n);
    }
    const p = this.probs;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp((logits[i]! - max) / this.temperature);
      p[i] = e;
      sum += e;
    }
    for (let i = 0; i < n; i++) p[i] = p[i]! / sum;
    if (this.topK === 0 && this.topP >= 1) return this.draw(p, null, n);
    const order = this.order;
    for (let i = 0; i < n; i++) order[i] = i;
    // descending probability, ties by id, so results do not depend on the sort's stability
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    let keep = this.topK > 0 ? Math.min(this.topK, n) : n;
    if (this.topP < 1) {
      let kept = 0;
      let cum = 0;
      while (kept < keep) {
        cum += p[order[kept]!]!;
        kept++;
        if (cum >= this.topP) break;
      }
      keep = kept;
    }
    return this.draw(p, order, keep);
  }

  private draw(p: Float64Array, order: Int32Array | null, count: number): number {
    let total = 0;
    for (let j = 0; j < count; j++) total += p[order ? order[j]! : j]!;
    const u = this.rng.uniform() * total;
    let cum = 0;
    for (let j = 0; j < count; j++) {
      const id = order ? order[j]! : j;
      cum += p[id]!;
      if (u < cum) return id;
    }
    return order ? order[count - 1]! : count - 1;
  }
}
