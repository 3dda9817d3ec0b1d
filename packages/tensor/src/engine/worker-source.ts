/**
 * The source of a kernel worker, plain JavaScript run by Node's worker_threads (`eval: true`,
 * started with `workerData`; valid as a script and as an ES module, since an eval worker inherits
 * `--input-type=module`) or by a browser Web Worker from a Blob URL (started by a message).
 * Kept as a string so it works unchanged from source, from the bundle and in browsers.
 *
 * The control block (a SharedArrayBuffer) holds Int32 words at the start:
 *   0 SEQ      dispatch generation, bumped by the main thread once per dispatch
 *   1 PENDING  workers that have not finished the current dispatch
 *   2 STOP     non-zero: leave the loop
 *   3 READY    workers that have started
 *   4 ERROR    non-zero: a worker's kernel threw during the current dispatch
 * and from byte 64 one slot of SLOT_F64 float64 per worker: [op, module id, fn / ptr, n / len, args...].
 * op 0 = nothing this time, 1 = call fns[module][fn](args), 2 = instantiate the module whose bytes
 * lie in kernel memory at [ptr, ptr + len) as module id. After a dispatch a worker spins for
 * `spinMs` on SEQ (back-to-back calls, e.g. the linears of one decode step, then need no wake-up)
 * and then sleeps in Atomics.wait.
 */
export const CTL_SEQ = 0;
export const CTL_PENDING = 1;
export const CTL_STOP = 2;
export const CTL_READY = 3;
export const CTL_ERROR = 4;
/** Float64 index of worker 0's slot (byte 64). */
export const SLOT_BASE = 8;
/** Float64 words per worker slot: op, module, fn, nargs and up to 16 arguments. */
export const SLOT_F64 = 20;
export const MAX_ARGS = SLOT_F64 - 4;

export const WORKER_SOURCE = `"use strict";
function start(d) {
  const memory = d.memory;
  const ctl = new Int32Array(d.ctl);
  const slots = new Float64Array(d.ctl);
  const b = ${SLOT_BASE} + d.index * ${SLOT_F64};
  const spinMs = d.spinMs;
  const fns = [];
  let seen = Atomics.load(ctl, ${CTL_SEQ});
  Atomics.add(ctl, ${CTL_READY}, 1);
  Atomics.notify(ctl, ${CTL_READY});
  for (;;) {
    let s = Atomics.load(ctl, ${CTL_SEQ});
    if (s === seen) {
      const t0 = performance.now();
      for (let i = 1; (s = Atomics.load(ctl, ${CTL_SEQ})) === seen; i++) {
        if ((i & 255) === 0 && performance.now() - t0 > spinMs) Atomics.wait(ctl, ${CTL_SEQ}, seen);
      }
    }
    seen = s;
    if (Atomics.load(ctl, ${CTL_STOP}) !== 0) return;
    try {
      const op = slots[b];
      if (op === 1) {
        const f = fns[slots[b + 1]][slots[b + 2]];
        const n = slots[b + 3];
        const a = [];
        for (let i = 0; i < n; i++) a.push(slots[b + 4 + i]);
        f(...a);
      } else if (op === 2) {
        const bytes = new Uint8Array(memory.buffer, slots[b + 2], slots[b + 3]).slice();
        const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
        fns[slots[b + 1]] = Object.keys(inst.exports).sort().map((k) => inst.exports[k]);
      }
    } catch (e) {
      Atomics.store(ctl, ${CTL_ERROR}, 1);
    }
    if (Atomics.sub(ctl, ${CTL_PENDING}, 1) === 1) Atomics.notify(ctl, ${CTL_PENDING});
  }
}
if (typeof self === "undefined" && typeof process === "object") start(process.getBuiltinModule("node:worker_threads").workerData);
else self.onmessage = (e) => start(e.data);
`;
