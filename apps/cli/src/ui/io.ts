import { AsyncLocalStorage } from "node:async_hooks";
import pc from "picocolors";

type Colors = ReturnType<typeof pc.createColors>;

/** Where a command writes: stdout for results, stderr for messages and progress. */
export interface Sink {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface IoOptions {
  stdout?: Sink;
  stderr?: Sink;
  env?: Record<string, string | undefined>;
  /** Clock for progress/ETA (tests pass a fake one). */
  now?: () => number;
}

/**
 * The output context of one CLI invocation. Colours only when stdout is a TTY and NO_COLOR is
 * unset (https://no-color.org: present and not empty disables), never with --json; progress only
 * when stderr is a TTY. FORCE_COLOR=1 forces colours (for screenshots and tests).
 */
export class Io {
  readonly stdout: Sink;
  readonly stderr: Sink;
  readonly env: Record<string, string | undefined>;
  readonly now: () => number;
  json = false;

  constructor(opts: IoOptions = {}) {
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
    this.env = opts.env ?? process.env;
    this.now = opts.now ?? (() => performance.now());
  }

  get noColorEnv(): boolean {
    const v = this.env.NO_COLOR;
    return (v !== undefined && v !== "") || this.env.TERM === "dumb";
  }

  get forceColor(): boolean {
    const v = this.env.FORCE_COLOR;
    return v !== undefined && v !== "" && v !== "0" && v !== "false";
  }

  /** Colours on stdout. */
  get color(): boolean {
    if (this.json || this.noColorEnv) return false;
    return this.forceColor || this.stdout.isTTY === true;
  }

  /** Colours on stderr (messages, progress). */
  get colorErr(): boolean {
    if (this.noColorEnv) return false;
    return this.forceColor || this.stderr.isTTY === true;
  }

  /** Live progress on stderr: only on a TTY (LOWBIT_PROGRESS=1 forces it, for tests). */
  get progress(): boolean {
    if (this.env.LOWBIT_PROGRESS === "0") return false;
    return this.stderr.isTTY === true || this.env.LOWBIT_PROGRESS === "1";
  }

  get c(): Colors {
    return pc.createColors(this.color);
  }

  get ce(): Colors {
    return pc.createColors(this.colorErr);
  }

  /** A line of human output on stdout (suppressed in --json mode). */
  print(line = ""): void {
    if (!this.json) this.stdout.write(`${line}\n`);
  }

  /** Raw text on stdout (streamed generation), suppressed in --json mode. */
  write(text: string): void {
    if (!this.json) this.stdout.write(text);
  }

  /** A note on stderr: always shown (it is not the result), without colour unless allowed. */
  note(line: string): void {
    this.stderr.write(`${line}\n`);
  }

  warn(line: string): void {
    this.stderr.write(`${this.ce.yellow("warning:")} ${line}\n`);
  }

  /** The machine-readable result of a command (only in --json mode). */
  result(value: unknown): void {
    if (this.json) this.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  return value;
}

const storage = new AsyncLocalStorage<Io>();
let fallback: Io | undefined;

/** The Io of the running invocation (a default on process streams outside of one). */
export function io(): Io {
  const cur = storage.getStore();
  if (cur) return cur;
  fallback ??= new Io();
  return fallback;
}

export function withIo<T>(value: Io, fn: () => Promise<T>): Promise<T> {
  return storage.run(value, fn);
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

export function visibleLength(text: string): number {
  return stripAnsi(text).length;
}
