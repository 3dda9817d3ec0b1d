import { defineConfig } from "vitest/config";

const conditions = ["@lowbit/source", "import", "module", "node", "default"];

/**
 * Shared vitest settings: resolve sibling packages from source, so no build is needed first.
 * Under CI each package also writes test-output/vitest.json, which .ci/run totals.
 */
export function lowbitVitest(overrides: { testTimeout?: number } = {}) {
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: conditions } },
    test: {
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      // generous: CI shares 2 cores among packages' test runs, and real-model tests take seconds alone
      testTimeout: overrides.testTimeout ?? 300_000,
      hookTimeout: overrides.testTimeout ?? 300_000,
      pool: "forks",
      reporters: process.env.CI ? ["default", ["json", { outputFile: "test-output/vitest.json" }]] : ["default"],
    },
  });
}
