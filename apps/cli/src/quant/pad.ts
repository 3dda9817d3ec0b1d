import type { LlamaConfig, TensorSource } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Input features a packed int32 layout needs to be a multiple of at `bits` (GPTQ qweight / AWQ columns). */
export function packMultiple(bits: number): number {
  return 32 / gcd(bits, 32);
}

/**
 * The feed-forward width a packed format (GPTQ, AWQ) needs: a multiple of what packs into int32
 * words (and of 8 for AWQ's columns), and of the group size when groups are smaller than the
 * width (groups must divide it). Other widths (hidden size, heads) are checked, not padded.
 */
export function paddedIntermediate(cfg: LlamaConfig, bits: number, groupSize: number, format: "gptq" | "awq"): number {
  const m = format === "awq" ? lcm(8, packMultiple(bits)) : packMultiple(bits);
  for (const [what, n] of [
    ["hidden size", cfg.dim],
    ["attention width (heads x head size)", cfg.nHeads * cfg.headDim],
    ["key/value width", cfg.nKvHeads * cfg.headDim],
  ] as const) {
    if (n % m !== 0 || (groupSize > 0 && groupSize < n && n % groupSize !== 0)) {
      throw new LowbitError(
        "E_UNSUPPORTED",
        `--format ${format}: the model's ${what} ${n} is not a multiple of ${groupSize > 0 && groupSize < n ? `--group-size ${groupSize} and ` : ""}${m}, which ${bits}-bit ${format.toUpperCase()} packing needs. Choose another --group-size or --format lowbit.`,
      );
    }
  }
  const base = roundUp(cfg.hiddenDim, m);
  if (groupSize > 0 && groupSize < base) return roundUp(cfg.hiddenDim, lcm(m, groupSize));
  return base;
}

/**
 * A source whose feed-forward width is padded with zeros to `padded`: gate/up get zero rows,
 * down gets zero columns. The function is unchanged (silu(0) * 0 = 0 feeds zero columns).
 */
export function padIntermediate(cfg: LlamaConfig, source: TensorSource, padded: number): { config: LlamaConfig; source: TensorSource } {
  const orig = cfg.hiddenDim;
  if (padded === orig) return { config: cfg, source };
  const isRows = (n: string) => /\.ffn_(gate|up)\.weight$/.test(n);
  const isCols = (n: string) => /\.ffn_down\.weight$/.test(n);
  return {
    config: { ...cfg, hiddenDim: padded },
    source: {
      shape(name) {
        const s = source.shape(name);
        if (!s) return s;
        if (isRows(name)) return [padded, s[1]!];
        if (isCols(name)) return [s[0]!, padded];
        return s;
      },
      async readF32(name) {
        const w = await source.readF32(name);
        if (isRows(name)) {
          const out = new Float32Array(padded * cfg.dim);
          out.set(w);
          return out;
        }
        if (isCols(name)) {
          const out = new Float32Array(cfg.dim * padded);
          for (let r = 0; r < cfg.dim; r++) out.set(w.subarray(r * orig, (r + 1) * orig), r * padded);
          return out;
        }
        return w;
      },
      describe: source.describe,
      close: source.close,
    },
  };
}
