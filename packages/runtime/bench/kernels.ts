/**
 * Micro-benchmark of the runtime's own kernels, WebAssembly SIMD against the TypeScript reference
 * twins, in CPU time per call (steadier than wall time on a shared machine): causal attention at
 * the stories260K and 100M shapes (prefill window, decode step), and the evaluation's logit
 * statistics over a 512-token vocabulary.
 *
 *   node --conditions=@lowbit/source --import tsx bench/kernels.ts
 */
import { Rng, setKernelBackend } from "@lowbit/tensor";
import { causalAttention } from "../src/attention";
import { logitStats } from "../src/logit-stats";

function cpuMs(f: () => void, minMs = 300): number {
  f();
  let reps = 0;
  const c0 = process.cpuUsage();
  let spent = 0;
  while (spent < minMs) {
    f();
    reps++;
    const c = process.cpuUsage(c0);
    spent = (c.user + c.system) / 1000;
  }
  return spent / reps;
}

function both(label: string, unit: string, units: number, f: () => void): void {
  const fast = cpuMs(f);
  setKernelBackend("ref");
  const ref = cpuMs(f);
  setKernelBackend("wasm");
  const per = (ms: number) => ((ms * 1e6) / units).toFixed(2);
  console.log(
    `${label}: wasm ${fast.toFixed(3)} ms (${per(fast)} ns/${unit}), ref ${ref.toFixed(3)} ms (${per(ref)} ns/${unit}), ${(ref / fast).toFixed(1)}x`,
  );
}

const rng = new Rng(1);
const normal = (n: number) => rng.fillNormal(new Float32Array(n));

for (const [nHeads, nKv, hd, T, start] of [
  [8, 4, 8, 256, 0],
  [8, 4, 8, 1, 200],
  [12, 4, 64, 128, 0],
  [12, 4, 64, 1, 160],
] as const) {
  const q = normal(T * nHeads * hd);
  const k = normal((start + T) * nKv * hd);
  const v = normal(k.length);
  const out = new Float32Array(q.length);
  const pairs = nHeads * ((T * (T + 1)) / 2 + start * T);
  both(`attention heads ${nHeads}/${nKv} width ${hd}, ${T} rows after ${start}`, "query-key pair", pairs, () =>
    causalAttention({ nHeads, nKvHeads: nKv, headDim: hd }, q, 0, T, k, v, 0, start, out),
  );
}

const rows = 255;
const V = 512;
const x = normal(rows * V);
const r = normal(rows * V);
const targets = Array.from({ length: rows }, (_, i) => (i * 37) % V);
both(`logit stats ${rows} x ${V}`, "logit", rows * V, () => logitStats(x, undefined, targets, rows, V));
both(`logit stats ${rows} x ${V} with a reference`, "logit", rows * V, () => logitStats(x, r, targets, rows, V));
