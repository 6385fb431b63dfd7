import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Starts the Kafka broker, the S3 server and the schema registry once per run (see test/support/globalSetup.ts).
    globalSetup: ["test/support/globalSetup.ts"],
    // The JSON report lets .ci/run print a plain "N passed, N failed" line at the end.
    reporters: ["default", "json"],
    outputFile: { json: ".tmp/vitest-results.json" },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: ["src/main.ts"],
      reporter: ["text-summary", "json-summary"],
      thresholds: { lines: 85 }
    }
  }
})
