import { LINEAR_NAMES } from "@lowbit/runtime";
import { histogram, type LayerError, type MethodRun } from "../run-record";
import { formatBytes, formatDuration, formatNumber } from "../ui/format";
import type { Io } from "../ui/io";
import { renderPairs, renderTable } from "../ui/table";
import type { LayerStats } from "./stats";
import type { ValueSample } from "./stats";

/** Per-linear errors of a run in the run record's shape. */
export function layerErrors(stats: readonly LayerStats[]): LayerError[] {
  const out: LayerError[] = [];
  for (const st of stats) {
    if (!st) continue;
    for (const l of st.linears) {
      out.push({ name: `blk.${st.layer}.${l.name}`, layer: st.layer, bits: l.bits, groupSize: l.groupSize, weightError: l.weightError, outputError: l.outputError });
    }
  }
  return out;
}

/** Weight and error histograms from the sampled values (errors on a symmetric range). */
export function histograms(sample: ValueSample): Pick<MethodRun, "weightHistogram" | "errorHistogram"> {
  if (sample.weights.length === 0) return {};
  let emax = 0;
  for (const e of sample.errors) emax = Math.max(emax, Math.abs(e));
  return { weightHistogram: histogram(sample.weights, 80), errorHistogram: histogram(sample.errors, 80, -emax || -1, emax || 1) };
}

/** The per-layer error table: relative weight error of each linear, and the layer's output error. */
export function printLayerTable(io: Io, stats: readonly LayerStats[]): void {
  const c = io.c;
  const allBits = stats.filter((s) => s).flatMap((s) => s.linears.map((l) => l.bits));
  const counts = new Map<number, number>();
  for (const b of allBits) counts.set(b, (counts.get(b) ?? 0) + 1);
  const usual = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const rows = stats
    .filter((s) => s)
    .map((s) => {
      const byName = new Map(s.linears.map((l) => [l.name, l]));
      return [
        String(s.layer),
        ...LINEAR_NAMES.map((n) => {
          const l = byName.get(n);
          if (!l) return "-";
          const v = formatNumber(l.outputError ?? l.weightError, 3);
          return l.bits === usual ? v : `${v} ${c.yellow(`(${l.bits}b)`)}`;
        }),
        s.outputError === undefined ? "-" : formatNumber(s.outputError, 3),
        formatDuration(s.ms / 1000),
      ];
    });
  const bits = new Set(stats.filter((s) => s).flatMap((s) => s.linears.map((l) => l.bits)));
  const measured = stats.some((s) => s?.linears.some((l) => l.outputError !== undefined));
  io.print(
    renderTable(
      [{ header: "layer", align: "right" }, ...LINEAR_NAMES.map((n) => ({ header: n, align: "right" as const })), { header: "output", align: "right" }, { header: "time", align: "right" }],
      rows,
      { bold: c.bold, dim: c.dim },
    ),
  );
  io.print(
    c.dim(
      `${measured ? "relative output error of each linear (quantized layer vs float layer)" : "relative weight error ||W-Wq||²/||W||² of each linear"}${bits.size > 1 ? ` (mixed: ${[...bits].sort().join("/")} bits)` : ""}; output: the decoder layer's relative output error, on the first calibration windows`,
    ),
  );
}

export interface SizeSummary {
  bytesBefore: number;
  bytesAfter: number;
  params: number;
  linearParams: number;
  linearBits: number;
}

export function printSummary(io: Io, title: string, s: SizeSummary, extra: Array<[string, string]>): void {
  const c = io.c;
  io.print(c.bold(title));
  io.print(
    renderPairs(
      [
        ["size", `${formatBytes(s.bytesBefore)} -> ${formatBytes(s.bytesAfter)} (${formatNumber(s.bytesBefore / s.bytesAfter, 3)}x smaller)`],
        [
          "bits/weight",
          `${formatNumber((s.bytesBefore * 8) / s.params, 3)} -> ${formatNumber((s.bytesAfter * 8) / s.params, 3)} overall, ${formatNumber(s.linearBits / s.linearParams, 3)} in the linear layers`,
        ],
        ...extra,
      ],
      (k) => c.bold(k),
    ),
  );
}
