import { MinMaxObserver } from "@lowbit/calibration";
import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { sum } from "../autograd/ops-elementwise";
import { backward, noGrad, Variable } from "../autograd/variable";
import {
  type FakeQuantParams,
  fakeQuantize,
  fitParams,
  lsqFakeQuantize,
  lsqGradScale,
  paramIndexMap,
  quantizeDequantize,
} from "./fake-quantize";
import { ActFakeQuant, WeightFakeQuant } from "./quantizers";

function randn(seed: number, n: number, std = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 0, std);
}

describe("fakeQuantize with fitted parameters", () => {
  it.each([
    [2, 8, true],
    [3, 8, false],
    [4, 16, true],
    [4, 32, false],
    [8, 32, true],
  ])("equals int4's quantizeRTN + dequantizeMatrix bit for bit (%i bits, group %i, sym %s)", (bits, gs, sym) => {
    const rows = 6;
    const cols = 32;
    const w = randn(bits * 100 + gs, rows * cols, 0.1);
    const params = fitParams(w, rows, cols, { kind: "group", groupSize: gs }, bits, sym);
    const y = noGrad(() => fakeQuantize(Variable.constant(w, [rows, cols]), params));
    const qm = quantizeRTN(w, rows, cols, { bits, groupSize: gs, sym });
    expect(Array.from(params.scale)).toEqual(Array.from(qm.scales));
    expect(Array.from(params.zero)).toEqual(Array.from(qm.zeros));
    expect(Array.from(y.value)).toEqual(Array.from(dequantizeMatrix(qm)));
    expect(Array.from(quantizeDequantize(w, rows, cols, params).codes)).toEqual(Array.from(qm.q));
  });

  it.each([
    ["tensor", { kind: "tensor" } as const, [0, 0, 0, 0, 0, 0]],
    ["column", { kind: "column" } as const, [0, 1, 2, 0, 1, 2]],
    ["group of 3 (per row)", { kind: "group", groupSize: 3 } as const, [0, 0, 0, 1, 1, 1]],
  ])("layout %s maps elements of a [2, 3] tensor to parameters", (_n, layout, expected) => {
    expect(Array.from(paramIndexMap(layout, 2, 3))).toEqual(expected);
  });

  it("per-column parameters use each column's own range", () => {
    const x = Float32Array.of(-1, 0, 4, 1, 2, 8);
    const p = fitParams(x, 2, 3, { kind: "column" }, 8, false);
    expect(p.scale[0]).toBeCloseTo(2 / 255, 7);
    expect(p.scale[1]).toBeCloseTo(2 / 255, 7);
    expect(p.scale[2]).toBeCloseTo(8 / 255, 7);
    expect(p.zero[0]).toBe(Math.round(1 / p.scale[0]!)); // -min / scale
    expect(p.zero[1]).toBe(0);
  });

  it("straight-through estimator: gradient 1 inside the clamp range, 0 where clamped", () => {
    // 2-bit symmetric, scale 1, zero 2: codes 0..3 represent -2..1
    const params: FakeQuantParams = {
      bits: 2,
      layout: { kind: "tensor" },
      scale: Float32Array.of(1),
      zero: Float32Array.of(2),
    };
    const x = Variable.param(Float32Array.of(-3.4, -2.4, -1.2, 0.3, 1.4, 1.6, 5), [7]);
    const y = fakeQuantize(x, params);
    expect(Array.from(y.value)).toEqual([-2, -2, -1, 0, 1, 1, 1]);
    backward(sum(y));
    // -2.4 rounds to -2 (inside); 1.4 rounds to 1 (inside); 1.6 rounds to 2 -> clamped
    expect(Array.from(x.grad!)).toEqual([0, 1, 1, 1, 1, 0, 0]);
  });
});

describe("LSQ", () => {
  it("forward equals fakeQuantize with the same parameters", () => {
    const rows = 4;
    const cols = 16;
    const w = randn(5, rows * cols);
    const params = fitParams(w, rows, cols, { kind: "group", groupSize: 8 }, 3, true);
    const s = Variable.param(params.scale.slice(), [params.scale.length]);
    const a = noGrad(() => lsqFakeQuantize(Variable.constant(w, [rows, cols]), s, params.zero, 3, params.layout, 1));
    const b = noGrad(() => fakeQuantize(Variable.constant(w, [rows, cols]), params));
    expect(Array.from(a.value)).toEqual(Array.from(b.value));
  });

  it("step-size gradient follows the paper: round(x/s) - x/s inside, -Qn below, Qp above, times g", () => {
    // 3-bit symmetric: codes 0..7, zero 4 -> integer levels -4..3 (Qn = 4, Qp = 3)
    const s0 = 0.5;
    const xs = [0.3, -0.9, 1.2, 3.0, -5.0, 1.74];
    const x = Variable.param(Float32Array.from(xs), [xs.length]);
    const s = Variable.param(Float32Array.of(s0), [1]);
    const g = lsqGradScale(xs.length, 3, true);
    expect(g).toBeCloseTo(1 / Math.sqrt(xs.length * 3), 12);
    const y = lsqFakeQuantize(x, s, Float32Array.of(4), 3, { kind: "tensor" }, g);
    const upstream = Float32Array.of(1, 2, -1, 0.5, 3, -2);
    backward(y, upstream);
    let expected = 0;
    const expectedDx: number[] = [];
    xs.forEach((v, i) => {
      const t = Math.fround(v) / s0;
      const r = Math.round(t);
      let d: number;
      if (r < -4) d = -4;
      else if (r > 3) d = 3;
      else d = r - t;
      expected += upstream[i]! * d;
      expectedDx.push(r < -4 || r > 3 ? 0 : upstream[i]!);
    });
    expect(s.grad![0]).toBeCloseTo(expected * g, 5);
    expect(Array.from(x.grad!)).toEqual(expectedDx);
  });

  it("per-group step sizes get only their own group's gradient", () => {
    const x = Variable.constant(Float32Array.of(0.26, 0.6, 10, -10), [1, 4]);
    const s = Variable.param(Float32Array.of(0.5, 1), [2]);
    const y = lsqFakeQuantize(x, s, Float32Array.of(8, 8), 4, { kind: "group", groupSize: 2 }, 1);
    backward(sum(y));
    // group 0: (round(0.52) - 0.52) + (round(1.2) - 1.2) = 0.48 - 0.2
    expect(s.grad![0]).toBeCloseTo(0.28, 5);
    // group 1: 10 clamps to level 7 (Qp), -10 to -8 (-Qn)
    expect(s.grad![1]).toBeCloseTo(7 - 8, 6);
  });
});

