import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { dataFile } from "@lowbit/testing";
import { runCli } from "./cli";
import type { QuantizeSettings } from "./quant/pipeline";
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

/** Quantize settings for the tests: RTN, 4 bits, groups of 32 on stories260K, 2 windows of 32 tokens. */
export function rtnSettings(over: Partial<QuantizeSettings> = {}): QuantizeSettings {
  return {
    model: dataFile("stories260K", "stories260K.bin"),
    method: "rtn",
    bits: 4,
    groupSize: 32,
    sym: false,
    actOrder: false,
    damp: 0.01,
    clip: false,
    epochs: 1,
    lr: 1e-4,
    seed: 0,
    calib: [],
    samples: 2,
    seqLen: 32,
    resume: false,
    ...over,
  };
}
