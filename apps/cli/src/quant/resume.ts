import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { openSafetensors, type SafetensorsFile, writeSafetensors } from "@lowbit/formats";
import { LINEAR_NAMES, type LlamaModel } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { lowbitQuantizedMeta, lowbitQuantizedParts, lowbitTensors, readLowbitMatrix } from "../export/lowbit-format";
import { pathExists, writeAtomically } from "../output/atomic";
import { quantizedMatrixOf } from "./collect";
import { DeferredFloat, DeferredMatrix, type FloatTensor } from "./qmodel";
import type { LayerStats } from "./stats";

interface State {
  version: 1;
  fingerprint: string;
  /** Layers [0, next) are finished and saved; `inputs.f32` holds layer next's inputs. */
  next: number;
  stats: LayerStats[];
}

/** A stable hash of everything that decides a quantization's result. */
export function fingerprint(parts: unknown): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

/**
 * Checkpoints of a running quantization beside its output (`.<out>.lowbit-resume/`): each finished
 * decoder layer (its quantized matrices, norms and biases, exactly), the next layer's inputs, and
 * state.json, each written atomically, state last. The quantize pipeline saves each layer as soon as
 * it is finished and drops it from memory; the exporters then read the finished layers back from
 * here one tensor at a time (`deferredLayer`). `--resume` continues the driver at the next layer
 * with the saved inputs, which gives the same bytes as a run that was never interrupted (the
 * plug-ins are deterministic).
 */
export class ResumeStore {
  readonly dir: string;
  private state: State;

  private constructor(
    out: string,
    fp: string,
  ) {
    this.dir = join(dirname(out), `.${basename(out)}.lowbit-resume`);
    this.state = { version: 1, fingerprint: fp, next: 0, stats: [] };
  }

  get next(): number {
    return this.state.next;
  }

  get stats(): LayerStats[] {
    return this.state.stats;
  }

  /**
   * Opens the store: with `resume`, an existing state made with the same settings is continued
   * (a different one is an error saying so); without, any old state is discarded.
   */
  static async open(out: string, fp: string, resume: boolean): Promise<{ store: ResumeStore; resumed: boolean; discarded: boolean }> {
    const store = new ResumeStore(out, fp);
    const statePath = join(store.dir, "state.json");
    const had = await pathExists(statePath);
    if (resume && had) {
      let s: State;
      try {
        s = JSON.parse(await readFile(statePath, "utf8")) as State;
      } catch (e) {
        throw new LowbitError("E_FORMAT", `${statePath} is damaged (${(e as Error).message}); run again without --resume to start over.`, { cause: e });
      }
      if (s.fingerprint !== fp) {
        throw new LowbitError(
          "E_INVALID_ARGUMENT",
          `--resume: the interrupted run in ${store.dir} used a different model, data or settings, so it cannot be continued with these. Run again with the same flags, or without --resume to start over.`,
        );
      }
      store.state = s;
      return { store, resumed: s.next > 0, discarded: false };
    }
    if (had) await rm(store.dir, { recursive: true, force: true });
    await mkdir(store.dir, { recursive: true });
    return { store, resumed: false, discarded: had };
  }

  private layerFile(i: number): string {
    return join(this.dir, `layer-${String(i).padStart(5, "0")}.safetensors`);
  }

  /** Saves layer i as it is in the model now (quantized linears, norms, biases). */
  async saveLayer(model: LlamaModel, i: number): Promise<void> {
    const floats = new Map<string, FloatTensor>();
    const quantized = new Map<string, ReturnType<typeof quantizedMatrixOf> & object>();
    const { attnNorm, ffnNorm } = model.layerNorms(i);
    floats.set("attn_norm", { shape: [attnNorm.length], data: attnNorm });
    floats.set("ffn_norm", { shape: [ffnNorm.length], data: ffnNorm });
    for (const name of LINEAR_NAMES) {
      const lin = model.getLinear(i, name);
      const qm = quantizedMatrixOf(lin);
      if (qm) quantized.set(`${name}.weight`, qm);
      else floats.set(`${name}.weight`, { shape: [lin.outFeatures, lin.inFeatures], data: lin.dequantizedWeight() });
      const b = (lin as { bias?: unknown }).bias;
      if (b instanceof Float32Array) floats.set(`${name}.bias`, { shape: [b.length], data: b });
    }
    const { tensors, metadata } = lowbitTensors({ floats, quantized });
    await writeSafetensors(this.layerFile(i), tensors, metadata);
  }

  /**
   * Saved layer i, not read: its tensors by local name (`attn_norm`, `ffn_norm`, `attn_q.weight`,
   * `attn_q.bias`, ...) with shapes and settings now and values read from the checkpoint when
   * loaded, one tensor at a time.
   */
  async deferredLayer(i: number): Promise<{ floats: Map<string, DeferredFloat>; quantized: Map<string, DeferredMatrix> }> {
    const file = this.layerFile(i);
    const withFile = async <T>(read: (st: SafetensorsFile) => Promise<T>): Promise<T> => {
      const st = await openSafetensors(file);
      try {
        return await read(st);
      } finally {
        await st.close();
      }
    };
    return withFile(async (st) => {
      const meta = lowbitQuantizedMeta(st, file);
      const parts = lowbitQuantizedParts(meta);
      const floats = new Map<string, DeferredFloat>();
      for (const [name, info] of st.tensors) {
        if (!parts.has(name)) floats.set(name, new DeferredFloat(name, [...info.shape], () => withFile((f) => f.readF32(name))));
      }
      const quantized = new Map<string, DeferredMatrix>();
      for (const [name, q] of Object.entries(meta)) {
        const stem = name.replace(/\.weight$/, "");
        const settings = {
          bits: q.bits,
          groupSize: q.group_size,
          rows: q.rows,
          cols: q.cols,
          sym: q.sym,
          hasGIdx: st.tensors.has(`${stem}.g_idx`),
          byteZeros: st.tensors.get(`${stem}.zeros`)?.dtype === "U8",
        };
        quantized.set(name, new DeferredMatrix(name, settings, () => withFile((f) => readLowbitMatrix(f, name, q, file))));
      }
      return { floats, quantized };
    });
  }

  async saveInputs(inputs: Float32Array): Promise<void> {
    await writeAtomically(join(this.dir, "inputs.f32"), "file", (tmp) => writeFile(tmp, new Uint8Array(inputs.buffer, inputs.byteOffset, inputs.byteLength)));
  }

  async loadInputs(): Promise<Float32Array> {
    const b = await readFile(join(this.dir, "inputs.f32"));
    const copy = new Uint8Array(b.byteLength);
    copy.set(b);
    return new Float32Array(copy.buffer);
  }

  /** Records that layers [0, next) are saved (written last, atomically). */
  async commit(next: number, stats: LayerStats[]): Promise<void> {
    this.state = { ...this.state, next, stats: stats.slice(0, next) };
    await writeAtomically(join(this.dir, "state.json"), "file", (tmp) => writeFile(tmp, JSON.stringify(this.state)));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
