import fs from "node:fs";
import path from "node:path";
import { tmpDir } from "@lowbit/testing";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { type ClassifierBatch, MlpClassifier } from "../nn/mlp";
import { AdamW, SGD } from "../optim/optimizers";
import { cosineLr } from "../optim/schedule";
import { readCheckpoint, writeCheckpoint } from "./checkpoint";
import { type Dataset, type TrainProgress, Trainer } from "./trainer";

/** Two Gaussian blobs per class in 6 dimensions, 3 classes. */
function blobs(n: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 6);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(3);
    labels[i] = c;
    for (let j = 0; j < 6; j++) x[i * 6 + j] = rng.normal() * 0.7 + (j % 3 === c ? 2 : 0);
  }
  return { x, labels };
}

function dataset(d: { x: Float32Array; labels: Int32Array }): Dataset<ClassifierBatch> {
  return {
    size: d.labels.length,
    batch(idx) {
      const x = new Float32Array(idx.length * 6);
      const labels = new Int32Array(idx.length);
      idx.forEach((e, i) => {
        x.set(d.x.subarray(e * 6, e * 6 + 6), i * 6);
        labels[i] = d.labels[e]!;
      });
      return { x, labels };
    },
  };
}

function setup(ckpt?: string, progress?: (p: TrainProgress) => void) {
  const train = blobs(100, 1);
  const test = blobs(60, 2);
  const model = new MlpClassifier([6, 12, 3], 3).quantize(
    { bits: 3, granularity: "channel" },
    { bits: 8, granularity: "tensor", mode: "lsq" },
  );
  const params = model.parameters();
  const scales = params.filter((p) => p.name!.includes("lsq"));
  const weights = params.filter((p) => !p.name!.includes("lsq"));
  const optimizer = new AdamW([{ params: weights }, { params: scales, weightDecay: 0, lrScale: 0.1 }], { lr: 0.02 });
  const trainer = new Trainer({
    model,
    optimizer,
    data: dataset(train),
    batchSize: 16,
    epochs: 4,
    seed: 5,
    lr: (s) => cosineLr(s, { lr: 0.02, totalSteps: 28, warmupSteps: 3 }),
    clipNorm: 1,
    evalEvery: 7,
    evaluate: () => ({ acc: model.accuracy(test.x, test.labels) }),
    checkpointPath: ckpt,
    checkpointEvery: ckpt ? 5 : undefined,
    onProgress: progress,
  });
  return { model, trainer, test };
}

describe("Trainer", () => {
  it("learns, reports progress and evaluates periodically", async () => {
    const seen: TrainProgress[] = [];
    const { trainer, model, test } = setup(undefined, (p) => seen.push(p));
    expect(trainer.totalSteps).toBe(28); // 4 epochs of ceil(100 / 16) = 7 steps
    const res = await trainer.run();
    expect(res.steps).toBe(28);
    expect(seen.map((p) => p.step)).toEqual(Array.from({ length: 28 }, (_, i) => i + 1));
    expect(seen.at(-1)!.etaMs).toBe(0);
    expect(seen[0]!.gradNorm).toBeGreaterThan(0);
    expect(res.evals.map((e) => e.step)).toEqual([7, 14, 21, 28]);
    const early = res.losses.slice(0, 7).reduce((a, b) => a + b) / 7;
    const late = res.losses.slice(-7).reduce((a, b) => a + b) / 7;
    expect(late).toBeLessThan(early);
    expect(model.accuracy(test.x, test.labels)).toBeGreaterThan(0.8);
  });

  it("the last batch of an epoch is partial and every example is seen once per epoch", () => {
    const { trainer } = setup();
    const seen: number[] = [];
    for (let s = 0; s < 7; s++) seen.push(...trainer.batchIndices(s));
    expect(trainer.batchIndices(6).length).toBe(100 - 6 * 16);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("a run interrupted and resumed from its checkpoint ends bit-identical to an uninterrupted run", async () => {
    const dir = tmpDir("lowbit-qat-");
    try {
      const full = setup(path.join(dir, "full.ckpt"));
      const fullRes = await full.trainer.run();

      const ck = path.join(dir, "part.ckpt");
      const part = setup(ck);
      await part.trainer.run({ untilStep: 12 }); // checkpoints at 5, 10, and 12 on stopping
      const resumed = setup(ck);
      await resumed.trainer.resume(ck);
      expect(resumed.trainer.step).toBe(12);
      const resRes = await resumed.trainer.run();

      expect(resRes.losses).toEqual(fullRes.losses);
      expect(resRes.evals).toEqual(fullRes.evals);
      const a = full.model.parameters();
      const b = resumed.model.parameters();
      a.forEach((p, i) => {
        expect(Array.from(b[i]!.value), p.name).toEqual(Array.from(p.value));
      });
      expect(fs.readdirSync(dir).sort()).toEqual(["full.ckpt", "part.ckpt"]); // no temporary files left
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a checkpoint from a different setup", async () => {
    const dir = tmpDir("lowbit-qat-");
    try {
      const ck = path.join(dir, "a.ckpt");
      const a = setup(ck);
      await a.trainer.run({ untilStep: 2 });
      const model = new MlpClassifier([6, 12, 3], 3);
      const other = new Trainer({
        model,
        optimizer: new SGD(model.parameters(), { lr: 0.1 }),
        data: dataset(blobs(100, 1)),
        batchSize: 16,
        steps: 10,
        seed: 5,
      });
      await expect(other.resume(ck)).rejects.toThrow(/lsq_scale|sgd|adamw/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("checkpoint file", () => {
  it("round-trips tensors and metadata exactly and detects corruption", async () => {
    const dir = tmpDir("lowbit-qat-");
    try {
      const p = path.join(dir, "x.ckpt");
      const tensors = new Map([
        ["a", Float32Array.of(1.5, -0, Number.MIN_VALUE, 3.4028234663852886e38)],
        ["empty", new Float32Array(0)],
        ["b", new Rng(1).fillNormal(new Float32Array(33))],
      ]);
      await writeCheckpoint(p, { meta: { step: 3, name: "é" }, tensors });
      const back = await readCheckpoint(p);
      expect(back.meta).toEqual({ step: 3, name: "é" });
      for (const [k, v] of tensors) expect(Array.from(back.tensors.get(k)!)).toEqual(Array.from(v));
      const bytes = fs.readFileSync(p);
      bytes[bytes.length - 3]! ^= 0x40;
      fs.writeFileSync(p, bytes);
      await expect(readCheckpoint(p)).rejects.toThrow(/corrupt/);
      fs.writeFileSync(p, "hello world, not a checkpoint");
      await expect(readCheckpoint(p)).rejects.toThrow(/magic/);
      await expect(readCheckpoint(path.join(dir, "missing"))).rejects.toThrow(/not found/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a failed write leaves no file behind", async () => {
    const dir = tmpDir("lowbit-qat-");
    try {
      const target = path.join(dir, "no-such-dir", "x.ckpt");
      await expect(writeCheckpoint(target, { meta: null, tensors: new Map() })).rejects.toThrow(/cannot write/);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
