import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitepress";
import { nodeBuiltinsShim } from "./node-builtins-shim";

// Sibling packages resolve to their sources (no build needed), and to browser code paths.
const conditions = ["@lowbit/source", "browser", "module", "import", "default"];
const here = path.dirname(fileURLToPath(import.meta.url));

/** The API pages scripts/gen-reference.ts wrote (one per package), for the sidebar. */
function apiPages(): Array<{ text: string; link: string }> {
  const order = ["tensor", "formats", "int8", "int4", "runtime", "calibration", "gptq", "awq", "qat"];
  const dir = path.resolve(here, "../reference/api");
  const found = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".md") && f !== "index.md") : [];
  const names = found.map((f) => f.replace(/\.md$/, "")).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  return names.map((n) => ({ text: `@lowbit/${n}`, link: `/reference/api/${n}` }));
}

export default defineConfig({
  title: "lowbit",
  description: "INT8 and INT4 quantization in TypeScript: RTN, GPTQ, AWQ and QAT, GGUF and safetensors, in Node and the browser.",
  cleanUrls: false,
  lastUpdated: false,
  ignoreDeadLinks: false,
  head: [["link", { rel: "icon", type: "image/svg+xml", href: "/favicon.svg" }]],
  srcExclude: ["tmp/**", "test/**", "test-output/**", "README.md"],
  vite: {
    plugins: [nodeBuiltinsShim()],
    resolve: { conditions },
    ssr: { noExternal: [/^@lowbit\//] },
    build: { chunkSizeWarningLimit: 4096 },
  },
  markdown: {
    // generated API pages are long; keep the build quick
    lineNumbers: false,
  },
  themeConfig: {
    nav: [
      { text: "Guide", link: "/guide/getting-started" },
      { text: "Concepts", link: "/concepts/quantization" },
      { text: "How-to", link: "/how-to/gguf-for-llama-cpp" },
      { text: "Reference", link: "/reference/cli" },
      { text: "Benchmarks", link: "/benchmarks" },
      { text: "Playground", link: "/playground" },
    ],
    sidebar: [
      { text: "Guide", items: [{ text: "Getting started", link: "/guide/getting-started" }] },
      {
        text: "Concepts",
        items: [
          { text: "What quantization does", link: "/concepts/quantization" },
          { text: "Granularity", link: "/concepts/granularity" },
          { text: "Calibration and observers", link: "/concepts/calibration" },
          { text: "GPTQ", link: "/concepts/gptq" },
          { text: "AWQ", link: "/concepts/awq" },
          { text: "QAT", link: "/concepts/qat" },
          { text: "Mixed precision", link: "/concepts/mixed-precision" },
          { text: "File formats", link: "/concepts/formats" },
        ],
      },
      {
        text: "How-to",
        items: [
          { text: "Hugging Face model to GGUF", link: "/how-to/gguf-for-llama-cpp" },
          { text: "GPTQ or AWQ safetensors", link: "/how-to/gptq-awq-safetensors" },
          { text: "Evaluate a quantized model", link: "/how-to/evaluate" },
          { text: "Bits per layer under a budget", link: "/how-to/budget" },
          { text: "Train with QAT", link: "/how-to/qat" },
          { text: "Use the packages from code", link: "/how-to/packages" },
        ],
      },
      {
        text: "Reference",
        items: [
          { text: "CLI", link: "/reference/cli" },
          { text: "API", link: "/reference/api/", collapsed: true, items: apiPages() },
        ],
      },
      { text: "Benchmarks", link: "/benchmarks" },
      { text: "Playground", link: "/playground" },
    ],
    search: { provider: "local" },
  },
});
