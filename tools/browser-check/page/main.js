// The page the browser check bundles with Vite: it imports @lowbit/int4 and @lowbit/gptq (and
// @lowbit/tensor, which both depend on, for the kernel engine) exactly as an application would,
// loads the WebAssembly kernels, and checks real calls against plain-JavaScript references.
// Results go to window.__lowbitCheck (read by check.mjs) and to the page.

import { gptqQuantize, HessianAccumulator } from "@lowbit/gptq";
import { dequantizeMatrix, Int4Linear, quantizeRTN } from "@lowbit/int4";
import {
  getEngine,
  getKernelBackend,
  hasWasmSimd,
  kernelThreadsInfo,
  kernelThreadsReady,
  matmulABt,
  Rng,
  setKernelBackend,
  setKernelThreads,
} from "@lowbit/tensor";

const checks = [];
function record(name, ok, detail) {
  checks.push({ name, ok: Boolean(ok), detail: String(detail) });
  const li = document.createElement("li");
  li.textContent = `${ok ? "ok  " : "FAIL"} ${name}: ${detail}`;
  document.getElementById("checks").append(li);
}
async function check(name, fn) {
  try {
    const r = await fn();
    record(name, r.ok, r.detail);
  } catch (e) {
    record(name, false, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
}

function randomMatrix(rng, rows, cols, std = 1) {
  const w = new Float32Array(rows * cols);
  rng.fillNormal(w, 0, std);
  return w;
}

/** y[m, n] = x[m, k] · w[n, k]^T in float64, plain loops. */
function matmulRef(x, w, m, n, k) {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
      y[i * n + j] = s;
    }
  return y;
}

function relErr(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function main() {
  await check("WebAssembly SIMD available", () => ({ ok: hasWasmSimd(), detail: `hasWasmSimd() = ${hasWasmSimd()}` }));
  await check("kernels compile (await getEngine().ready())", async () => {
    await getEngine().ready();
    return { ok: getKernelBackend() === "wasm", detail: `kernel backend "${getKernelBackend()}"` };
  });

  const rng = new Rng(7);
  const rows = 48;
  const cols = 128;
  const w = randomMatrix(rng, rows, cols, 0.05);
  const m = 5;
  const x = randomMatrix(rng, m, cols);

  await check("int4: quantizeRTN 4-bit g32 round trip", () => {
    const qm = quantizeRTN(w, rows, cols, { bits: 4, groupSize: 32, sym: false });
    const back = dequantizeMatrix(qm);
    const err = relErr(back, w);
    const inRange = qm.q.every((v) => v >= 0 && v <= 15);
    return { ok: inRange && err < 0.12, detail: `relative RMSE ${err.toFixed(4)}, codes in [0, 15]: ${inRange}` };
  });

  for (const [bits, activations, tol] of [
    [4, "f32", 1e-5],
    [3, "f32", 1e-5],
    [4, "int8", 0.02],
  ]) {
    await check(`int4: Int4Linear ${bits}-bit g32 forward, ${activations} activations (WebAssembly) vs reference`, () => {
      const qm = quantizeRTN(w, rows, cols, { bits, groupSize: 32, sym: false });
      const lin = new Int4Linear(qm, { activations });
      setKernelBackend("wasm");
      const yWasm = Float32Array.from(lin.forward(x, m));
      setKernelBackend("ref");
      const yRef = Float32Array.from(lin.forward(x, m));
      setKernelBackend("wasm");
      lin.dispose();
      const exact = matmulRef(x, dequantizeMatrix(qm), m, rows, cols);
      const eWasm = relErr(yWasm, exact);
      const eRef = relErr(yRef, exact);
      return {
        ok: eWasm < tol && eRef < tol && getKernelBackend() === "wasm",
        detail: `relative error vs float64 dequantized matmul: wasm ${eWasm.toExponential(2)}, reference twin ${eRef.toExponential(2)} (tolerance ${tol})`,
      };
    });
  }

  await check("gptq: gptqQuantize 3-bit g32 has lower output error than RTN on correlated inputs", () => {
    // inputs with correlated columns and a few large channels, as a layer's activations have
    const tokens = 512;
    const z = randomMatrix(rng, tokens, cols);
    const mix = randomMatrix(rng, cols, cols, 1 / Math.sqrt(cols));
    const xs = new Float32Array(tokens * cols);
    for (let t = 0; t < tokens; t++)
      for (let c = 0; c < cols; c++) {
        let s = z[t * cols + c];
        for (let k = 0; k < cols; k += 8) s += z[t * cols + k] * mix[c * cols + k] * 2;
        xs[t * cols + c] = s * (c % 37 === 0 ? 8 : 1);
      }
    const acc = new HessianAccumulator(cols);
    acc.addBatch(xs, tokens);
    const opts = { bits: 3, groupSize: 32, sym: false };
    const g = gptqQuantize(w, rows, cols, acc.h, opts);
    const r = quantizeRTN(w, rows, cols, opts);
    const y = matmulRef(xs, w, tokens, rows, cols);
    const eG = relErr(matmulRef(xs, dequantizeMatrix(g.qm), tokens, rows, cols), y);
    const eR = relErr(matmulRef(xs, dequantizeMatrix(r), tokens, rows, cols), y);
    // and the GPTQ result runs on the int4 kernels
    const lin = new Int4Linear(g.qm);
    const yK = lin.forward(xs.subarray(0, 4 * cols), 4);
    lin.dispose();
    const eK = relErr(yK, matmulRef(xs.subarray(0, 4 * cols), dequantizeMatrix(g.qm), 4, rows, cols));
    return {
      ok: eG < 0.9 * eR && eK < 1e-5,
      detail: `output relative error GPTQ ${eG.toFixed(4)} vs RTN ${eR.toFixed(4)}; GPTQ weights on Int4Linear: ${eK.toExponential(2)}`,
    };
  });
}

/** True when every element of a and b has the same bits. */
function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/**
 * Kernel threads (issue 9): served cross-origin isolated (COOP + COEP), two threads start as Web
 * Workers over the shared WebAssembly memory and split real calls, bit-identical to one thread;
 * served without those headers, setKernelThreads falls back to one thread and says why.
 */
async function threadChecks() {
  const isolated = globalThis.crossOriginIsolated === true;
  const rng = new Rng(11);
  const [n, k] = [1024, 1024];
  const w = randomMatrix(rng, n, k, 0.05);
  const x = randomMatrix(rng, 8, k);
  const qm = quantizeRTN(w, n, k, { bits: 4, groupSize: 32, sym: false });
  const lin = new Int4Linear(qm, { activations: "int8" });
  const one = { gemv: Float32Array.from(lin.forward(x.subarray(0, k), 1)), gemm: Float32Array.from(lin.forward(x, 8)), f32: matmulABt(x, w, 8, n, k) };
  // the same calls on other inputs, so the kernels' reused scratch holds other results: a worker
  // that skipped its share below would leave these behind instead of matching `one`
  const poison = () => {
    const z = randomMatrix(rng, 8, k);
    lin.forward(z, 8);
    lin.forward(z.subarray(0, k), 1);
    matmulABt(z, w, 8, n, k);
  };
  poison();
  if (!isolated) {
    await check("threads: not cross-origin isolated, setKernelThreads(2) falls back to one thread and says why", async () => {
      const got = setKernelThreads(2);
      const ready = await kernelThreadsReady();
      const info = kernelThreadsInfo();
      const y = lin.forward(x.subarray(0, k), 1);
      return {
        ok: got === 1 && ready === 1 && /isolat/.test(info.reason ?? "") && sameBits(y, one.gemv),
        detail: `setKernelThreads(2) = ${got}, ready ${ready}, reason "${info.reason}", forward still bit-identical: ${sameBits(y, one.gemv)}`,
      };
    });
    lin.dispose();
    return;
  }
  await check("threads: cross-origin isolated page starts 2 kernel threads (Web Workers over shared memory)", async () => {
    const got = setKernelThreads(2);
    const ready = await kernelThreadsReady(20000);
    const info = kernelThreadsInfo();
    return { ok: got === 2 && ready === 2 && info.ready && info.shared, detail: `setKernelThreads(2) = ${got}, ready ${ready}, shared memory ${info.shared}` };
  });
  await check("threads: int4 GEMV/GEMM and f32 GEMM split across 2 threads, bit-identical to 1 thread", () => {
    const before = kernelThreadsInfo().dispatches;
    const gemm = lin.forward(x, 8);
    poison();
    const gemv = lin.forward(x.subarray(0, k), 1);
    poison();
    const f32 = matmulABt(x, w, 8, n, k);
    const split = kernelThreadsInfo().dispatches - before - 6;
    const same = [sameBits(gemv, one.gemv), sameBits(gemm, one.gemm), sameBits(f32, one.f32)];
    return { ok: split >= 3 && same.every(Boolean), detail: `${split} split calls; bit-identical (GEMV, GEMM, f32): ${same.join(", ")}` };
  });
  await check("threads: back to one thread", async () => {
    const got = setKernelThreads(1);
    const y = lin.forward(x, 8);
    return { ok: got === 1 && kernelThreadsInfo().threads === 1 && sameBits(y, one.gemm), detail: `setKernelThreads(1) = ${got}, forward bit-identical: ${sameBits(y, one.gemm)}` };
  });
  lin.dispose();
}

main()
  .then(threadChecks)
  .catch((e) => record("page", false, e instanceof Error ? e.stack : String(e)))
  .finally(() => {
    const failed = checks.filter((c) => !c.ok).length;
    document.getElementById("status").textContent = `${checks.length - failed} passed, ${failed} failed`;
    window.__lowbitCheck = { done: true, checks };
  });
