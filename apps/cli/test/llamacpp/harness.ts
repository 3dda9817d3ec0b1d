/**
 * Shared by the tests that drive llama.cpp itself (llamacpp-written.test.ts, llamacpp-kquants.test.ts):
 * node-llama-cpp's prebuilt binaries, the compiled quantize.c harness, and llama.cpp's greedy path
 * with its full next-token distribution at every step.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GgufFile } from "@lowbit/formats";
import type { TensorSource } from "@lowbit/runtime";
import type { Llama, Token } from "node-llama-cpp";

/** node-llama-cpp's prebuilt folder for this platform (libllama*.so, libggml-base.so). */
export function llamaBinsDir(): string {
  const pkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    const fromCli = createRequire(import.meta.url);
    entry = createRequire(fromCli.resolve("node-llama-cpp")).resolve(pkg);
  } catch (e) {
    throw new Error(`llama.cpp's prebuilt binaries not found: cannot resolve ${pkg} from node-llama-cpp (${(e as Error).message})`);
  }
  const dir = join(dirname(entry), "..", "bins", `${process.platform}-${process.arch}`);
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const missing = [files.some((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f)) ? "" : "libllama*.so", files.includes("libggml-base.so") ? "" : "libggml-base.so"].filter(Boolean);
  if (missing.length > 0) throw new Error(`llama.cpp's prebuilt binaries: ${missing.join(" and ")} missing in ${dir}`);
  return dir;
}

/** Compiles quantize.c into `dir`; a missing compiler is an error naming the packages. */
export function compileHarness(dir: string): string {
  const cc = process.env.CC ?? "gcc";
  const exe = join(dir, "llamacpp-quantize");
  const src = join(dirname(fileURLToPath(import.meta.url)), "quantize.c");
  const r = spawnSync(cc, ["-O1", "-std=c11", "-D_DEFAULT_SOURCE", "-o", exe, src, "-ldl"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(`cannot compile ${src} with ${cc} (Debian packages: gcc libc6-dev): ${r.error?.message ?? r.stderr}`);
  }
  return exe;
}

/** Runs the compiled harness against `bins`; its stderr (llama.cpp's log) is shown only on failure. */
export function runHarness(exe: string, bins: string, ...args: string[]): void {
  const r = spawnSync(exe, [bins, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`llamacpp-quantize ${args.join(" ")} failed (${r.status}): ${r.stderr.slice(-2000)}`);
}

/** llama.cpp's greedy tokens and its full next-token distribution at every step (1 thread). */
export async function llamaCppGreedyProbs(
  llama: Llama,
  path: string,
  prompt: number[],
  steps: number,
  contextSize = 128,
): Promise<{ tokens: number[]; probs: Array<Map<Token, number>> }> {
  const model = await llama.loadModel({ modelPath: path });
  const ctx = await model.createContext({ threads: 1, contextSize });
  try {
    const tokens: number[] = [];
    const probs: Array<Map<Token, number>> = [];
    for await (const o of ctx.getSequence().evaluateWithMetadata(prompt as Token[], { probabilities: true }, { temperature: 0 })) {
      tokens.push(o.token as number);
      probs.push(o.probabilities);
      if (tokens.length >= steps) break;
    }
    return { tokens, probs };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

/** Softmax (float64) of row `row` of a [rows, vocab] logits block. */
export function softmaxRow(logits: Float32Array, row: number, vocab: number): Float64Array {
  const x = logits.subarray(row * vocab, (row + 1) * vocab);
  let max = Number.NEGATIVE_INFINITY;
  for (const v of x) max = Math.max(max, v);
  const p = new Float64Array(vocab);
  let z = 0;
  for (let i = 0; i < vocab; i++) z += p[i] = Math.exp(x[i]! - max);
  for (let i = 0; i < vocab; i++) p[i]! /= z;
  return p;
}

/**
 * One tensor's comparison: index of the first value whose bits differ from libggml's, or -1; for a
 * matrix the source keeps as a linear layer in its own encoding (e.g. Q4_K, Q6_K), the same for the
 * layer's dequantizedWeight() (`linear`: its kind and first differing value, or undefined).
 */
export interface DecodeCheck {
  name: string;
  type: number;
  n: number;
  decoded: number;
  firstDiff: number;
  linear?: { kind: string; firstDiff: number };
}

function firstDiffOf(ours: Float32Array, theirs: Uint32Array, at: number, n: number): number {
  const bits = new Uint32Array(ours.buffer, ours.byteOffset, Math.min(ours.length, n));
  for (let i = 0; i < bits.length; i++) if (bits[i] !== theirs[at + i]) return i;
  return -1;
}

/**
 * Decodes every non-F32 tensor of `file` twice: with lowbit's `source.readF32` and with libggml's
 * dequantize_row_* (quantize.c's `dequant` mode, one call per type over its tensors concatenated,
 * in `dir`), and compares the bits.
 */
export async function compareDecodeWithLibggml(
  file: GgufFile,
  source: TensorSource,
  dir: string,
  tag: string,
  typeName: (type: number) => string,
  dequant: (...args: string[]) => void,
): Promise<DecodeCheck[]> {
  const F32 = 0;
  const byType = new Map<number, Array<{ name: string; n: number; bytes: Uint8Array }>>();
  for (const t of file.tensors) {
    if (t.type === F32) continue;
    const list = byType.get(t.type) ?? [];
    list.push({ name: t.name, n: t.dims.reduce((a, d) => a * d, 1), bytes: await file.read(t.name) });
    byType.set(t.type, list);
  }
  const out: DecodeCheck[] = [];
  for (const [type, list] of byType) {
    const total = list.reduce((a, t) => a + t.n, 0);
    const inPath = join(dir, `${tag}-${type}.bin`);
    const outPath = join(dir, `${tag}-${type}.f32`);
    writeFileSync(inPath, Buffer.concat(list.map((t) => t.bytes)));
    dequant("dequant", typeName(type), inPath, outPath, String(total));
    const buf = readFileSync(outPath);
    const theirs = new Uint32Array(buf.buffer, buf.byteOffset, total);
    let at = 0;
    for (const t of list) {
      const ours = await source.readF32(t.name);
      const check: DecodeCheck = { name: t.name, type, n: t.n, decoded: ours.length, firstDiff: firstDiffOf(ours, theirs, at, t.n) };
      const dims = file.tensors.find((x) => x.name === t.name)!.dims;
      const lin = dims.length === 2 && t.name !== "token_embd.weight" ? await source.readLinear?.(t.name, dims[1]!, dims[0]!) : undefined;
      if (lin) {
        check.linear = { kind: lin.kind, firstDiff: firstDiffOf(lin.dequantizedWeight(), theirs, at, t.n) };
        lin.dispose?.();
      }
      out.push(check);
      at += t.n;
    }
  }
  return out;
}
