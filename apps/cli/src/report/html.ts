import type { MethodRun, RunRecord } from "../run-record";
import { formatBytes, formatDuration, formatNumber, formatPercent } from "../ui/format";
import { chart, escapeXml, histogramChart, type Series } from "./svg";

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#111}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555}table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:1rem}
svg{max-width:100%;height:auto;background:#fff}svg .t{font-weight:600;font-size:13px}svg .k{font-size:10px;fill:#444}
svg .a{font-size:11px;fill:#222}svg .g{stroke:#eee}svg .f{fill:none;stroke:#999}
.note{background:#fffbea;border:1px solid #f0e2a0;padding:.5rem .75rem;border-radius:4px}
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px}`;

function td(v: string): string {
  return `<td>${escapeXml(v)}</td>`;
}

function summaryTable(r: RunRecord): string {
  const head = ["run", "size", "bits/weight", "perplexity", "KL (nats)", "top-1", "tokens/s", "time", "peak RSS (process)"];
  const rows: string[] = [];
  if (r.baseline) {
    const e = r.baseline.eval;
    rows.push(
      `<tr>${[
        r.baseline.label,
        formatBytes(r.baseline.bytes),
        formatNumber(r.baseline.bitsPerWeight, 3),
        formatNumber(e?.perplexity),
        "-",
        "-",
        formatNumber(e?.tokensPerSecond, 3),
        "-",
        "-",
      ]
        .map(td)
        .join("")}</tr>`,
    );
  }
  for (const m of r.runs) {
    const e = m.eval;
    rows.push(
      `<tr>${[
        m.label,
        formatBytes(m.bytes),
        formatNumber(m.bitsPerWeight, 3),
        formatNumber(e?.perplexity),
        formatNumber(e?.kl),
        formatPercent(e?.top1),
        formatNumber(e?.tokensPerSecond, 3),
        formatDuration(m.seconds),
        m.peakRssBytes ? formatBytes(m.peakRssBytes) : "-",
      ]
        .map(td)
        .join("")}</tr>`,
    );
  }
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function layerErrorChart(runs: readonly MethodRun[]): string {
  const names = runs[0]?.layers.map((l) => l.name) ?? [];
  const series: Series[] = runs.map((m) => ({
    label: m.label,
    points: m.layers.map((l, i) => [i, l.outputError ?? l.weightError ?? Number.NaN] as [number, number]),
  }));
  const measure = runs.some((m) => m.layers.some((l) => l.outputError !== undefined)) ? "relative output error" : "relative weight error";
  return chart(series, {
    title: `Per-linear error (${measure})`,
    xLabel: "linear layer",
    yLabel: measure,
    logY: true,
    width: 940,
    height: 380,
    xTickLabels: names.length <= 80 ? names : undefined,
  });
}

function layerOutputChart(runs: readonly MethodRun[]): string | undefined {
  const withOut = runs.filter((m) => m.layerOutputErrors?.some((v) => v !== null && v !== undefined));
  if (withOut.length === 0) return undefined;
  const series: Series[] = withOut.map((m) => ({
    label: m.label,
    points: (m.layerOutputErrors ?? []).flatMap((v, i) => (v === null || v === undefined ? [] : [[i, v] as [number, number]])),
  }));
  return chart(series, { title: "Per-layer output error (decoder layer, calibration windows)", xLabel: "decoder layer", yLabel: "relative output error", logY: true, width: 940, height: 340 });
}

function sizeVsPerplexity(r: RunRecord): string | undefined {
  const pts: Series[] = [];
  if (r.baseline?.eval) pts.push({ label: r.baseline.label, points: [[r.baseline.bytes, r.baseline.eval.perplexity]], lines: false });
  for (const m of r.runs) if (m.eval) pts.push({ label: m.label, points: [[m.bytes, m.eval.perplexity]], lines: false });
  if (pts.length === 0) return undefined;
  return chart(pts, { title: "Size against perplexity", xLabel: "bytes", yLabel: "perplexity", labelPoints: true, width: 940, height: 380 });
}

/** A self-contained HTML page (inline CSS and SVG, no scripts, no external resources). */
export function renderReport(r: RunRecord): string {
  const title = r.kind === "demo" ? "lowbit demo" : `lowbit quantize: ${r.runs[0]?.label ?? ""}`;
  const body: string[] = [];
  body.push(`<h1>${escapeXml(title)}</h1>`);
  body.push(
    `<p class="meta">model <code>${escapeXml(r.model.path)}</code> (${escapeXml(r.model.format)}, ${r.model.parameters.toLocaleString("en-US")} parameters, ${formatBytes(r.model.bytes)}) · lowbit ${escapeXml(r.lowbit)} · ${escapeXml(r.createdAt)}</p>`,
  );
  for (const note of [r.model.note, r.calibData?.note, r.evalData?.note]) if (note) body.push(`<p class="note">${escapeXml(note)}</p>`);
  if (r.command) body.push(`<p class="meta">command: <code>${escapeXml(r.command)}</code></p>`);
  body.push("<h2>Summary</h2>", summaryTable(r));
  if (r.calibData) body.push(`<p class="meta">calibration: ${escapeXml(r.calibData.path)}, ${r.calibData.samples} windows of ${r.calibData.seqLen} tokens</p>`);
  if (r.evalData) body.push(`<p class="meta">evaluation: ${escapeXml(r.evalData.path)}, ${r.evalData.tokens} tokens</p>`);
  const sp = sizeVsPerplexity(r);
  if (sp) body.push("<h2>Size and perplexity</h2>", sp);
  const withLayers = r.runs.filter((m) => m.layers.length > 0);
  if (withLayers.length) {
    body.push("<h2>Per-layer error</h2>");
    const lo = layerOutputChart(withLayers);
    if (lo) body.push(lo);
    body.push(layerErrorChart(withLayers));
  }
  const wh = r.runs.filter((m) => m.weightHistogram);
  const eh = r.runs.filter((m) => m.errorHistogram);
  if (wh.length || eh.length) {
    body.push("<h2>Histograms</h2>", '<div class="plots">');
    if (wh.length) {
      const first = wh[0]!;
      body.push(histogramChart([{ label: "weights", ...first.weightHistogram! }], { title: "Weights (all quantized layers)", xLabel: "value", width: 460, height: 300 }));
    }
    if (eh.length) {
      body.push(
        histogramChart(
          eh.map((m) => ({ label: m.label, ...m.errorHistogram! })),
          { title: "Quantization error (W - Wq)", xLabel: "error", width: 460, height: 300, logY: true },
        ),
      );
    }
    body.push("</div>");
  }
  if (withLayers.length) {
    body.push("<h2>Layers</h2>");
    const head = ["layer", ...withLayers.map((m) => escapeXml(m.label))];
    const n = withLayers[0]!.layers.length;
    const rows: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = withLayers[0]!.layers[i]!.name;
      rows.push(
        `<tr>${td(name)}${withLayers
          .map((m) => {
            const l = m.layers[i];
            return td(l ? `${formatNumber(l.outputError ?? l.weightError, 3)} (${l.bits}b g${l.groupSize})` : "-");
          })
          .join("")}</tr>`,
      );
    }
    body.push(`<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`);
  }
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeXml(title)}</title><style>${CSS}</style></head><body>${body.join("\n")}</body></html>\n`;
}
