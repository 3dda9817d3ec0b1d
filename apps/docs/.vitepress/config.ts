import { defineConfig } from "vitepress";

const conditions = ["@lowbit/source", "browser", "module", "import", "default"];

export default defineConfig({
  title: "lowbit",
  description: "INT8 and INT4 quantization in TypeScript: RTN, GPTQ, AWQ and QAT, GGUF and safetensors, in Node and the browser.",
  cleanUrls: false,
  lastUpdated: false,
  ignoreDeadLinks: false,
  vite: {
    resolve: { conditions },
    ssr: { noExternal: [/^@lowbit\//] },
    build: { chunkSizeWarningLimit: 4096 },
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
          { text: "API", link: "/reference/api/" },
        ],
      },
      { text: "Benchmarks", link: "/benchmarks" },
      { text: "Playground", link: "/playground" },
    ],
    socialLinks: [{ icon: "github", link: "https://github.com/lowbit-dev/lowbit" }],
  },
});
