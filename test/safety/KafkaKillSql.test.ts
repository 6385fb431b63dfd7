/**
 * Issue 11: streaming pipelines from Kafka, SIGKILLed at random moments and restarted, end with exactly the records of
 * the topic — none lost, none twice — because each sink stores its source positions with its data.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { inject } from "vitest"
import * as NodeMysql from "../../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import { mysqlUrl, pgUrl } from "../support/Databases.ts"
import { uniqueTopic } from "../support/KafkaBroker.ts"
import { KILLS, produce, RECORDS, writeConfig } from "./support/KafkaKill.ts"
import { killLoop } from "./support/KillLoop.ts"

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
        minMs: 300,
        maxMs: 3000,
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
        minMs: 300,
        maxMs: 3000,
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
})
