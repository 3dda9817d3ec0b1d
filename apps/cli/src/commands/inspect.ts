import { commonArgs, lowbitCommand } from "../command";
import { type ModelDescription, describeModel, type TensorSummary } from "../model/describe";
import { resolveModel } from "../model/resolve";
import { formatBytes, formatCount, formatNumber } from "../ui/format";
import { io } from "../ui/io";
import { renderPairs, renderTable } from "../ui/table";

/** Tensors of every layer collapsed by their name with the layer index replaced by "*". */
export function groupTensors(tensors: readonly TensorSummary[]): Array<TensorSummary & { count: number }> {
  const groups = new Map<string, TensorSummary & { count: number }>();
  for (const t of tensors) {
    const key = `${t.name.replace(/^(blk|model\.layers)\.\d+\./, "$1.*.")}|${t.dtype}|${t.shape.join("x")}`;
    const g = groups.get(key);
    if (g) {
      g.count++;
      g.bytes += t.bytes;
    } else {
      groups.set(key, { ...t, name: t.name.replace(/^(blk|model\.layers)\.\d+\./, "$1.*."), count: 1, stats: undefined });
    }
  }
  return [...groups.values()];
}

function dtypeTotals(tensors: readonly TensorSummary[]): Array<[string, { tensors: number; bytes: number }]> {
  const m = new Map<string, { tensors: number; bytes: number }>();
  for (const t of tensors) {
    const e = m.get(t.dtype) ?? { tensors: 0, bytes: 0 };
    e.tensors++;
    e.bytes += t.bytes;
    m.set(t.dtype, e);
  }
  return [...m.entries()].sort((a, b) => b[1].bytes - a[1].bytes);
}

function printDescription(d: ModelDescription, all: boolean): void {
  const out = io();
  const c = out.c;
  const a = d.architecture;
  const pairs: Array<[string, string]> = [
    ["model", d.path],
    ["format", d.format],
  ];
  if (a) {
    pairs.push([
      "architecture",
      `${a.architecture}: ${a.nLayers} layers, dim ${a.dim}, ffn ${a.hiddenDim}, ${a.nHeads} heads (${a.nKvHeads} kv), vocab ${a.vocabSize}, context ${a.contextLength}${a.tiedEmbeddings ? ", tied classifier" : ""}`,
    ]);
  }
  pairs.push(["parameters", `${formatCount(d.parameters)} (${d.parameters.toLocaleString("en-US")})`]);
  pairs.push(["dtypes", dtypeTotals(d.tensors).map(([k, v]) => `${k} ×${v.tensors} (${formatBytes(v.bytes)})`).join(", ")]);
  pairs.push(["size", `${formatBytes(d.bytesOnDisk)} on disk, ${formatNumber(d.bitsPerWeight, 3)} bits per weight`]);
  if (d.tokenizer) pairs.push(["tokenizer", `${d.tokenizer.path}${d.tokenizer.vocabSize ? ` (${d.tokenizer.vocabSize} tokens)` : ""}`]);
  if (d.quantization) {
    pairs.push([
      "quantization",
      Object.entries(d.quantization)
        .filter(([, v]) => typeof v !== "object" || v === null)
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    ]);
  }
  out.print(renderPairs(pairs, (s) => c.bold(s)));
  out.print();
  const withStats = d.tensors.some((t) => t.stats);
  const rows = all || withStats ? d.tensors.map((t) => ({ ...t, count: 1 })) : groupTensors(d.tensors);
  const columns = [
    { header: "tensor" },
    ...(all || withStats ? [] : [{ header: "×", align: "right" as const }]),
    { header: "dtype" },
    { header: "shape" },
    { header: "params", align: "right" as const },
    { header: "bytes", align: "right" as const },
    ...(withStats
      ? [
          { header: "min", align: "right" as const },
          { header: "max", align: "right" as const },
          { header: "mean", align: "right" as const },
          { header: "std", align: "right" as const },
        ]
      : []),
  ];
  out.print(
    renderTable(
      columns,
      rows.map((t) => [
        t.name,
        ...(all || withStats ? [] : [String(t.count)]),
        t.dtype,
        t.shape.join(" x "),
        formatCount(t.shape.reduce((x, y) => x * y, 1) * t.count),
        formatBytes(t.bytes),
        ...(t.stats ? [formatNumber(t.stats.min), formatNumber(t.stats.max), formatNumber(t.stats.mean), formatNumber(t.stats.std)] : []),
      ]),
      { bold: c.bold, dim: c.dim },
    ),
  );
  if (!all && !withStats && rows.length < d.tensors.length) {
    out.print(c.dim(`(${d.tensors.length} tensors; layers collapsed into blk.*; --tensors lists each one)`));
  }
}

export default lowbitCommand(
  {
    args: {
      model: { type: "positional", required: true, description: "Model path: HF folder, .gguf, .safetensors, lowbit output, or llama2.c .bin" },
      tokenizer: { type: "string", description: "llama2.c tokenizer .bin (default: the one beside the checkpoint)", valueHint: "FILE" },
      tensors: { type: "boolean", description: "List every tensor instead of collapsing layers" },
      stats: { type: "boolean", description: "Read the weights and show min/max/mean/std per tensor" },
      ...commonArgs,
    },
    async run({ args }) {
      const model = await resolveModel(args.model, { tokenizer: args.tokenizer, needTokenizer: "optional" });
      const d = await describeModel(model, { stats: args.stats });
      io().result(d);
      printDescription(d, args.tensors === true);
    },
  },
  {
    examples: ["lowbit inspect stories260K.bin", "lowbit inspect out/model.gguf --tensors", "lowbit inspect ./Llama-3.2-1B --json"],
  },
);
