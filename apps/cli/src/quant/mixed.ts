import type { LinearName } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";

export interface MixedRule {
  pattern: string;
  regex: RegExp;
  bits: number;
}

const ALLOWED_BITS = [2, 3, 4, 8];

/**
 * Parses --mixed rules: comma-separated `PATTERN=BITS`, matched against `blk.N.NAME` (e.g.
 * `blk.0.*=8`, `*.ffn_down=8`) or a bare linear name (`attn_v=8`, all layers); `*` matches any
 * run of characters, a range `blk.0-1.*` several layers. The last matching rule wins.
 */
export function parseMixedRules(text: string): MixedRule[] {
  const rules: MixedRule[] = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9_.*-]+)\s*[=:]\s*(\d+)$/.exec(part);
    if (!m) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `--mixed rule "${part}" is not PATTERN=BITS. Write rules like "ffn_down=8", "blk.0.*=8" or "blk.1-3.attn_v=8", separated by commas.`,
      );
    }
    const bits = Number(m[2]);
    if (!ALLOWED_BITS.includes(bits)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `--mixed rule "${part}": bits must be one of ${ALLOWED_BITS.join(", ")}, got ${bits}.`);
    }
    let pattern = m[1]!;
    if (!pattern.includes(".")) pattern = `blk.*.${pattern}`;
    const body = pattern
      .split(".")
      .map((seg) => {
        const range = /^(\d+)-(\d+)$/.exec(seg);
        if (range) {
          const [a, b] = [Number(range[1]), Number(range[2])];
          if (a > b) throw new LowbitError("E_INVALID_ARGUMENT", `--mixed rule "${part}": range ${seg} is empty.`);
          return `(?:${Array.from({ length: b - a + 1 }, (_, i) => a + i).join("|")})`;
        }
        return seg.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
      })
      .join("\\.");
    rules.push({ pattern, regex: new RegExp(`^${body}$`), bits });
  }
  if (rules.length === 0) throw new LowbitError("E_INVALID_ARGUMENT", `--mixed is empty; give rules like "ffn_down=8,blk.0.*=8".`);
  return rules;
}

/** bitsFor(layer, name) for the plug-ins: the last matching rule's bits, else undefined (the default --bits). */
export function mixedBitsFor(rules: readonly MixedRule[]): (layer: number, name: LinearName) => number | undefined {
  return (layer, name) => {
    let bits: number | undefined;
    for (const r of rules) if (r.regex.test(`blk.${layer}.${name}`)) bits = r.bits;
    return bits;
  };
}
