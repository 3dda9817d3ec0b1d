import { isLowbitError, LowbitError } from "@lowbit/tensor";
import { type ArgsDef, type CommandDef, parseArgs, runCommand } from "citty";
import { checkArgs } from "./args";
import { commandExtras, commonArgs, lowbitCommand } from "./command";
import { renderHelp } from "./help";
import { withHint } from "./hints";
import { THREADED_COMMANDS, threadCount, withKernelThreads } from "./threads";
import { Io, type IoOptions, stripAnsi, withIo } from "./ui/io";
import { VERSION } from "./version";

type Loader = () => Promise<CommandDef<ArgsDef>>;

/** Sub-commands, loaded on demand so `lowbit --help` does not load the model stack. */
export const commands: Record<string, Loader> = {
  inspect: () => import("./commands/inspect").then((m) => m.default as CommandDef<ArgsDef>),
  quantize: () => import("./commands/quantize").then((m) => m.default as CommandDef<ArgsDef>),
  eval: () => import("./commands/eval").then((m) => m.default as CommandDef<ArgsDef>),
  generate: () => import("./commands/generate").then((m) => m.default as CommandDef<ArgsDef>),
  convert: () => import("./commands/convert").then((m) => m.default as CommandDef<ArgsDef>),
  bench: () => import("./commands/bench").then((m) => m.default as CommandDef<ArgsDef>),
  report: () => import("./commands/report").then((m) => m.default as CommandDef<ArgsDef>),
  demo: () => import("./commands/demo").then((m) => m.default as CommandDef<ArgsDef>),
};

const descriptions: Record<string, string> = {
  inspect: "Show a model's format, architecture, parameters, dtypes, size and tensors",
  quantize: "Quantize a model (RTN, GPTQ, AWQ, QAT) and write lowbit, GGUF, GPTQ or AWQ",
  eval: "Perplexity on a text file; with --baseline also KL divergence and top-1 agreement",
  generate: "Generate text from a prompt (streamed), with tokens per second",
  convert: "Convert between formats (llama2.c, safetensors, GPTQ, AWQ, GGUF)",
  bench: "Run the kernel and model benchmarks, or show saved results, as a table",
  report: "Write a self-contained HTML report (plots) for a quantize or demo run",
  demo: "Quantize the demo model with RTN, GPTQ and AWQ at 8 and 4 bits and compare them",
};

export const rootCommand: CommandDef<ArgsDef> = lowbitCommand({
  meta: {
    name: "lowbit",
    version: VERSION,
    description: "INT8/INT4 quantization of LLaMA-family models in Node: no Python, no GPU",
  },
  args: { ...commonArgs },
  subCommands: Object.fromEntries(
    Object.entries(commands).map(([name, load]) => [name, async () => ({ ...(await load()), meta: { name, description: descriptions[name] } })]),
  ),
}) as unknown as CommandDef<ArgsDef>;

function isCliError(e: unknown): e is Error & { code?: string } {
  return e instanceof Error && e.name === "CLIError";
}

async function usageOf(cmd: CommandDef<ArgsDef>, parent: CommandDef<ArgsDef> | undefined, color: boolean): Promise<string> {
  const name = parent ? ((await resolveMeta(cmd))?.name ?? "") : "";
  const footer = parent
    ? undefined
    : "A model is a path: a Hugging Face folder, a .gguf file, a lowbit output, or a llama2.c .bin\n(its tokenizer from --tokenizer, or the single tokenizer .bin beside it).";
  return renderHelp(cmd, name ? `lowbit ${name}` : "lowbit", color, footer);
}

async function resolveMeta(cmd: CommandDef<ArgsDef>) {
  return typeof cmd.meta === "function" ? await cmd.meta() : await cmd.meta;
}

/**
 * Runs the CLI on `argv` (without "node lowbit") and returns the exit code: 0 on success, 1 on
 * any failure. A LowbitError prints its message (one paragraph saying what to do); a usage
 * error prints the usage and the message; anything else prints the full stack.
 */
