import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { gradCheck } from "./gradcheck";
import { causalAttention, rope } from "./ops-attention";
import { add, addRow, mean, mul, relu, reshape, scale, silu, sub, sum } from "./ops-elementwise";
import { embedding, linear, matmul } from "./ops-linear";
import { crossEntropy, mseLoss } from "./ops-loss";
import { rmsNorm } from "./ops-norm";
import { backward, noGrad, result, Variable } from "./variable";

function randVar(rng: Rng, shape: number[], std = 1, name?: string): Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  return Variable.param(rng.fillNormal(new Float32Array(n), 0, std), shape, name);
}

/** Values kept away from 0 so that ReLU's kink is never inside a finite-difference step. */
function awayFromZero(v: Variable, margin: number): Variable {
  for (let i = 0; i < v.size; i++) {
    const x = v.value[i]!;
    if (Math.abs(x) < margin) v.value[i] = x < 0 ? x - margin : x + margin;
  }
  return v;
}

type Case = [string, (rng: Rng) => { inputs: Variable[]; fn: (x: readonly Variable[]) => Variable }];

const cases: Case[] = [
  ["add", (r) => ({ inputs: [randVar(r, [3, 4]), randVar(r, [3, 4])], fn: ([a, b]) => add(a!, b!) })],
  ["sub", (r) => ({ inputs: [randVar(r, [3, 4]), randVar(r, [3, 4])], fn: ([a, b]) => sub(a!, b!) })],
  ["mul", (r) => ({ inputs: [randVar(r, [5, 3]), randVar(r, [5, 3])], fn: ([a, b]) => mul(a!, b!) })],
  ["mul (same input twice)", (r) => ({ inputs: [randVar(r, [7])], fn: ([a]) => mul(a!, a!) })],
  ["scale", (r) => ({ inputs: [randVar(r, [6])], fn: ([a]) => scale(a!, -2.5) })],
  ["addRow", (r) => ({ inputs: [randVar(r, [4, 5]), randVar(r, [5])], fn: ([a, b]) => addRow(a!, b!) })],
  ["relu", (r) => ({ inputs: [awayFromZero(randVar(r, [4, 6]), 0.05)], fn: ([a]) => relu(a!) })],
  ["silu", (r) => ({ inputs: [randVar(r, [4, 6], 2)], fn: ([a]) => silu(a!) })],
  ["sum", (r) => ({ inputs: [randVar(r, [3, 3])], fn: ([a]) => sum(a!) })],
  ["mean", (r) => ({ inputs: [randVar(r, [3, 5])], fn: ([a]) => mean(a!) })],
  ["reshape", (r) => ({ inputs: [randVar(r, [2, 6])], fn: ([a]) => mul(reshape(a!, [3, 4]), reshape(a!, [3, 4])) })],
  [
    "linear (x W^T + b)",
    (r) => ({
      inputs: [randVar(r, [5, 7]), randVar(r, [3, 7]), randVar(r, [3])],
      fn: ([x, w, b]) => linear(x!, w!, b!),
    }),
  ],
  ["linear (no bias, 3-D input)", (r) => ({ inputs: [randVar(r, [2, 3, 4]), randVar(r, [5, 4])], fn: ([x, w]) => linear(x!, w!) })],
  ["matmul", (r) => ({ inputs: [randVar(r, [3, 4]), randVar(r, [4, 5])], fn: ([a, b]) => matmul(a!, b!) })],
  [
    "embedding (repeated ids)",
    (r) => ({ inputs: [randVar(r, [6, 4])], fn: ([t]) => embedding(t!, [1, 5, 1, 0, 5, 5]) }),
  ],
  ["rmsNorm", (r) => ({ inputs: [randVar(r, [4, 8]), randVar(r, [8])], fn: ([x, w]) => rmsNorm(x!, w!) })],
  [
    "rope (2 windows of 5, 3 heads of 4)",
    (r) => ({ inputs: [randVar(r, [10, 12])], fn: ([x]) => rope(x!, { seqLen: 5, headDim: 4, posOffset: 3 }) }),
  ],
  [
    "rope, half-split pairs",
    (r) => ({ inputs: [randVar(r, [6, 8])], fn: ([x]) => rope(x!, { seqLen: 3, headDim: 8, style: "half" }) }),
  ],
  [
    "causalAttention (GQA 4 heads / 2 kv heads, 2 windows of 5)",
    (r) => ({
      inputs: [randVar(r, [10, 4 * 3]), randVar(r, [10, 2 * 3]), randVar(r, [10, 2 * 3])],
      fn: ([q, k, v]) => causalAttention(q!, k!, v!, { seqLen: 5, nHeads: 4, nKvHeads: 2, headDim: 3 }),
    }),
  ],
  [
    "crossEntropy (with an ignored row)",
    (r) => ({ inputs: [randVar(r, [5, 7], 2)], fn: ([l]) => crossEntropy(l!, [3, 0, -1, 6, 3]) }),
  ],
  [
    "mseLoss",
    (r) => {
      const target = r.fillNormal(new Float32Array(12));
      return { inputs: [randVar(r, [4, 3])], fn: ([p]) => mseLoss(p!, target) };
    },
  ],
];

