/**
 * Small dependency-free SVG charts for the HTML report: line/point series on linear or log axes
 * and histograms. Output is a self-contained <svg> string (escaped text, no scripts).
 */

export interface Series {
  label: string;
  points: Array<[number, number]>;
  /** Draw lines between points (default true) or points only. */
  lines?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  logX?: boolean;
  width?: number;
  height?: number;
  /** Tick labels for x at integer positions (e.g. layer names). */
  xTickLabels?: string[];
  /** Label each point with its series label (scatter plots). */
  labelPoints?: boolean;
}

export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (v === 0) return "0";
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return Number(v.toPrecision(3)).toString();
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  map: (v: number) => number;
  ticks: number[];
}

function axis(values: number[], log: boolean, from: number, to: number): Axis {
  let vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (vs.length === 0) vs = log ? [1] : [0];
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (log) {
    lo = Math.log10(lo);
    hi = Math.log10(hi);
    if (hi - lo < 1e-9) {
      lo -= 0.5;
      hi += 0.5;
    }
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    const ticks: number[] = [];
    for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) ticks.push(10 ** e);
    if (ticks.length < 2) ticks.push(10 ** lo, 10 ** hi);
    return { lo, hi, log, ticks, map: (v) => from + ((Math.log10(Math.max(v, 1e-300)) - lo) / (hi - lo)) * (to - from) };
  }
  if (hi - lo < 1e-12) {
    lo -= Math.abs(lo) * 0.1 + 0.5;
    hi += Math.abs(hi) * 0.1 + 0.5;
  }
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  return { lo, hi, log, ticks: niceTicks(lo, hi), map: (v) => from + ((v - lo) / (hi - lo)) * (to - from) };
}

/** A chart of one or more series (lines with points, or a scatter). */
export function chart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 640;
  const H = (o.height ?? 320) + (o.xTickLabels ? Math.max(0, Math.ceil(Math.max(0, ...o.xTickLabels.map((l) => l.length)) * 5.2) - 32) : 0);
  const longest = Math.max(0, ...(o.xTickLabels ?? []).map((l) => l.length));
  const m = { l: 64, r: 16, t: 32, b: o.xTickLabels ? 40 + Math.ceil(longest * 5.2) : 44 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const X = axis(xs, o.logX ?? false, m.l, W - m.r);
  const Y = axis(ys, o.logY ?? false, H - m.b, m.t);
  const parts: string[] = [];
  parts.push(`<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(o.title)}">`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" class="t">${escapeXml(o.title)}</text>`);
  for (const t of Y.ticks) {
    const y = Y.map(t);
    if (y < m.t - 1 || y > H - m.b + 1) continue;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" class="g"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" class="k">${fmt(t)}</text>`);
  }
  if (o.xTickLabels) {
    o.xTickLabels.forEach((label, i) => {
      const x = X.map(i);
      parts.push(`<text transform="translate(${x.toFixed(1)},${H - m.b + 10}) rotate(60)" class="k">${escapeXml(label)}</text>`);
    });
  } else {
    for (const t of X.ticks) {
      const x = X.map(t);
      if (x < m.l - 1 || x > W - m.r + 1) continue;
      parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t}" y2="${H - m.b}" class="g"/>`);
      parts.push(`<text x="${x.toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle" class="k">${fmt(t)}</text>`);
    }
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" class="f"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle" class="a">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" class="a">${escapeXml(o.yLabel)}</text>`);
  series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0) && (!o.logX || x > 0));
    if (s.lines !== false && pts.length > 1) {
      const d = pts.map(([x, y], i) => `${i ? "L" : "M"}${X.map(x).toFixed(1)},${Y.map(y).toFixed(1)}`).join("");
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    }
    for (const [x, y] of pts) {
      const cx = X.map(x).toFixed(1);
      const cy = Y.map(y).toFixed(1);
      parts.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"><title>${escapeXml(`${s.label}: ${fmt(x)}, ${fmt(y)}`)}</title></circle>`);
      // stagger labels of neighbouring series so points at the same place stay readable
      if (o.labelPoints) parts.push(`<text x="${(Number(cx) + 5).toFixed(1)}" y="${(Number(cy) - 5 + (si % 3) * 11).toFixed(1)}" class="k">${escapeXml(s.label)}</text>`);
    }
  });
  if (!o.labelPoints && series.length > 1) parts.push(legend(series.map((s) => s.label), m.l + 8, m.t + 8));
  parts.push("</svg>");
  return parts.join("");
}

function legend(labels: string[], x: number, y: number): string {
  return labels
    .map((l, i) => {
      const yy = y + i * 15;
      return `<rect x="${x}" y="${yy}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${x + 14}" y="${yy + 9}" class="k">${escapeXml(l)}</text>`;
    })
    .join("");
}

export interface HistogramSeries {
  label: string;
  lo: number;
  hi: number;
  counts: number[];
}

/** Histograms drawn as step outlines over a shared x range, y as a share of each series' total. */
export function histogramChart(series: readonly HistogramSeries[], o: { title: string; xLabel: string; width?: number; height?: number; logY?: boolean }): string {
  const lines: Series[] = series.map((h) => {
    const total = h.counts.reduce((a, b) => a + b, 0) || 1;
    const w = (h.hi - h.lo) / Math.max(1, h.counts.length);
    const pts: Array<[number, number]> = [];
    h.counts.forEach((c, i) => {
      const y = c / total;
      pts.push([h.lo + i * w, y], [h.lo + (i + 1) * w, y]);
    });
    return { label: h.label, points: o.logY ? pts.filter(([, y]) => y > 0) : pts };
  });
  const svg = chart(lines, { title: o.title, xLabel: o.xLabel, yLabel: "share of values", width: o.width, height: o.height, logY: o.logY });
  // histogram outlines have no point markers
  return svg.replace(/<circle[^>]*><title>[^<]*<\/title><\/circle>/g, "");
}
