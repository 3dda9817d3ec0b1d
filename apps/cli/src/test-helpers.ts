import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "./cli";
import type { Sink } from "./ui/io";

/** Collects what a sink receives. */
export class Capture implements Sink {
  text = "";
  constructor(
    readonly isTTY = false,
    readonly columns = 120,
  ) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured streams (not a TTY unless asked) and a given environment. */
export async function run(argv: string[], opts: { env?: Record<string, string | undefined>; tty?: boolean } = {}): Promise<RunResult> {
  const stdout = new Capture(opts.tty);
  const stderr = new Capture(opts.tty);
  const code = await runCli(argv, { stdout, stderr, env: { ...opts.env } });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Every file under a folder (or the file itself), by relative path. */
export function files(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (p: string, rel: string) => {
    if (statSync(p).isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n), rel ? `${rel}/${n}` : n);
    else out.set(rel, readFileSync(p));
  };
  walk(path, "");
  return out;
}
