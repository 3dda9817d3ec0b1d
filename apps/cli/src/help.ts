import type { ArgDef, ArgsDef, CommandDef } from "citty";
import pc from "picocolors";
import { commandExtras } from "./command";

async function resolve<T>(v: T | Promise<T> | (() => T) | (() => Promise<T>) | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}

function hint(name: string, def: ArgDef): string {
  if (def.type === "boolean" || def.type === "positional") return "";
  if (def.type === "enum" && def.options?.length) return ` <${def.options.join("|")}>`;
  return ` <${def.valueHint ?? kebab(name).toUpperCase()}>`;
}

function columns(rows: [string, string][], indent = "  "): string {
  const w = Math.max(0, ...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(w)}  ${b}`.trimEnd()).join("\n");
}

/**
 * The --help text of a command: description, usage line, arguments, options (with defaults), the
 * sub-commands of the root, and examples. Coloured only when `color` is true.
 */
export async function renderHelp(cmd: CommandDef<ArgsDef>, path: string, color: boolean, footer?: string): Promise<string> {
  const c = pc.createColors(color);
  const meta = (await resolve(cmd.meta)) ?? {};
  const args = ((await resolve(cmd.args)) ?? {}) as ArgsDef;
  const subs = (await resolve(cmd.subCommands)) ?? {};
  const positional: [string, string][] = [];
  const options: [string, string][] = [];
  const usage: string[] = [path];
  for (const [name, def] of Object.entries(args)) {
    const desc = def.description ?? "";
    if (def.type === "positional") {
      const req = def.required !== false && def.default === undefined;
      usage.push(req ? `<${name}>` : `[${name}]`);
      positional.push([name, desc]);
      continue;
    }
    const flag = `--${kebab(name)}${hint(name, def)}`;
    const alias = "alias" in def && def.alias ? (Array.isArray(def.alias) ? def.alias : [def.alias]).map((a) => (a.length === 1 ? `-${a}` : `--${a}`)) : [];
    const extra = [def.required ? "required" : "", def.default !== undefined && def.default !== false && def.default !== "" ? `default: ${def.default}` : ""].filter(Boolean).join(", ");
    options.push([[...alias, flag].join(", "), extra ? `${desc} ${c.dim(`(${extra})`)}` : desc]);
  }
  const subNames = Object.keys(subs);
  if (subNames.length) usage.push("<command>");
  if (options.length) usage.push("[options]");
  options.push(["-h, --help", "Show this help"]);
  const out: string[] = [];
  if (meta.description) out.push(meta.description, "");
  out.push(`${c.bold("Usage:")} ${c.cyan(usage.join(" "))}`, "");
  if (subNames.length) {
    const rows: [string, string][] = [];
    for (const name of subNames) {
      const sub = await resolve(subs[name] as CommandDef<ArgsDef>);
      const m = (await resolve(sub?.meta)) ?? {};
      rows.push([c.cyan(name.padEnd(Math.max(...subNames.map((n) => n.length)))), m.description ?? ""]);
    }
    out.push(c.bold("Commands:"), columns(rows), "");
  }
  if (positional.length) out.push(c.bold("Arguments:"), columns(positional), "");
  out.push(c.bold("Options:"), columns(options.map(([a, b]) => [a, b])), "");
  const examples = commandExtras(cmd).examples;
  if (examples?.length) out.push(c.bold("Examples:"), examples.map((e) => `  ${c.dim("$")} ${e}`).join("\n"), "");
  if (footer) out.push(footer, "");
  if (subNames.length) out.push(`Run ${c.cyan(`${path} <command> --help`)} for a command's options.`);
  return out.join("\n").trimEnd();
}