describe("gradients against central finite differences", () => {
  it.each(cases)("%s", (_name, make) => {
    const rng = new Rng(42);
    const { inputs, fn } = make(rng);
    const res = gradCheck(fn, inputs, { eps: 1e-2, atol: 2e-3, rtol: 1e-2 });
    expect(res.checked).toBeGreaterThan(0);
    expect(res.ok, JSON.stringify(res.worst)).toBe(true);
  });

  it("the checker itself catches a wrong backward (gradient off by 10%)", () => {
    const x = randVar(new Rng(1), [5]);
    const wrongSquare = ([a]: readonly Variable[]) =>
      result(Float32Array.from(a!.value, (v) => v * v), a!.shape, [a!], (g) => {
        const ga = a!.gradBuffer();
        for (let i = 0; i < g.length; i++) ga[i]! += 2.2 * a!.value[i]! * g[i]!;
      });
    expect(gradCheck(wrongSquare, [x]).ok).toBe(false);
  });

  it("a composed LLaMA-style block has correct gradients", () => {
    const rng = new Rng(7);
    const T = 4;
    const dim = 8;
    const hd = 4;
    const inputs = [
      randVar(rng, [2 * T, dim]),
      randVar(rng, [dim], 0.3),
      randVar(rng, [dim, dim], 0.3),
      randVar(rng, [dim / 2, dim], 0.3),
      randVar(rng, [dim / 2, dim], 0.3),
      randVar(rng, [dim, dim], 0.3),
    ];
    for (let i = 0; i < dim; i++) inputs[1]!.value[i]! += 1;
    const fn = ([x, nw, wq, wk, wv, wo]: readonly Variable[]): Variable => {
      const h = rmsNorm(x!, nw!);
      const q = rope(linear(h, wq!), { seqLen: T, headDim: hd });
      const k = rope(linear(h, wk!), { seqLen: T, headDim: hd });
      const v = linear(h, wv!);
      const a = causalAttention(q, k, v, { seqLen: T, nHeads: 2, nKvHeads: 1, headDim: hd });
      return add(x!, linear(silu(a), wo!));
    };
    const res = gradCheck(fn, inputs, { eps: 1e-2, atol: 2e-3, rtol: 1e-2 });
    expect(res.ok, JSON.stringify(res.worst)).toBe(true);
  });
});

