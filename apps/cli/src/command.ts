import { type ArgsDef, type CommandDef, defineCommand } from "citty";

/** Arguments every command takes. */
export const commonArgs = {
  json: { type: "boolean", description: "Machine-readable JSON on stdout instead of text" },
} as const satisfies ArgsDef;

/** The kernel-threads flag of the commands that compute (see threads.ts). */
export const threadArgs = {
  threads: {
    type: "string",
    description: "Kernel threads (worker threads over shared memory; results are bit-identical). Default: $LOWBIT_THREADS, else the machine's cores up to 8",
    valueHint: "N",
  },
} as const satisfies ArgsDef;

export interface LowbitCommandExtras {
  /** Flags that take several values: `--calib a.txt b.txt` or repeated `--calib a --calib b`. */
  multi?: readonly string[];
  /** Example invocations shown under --help. */
  examples?: readonly string[];
}

const extras = new WeakMap<object, LowbitCommandExtras>();

/** citty's defineCommand plus lowbit's extras (multi-value flags, examples for --help). */
export function lowbitCommand<const T extends ArgsDef>(def: CommandDef<T>, more: LowbitCommandExtras = {}): CommandDef<T> {
  const cmd = defineCommand(def);
  extras.set(cmd, more);
  return cmd;
}

export function commandExtras(cmd: object): LowbitCommandExtras {
  return extras.get(cmd) ?? {};
}
