/**
 * The S3-compatible server the S3 connector tests use.
 *
 * `start` (called once per test run by `globalSetup.ts`) resolves S3Proxy with Maven into a cache directory and runs
 * it with its filesystem backend in a temporary directory, on a free port of 127.0.0.1, with fixed test credentials
 * (AWS signature v2 or v4, path-style). With `ETL_TEST_S3_ENDPOINT` (+ `ETL_TEST_S3_ACCESS_KEY` /
 * `ETL_TEST_S3_SECRET_KEY`) set it starts nothing and the tests use that server. Tests isolate their data in buckets
 * with a random suffix.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { inject } from "vitest"
import type { ConnectionOptions } from "../../src/connectors/s3/S3Client.ts"
import { ensureJars, freePort, startJava, tempDir } from "./servers/JavaServer.ts"

const serversDir = nodePath.join(import.meta.dirname, "servers")

/** The access key of the test server. */
export const testAccessKey = "etl-test-access"
/** The secret key of the test server. */
export const testSecretKey = "etl-test-secret-key-0123456789"

/** A running server: its endpoint, credentials and how to stop it. */
export interface Started {
  readonly endpoint: string
  readonly accessKey: string
  readonly secretKey: string
  readonly stop: () => Promise<void>
}

/** Starts S3Proxy (or returns the server of `ETL_TEST_S3_ENDPOINT`). */
export const start = async (): Promise<Started> => {
  const external = process.env.ETL_TEST_S3_ENDPOINT
  if (external !== undefined && external !== "")
    return {
      endpoint: external,
      accessKey: process.env.ETL_TEST_S3_ACCESS_KEY ?? "",
      secretKey: process.env.ETL_TEST_S3_SECRET_KEY ?? "",
      stop: async () => {}
    }
  const lib = await ensureJars("s3proxy-2.6.0", nodePath.join(serversDir, "s3proxy"))
  const dir = tempDir("s3proxy")
  const port = await freePort()
  fs.mkdirSync(nodePath.join(dir, "data"))
  const properties = [
    `s3proxy.endpoint=http://127.0.0.1:${port}`,
    "s3proxy.authorization=aws-v2-or-v4",
    `s3proxy.identity=${testAccessKey}`,
    `s3proxy.credential=${testSecretKey}`,
    "jclouds.provider=filesystem",
    `jclouds.filesystem.basedir=${nodePath.join(dir, "data")}`,
    `jclouds.identity=${testAccessKey}`,
    `jclouds.credential=${testSecretKey}`
  ].join("\n")
  const config = nodePath.join(dir, "s3proxy.properties")
  fs.writeFileSync(config, `${properties}\n`)
  const java = await startJava({
    name: "s3proxy",
    lib,
    args: ["org.gaul.s3proxy.Main", "--properties", config],
    cwd: dir,
    port,
    heap: "256m"
  })
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKey: testAccessKey,
    secretKey: testSecretKey,
    stop: async () => {
      await java.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The S3 server the tests use, as connection options of the S3 connector. */
export class S3Server extends Context.Service<S3Server, { readonly options: ConnectionOptions }>()(
  "test/support/S3Server"
) {
  /** The server started by the global setup (or given by `ETL_TEST_S3_ENDPOINT`). */
  static readonly layer = Layer.effect(
    S3Server,
    Effect.sync(() => {
      const endpoint = inject("s3Endpoint")
      if (endpoint === undefined || endpoint === "")
        throw new Error("No S3 server: the vitest globalSetup (test/support/globalSetup.ts) did not start one")
      return {
        options: {
          endpoint,
          region: "us-east-1",
          forcePathStyle: true,
          accessKeyId: Redacted.make(inject("s3AccessKey")),
          secretAccessKey: Redacted.make(inject("s3SecretKey"))
        }
      }
    })
  )
}

/** A bucket name unique to one test (lower case, as S3 requires). */
export const uniqueBucket = (prefix: string): string => `${prefix}-${crypto.randomUUID().slice(0, 8)}`.toLowerCase()
