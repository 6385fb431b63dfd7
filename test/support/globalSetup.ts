/**
 * vitest globalSetup: gives the run a temporary directory of its own (TMPDIR, removed at the end), and starts the
 * Kafka broker, the S3 server and the schema registry once per test run (in parallel) and stops them at the end. They
 * start only when the run includes tests that need them (no file filter, or a filter naming kafka, s3, test/connectors
 * or examples for Kafka and S3; registry, test/schema or test/connectors for the registry);
 * `ETL_TEST_KAFKA_BROKERS` / `ETL_TEST_S3_ENDPOINT` / `ETL_TEST_SCHEMA_REGISTRY_URL` point the tests at servers that
 * already run instead.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import type { TestProject } from "vitest/node"
import * as KafkaBroker from "./KafkaBroker.ts"
import * as S3Server from "./S3Server.ts"
import * as SchemaRegistryServer from "./SchemaRegistryServer.ts"

const filters = (): ReadonlyArray<string> => {
  const args = process.argv.slice(2)
  const out: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "run" || arg === "watch" || arg === "related") continue
    if (arg.startsWith("-")) {
      if (
        !arg.includes("=") &&
        ["--config", "-c", "--project", "--root", "-r", "--dir", "-t", "--testNamePattern", "--reporter"].includes(arg)
      )
        i++
      continue
    }
    out.push(arg)
  }
  return out
}

const wants = (words: ReadonlyArray<string>): boolean => {
  const given = filters()
  if (given.length === 0) return true
  return given.some((f) => {
    const filter = f.replace(/^\.\//, "").replace(/\/+$/, "")
    return filter === "test" || filter === "test/connectors" || words.some((w) => filter.toLowerCase().includes(w))
  })
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Every temporary file of the run (the tests', the CLI processes they start, the servers') goes into one directory
  // of the run's, removed at its end, so that runs leave nothing behind in the system's temporary directory.
  const runTmp = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-test-run-"))
  process.env.TMPDIR = runTmp
  // Integration tests use both servers: start both when either is wanted.
  const needKafka = wants(["kafka", "s3", "examples"])
  const needS3 = needKafka
  const needRegistry = wants(["registry", "test/schema"])
  const [kafka, s3, registry] = await Promise.all([
    needKafka ? KafkaBroker.start() : undefined,
    needS3 ? S3Server.start() : undefined,
    needRegistry ? SchemaRegistryServer.start() : undefined
  ])
  project.provide("kafkaBrokers", kafka?.brokers ?? "")
  project.provide("s3Endpoint", s3?.endpoint ?? "")
  project.provide("s3AccessKey", s3?.accessKey ?? "")
  project.provide("s3SecretKey", s3?.secretKey ?? "")
  project.provide("schemaRegistryUrl", registry?.url ?? "")
  return async () => {
    await Promise.all([kafka?.stop(), s3?.stop(), registry?.stop()])
    fs.rmSync(runTmp, { recursive: true, force: true, maxRetries: 3 })
  }
}