describe("quantizer modules", () => {
  it("WeightFakeQuant (lsq) initialises from min/max and learns a scale gradient", () => {
    const w = Variable.param(randn(9, 4 * 8), [4, 8], "w");
    const fq = new WeightFakeQuant({ bits: 4, granularity: "channel" }, 4, 8, "w");
    const y = fq.apply(w);
    const p = fitParams(w.value, 4, 8, { kind: "group", groupSize: 8 }, 4, true);
    expect(Array.from(fq.scale!.value)).toEqual(Array.from(p.scale));
    expect(Array.from(y.value)).toEqual(Array.from(quantizeDequantize(w.value, 4, 8, p).values));
    backward(sum(y));
    expect(fq.scale!.grad).not.toBeNull();
    expect(w.grad).not.toBeNull();
  });

  it("WeightFakeQuant mse init never has a larger error than min/max", () => {
    const rows = 8;
    const cols = 32;
    const w = randn(11, rows * cols);
    w[3] = 9; // an outlier the clipping search should clip
    const err = (init: "minmax" | "mse") => {
      const fq = new WeightFakeQuant({ bits: 3, granularity: "group", groupSize: 16, init }, rows, cols);
      const y = noGrad(() => fq.apply(Variable.constant(w, [rows, cols])));
      let e = 0;
      for (let i = 0; i < w.length; i++) e += (y.value[i]! - w[i]!) ** 2;
      return e;
    };
    expect(err("mse")).toBeLessThanOrEqual(err("minmax"));
  });

  it("rejects group sizes that do not divide the input features", () => {
    expect(() => new WeightFakeQuant({ bits: 4, granularity: "group", groupSize: 5 }, 2, 8)).toThrow(/group size 5/);
    expect(() => new WeightFakeQuant({ bits: 1, granularity: "tensor" }, 2, 8)).toThrow(/bits/);
  });

  it("ActFakeQuant static: running min/max while training, frozen after freeze()", () => {
    const aq = new ActFakeQuant({ bits: 8, granularity: "tensor" }, 2);
    aq.apply(Variable.param(Float32Array.of(-1, 2), [1, 2]));
    aq.apply(Variable.param(Float32Array.of(0, 4), [1, 2]));
    const p = aq.params()!;
    expect(p.scale[0]).toBeCloseTo(5 / 255, 7);
    aq.freeze();
    aq.apply(Variable.param(Float32Array.of(-100, 100), [1, 2]));
    expect(aq.params()!.scale[0]).toBe(p.scale[0]);
  });

  it("ActFakeQuant moving average follows torch (min += 0.01 (batch_min - min))", () => {
    const aq = new ActFakeQuant({ bits: 8, granularity: "tensor", observer: "moving-average" }, 1);
    aq.observe(Float32Array.of(-2), 1);
    aq.observe(Float32Array.of(8), 1);
    const st = aq.state();
    expect(st.lo![0]).toBeCloseTo(-2 + 0.01 * (8 + 2), 12);
    expect(st.hi![0]).toBeCloseTo(-2 + 0.01 * (8 + 2), 12);
  });

  it("ActFakeQuant takes its range from a @lowbit/calibration observer and initialises LSQ from it", () => {
    const obs = new MinMaxObserver();
    obs.observe(Float32Array.of(-0.5, 3, 1));
    obs.observe(Float32Array.of(-1, 2));
    const r = obs.range();
    const aq = new ActFakeQuant({ bits: 8, granularity: "tensor", mode: "lsq" }, 1);
    aq.setRange([r.min], [r.max]);
    aq.freeze();
    aq.apply(Variable.param(Float32Array.of(0.25), [1, 1]));
    expect(aq.scale!.value[0]).toBeCloseTo(4 / 255, 7);
    expect(() => aq.setRange([0, 1], [1, 2])).toThrow(/needs 1/);
  });

  it("ActFakeQuant per-token is dynamic only", () => {
    expect(() => new ActFakeQuant({ bits: 8, granularity: "token" }, 4)).toThrow(/dynamic/);
    const aq = new ActFakeQuant({ bits: 8, granularity: "token", mode: "dynamic" }, 2);
    const y = noGrad(() => aq.apply(Variable.constant(Float32Array.of(0, 1, 0, 100), [2, 2])));
    expect(y.value[1]).toBeCloseTo(1, 2);
    expect(y.value[3]).toBeCloseTo(100, 0);
  });
});
