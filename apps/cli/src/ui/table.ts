import { visibleLength } from "./io";

export interface Column {
  header: string;
  /** Numbers read best right-aligned. */
  align?: "left" | "right";
}

/**
 * A plain text table: a header, a rule, rows; columns padded to their widest visible cell
 * (ANSI colour codes do not count), two spaces between columns.
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], opts: { bold?: (s: string) => string; dim?: (s: string) => string } = {}): string {
  const widths = columns.map((c, i) => Math.max(visibleLength(c.header), ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const pad = (text: string, i: number) => {
    const w = widths[i] ?? 0;
    const fill = " ".repeat(Math.max(0, w - visibleLength(text)));
    return columns[i]?.align === "right" ? fill + text : text + fill;
  };
  const line = (cells: readonly string[]) =>
    columns
      .map((_, i) => pad(cells[i] ?? "", i))
      .join("  ")
      .trimEnd();
  const bold = opts.bold ?? ((s: string) => s);
  const dim = opts.dim ?? ((s: string) => s);
  const out = [bold(line(columns.map((c) => c.header))), dim(widths.map((w) => "─".repeat(w)).join("  "))];
  for (const r of rows) out.push(line(r));
  return out.join("\n");
}

/** "key  value" pairs, keys padded. */
export function renderPairs(pairs: readonly (readonly [string, string])[], key: (s: string) => string = (s) => s): string {
  const w = Math.max(0, ...pairs.map(([k]) => visibleLength(k)));
  return pairs.map(([k, v]) => `${key(k.padEnd(w))}  ${v}`).join("\n");
}