export async function runCli(argv: readonly string[], ioOptions: IoOptions = {}): Promise<number> {
  const io = new Io(ioOptions);
  io.json = argv.includes("--json");
  return withIo(io, async () => {
    const rawArgs = [...argv];
    const nameIndex = rawArgs.findIndex((a) => !a.startsWith("-"));
    const name = nameIndex >= 0 ? rawArgs[nameIndex] : undefined;
    let sub: CommandDef<ArgsDef> | undefined;
    try {
      const wantsHelp = rawArgs.some((a) => a === "--help" || a === "-h") || rawArgs.length === 0 || (name === "help" && rawArgs.length <= 2);
      if (name === "help") {
        const target = rawArgs[nameIndex + 1];
        if (target && commands[target]) sub = await loadSub(target);
        io.stdout.write(`${await usageOf(sub ?? rootCommand, sub ? rootCommand : undefined, io.color)}\n`);
        return 0;
      }
      if (name !== undefined) {
        if (!commands[name]) {
          throw new LowbitError(
            "E_INVALID_ARGUMENT",
            `unknown command "${name}". The commands are: ${Object.keys(commands).join(", ")}. Run "lowbit --help" for what each does.`,
          );
        }
        sub = await loadSub(name);
      }
      if (wantsHelp) {
        io.stdout.write(`${await usageOf(sub ?? rootCommand, sub ? rootCommand : undefined, io.color)}\n`);
        return 0;
      }
      if (!sub) {
        if (rawArgs.includes("--version") || rawArgs.includes("-v")) {
          io.stdout.write(`${VERSION}\n`);
          return 0;
        }
        checkArgs("", commonArgs, rawArgs);
        io.stdout.write(`${await usageOf(rootCommand, undefined, io.color)}\n`);
        return 0;
      }
      const subArgs = rawArgs.slice(nameIndex + 1);
      const defs = (typeof sub.args === "function" ? await sub.args() : await sub.args) ?? {};
      checkArgs(name!, defs as ArgsDef, subArgs, commandExtras(sub).multi);
      if (THREADED_COMMANDS.has(name!)) {
        const threads = threadCount(name!, parseArgs(subArgs, defs as ArgsDef).threads, io.env);
        await withKernelThreads(threads, () => runCommand(sub!, { rawArgs: subArgs }), (m) => io.warn(m));
      } else {
        await runCommand(sub, { rawArgs: subArgs });
      }
      return 0;
    } catch (e) {
      reportError(io, e, name, sub);
      if (isCliError(e) && sub) io.stderr.write(`\n${await usageOf(sub, rootCommand, io.colorErr)}\n`);
      return 1;
    }
  });
}

async function loadSub(name: string): Promise<CommandDef<ArgsDef>> {
  const load = commands[name]!;
  const cmd = await load();
  return { ...cmd, meta: { name, description: descriptions[name] } };
}

function reportError(io: Io, e: unknown, name: string | undefined, _sub: unknown): void {
  const c = io.ce;
  if (isLowbitError(e)) {
    const message = withHint(e.code, e.message.replace(/\s*\n\s*/g, " "));
    io.stderr.write(`${c.red(c.bold("error"))} ${c.dim(`[${e.code}]`)} ${message}\n`);
    io.result({ ok: false, error: { code: e.code, message } });
    return;
  }
  if (isCliError(e)) {
    const msg = stripAnsi(e.message);
    io.stderr.write(`${c.red(c.bold("error"))} ${msg}${name ? ` Run "lowbit ${name} --help" for the options.` : ""}\n`);
    io.result({ ok: false, error: { code: "E_INVALID_ARGUMENT", message: msg } });
    return;
  }
  const stack = e instanceof Error ? (e.stack ?? String(e)) : String(e);
  let text = `${c.red(c.bold("internal error"))} (a bug in lowbit; please report it with the command you ran)\n${stack}\n`;
  let cause = e instanceof Error ? e.cause : undefined;
  while (cause !== undefined) {
    text += `caused by: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  io.stderr.write(text);
  io.result({ ok: false, error: { code: "E_INTERNAL", message: e instanceof Error ? e.message : String(e) } });
}
