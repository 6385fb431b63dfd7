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
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { inject } from "vitest"
import { KafkaClient } from "../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../src/connectors/kafka/NodeKafka.ts"
import * as NodeMysql from "../../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import * as NodeS3 from "../../src/connectors/s3/NodeS3.ts"
import * as S3 from "../../src/connectors/s3/S3.ts"
import * as S3Client from "../../src/connectors/s3/S3Client.ts"
import { mysqlUrl, pgUrl } from "../support/Databases.ts"
import { uniqueTopic } from "../support/KafkaBroker.ts"
import { S3Server, uniqueBucket } from "../support/S3Server.ts"
import { killLoop } from "./support/KillLoop.ts"

const RECORDS = 30_000
const KILLS = 6

/** Creates the topic, then produces RECORDS records in steps of 250 every 100 ms, while the pipeline runs and dies. */
const produce = (brokers: string, topic: string) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    yield* client.createTopic(topic, { partitions: 3 })
    const producer = yield* client.producer({ compression: "none" })
    const encoder = new TextEncoder()
    for (let start = 0; start < RECORDS; start += 250) {
      const messages = []
      for (let i = start; i < start + 250; i++)
        messages.push({
          key: encoder.encode(String(i % 7)),
          value: encoder.encode(JSON.stringify({ id: i, amount: i % 100 }))
        })
      yield* producer.send(topic, messages)
      yield* Effect.sleep("100 millis")
    }
  }).pipe(Effect.scoped, Effect.provide(NodeKafka.layer({ brokers: brokers.split(",") })))

const writeConfig = (
  dir: string,
  run: number,
  topic: string,
  sink: Record<string, unknown>,
  connection: Record<string, unknown> | undefined
) => {
  const path = nodePath.join(dir, `run-${run}.json`)
  fs.writeFileSync(
    path,
    JSON.stringify({
      name: `kill-${topic}`,
      mode: "streaming",
      streaming: { commit_interval: "200 millis", commit_records: 1500 },
      connections: {
        events: { type: "kafka", brokers: [{ $env: "ETL_KAFKA_BROKERS" }] },
        ...(connection === undefined ? {} : { db: connection })
      },
      source: {
        type: "kafka",
        connection: "events",
        topics: [topic],
        // Each run joins a group of its own: a killed member would hold the group's partitions for its session
        // timeout. The positions come from the sink, whatever the group.
        group_id: `g-${topic}-${run}`,
        start: "earliest",
        value: { type: "json" }
      },
      transforms: [{ type: "filter", condition: "amount >= 0" }],
      sink: connection === undefined ? sink : { ...sink, connection: "db" }
    })
  )
  return path
}

describe("streaming from Kafka under SIGKILL (issue 11)", { timeout: 300_000 }, () => {
  it("PostgreSQL append: after 6 kills and a final run, every record is in the table exactly once", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("kill-pg")
    const schema = `etl_kill_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
    const admin = { url: Redacted.make(pgUrl) }
    const options = { url: Redacted.make(pgUrl), schema }
    const sql = (text: string) => Effect.runPromise(NodePostgres.execute(options, text))
    await Effect.runPromise(NodePostgres.execute(admin, `CREATE SCHEMA "${schema}"`))
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-pg-"))
    try {
      await sql(`CREATE TABLE orders (id integer NOT NULL, amount double precision NOT NULL)`)
      const producing = Effect.runPromise(produce(brokers, topic))
      const count = async () => Number((await sql("SELECT count(*) AS n FROM orders"))[0]!.n)
      const result = await killLoop({
        config: (run) =>
          writeConfig(
            dir,
            run,
            topic,
            { type: "postgres", table: "orders", mode: "append" },
            { type: "postgres", url: pgUrl, schema }
          ),
        kills: KILLS,
        minMs: 1500,
        maxMs: 4500,
        env: () => ({ ETL_KAFKA_BROKERS: brokers }),
        done: async () => (await count()) >= RECORDS,
        timeoutMs: 120_000
      })
      await producing
      assert.strictEqual(result.last.code, 0, result.last.stderr.slice(-3000))
      assert.isAtLeast(result.kills, 3, "most runs were killed while running")
      const [stats] = await sql(
        "SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM orders"
      )
      assert.deepStrictEqual(stats, { n: String(RECORDS), d: String(RECORDS), lo: "0", hi: String(RECORDS - 1) })
      const offsets = await sql("SELECT part, position FROM etl_offsets ORDER BY part")
      assert.strictEqual(
        offsets.reduce((n, r) => n + Number(r.position), 0),
        RECORDS
      )
    } finally {
      await Effect.runPromise(Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${schema}" CASCADE`)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("MySQL append: after 6 kills and a final run, every record is in the table exactly once", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("kill-my")
    const database = `etl_kill_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
    const admin = { url: Redacted.make(mysqlUrl) }
    await Effect.runPromise(NodeMysql.execute(admin, `CREATE DATABASE \`${database}\``))
    const url = mysqlUrl.replace(/\/[^/]*$/, `/${database}`)
    const options = { url: Redacted.make(url) }
    const sql = (text: string) => Effect.runPromise(NodeMysql.execute(options, text))
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-my-"))
    try {
      await sql("CREATE TABLE orders (id INT NOT NULL, amount DOUBLE NOT NULL)")
      const producing = Effect.runPromise(produce(brokers, topic))
      const count = async () => Number((await sql("SELECT count(*) AS n FROM orders"))[0]!.n)
      const result = await killLoop({
        config: (run) =>
          writeConfig(dir, run, topic, { type: "mysql", table: "orders", mode: "append" }, { type: "mysql", url }),
        kills: KILLS,
        minMs: 1500,
        maxMs: 4500,
        env: () => ({ ETL_KAFKA_BROKERS: brokers }),
        done: async () => (await count()) >= RECORDS,
        timeoutMs: 120_000
      })
      await producing
      assert.strictEqual(result.last.code, 0, result.last.stderr.slice(-3000))
      assert.isAtLeast(result.kills, 3, "most runs were killed while running")
      const [stats] = await sql(
        "SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM orders"
      )
      assert.deepStrictEqual(
        { n: Number(stats!.n), d: Number(stats!.d), lo: Number(stats!.lo), hi: Number(stats!.hi) },
        { n: RECORDS, d: RECORDS, lo: 0, hi: RECORDS - 1 }
      )
      const offsets = await sql("SELECT part, position FROM etl_offsets")
      assert.strictEqual(
        offsets.reduce((n, r) => n + Number(r.position), 0),
        RECORDS
      )
    } finally {
      await Effect.runPromise(Effect.ignore(NodeMysql.execute(admin, `DROP DATABASE \`${database}\``)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

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
        minMs: 1500,
        maxMs: 4500,
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
        minMs: 1500,
        maxMs: 4500,
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