describe("forward values", () => {
  it("rope at position 0 is the identity and preserves pair norms", () => {
    const rng = new Rng(1);
    const x = randVar(rng, [6, 8]);
    const y = noGrad(() => rope(x, { seqLen: 3, headDim: 4 }));
    for (let j = 0; j < 8; j++) expect(y.value[j]).toBeCloseTo(x.value[j]!, 6);
    for (let i = 0; i < 48; i += 2) {
      const a = Math.hypot(x.value[i]!, x.value[i + 1]!);
      const b = Math.hypot(y.value[i]!, y.value[i + 1]!);
      expect(b).toBeCloseTo(a, 5);
    }
    // position 1, pair 0 (freq 1): rotation by 1 radian
    const c = Math.cos(1);
    const s = Math.sin(1);
    const x0 = x.value[8]!;
    const x1 = x.value[9]!;
    expect(y.value[8]).toBeCloseTo(x0 * c - x1 * s, 5);
    expect(y.value[9]).toBeCloseTo(x0 * s + x1 * c, 5);
    // half-split style pairs x[0] with x[2] in a head of 4
    const z = noGrad(() => rope(x, { seqLen: 3, headDim: 4, style: "half" }));
    expect(z.value[8]).toBeCloseTo(x.value[8]! * c - x.value[10]! * s, 5);
    expect(z.value[10]).toBeCloseTo(x.value[8]! * s + x.value[10]! * c, 5);
  });

  it("attention's first token copies its own value row; rows of one window do not see the next", () => {
    const rng = new Rng(2);
    const q = randVar(rng, [4, 2]);
    const k = randVar(rng, [4, 2]);
    const v = randVar(rng, [4, 2]);
    const o = noGrad(() => causalAttention(q, k, v, { seqLen: 2, nHeads: 1, nKvHeads: 1, headDim: 2 }));
    expect(Array.from(o.value.subarray(0, 2))).toEqual(Array.from(v.value.subarray(0, 2)));
    expect(Array.from(o.value.subarray(4, 6))).toEqual(Array.from(v.value.subarray(4, 6)));
  });

  it("crossEntropy of uniform logits is ln(classes)", () => {
    const l = Variable.constant(new Float32Array(3 * 10), [3, 10]);
    expect(crossEntropy(l, [0, 4, 9]).item()).toBeCloseTo(Math.log(10), 6);
  });

  it("rmsNorm output has unit RMS with unit weights", () => {
    const rng = new Rng(3);
    const x = randVar(rng, [2, 16], 5);
    const y = noGrad(() => rmsNorm(x, Variable.constant(new Float32Array(16).fill(1), [16]), 0));
    let ss = 0;
    for (let j = 0; j < 16; j++) ss += y.value[j]! ** 2;
    expect(Math.sqrt(ss / 16)).toBeCloseTo(1, 5);
  });
});

describe("tape", () => {
  it("accumulates gradients across backward calls and through shared subgraphs", () => {
    const x = Variable.param(Float32Array.of(3), [1], "x");
    const y = mul(x, x); // x^2
    const z = add(y, y); // 2 x^2
    backward(sum(z));
    expect(x.grad?.[0]).toBeCloseTo(12, 6);
    backward(sum(mul(x, x)));
    expect(x.grad?.[0]).toBeCloseTo(18, 6);
  });

  it("records nothing under noGrad, and backward on such a root throws", () => {
    const x = Variable.param(Float32Array.of(1, 2), [2]);
    const y = noGrad(() => sum(mul(x, x)));
    expect(y.requiresGrad).toBe(false);
    expect(() => backward(y)).toThrow(/noGrad/);
  });

  it("rejects mismatched shapes with a message naming the op", () => {
    const a = Variable.constant(new Float32Array(6), [2, 3]);
    const b = Variable.constant(new Float32Array(6), [3, 2]);
    expect(() => add(a, b)).toThrow(/add: shapes \[2, 3\] and \[3, 2\]/);
    const w = Variable.constant(new Float32Array(8), [2, 4]);
    expect(() => linear(a, w)).toThrow(/linear: input has 3 features/);
    expect(() => embedding(w, [2])).toThrow(/id 2/);
  });

  it("handles a 20,000-node chain without recursion limits", () => {
    const x = Variable.param(Float32Array.of(1), [1]);
    let y = x;
    for (let i = 0; i < 20000; i++) y = scale(y, 1);
    backward(sum(y));
    expect(x.grad?.[0]).toBe(1);
  });
});
