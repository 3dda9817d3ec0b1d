#!/usr/bin/env node
// Compiles each package's AssemblyScript kernels (packages/*/assembly/*.kernel.ts) to WebAssembly
// and embeds the module as base64 in src/wasm/<name>.generated.ts, so the package ships the compiled
// kernels and nothing on a user's machine needs a compiler. Run `pnpm wasm` after editing assembly/.
// Every kernel module imports the engine's single memory (env.memory) and has no static data, so
// many modules can share one memory; pointers come from the engine's allocator in @lowbit/tensor.
//
// Kernel threads (@lowbit/tensor setKernelThreads) need each module in a shared-memory variant; the
// engine makes it at run time by rewriting the memory import (toSharedMemoryModule), so only the
// single-thread module is shipped. `pnpm wasm [pkg] --verify-shared` also compiles every kernel with
// `--sharedMemory --maximumMemory 65536 --enable threads` and checks that the two builds differ only
// in the memory import's limits (what the rewrite changes); the generated files stay the same.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const asc = path.join(root, "node_modules/.bin/asc");
const args = process.argv.slice(2);
const only = args.find((a) => !a.startsWith("--"));
const verifyShared = args.includes("--verify-shared");
const sharedFlags = ["--sharedMemory", "--maximumMemory", "65536", "--enable", "threads"];

/** The sections of a wasm binary as [id, bytes]. */
function sections(bytes) {
  const out = [];
  let pos = 8;
  const u32 = () => {
    let r = 0;
    let s = 0;
    for (;;) {
      const b = bytes[pos++];
      r += (b & 0x7f) * 2 ** s;
      if ((b & 0x80) === 0) return r;
      s += 7;
    }
  };
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = u32();
    out.push([id, bytes.subarray(pos, pos + size)]);
    pos += size;
  }
  return out;
}

/** Throws unless `shared` equals `single` except for the memory import's limits (flags 0x03 + maximum). */
function checkSharedVariant(label, single, shared) {
  const a = sections(single);
  const b = sections(shared);
  if (a.length !== b.length) throw new Error(`${label}: shared build has other sections`);
  for (let i = 0; i < a.length; i++) {
    const [ida, sa] = a[i];
    const [idb, sb] = b[i];
    if (ida !== idb) throw new Error(`${label}: section ${i} differs in id`);
    if (ida !== 2) {
      if (Buffer.compare(Buffer.from(sa), Buffer.from(sb)) !== 0) throw new Error(`${label}: section ${ida} differs`);
      continue;
    }
    // import section: equal up to the memory limits; the single build's limits are {0x00, min}
    let p = 0;
    while (p < sa.length && sa[p] === sb[p]) p++;
    if (sa[p] !== 0x00 || sb[p] !== 0x03) throw new Error(`${label}: import section differs beyond the memory limits`);
    const tailA = Buffer.from(sa.subarray(p + 2));
    const tailB = Buffer.from(sb.subarray(p + 2 + 3)); // min (1 byte here) then maximum 65536 = 80 80 04
    if (sa[p + 1] !== sb[p + 1] || Buffer.compare(Buffer.from(sb.subarray(p + 2, p + 5)), Buffer.from([0x80, 0x80, 0x04])) !== 0 || Buffer.compare(tailA, tailB) !== 0) {
      throw new Error(`${label}: import section differs beyond the memory limits`);
    }
  }
}

const flags = [
  "--runtime", "stub",
  "--initialMemory", "1",
  "--importMemory",
  "--noExportMemory",
  "--enable", "simd",
  "--disable", "bulk-memory",
  "-O3",
  "--noAssert",
  "--use", "abort=",
];

let count = 0;
for (const pkg of fs.readdirSync(path.join(root, "packages"))) {
  if (only && pkg !== only) continue;
  const dir = path.join(root, "packages", pkg, "assembly");
  if (!fs.existsSync(dir)) continue;
  for (const file of fs.readdirSync(dir)) {
    if (!file.endsWith(".kernel.ts")) continue;
    const name = file.slice(0, -".kernel.ts".length);
    const outWasm = path.join(root, "node_modules/.cache/lowbit-wasm", `${pkg}-${name}.wasm`);
    fs.mkdirSync(path.dirname(outWasm), { recursive: true });
    execFileSync(asc, [path.join(dir, file), "-o", outWasm, ...flags], { stdio: "inherit" });
    const bytes = fs.readFileSync(outWasm);
    if (verifyShared) {
      const sharedWasm = outWasm.replace(/\.wasm$/, ".shared.wasm");
      execFileSync(asc, [path.join(dir, file), "-o", sharedWasm, ...flags, ...sharedFlags], { stdio: "inherit" });
      checkSharedVariant(`${pkg}/${name}`, bytes, fs.readFileSync(sharedWasm));
      console.log(`${pkg}/${name}: shared-memory build differs only in the memory import (verified)`);
    }
    const mod = new WebAssembly.Module(bytes);
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name).sort();
    const b64 = bytes.toString("base64");
    const out = path.join(root, "packages", pkg, "src/wasm", `${name}.generated.ts`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const lines = [];
    for (let i = 0; i < b64.length; i += 100) lines.push(`  "${b64.slice(i, i + 100)}"`);
    fs.writeFileSync(
      out,
      `// Generated by tools/build/wasm.mjs from assembly/${file}. Do not edit.\n` +
        `// Exports: ${exports.join(", ")}\n` +
        `export const wasmBase64 =\n${lines.join(" +\n")};\n`,
    );
    console.log(`${pkg}/${name}: ${bytes.length} bytes -> ${path.relative(root, out)}`);
    count++;
  }
}
if (count === 0) console.log("no kernels found");
