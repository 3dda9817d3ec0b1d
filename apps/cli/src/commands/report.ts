import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { LowbitError } from "@lowbit/tensor";
import { commonArgs, lowbitCommand } from "../command";
import { pathExists, writeTextAtomically } from "../output/atomic";
import { renderReport } from "../report/html";
import type { RunRecord } from "../run-record";
import { io } from "../ui/io";

/** Finds the run record: a .run.json, a demo/quantize folder holding run.json, or an output with `<out>.run.json` beside it. */
export async function findRunRecord(path: string): Promise<string> {
  if (!(await pathExists(path))) {
    throw new LowbitError(
      "E_FILE_NOT_FOUND",
      `run "${path}" not found. Give the .run.json written by lowbit quantize (beside its --out), the output itself, or the folder lowbit demo wrote.`,
    );
  }
  if (path.endsWith(".json")) return path;
  if ((await stat(path)).isDirectory() && (await pathExists(join(path, "run.json")))) return join(path, "run.json");
  const beside = `${path.replace(/\/+$/, "")}.run.json`;
  if (await pathExists(beside)) return beside;
  throw new LowbitError(
    "E_FILE_NOT_FOUND",
    `no run record for ${path}: expected ${beside} (written by lowbit quantize) or run.json inside a lowbit demo folder. Re-run lowbit quantize to produce one.`,
  );
}

export async function readRunRecord(path: string): Promise<RunRecord> {
  let r: RunRecord;
  try {
    r = JSON.parse(await readFile(path, "utf8")) as RunRecord;
  } catch (e) {
    throw new LowbitError("E_FORMAT", `${path}: not a readable run record (${(e as Error).message}); give a .run.json written by lowbit.`, { cause: e });
  }
  if (r?.version !== 1 || !Array.isArray(r.runs) || (r.kind !== "quantize" && r.kind !== "demo")) {
    throw new LowbitError("E_FORMAT", `${path}: not a lowbit run record (missing kind/version/runs); give a .run.json written by lowbit quantize or lowbit demo.`);
  }
  return r;
}

export default lowbitCommand(
  {
    args: {
      run: { type: "positional", required: true, description: "A .run.json, a quantize output (with <out>.run.json beside it), or a demo folder" },
      out: { type: "string", description: "HTML file to write (default: the run record's name with .html)", valueHint: "FILE" },
      ...commonArgs,
    },
    async run({ args }) {
      const recordPath = await findRunRecord(args.run);
      const record = await readRunRecord(recordPath);
      const out = args.out ?? recordPath.replace(/(\.run)?\.json$/, ".html").replace(/run\.html$/, "report.html");
      const html = renderReport(record);
      await writeTextAtomically(out, html);
      io().print(`wrote ${out} (${html.length.toLocaleString("en-US")} bytes, ${record.runs.length} run${record.runs.length === 1 ? "" : "s"})`);
      io().result({ ok: true, report: out, runs: record.runs.length, bytes: html.length });
    },
  },
  { examples: ["lowbit report out/model-q4.gguf", "lowbit report lowbit-demo/run.json --out demo.html"] },
);
