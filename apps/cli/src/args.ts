import { LowbitError } from "@lowbit/tensor";
import type { ArgsDef } from "citty";

/** Flag value helpers: every bad value is a LowbitError naming the flag, the value and what is allowed. */

function bad(flag: string, value: unknown, expected: string, command?: string): LowbitError {
  const help = command ? ` Run "lowbit ${command} --help" for the options.` : "";
  return new LowbitError("E_INVALID_ARGUMENT", `--${flag} must be ${expected}, got ${JSON.stringify(value)}.${help}`);
}

export interface IntOptions {
  min?: number;
  max?: number;
  choices?: readonly number[];
  command?: string;
}

export function intFlag(flag: string, value: unknown, fallback: number, opts?: IntOptions): number;
export function intFlag(flag: string, value: unknown, fallback: undefined, opts?: IntOptions): number | undefined;
export function intFlag(flag: string, value: unknown, fallback: number | undefined, opts: IntOptions = {}): number | undefined {
  if (value === undefined) return fallback;
  const s = String(value).trim();
  const n = /^[-+]?\d+$/.test(s) ? Number(s) : Number.NaN;
  const expected = opts.choices
    ? `one of ${opts.choices.join(", ")}`
    : `an integer${opts.min !== undefined ? ` >= ${opts.min}` : ""}${opts.max !== undefined ? ` and <= ${opts.max}` : ""}`;
  if (!Number.isSafeInteger(n)) throw bad(flag, value, expected, opts.command);
  if (opts.choices && !opts.choices.includes(n)) throw bad(flag, value, expected, opts.command);
  if (opts.min !== undefined && n < opts.min) throw bad(flag, value, expected, opts.command);
  if (opts.max !== undefined && n > opts.max) throw bad(flag, value, expected, opts.command);
  return n;
}

export interface FloatOptions {
  min?: number;
  max?: number;
  /** min is exclusive. */
  positive?: boolean;
  command?: string;
}

export function floatFlag(flag: string, value: unknown, fallback: number, opts?: FloatOptions): number;
export function floatFlag(flag: string, value: unknown, fallback: undefined, opts?: FloatOptions): number | undefined;
export function floatFlag(flag: string, value: unknown, fallback: number | undefined, opts: FloatOptions = {}): number | undefined {
  if (value === undefined) return fallback;
  const s = String(value).trim();
  const n = s === "" ? Number.NaN : Number(s);
  const expected = `a number${opts.positive ? " > 0" : opts.min !== undefined ? ` >= ${opts.min}` : ""}${opts.max !== undefined ? ` and <= ${opts.max}` : ""}`;
  if (!Number.isFinite(n)) throw bad(flag, value, expected, opts.command);
  if (opts.positive && !(n > 0)) throw bad(flag, value, expected, opts.command);
  if (opts.min !== undefined && n < opts.min) throw bad(flag, value, expected, opts.command);
  if (opts.max !== undefined && n > opts.max) throw bad(flag, value, expected, opts.command);
  return n;
}

export function choiceFlag<T extends string>(flag: string, value: unknown, choices: readonly T[], fallback: T, command?: string): T;
export function choiceFlag<T extends string>(flag: string, value: unknown, choices: readonly T[], fallback: undefined, command?: string): T | undefined;
export function choiceFlag<T extends string>(flag: string, value: unknown, choices: readonly T[], fallback: T | undefined, command?: string): T | undefined {
  if (value === undefined) return fallback;
  const s = String(value).trim().toLowerCase();
  const hit = choices.find((c) => c.toLowerCase() === s);
  if (!hit) throw bad(flag, value, `one of ${choices.join(", ")}`, command);
  return hit;
}

/** A string flag that must be present and non-empty. */
export function requiredString(flag: string, value: unknown, what: string, command?: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    const help = command ? ` Run "lowbit ${command} --help" for the options.` : "";
    throw new LowbitError("E_INVALID_ARGUMENT", `--${flag} is required: give ${what}.${help}`);
  }
  return value;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}

/** Every value of a multi-value flag: `--calib a b`, `--calib=a`, `--calib a --calib b`, `--calib a,b`. */
export function multiFlag(rawArgs: readonly string[], flag: string): string[] {
  const names = new Set([`--${flag}`, `--${kebab(flag)}`]);
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0 && names.has(a.slice(0, eq))) {
      out.push(...splitList(a.slice(eq + 1)));
      continue;
    }
    if (!names.has(a)) continue;
    while (i + 1 < rawArgs.length && !rawArgs[i + 1]!.startsWith("-")) out.push(...splitList(rawArgs[++i]!));
  }
  return out;
}

function splitList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

/**
 * Rejects flags a command does not know and stray positional arguments, which citty would
 * silently ignore (a typo like --group_size=64 must not quietly run with the default).
 */
export function checkArgs(command: string, defs: ArgsDef, rawArgs: readonly string[], multi: readonly string[] = []): void {
  const known = new Map<string, "boolean" | "value">();
  let positionals = 0;
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") {
      positionals++;
      continue;
    }
    const kind = def.type === "boolean" ? "boolean" : "value";
    const alias = "alias" in def ? def.alias : undefined;
    const aliases = alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
    for (const n of [name, kebab(name), ...aliases]) {
      known.set(n, kind);
      if (kind === "boolean") known.set(`no-${n}`, "boolean");
    }
  }
  known.set("help", "boolean");
  known.set("h", "boolean");
  const multiSet = new Set(multi.flatMap((m) => [m, kebab(m)]));
  let seenPositionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) {
      const body = a.replace(/^--?/, "");
      const eq = body.indexOf("=");
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const kind = known.get(name);
      if (!kind) {
        const options = [...known.keys()].filter((k) => k.length > 1 && !k.startsWith("no-"));
        const near = options.find((k) => k.replace(/[-_]/g, "") === name.replace(/[-_]/g, "").toLowerCase());
        throw new LowbitError(
          "E_INVALID_ARGUMENT",
          `unknown option "${a}" for "lowbit ${command}".${near ? ` Did you mean "--${near}"?` : ""} Run "lowbit ${command} --help" for the options it takes.`,
        );
      }
      if (kind === "value" && eq < 0) {
        if (multiSet.has(name)) {
          while (i + 1 < rawArgs.length && !rawArgs[i + 1]!.startsWith("-")) i++;
        } else if (i + 1 < rawArgs.length) {
          i++;
        }
      }
      continue;
    }
    seenPositionals++;
    if (seenPositionals > positionals) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `unexpected argument "${a}" for "lowbit ${command}" (it takes ${positionals === 0 ? "no" : positionals} positional argument${positionals === 1 ? "" : "s"}). Quote paths with spaces, and run "lowbit ${command} --help" for the options.`,
      );
    }
  }
}
