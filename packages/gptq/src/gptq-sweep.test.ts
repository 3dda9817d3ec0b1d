import { paramsFromRange, quantizeValue } from "@lowbit/int4";
import { getEngine, kernelThreadsInfo, kernelThreadsReady, matmulAB, setKernelBackend, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { afterAll, describe, expect, it } from "vitest";
import { gptqQuantize } from "./gptq-quantize";
import { HessianAccumulator } from "./hessian";
import { dampedInverseHessian } from "./inverse-hessian";
import { syntheticLayer } from "./test-helpers";

/**
 * GPTQ's block loop as it was written before the column sweep moved to subOuterF32: row by row,
 * each column's error applied to the row's later block columns in a JavaScript loop (gptq.py's
 * order). Asymmetric or symmetric group quantizers fitted on the original weights, no act-order,
 * no dead columns: the part of gptqQuantize the sweep reorganised.
 */
function rowByRow(w: Float32Array, rows: number, cols: number, h: Float32Array, bits: number, g: number, sym: boolean, blockSize: number) {
  const maxq = 2 ** bits - 1;
  const ng = cols / g;
  const { hinv } = dampedInverseHessian(() => Float64Array.from(h), cols, { percdamp: 0.01 });
  const Wp = new Float32Array(w);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * ng);
  const zeros = new Float32Array(rows * ng);
  const curScale = new Float32Array(rows);
  const curZero = new Float32Array(rows);
  const W1 = new Float32Array(rows * blockSize);
  const Err1 = new Float32Array(rows * blockSize);
  let loss = 0;
  for (let i1 = 0; i1 < cols; i1 += blockSize) {
    const i2 = Math.min(i1 + blockSize, cols);
    const count = i2 - i1;
    for (let r = 0; r < rows; r++) for (let i = 0; i < count; i++) W1[r * count + i] = Wp[r * cols + i1 + i]!;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      const bo = r * count;
      for (let i = 0; i < count; i++) {
        const j = i1 + i;
        if (j % g === 0) {
          let min = 0;
          let max = 0;
          for (let c = j; c < j + g; c++) {
            min = Math.min(min, Wp[wo + c]!);
            max = Math.max(max, Wp[wo + c]!);
          }
          const p = paramsFromRange(min, max, bits, sym);
          curScale[r] = scales[r * ng + j / g] = p.scale;
          curZero[r] = zeros[r * ng + j / g] = p.zero;
        }
        const s = curScale[r]!;
        const z = curZero[r]!;
        const wv = W1[bo + i]!;
        const code = quantizeValue(wv, s, z, maxq);
        codes[wo + j] = code;
        const qv = Math.fround(s * (code - z));
        const d = hinv[j * cols + j]!;
        const diff = Math.fround(wv - qv);
        loss += (diff * diff) / (d * d) / 2;
        const err = Math.fround(diff / d);
        Err1[bo + i] = err;
        for (let k = i + 1; k < count; k++) W1[bo + k] = W1[bo + k]! - Math.fround(err * hinv[j * cols + i1 + k]!);
      }
    }
    const rest = cols - i2;
    if (rest > 0) {
      const hb = new Float32Array(count * rest);
      for (let i = 0; i < count; i++) hb.set(hinv.subarray((i1 + i) * cols + i2, (i1 + i + 1) * cols), i * rest);
      const upd = matmulAB(Err1.subarray(0, rows * count), hb, rows, rest, count);
      for (let r = 0; r < rows; r++) for (let k = 0; k < rest; k++) Wp[r * cols + i2 + k] = Wp[r * cols + i2 + k]! - upd[r * rest + k]!;
    }
  }
  return { codes, scales, zeros, loss };
}

const bits32 = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function layer(rows: number, cols: number, seed: number) {
  const tokens = 2 * cols;
  const { w, x } = syntheticLayer(rows, cols, tokens, seed);
  const acc = new HessianAccumulator(cols);
  acc.addBatch(x, tokens);
  return { w, h: acc.h };
}

describe("GPTQ's column sweep (subOuterF32 across all rows)", () => {
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  it.each([
    // rows, cols, bits, group, sym, blockSize: ragged last blocks, groups across block edges, a block wider than the layer
    [24, 96, 4, 32, false, 40],
    [17, 64, 3, 16, true, 24],
    [40, 80, 4, 80, false, 128],
    [9, 128, 2, 64, false, 48],
    [33, 72, 8, 24, true, 7],
  ] as const)("rows=%i cols=%i w%i g%i sym=%s block %i: the same bits as the row-by-row loop", (rows, cols, bits, g, sym, blockSize) => {
    const { w, h } = layer(rows, cols, rows * 7 + cols);
    const got = gptqQuantize(w, rows, cols, h, { bits, groupSize: g, sym, blockSize });
    const want = rowByRow(w, rows, cols, h, bits, g, sym, blockSize);
    expect(Array.from(got.qm.q)).toEqual(Array.from(want.codes));
    expect(bits32(got.qm.scales)).toEqual(bits32(want.scales));
    expect(bits32(got.qm.zeros)).toEqual(bits32(want.zeros));
    expect(got.loss).toBe(want.loss);
    expect(got.loss).toBeGreaterThan(0);
  });

  it("gives the same bits on 2 kernel threads, with the column updates split", async () => {
    // blocks of 256 columns over 2300 rows: a column update splits in two from 2 x 2^18
    // multiply-adds, so the first 28 or so columns of the first block are split
    const [rows, cols] = [2300, 320];
    const { w, h } = layer(rows, cols, 3);
    const opts = { bits: 4, groupSize: 32, sym: false, blockSize: 256 } as const;
    const one = gptqQuantize(w, rows, cols, h, opts);
    expect(setKernelThreads(2, { spinMicros: 50 })).toBe(2);
    expect(await kernelThreadsReady()).toBe(2);
    const before = kernelThreadsInfo().dispatches;
    const two = gptqQuantize(w, rows, cols, h, opts);
    expect(kernelThreadsInfo().dispatches - before).toBeGreaterThan(20);
    expect(Array.from(two.qm.q)).toEqual(Array.from(one.qm.q));
    expect(bits32(two.qm.scales)).toEqual(bits32(one.qm.scales));
    expect(two.loss).toBe(one.loss);
    await shutdownKernelThreads();
  });

  it("keeps working when kernel memory has no room left for scratch (nothing is allocated inside a block)", () => {
    const [rows, cols] = [2048, 8];
    const w = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 0.37) * 0.1);
    const h = new Float32Array(cols * cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) h[i * cols + j] = (i === j ? 2 : 0) + 0.1 * Math.cos(i + j);
    const opts = { bits: 4, groupSize: cols, sym: false } as const;
    setKernelBackend("ref");
    const want = gptqQuantize(w, rows, cols, h, opts);
    setKernelBackend("wasm");
    // fill kernel memory so that GPTQ's work space takes its last bytes
    const engine = getEngine();
    engine.releaseScratch(); // as in a fresh process: the first scratch() would have to allocate
    const workBytes = 4 * (rows * cols + cols * cols + rows);
    const hole = engine.buffer(4000);
    const fillerStart = hole.ptr + 4032;
    const filler = engine.buffer(Math.max(64, engine.stats.memoryBytes - fillerStart - workBytes));
    hole.dispose();
    try {
      const got = gptqQuantize(w, rows, cols, h, opts);
      expect(Array.from(got.qm.q)).toEqual(Array.from(want.qm.q));
      expect(got.loss).toBe(want.loss);
    } finally {
      filler.dispose();
    }
  });
});
