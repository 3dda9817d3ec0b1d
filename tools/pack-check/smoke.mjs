// One real call per package, run inside an empty project where only the packed tarballs of the
// package and of its lowbit dependencies are installed. Each entry returns a short description of
// what it checked and throws when the result is wrong.
export const smoke = {
  "@lowbit/tensor": `
    import { cholesky, Rng } from "@lowbit/tensor";
    const a = new Float64Array([4, 2, 2, 3]);
    const l = cholesky(a, 2);
    if (Math.abs(l[0] - 2) > 1e-12 || Math.abs(l[2] - 1) > 1e-12) throw new Error("cholesky wrong: " + l);
    const r = new Rng(1); const x = r.normal();
    if (!Number.isFinite(x)) throw new Error("rng");
    console.log("cholesky of [[4,2],[2,3]] ok");`,
  "@lowbit/formats": `
    import { writeSafetensors, openSafetensors } from "@lowbit/formats";
    import fs from "node:fs"; import os from "node:os"; import path from "node:path";
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lowbit-pack-"));
    const f = path.join(dir, "t.safetensors");
    await writeSafetensors(f, [{ name: "w", dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]);
    const st = await openSafetensors(f);
    const back = await st.readF32("w"); await st.close();
    if (back.join() !== "1,2,3,4") throw new Error("round trip " + back.join());
    console.log("safetensors round trip ok");`,
  "@lowbit/int8": `
    import * as int8 from "@lowbit/int8";
    const w = new Float32Array(64).map((_, i) => Math.sin(i));
    const bytes = int8.quantizeQ8_0Ref(w);
    const back = int8.dequantizeQ8_0Ref(bytes, 64);
    let err = 0; for (let i = 0; i < 64; i++) err = Math.max(err, Math.abs(back[i] - w[i]));
    if (bytes.length !== 68 || err > 0.01) throw new Error("q8_0 " + bytes.length + " " + err);
    console.log("q8_0 round trip ok, max error " + err.toFixed(5));`,
  "@lowbit/int4": `
    import { quantizeRTN, dequantizeMatrix } from "@lowbit/int4";
    const rows = 4, cols = 64;
    const w = new Float32Array(rows * cols).map((_, i) => Math.cos(i * 0.37));
    const qm = quantizeRTN(w, rows, cols, { bits: 4, groupSize: 32, sym: false });
    const back = dequantizeMatrix(qm);
    let num = 0, den = 0; for (let i = 0; i < w.length; i++) { num += (back[i] - w[i]) ** 2; den += w[i] ** 2; }
    const rel = Math.sqrt(num / den);
    if (!(rel < 0.1)) throw new Error("int4 relative rmse " + rel);
    console.log("int4 g32 RTN relative RMSE " + rel.toFixed(4));`,
};
