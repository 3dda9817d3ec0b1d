// Exporter: lowbit's calibration windows, eval windows, layer-0 (W,H) pairs with lowbit GPTQ results,
// and the whole-model GPTQ w3 g32 act-order run (layer inputs + dequantized weights + ppl).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dataDir } from "@lowbit/testing";
import {
  consecutiveWindows, encodeDocuments, quantizeModel, sampleWindows, splitOnBlankLines, linearInputKey,
} from "@lowbit/calibration";
import { gptqPlugin, gptqQuantize, HessianAccumulator } from "@lowbit/gptq";
import { dequantizeMatrix, effectiveGroupSize } from "@lowbit/int4";
import { LINEAR_NAMES, Llama2cTokenizer, loadLlama2c, type LlamaModel } from "@lowbit/runtime";

const OUT = process.env.XCHECK_OUT ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "out");
fs.mkdirSync(OUT, { recursive: true });
const D = dataDir();
const SEQ = 256, BOS = 1;
const mode = process.argv[2] ?? "all";
const seed = Number(process.argv[3] ?? 0);
const save = (name: string, a: Float32Array | Int32Array) => fs.writeFileSync(`${OUT}/${name}`, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

const tok = await Llama2cTokenizer.fromFile(`${D}/stories260K/tok512.bin`);
const stories = splitOnBlankLines(fs.readFileSync(`${D}/text/tinystories-valid.txt`, "utf8"));
const half = Math.floor(stories.length / 2);
const calibStream = encodeDocuments(stories.slice(0, half), tok);
const evalStream = encodeDocuments(stories.slice(half), tok);
const calib = sampleWindows(calibStream, { windows: 64, seqLen: SEQ, seed, bosId: BOS });
const ev = consecutiveWindows(evalStream, SEQ, 100_000, BOS);
save(`calib_seed${seed}.i32`, calib.tokens);
save("eval.i32", ev.tokens);
console.log(`calib stream ${calibStream.length}, eval windows ${ev.windows}, offsets[0..4] ${Array.from(calib.offsets.slice(0, 5))}`);

function ppl(model: LlamaModel): number {
  const V = model.config.vocabSize;
  let nll = 0;
  const B = 16;
  for (let w0 = 0; w0 < ev.windows; w0 += B) {
    const b = Math.min(B, ev.windows - w0);
    let h = model.embed(ev.tokens.subarray(w0 * SEQ, (w0 + b) * SEQ));
    for (let i = 0; i < model.nLayers; i++) h = model.runLayer(i, h, b, SEQ);
    const logits = model.head(h, b * SEQ);
    for (let j = 0; j < b; j++) for (let t = 0; t < SEQ - 1; t++) {
      const o = (j * SEQ + t) * V;
      let mx = -Infinity;
      for (let v = 0; v < V; v++) mx = Math.max(mx, logits[o + v]!);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(logits[o + v]! - mx);
      nll -= logits[o + ev.tokens[(w0 + j) * SEQ + t + 1]!]! - mx - Math.log(s);
    }
  }
  return Math.exp(nll / (ev.windows * (SEQ - 1)));
}

const load = () => loadLlama2c(`${D}/stories260K/stories260K.bin`);

if (mode === "all" || mode === "layer0") {
  const model = await load();
  // layer-0 Hessians, one addBatch per window (as llama.py)
  const accs = new Map<string, HessianAccumulator>();
  const un = model.registerHook((e) => {
    if (e.kind !== "linear" || e.layer !== 0) return;
    const key = linearInputKey(e.name);
    if (!["attn_q", "attn_output", "ffn_gate", "ffn_down"].includes(e.name)) return;
    if (!accs.has(key)) accs.set(key, new HessianAccumulator(e.input.length / e.rows));
    accs.get(key)!.addBatch(e.input, e.rows, 1);
  });
  const x0 = model.embed(calib.tokens);
  for (let w = 0; w < 64; w++) model.runLayer(0, x0.subarray(w * SEQ * 64, (w + 1) * SEQ * 64), 1, SEQ);
  un();
  for (const name of ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_down"] as const) {
    const lin = model.getLinear(0, name);
    const rows = lin.outFeatures, cols = lin.inFeatures;
    const W = lin.dequantizedWeight();
    const H = accs.get(linearInputKey(name))!.h;
    save(`L0_${name}_W.f32`, W);
    save(`L0_${name}_H.f32`, H);
    for (const [bits, act] of [[3, true], [4, true], [3, false], [4, false]] as const) {
      const g = effectiveGroupSize(cols, 32);
      const res = gptqQuantize(W, rows, cols, H, { bits, groupSize: g, sym: false, actOrder: act, percdamp: 0.01, blockSize: 128 });
      save(`L0_${name}_Q_b${bits}_${act ? "act" : "noact"}.f32`, dequantizeMatrix(res.qm));
      console.log(`L0 ${name} ${rows}x${cols} g${g} b${bits} act=${act}: loss ${res.loss.toFixed(6)} retries ${res.dampRetries} dead ${res.deadColumns}`);
    }
  }
  model.dispose();
}

if (mode === "all" || mode === "model") {
  const model = await load();
  console.log(`FP32 ppl ${ppl(model).toFixed(4)}`);
  const plugin = gptqPlugin({ bits: 3, groupSize: 32, sym: false, trueSequential: false, actOrder: true });
  await quantizeModel(model, calib, plugin, {
    layerInputs: (i, x) => save(`lowbit_s${seed}_inputs_L${i}.f32`, x),
  });
  const parts: Float32Array[] = [];
  for (let i = 0; i < model.nLayers; i++) for (const n of LINEAR_NAMES) parts.push(model.getLinear(i, n).dequantizedWeight());
  const tot = parts.reduce((a, p) => a + p.length, 0);
  const all = new Float32Array(tot);
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  save(`lowbit_s${seed}_w3act_weights.f32`, all);
  console.log(`GPTQ w3 g32 act-order seed ${seed} ppl ${ppl(model).toFixed(4)}`);
  model.dispose();
}

if (mode === "evalw") {
  // evaluate a weights file (layer-major, LINEAR_NAMES order) with lowbit's runtime
  const file = process.argv[4]!;
  const model = await load();
  const buf = fs.readFileSync(file);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const { makeF32Linear } = await import("@lowbit/runtime");
  let o = 0;
  for (let i = 0; i < model.nLayers; i++) for (const n of LINEAR_NAMES) {
    const l = model.getLinear(i, n);
    const k = l.inFeatures * l.outFeatures;
    model.setLinear(i, n, makeF32Linear(all.slice(o, o + k), l.outFeatures, l.inFeatures));
    o += k;
  }
  console.log(`lowbit eval of ${file}: ppl ${ppl(model).toFixed(4)}`);
}

if (mode === "stream") {
  save("calib_stream.i32", calibStream);
  console.log(`wrote calib stream ${calibStream.length}`);
}

if (mode === "sweep") {
  // argv: sweep <unused seed> <seedFrom> <seedTo> [staticGroups 0|1] [bits]
  const from = Number(process.argv[4]), to = Number(process.argv[5]);
  const staticGroups = process.argv[6] === "1";
  const bits = Number(process.argv[7] ?? 3);
  for (let s = from; s < to; s++) {
    const model = await load();
    const c = sampleWindows(calibStream, { windows: 64, seqLen: SEQ, seed: s, bosId: BOS });
    await quantizeModel(model, c, gptqPlugin({ bits, groupSize: 32, sym: false, trueSequential: false, actOrder: true, staticGroups }));
    console.log(`SWEEP bits ${bits} static ${staticGroups} seed ${s} ppl ${ppl(model).toFixed(4)}`);
    model.dispose();
  }
}

if (mode === "tokfile") {
  // argv: tokfile <unused> <file of 64*256 int32> [bits]
  const file = process.argv[4]!;
  const bits = Number(process.argv[5] ?? 3);
  const buf = fs.readFileSync(file);
  const tokens = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const c = { tokens, windows: 64, seqLen: SEQ, offsets: new Int32Array(64), tokensUsed: 64 * SEQ, distinctTokens: 64 * SEQ, streamTokens: calibStream.length, seed: 0 };
  for (const actOrder of [true, false]) {
    const model = await load();
    await quantizeModel(model, c, gptqPlugin({ bits, groupSize: 32, sym: false, trueSequential: false, actOrder }));
    console.log(`TOKFILE ${file} bits ${bits} act ${actOrder} ppl ${ppl(model).toFixed(4)}`);
    model.dispose();
  }
}
