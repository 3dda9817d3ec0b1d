// One real call per package, run inside an empty project where only the packed tarballs of the
// package and of its lowbit dependencies are installed. Each entry returns a short description of
// what it checked and throws when the result is wrong.
export const smoke = {
  "@lowbit/tensor": `
    import { cholesky, Rng } from "@lowbit/tensor";
    const a = new Float64Array([4, 2, 2, 3]);
    const l = cholesky(a, 2);
    if (Math.abs(l[0] - 2) > 1e-12 || Math.abs(l[2] - 1) > 1e-12) throw new Error("cholesky wrong: " + l);
    const r = new Rng(1); const x = r.normal();
    if (!Number.isFinite(x)) throw new Error("rng");
    console.log("cholesky of [[4,2],[2,3]] ok");`,
  "@lowbit/formats": `
    import { writeSafetensors, openSafetensors } from "@lowbit/formats";
    import fs from "node:fs"; import os from "node:os"; import path from "node:path";
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lowbit-pack-"));
    const f = path.join(dir, "t.safetensors");
    await writeSafetensors(f, [{ name: "w", dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]);
    const st = await openSafetensors(f);
    const back = await st.readF32("w"); await st.close();
    if (back.join() !== "1,2,3,4") throw new Error("round trip " + back.join());
    console.log("safetensors round trip ok");`,
  "@lowbit/int8": `
    import * as int8 from "@lowbit/int8";
    const w = new Float32Array(64).map((_, i) => Math.sin(i));
    const bytes = int8.quantizeQ8_0Ref(w);
    const back = int8.dequantizeQ8_0Ref(bytes, 64);
    let err = 0; for (let i = 0; i < 64; i++) err = Math.max(err, Math.abs(back[i] - w[i]));
    if (bytes.length !== 68 || err > 0.01) throw new Error("q8_0 " + bytes.length + " " + err);
    console.log("q8_0 round trip ok, max error " + err.toFixed(5));`,
  "@lowbit/int4": `
    import { quantizeRTN, dequantizeMatrix } from "@lowbit/int4";
    const rows = 4, cols = 64;
    const w = new Float32Array(rows * cols).map((_, i) => Math.cos(i * 0.37));
    const qm = quantizeRTN(w, rows, cols, { bits: 4, groupSize: 32, sym: false });
    const back = dequantizeMatrix(qm);
    let num = 0, den = 0; for (let i = 0; i < w.length; i++) { num += (back[i] - w[i]) ** 2; den += w[i] ** 2; }
    const rel = Math.sqrt(num / den);
    if (!(rel < 0.1)) throw new Error("int4 relative rmse " + rel);
    console.log("int4 g32 RTN relative RMSE " + rel.toFixed(4));`,
  "@lowbit/runtime": `
    import { makeConfig, expectedTensors, buildModel, memorySource, generate, Sampler } from "@lowbit/runtime";
    import { Rng } from "@lowbit/tensor";
    const cfg = makeConfig({ dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, maxSeqLen: 32 });
    const rng = new Rng(7); const tensors = new Map();
    for (const [name, shape] of expectedTensors(cfg)) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (name.endsWith("norm.weight")) data.fill(1); else rng.fillNormal(data, 0, 1 / Math.sqrt(shape.at(-1)));
      tensors.set(name, { shape, data });
    }
    const model = await buildModel(cfg, memorySource(tensors));
    const prompt = [1, 5, 9, 3];
    // the batched prefill and the one-token decode path must agree on the last position
    const all = model.forward(prompt, model.createCache(), "all");
    const cache = model.createCache(); let last;
    for (const t of prompt) last = model.forward([t], cache, "last");
    let diff = 0; for (let i = 0; i < 40; i++) diff = Math.max(diff, Math.abs(all[3 * 40 + i] - last[i]));
    if (!(diff < 1e-4) || !Number.isFinite(diff)) throw new Error("prefill vs decode differ by " + diff);
    console.log("random 2-layer model: prefill and decode agree within " + diff.toExponential(1));`,
  "@lowbit/calibration": `
    import { MinMaxObserver, HistogramObserver, computeQParams } from "@lowbit/calibration";
    const x = new Float32Array(4096).map((_, i) => Math.sin(i * 0.01) * 3);
    const mm = new MinMaxObserver(); mm.observe(x);
    const q = mm.qparams({ bits: 8, sym: false, signed: false });
    if (q.qmin !== 0 || q.qmax !== 255 || Math.abs(q.scale - 6 / 255) > 1e-3) throw new Error("minmax qparams " + JSON.stringify(q));
    const sym = computeQParams(-1, 2, { bits: 8, sym: true });
    if (Math.abs(sym.scale - 2 / 127.5) > 1e-6 || sym.zeroPoint !== 0) throw new Error("symmetric qparams " + JSON.stringify(sym));
    const h = new HistogramObserver(); h.observe(x);
    const hq = h.qparams({ bits: 8 });
    if (!(hq.scale > 0 && hq.scale <= q.scale * 1.01)) throw new Error("histogram scale " + hq.scale);
    console.log("minmax scale " + q.scale.toFixed(5) + ", histogram scale " + hq.scale.toFixed(5));`,
  "@lowbit/gptq": `
    import { gptqQuantize } from "@lowbit/gptq";
    import { quantizeRTN, dequantizeMatrix } from "@lowbit/int4";
    import { Rng } from "@lowbit/tensor";
    const rows = 16, cols = 64, n = 256, rng = new Rng(3);
    const w = new Float32Array(rows * cols); rng.fillNormal(w, 0, 1);
    // correlated inputs: GPTQ's error feedback should beat rounding on the layer output
    const x = new Float32Array(n * cols);
    for (let s = 0; s < n; s++) { let c = 0; for (let j = 0; j < cols; j++) { c = 0.8 * c + rng.normal(); x[s * cols + j] = c; } }
    const h = new Float32Array(cols * cols);
    for (let s = 0; s < n; s++) for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) h[i * cols + j] += (2 / n) * x[s * cols + i] * x[s * cols + j];
    const outErr = (q) => { let e = 0; for (let s = 0; s < n; s++) for (let r = 0; r < rows; r++) {
      let d = 0; for (let j = 0; j < cols; j++) d += (w[r * cols + j] - q[r * cols + j]) * x[s * cols + j]; e += d * d; } return e; };
    const g = outErr(dequantizeMatrix(gptqQuantize(w, rows, cols, h, { bits: 4, groupSize: 32, sym: false }).qm));
    const r = outErr(dequantizeMatrix(quantizeRTN(w, rows, cols, { bits: 4, groupSize: 32, sym: false })));
    if (!(g < 0.8 * r)) throw new Error("gptq output error " + g + " not below rtn " + r);
    console.log("4-bit g32 layer output error: GPTQ/RTN = " + (g / r).toFixed(3));`,
  "@lowbit/awq": `
    import { awqPseudoQuantize, searchClip } from "@lowbit/awq";
    import { dequantizeMatrix } from "@lowbit/int4";
    const rows = 8, cols = 128;
    const w = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 1.7) + (i % 97 === 0 ? 6 : 0));
    const qm = awqPseudoQuantize(w, rows, cols, { bits: 4, groupSize: 64 });
    const back = dequantizeMatrix(qm);
    let num = 0, den = 0; for (let i = 0; i < w.length; i++) { num += (back[i] - w[i]) ** 2; den += w[i] ** 2; }
    const rel = Math.sqrt(num / den);
    if (!(rel < 0.2) || typeof searchClip !== "function") throw new Error("awq quantizer relative rmse " + rel);
    console.log("AWQ 4-bit g64 pseudo-quantize relative RMSE " + rel.toFixed(4));`,
  "@lowbit/qat": `
    import { Variable, linear, silu, sum, gradCheck } from "@lowbit/qat";
    import { Rng } from "@lowbit/tensor";
    const rng = new Rng(5);
    const rand = (n) => { const a = new Float32Array(n); rng.fillNormal(a, 0, 1); return a; };
    const x = new Variable(rand(3 * 5), [3, 5], { requiresGrad: true });
    const w = new Variable(rand(4 * 5), [4, 5], { requiresGrad: true });
    const res = gradCheck(([a, b]) => sum(silu(linear(a, b))), [x, w]);
    if (!res.ok) throw new Error("gradcheck failed " + JSON.stringify(res));
    console.log("autograd linear+silu gradient check ok over " + res.checked + " elements, max error " + res.maxAbsError.toExponential(1));`,
};
