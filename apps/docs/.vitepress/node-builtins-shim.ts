/**
 * Browser stand-ins for the Node built-ins some lowbit modules import at their top level
 * (@lowbit/formats' file I/O, @lowbit/runtime's path loaders, @lowbit/calibration's text readers).
 * The page never calls those functions (it parses files from ArrayBuffers), but Rollup refuses a
 * bundle whose named imports Vite's empty "browser external" does not provide. Each stand-in exports
 * the same names as the real module, as functions that throw a clear error if ever called.
 */
import type { UserConfig } from "vitepress";

type PluginOption = NonNullable<NonNullable<UserConfig["vite"]>["plugins"]>[number];
type Plugin = Extract<PluginOption, { name: string }>;

const PREFIX = "\0lowbit-node-shim:";
const SHIMMED = /^(node:)?(fs|fs\/promises|path|os|url|worker_threads|crypto|child_process)$/;

export function nodeBuiltinsShim(): Plugin {
  return {
    name: "lowbit-node-builtins-shim",
    enforce: "pre",
    resolveId(id: string, _importer: string | undefined, options?: { ssr?: boolean }) {
      if (options?.ssr) return null;
      return SHIMMED.test(id) ? `${PREFIX}${id.startsWith("node:") ? id : `node:${id}`}` : null;
    },
    async load(id: string) {
      if (!id.startsWith(PREFIX)) return null;
      const name = id.slice(PREFIX.length);
      const real = (await import(name)) as Record<string, unknown>;
      const names = Object.keys(real).filter((k) => k !== "default" && /^[A-Za-z_$][\w$]*$/.test(k));
      const lines = [
        `const fail = (what) => () => { throw new Error(\`\${what} is not available in the browser (lowbit playground)\`); };`,
        ...names.map((k) => `export const ${k} = fail(${JSON.stringify(`${name}.${k}`)});`),
        `export default { ${names.join(", ")} };`,
      ];
      return lines.join("\n");
    },
  };
}
