import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { LowbitError } from "@lowbit/tensor";

/**
 * Outputs appear at their path only when complete: everything is written under a temporary name
 * in the same folder (`.<name>.tmp-<pid>-<random>`), flushed, then renamed into place. A run killed
 * at any moment leaves at most a temporary entry, never a partial file at the output path;
 * temporaries of dead processes are removed by the next run.
 */

function tmpName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes temporaries left beside `path` by processes that no longer run. */
export async function removeStaleTemporaries(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split("-")[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid)) await rm(join(dir, n), { recursive: true, force: true });
  }
}

async function fsyncPath(path: string): Promise<void> {
  try {
    const fh = await open(path, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // directories cannot be fsynced on every platform; the rename is what matters
  }
}

async function syncTree(path: string): Promise<void> {
  const st = await stat(path);
  if (st.isDirectory()) {
    for (const n of await readdir(path)) await syncTree(join(path, n));
  }
  await fsyncPath(path);
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Produces `path` atomically: `produce` writes a file (kind "file") or fills a folder (kind "dir")
 * at the temporary path it is given. An existing output is replaced only once the new one is
 * complete (a folder is moved aside, the new one renamed in, the old one removed).
 */
export async function writeAtomically(path: string, kind: "file" | "dir", produce: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  await removeStaleTemporaries(path);
  const tmp = tmpName(path);
  if (kind === "dir") await mkdir(tmp);
  try {
    await produce(tmp);
    await syncTree(tmp);
    if (kind === "dir" && (await pathExists(path))) {
      const st = await stat(path);
      if (!st.isDirectory()) {
        throw new LowbitError("E_IO", `${path} exists and is a file; the output is a folder. Remove it or choose another --out.`);
      }
      const old = tmpName(path);
      await rename(path, old);
      await rename(tmp, path);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, path);
    }
    await fsyncPath(dirname(resolve(path)));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Writes a small text file atomically. */
export async function writeTextAtomically(path: string, text: string): Promise<void> {
  const { writeFile } = await import("node:fs/promises");
  await writeAtomically(path, "file", (tmp) => writeFile(tmp, text));
}
