/**
 * Issue 11: streaming pipelines from Kafka, SIGKILLed at random moments and restarted, end with exactly the records of
 * the topic — none lost, none twice — because each sink stores its source positions with its data.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { inject } from "vitest"
import * as NodeS3 from "../../src/connectors/s3/NodeS3.ts"
import * as S3 from "../../src/connectors/s3/S3.ts"
import * as S3Client from "../../src/connectors/s3/S3Client.ts"
import { uniqueTopic } from "../support/KafkaBroker.ts"
import { S3Server, uniqueBucket } from "../support/S3Server.ts"
import { KILLS, produce, RECORDS, writeConfig } from "./support/KafkaKill.ts"
import { killLoop } from "./support/KillLoop.ts"

describe("streaming from Kafka under SIGKILL (issue 11)", { timeout: 300_000 }, () => {
  it("file append (JSON Lines): after 6 kills and a final run, every record is in the part files exactly once", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("kill-file")
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-file-"))
    const out = nodePath.join(dir, "out")
    const lines = () =>
      fs.existsSync(out)
        ? fs
            .readdirSync(out)
            .filter((name) => name.startsWith("part-"))
            .flatMap((name) => fs.readFileSync(nodePath.join(out, name), "utf8").split("\n"))
            .filter((line) => line !== "")
        : []
    try {
      const producing = Effect.runPromise(produce(brokers, topic))
      const result = await killLoop({
        config: (run) =>
          writeConfig(dir, run, topic, { type: "file", path: out, format: { type: "jsonl" } }, undefined),
        kills: KILLS,
        minMs: 300,
        maxMs: 3000,
        env: () => ({ ETL_KAFKA_BROKERS: brokers }),
        done: async () => lines().length >= RECORDS,
        timeoutMs: 120_000
      })
      await producing
      assert.strictEqual(result.last.code, 0, result.last.stderr.slice(-3000))
      assert.isAtLeast(result.kills, 3, "most runs were killed while running")
      const ids = lines().map((line) => (JSON.parse(line) as { id: number }).id)
      assert.strictEqual(ids.length, RECORDS)
      assert.strictEqual(new Set(ids).size, RECORDS)
      const manifests = fs.readdirSync(nodePath.join(out, "_checkpoints")).filter((n) => n.endsWith(".json"))
      assert.isAbove(manifests.length, 0)
      // Nothing left behind: no staging directory of a killed run survives the final run.
      assert.deepStrictEqual(
        fs.readdirSync(out).filter((n) => n.startsWith(".staging")),
        []
      )
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("S3 append (JSON Lines): after 6 kills and a final run, the manifest's objects hold every record exactly once", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("kill-s3")
    const bucket = uniqueBucket("kill")
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-s3-"))
    const s3 = Layer.unwrap(Effect.map(S3Server, (server) => NodeS3.layer(server.options))).pipe(
      Layer.provide(S3Server.layer)
    )
    const s3Run = <A>(effect: Effect.Effect<A, unknown, S3Client.S3Client>) =>
      Effect.runPromise(Effect.provide(effect, s3) as Effect.Effect<A, unknown>)
    await s3Run(S3Client.S3Client.use((c) => c.createBucket(bucket)))
    /** The records a reader sees: the objects the `_SUCCESS` manifest names. */
    const seen = () =>
      s3Run(
        Effect.gen(function* () {
          const client = yield* S3Client.S3Client
          const manifest = yield* S3.readManifest(client, bucket, "out")
          const ids: Array<number> = []
          for (const file of manifest?.files ?? []) {
            const chunks = yield* Stream.runCollect(client.get(bucket, `out/${file}`))
            for (const line of Buffer.concat(chunks as Array<Uint8Array>)
              .toString("utf8")
              .split("\n"))
              if (line !== "") ids.push((JSON.parse(line) as { id: number }).id)
          }
          return ids
        })
      )
    try {
      const producing = Effect.runPromise(produce(brokers, topic))
      const result = await killLoop({
        config: (run) =>
          writeConfig(
            dir,
            run,
            topic,
            { type: "s3", bucket, path: "out", format: { type: "jsonl" } },
            {
              type: "s3",
              endpoint: inject("s3Endpoint"),
              path_style: true,
              access_key_id: { $env: "S3_KEY" },
              secret_access_key: { $env: "S3_SECRET" }
            }
          ),
        kills: KILLS,
        minMs: 300,
        maxMs: 3000,
        env: () => ({ ETL_KAFKA_BROKERS: brokers, S3_KEY: inject("s3AccessKey"), S3_SECRET: inject("s3SecretKey") }),
        done: async () => (await seen()).length >= RECORDS,
        timeoutMs: 120_000
      })
      await producing
      assert.strictEqual(result.last.code, 0, result.last.stderr.slice(-3000))
      assert.isAtLeast(result.kills, 3, "most runs were killed while running")
      const ids = await seen()
      assert.strictEqual(ids.length, RECORDS)
      assert.strictEqual(new Set(ids).size, RECORDS)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
