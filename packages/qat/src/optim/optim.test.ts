import { describe, expect, it } from "vitest";
import { Variable } from "../autograd/variable";
import { AdamW, SGD } from "./optimizers";
import { clipGradNorm, cosineLr, epochOrder } from "./schedule";

function param(values: number[], name = "p"): Variable {
  return Variable.param(Float32Array.from(values), [values.length], name);
}

describe("SGD", () => {
  it("follows torch.optim.SGD with momentum, dampening 0 and L2 weight decay", () => {
    const p = param([1, -2]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.5 });
    // reference computed by hand: buf1 = g + wd p; buf2 = 0.9 buf1 + (g + wd p')
    const grads = [
      [0.5, 1],
      [-1, 0.25],
    ];
    const ref = [1, -2];
    const buf = [0, 0];
    grads.forEach((g, step) => {
      p.grad = Float32Array.from(g);
      opt.step();
      for (let j = 0; j < 2; j++) {
        const d = g[j]! + 0.5 * Math.fround(ref[j]!);
        buf[j] = step === 0 ? d : 0.9 * Math.fround(buf[j]!) + d;
        ref[j] = Math.fround(Math.fround(ref[j]!) - 0.1 * buf[j]!);
      }
    });
    expect(p.value[0]).toBeCloseTo(ref[0]!, 6);
    expect(p.value[1]).toBeCloseTo(ref[1]!, 6);
  });

  it("skips parameters without a gradient and honours lrScale per group", () => {
    const a = param([1], "a");
    const b = param([1], "b");
    const c = param([1], "c");
    const opt = new SGD([{ params: [a] }, { params: [b], lrScale: 0.5 }, c], { lr: 1 });
    a.grad = Float32Array.of(1);
    b.grad = Float32Array.of(1);
    opt.step();
    expect([a.value[0], b.value[0], c.value[0]]).toEqual([0, 0.5, 1]);
  });

  it("rejects duplicate and non-trainable parameters", () => {
    const a = param([1]);
    expect(() => new SGD([a, a], { lr: 1 })).toThrow(/twice/);
    expect(() => new SGD([Variable.constant(Float32Array.of(1), [1])], { lr: 1 })).toThrow(/does not require/);
  });
});

describe("AdamW", () => {
  it("first step moves each weight by lr * sign(g) (plus decoupled decay)", () => {
    const p = param([1, -1, 3]);
    const opt = new AdamW([p], { lr: 0.01, weightDecay: 0.1 });
    p.grad = Float32Array.of(0.3, -7, 1e-3);
    opt.step();
    expect(p.value[0]).toBeCloseTo(1 * (1 - 0.001) - 0.01, 6);
    expect(p.value[1]).toBeCloseTo(-1 * (1 - 0.001) + 0.01, 6);
    expect(p.value[2]).toBeCloseTo(3 * (1 - 0.001) - 0.01 * (1e-3 / (1e-3 + 1e-8)), 6);
  });

  it("minimises a quadratic", () => {
    const p = param([5, -3]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0 });
    for (let i = 0; i < 500; i++) {
      p.grad = Float32Array.from(p.value, (x) => 2 * (x - 1));
      opt.step();
    }
    expect(p.value[0]).toBeCloseTo(1, 2);
    expect(p.value[1]).toBeCloseTo(1, 2);
  });

  it("state round-trips: a restored optimizer continues identically", () => {
    const run = (split: number | null) => {
      const p = param([0.3, -0.7, 2]);
      let opt = new AdamW([p], { lr: 0.05 });
      for (let i = 0; i < 10; i++) {
        if (i === split) {
          const st = opt.state();
          opt = new AdamW([p], { lr: 0.05 });
          opt.loadState(st);
        }
        p.grad = Float32Array.from(p.value, (x, j) => Math.sin(x * (j + 1)) + 0.1 * i);
        opt.step();
      }
      return Array.from(p.value);
    };
    expect(run(6)).toEqual(run(null));
  });

  it("refuses another optimizer's state", () => {
    const p = param([1]);
    expect(() => new AdamW([p], { lr: 1 }).loadState(new SGD([p], { lr: 1, momentum: 0.9 }).state())).toThrow(/sgd/);
  });
});

describe("schedule, clipping, data order", () => {
  it.each([
    [0, 0.25],
    [3, 1],
    [4, 1],
    [9, 0.5 * (1 + Math.cos((Math.PI * 5) / 10))],
    [14, 0],
    [100, 0],
  ])("cosine with 4 warmup steps over 14: step %i -> %f", (step, expected) => {
    expect(cosineLr(step, { lr: 1, totalSteps: 14, warmupSteps: 4 })).toBeCloseTo(expected, 12);
  });

  it("cosine ends at minLr and is monotone after warmup", () => {
    const o = { lr: 0.1, totalSteps: 50, warmupSteps: 5, minLr: 0.01 };
    let prev = Number.POSITIVE_INFINITY;
    for (let s = 5; s <= 50; s++) {
      const lr = cosineLr(s, o);
      expect(lr).toBeLessThanOrEqual(prev + 1e-15);
      prev = lr;
    }
    expect(cosineLr(50, o)).toBe(0.01);
  });

  it("clipGradNorm scales to the max norm and returns the norm before", () => {
    const a = param([0]);
    const b = param([0, 0]);
    a.grad = Float32Array.of(3);
    b.grad = Float32Array.of(0, 4);
    expect(clipGradNorm([a, b], 1)).toBeCloseTo(5, 12);
    expect(Math.hypot(a.grad[0]!, b.grad[1]!)).toBeCloseTo(1, 5);
    expect(clipGradNorm([a, b], 10)).toBeCloseTo(1, 5);
    expect(a.grad[0]).toBeCloseTo(0.6, 5);
  });

  it("epochOrder is a seeded permutation that changes with the epoch and seed", () => {
    const a = epochOrder(50, 1, 0);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(epochOrder(50, 1, 0))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(50, 1, 1))).not.toEqual(Array.from(a));
    expect(Array.from(epochOrder(50, 2, 0))).not.toEqual(Array.from(a));
  });
});
