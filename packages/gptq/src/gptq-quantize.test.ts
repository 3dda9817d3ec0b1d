import { dequantizeMatrix, quantizeRTN, validateQuantizedMatrix } from "@lowbit/int4";
import { describe, expect, it } from "vitest";
import { gptqQuantize } from "./gptq-quantize";
import { HessianAccumulator } from "./hessian";
import { relativeOutputError, syntheticLayer } from "./test-helpers";

const ROWS = 48;
const COLS = 128;
const TOKENS = 512;

function layer(seed = 1) {
  const { w, x } = syntheticLayer(ROWS, COLS, TOKENS, seed);
  const acc = new HessianAccumulator(COLS);
  for (let t = 0; t < TOKENS; t += 128) acc.addBatch(x.subarray(t * COLS, (t + 128) * COLS), 128);
  return { w, x, h: acc.h };
}

describe("gptqQuantize", () => {
  const { w, x, h } = layer();
  const relErr = (qw: Float32Array) => relativeOutputError(w, qw, x, ROWS, COLS, TOKENS);

  it.each([
    { bits: 4, groupSize: 32, sym: false, actOrder: false, staticGroups: false },
    { bits: 4, groupSize: 32, sym: true, actOrder: false, staticGroups: false },
    { bits: 4, groupSize: -1, sym: false, actOrder: false, staticGroups: false },
    { bits: 4, groupSize: 32, sym: false, actOrder: true, staticGroups: false },
    { bits: 4, groupSize: 32, sym: false, actOrder: true, staticGroups: true },
    { bits: 3, groupSize: 32, sym: false, actOrder: true, staticGroups: false },
    { bits: 2, groupSize: 16, sym: false, actOrder: false, staticGroups: false },
    { bits: 8, groupSize: -1, sym: true, actOrder: false, staticGroups: false },
  ])("output error below RTN's: w$bits g$groupSize sym=$sym act=$actOrder static=$staticGroups", (o) => {
    const res = gptqQuantize(w, ROWS, COLS, h, { ...o, blockSize: 32 });
    validateQuantizedMatrix(res.qm);
    const rtn = quantizeRTN(w, ROWS, COLS, { bits: o.bits, groupSize: o.groupSize, sym: o.sym });
    const eG = relErr(dequantizeMatrix(res.qm));
    const eR = relErr(dequantizeMatrix(rtn));
    expect(eG).toBeLessThan(eR * 0.9);
    expect(res.dampRetries).toBe(0);
    expect(res.percdamp).toBe(0.01);
    expect(Number.isFinite(res.loss) && res.loss > 0).toBe(true);
    if (o.actOrder && !o.staticGroups && o.groupSize !== -1) expect(res.qm.gIdx).toBeDefined();
    else expect(res.qm.gIdx).toBeUndefined();
  });

  it("is deterministic: two runs give bit-identical codes, scales and zeros (and the same error)", () => {
    const o = { bits: 4, groupSize: 32, sym: false, actOrder: true };
    const a = gptqQuantize(w, ROWS, COLS, h, o);
    const b = gptqQuantize(w, ROWS, COLS, h, o);
    expect(Buffer.from(a.qm.q).equals(Buffer.from(b.qm.q))).toBe(true);
    expect(Buffer.from(a.qm.scales.buffer).equals(Buffer.from(b.qm.scales.buffer))).toBe(true);
    expect(Buffer.from(a.qm.zeros.buffer).equals(Buffer.from(b.qm.zeros.buffer))).toBe(true);
    expect(relErr(dequantizeMatrix(a.qm))).toBe(relErr(dequantizeMatrix(b.qm)));
    expect(a.loss).toBe(b.loss);
  });

  it("does not modify its inputs", () => {
    const w0 = w.slice();
    const h0 = h.slice();
    gptqQuantize(w, ROWS, COLS, h, { bits: 4, groupSize: 32, sym: false, actOrder: true });
    expect(w).toEqual(w0);
    expect(h).toEqual(h0);
  });

  it.each([
    { groupSize: 32, sym: false },
    { groupSize: -1, sym: true },
  ])("equals RTN when H is diagonal (no error to propagate), g$groupSize", ({ groupSize, sym }) => {
    const hd = new Float32Array(COLS * COLS);
    for (let i = 0; i < COLS; i++) hd[i * COLS + i] = 1 + i / COLS;
    const res = gptqQuantize(w, ROWS, COLS, hd, { bits: 4, groupSize, sym });
    const rtn = quantizeRTN(w, ROWS, COLS, { bits: 4, groupSize, sym });
    expect(res.qm.q).toEqual(rtn.q);
    expect(res.qm.scales).toEqual(rtn.scales);
    expect(res.qm.zeros).toEqual(rtn.zeros);
  });

  it("lazy batches do not change the result (block sizes 16 and 128, groups fitted on updated weights)", () => {
    const o = { bits: 4, groupSize: 16, sym: false, groupFit: "updated" as const };
    const a = gptqQuantize(w, ROWS, COLS, h, { ...o, blockSize: 16 });
    const b = gptqQuantize(w, ROWS, COLS, h, { ...o, blockSize: 128 });
    let differ = 0;
    for (let i = 0; i < a.qm.q.length; i++) if (a.qm.q[i] !== b.qm.q[i]) differ++;
    // same algorithm in exact arithmetic; f32 rounding may flip a handful of ties
    expect(differ / a.qm.q.length).toBeLessThan(0.002);
    expect(Math.abs(a.loss - b.loss) / b.loss).toBeLessThan(1e-3);
  });

  it("zeroes dead inputs (diag H = 0) and reports them", () => {
    const hDead = h.slice();
    for (const c of [3, 70]) {
      for (let j = 0; j < COLS; j++) {
        hDead[c * COLS + j] = 0;
        hDead[j * COLS + c] = 0;
      }
    }
    const res = gptqQuantize(w, ROWS, COLS, hDead, { bits: 4, groupSize: 32, sym: false, actOrder: true });
    expect(res.deadColumns).toBe(2);
    const dq = dequantizeMatrix(res.qm);
    for (let r = 0; r < ROWS; r++) {
      expect(dq[r * COLS + 3]).toBe(0);
      expect(dq[r * COLS + 70]).toBe(0);
    }
  });

  it("raises the dampening and retries when Cholesky fails, and reports it", () => {
    const n = 4;
    // eigenvalues of [[1, a], [a, 1]] blocks are 1 +- a: with a = 1.1 one is -0.1, so percdamp must exceed 0.1
    const hb = new Float32Array(n * n);
    for (const [i, j] of [
      [0, 1],
      [2, 3],
    ] as const) {
      hb[i * n + i] = 1;
      hb[j * n + j] = 1;
      hb[i * n + j] = 1.1;
      hb[j * n + i] = 1.1;
    }
    const wb = Float32Array.from([0.5, -0.25, 0.125, 1, -1, 0.75, 0.3, -0.6]);
    const res = gptqQuantize(wb, 2, n, hb, { bits: 4, groupSize: -1, sym: false, dampAutoIncrement: 0.01 });
    expect(res.dampRetries).toBeGreaterThanOrEqual(9);
    expect(res.percdamp).toBeGreaterThan(0.1);
    expect(res.percdamp).toBeLessThan(0.13);
    expect(() => gptqQuantize(wb, 2, n, hb, { bits: 4, groupSize: -1, sym: false, dampAutoIncrement: 0 })).toThrow(
      expect.objectContaining({ code: "E_NOT_POSITIVE_DEFINITE" }),
    );
  });

  it.each([
    { name: "non-dividing group", o: { bits: 4, groupSize: 48, sym: false }, code: "E_SHAPE_MISMATCH" },
    { name: "bits 1", o: { bits: 1, groupSize: 32, sym: false }, code: "E_INVALID_ARGUMENT" },
    { name: "bits 9", o: { bits: 9, groupSize: 32, sym: false }, code: "E_INVALID_ARGUMENT" },
    { name: "block size 0", o: { bits: 4, groupSize: 32, sym: false, blockSize: 0 }, code: "E_INVALID_ARGUMENT" },
  ])("rejects $name", ({ o, code }) => {
    expect(() => gptqQuantize(w, ROWS, COLS, h, o)).toThrow(expect.objectContaining({ code }));
  });

  it("rejects non-finite weights naming the element", () => {
    const bad = w.slice();
    bad[5] = Number.NaN;
    expect(() => gptqQuantize(bad, ROWS, COLS, h, { bits: 4, groupSize: 32, sym: false })).toThrow(/element 5/);
  });
});
