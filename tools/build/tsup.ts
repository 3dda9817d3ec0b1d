import { defineConfig, type Options } from "tsup";

/**
 * The one tsup configuration every package builds with. A package's tsup.config.ts is
 * `export default lowbitTsup()` or names extra entry points; each entry becomes an export.
 */
export function lowbitTsup(entry: Record<string, string> = { index: "src/index.ts" }, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ["esm"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "es2022",
    platform: "neutral",
    treeshake: true,
    splitting: false,
    ...extra,
  });
}
