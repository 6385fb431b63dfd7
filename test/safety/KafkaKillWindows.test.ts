/**
 * Issue 11: a windowed aggregate from Kafka, SIGKILLed at random moments and restarted, ends with the window totals of a
 * run that never stopped, because its windows are checkpointed with their source positions.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { inject } from "vitest"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import { pgUrl } from "../support/Databases.ts"
import { uniqueTopic } from "../support/KafkaBroker.ts"
import {
  expectedTotals,
  KILLS,
  produce,
  RECORDS,
  totalsLines,
  totalsQuery,
  totalsTable,
  windowTransforms,
  writeConfig
} from "./support/KafkaKill.ts"
import { killLoop } from "./support/KillLoop.ts"

describe("streaming from Kafka under SIGKILL (issue 11)", { timeout: 300_000 }, () => {
  it("window → aggregate → PostgreSQL upsert, state in PostgreSQL: after 6 kills the window totals are exact", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("kill-win")
    const schema = `etl_kill_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
    const admin = { url: Redacted.make(pgUrl) }
    const options = { url: Redacted.make(pgUrl), schema }
    const sql = (text: string) => Effect.runPromise(NodePostgres.execute(options, text))
    await Effect.runPromise(NodePostgres.execute(admin, `CREATE SCHEMA "${schema}"`))
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-win-"))
    // Event time: record i at i × 10 ms; 2 s windows per user (i mod 5); closers far ahead end every window.
    const want = expectedTotals()
    try {
      await sql(totalsTable)
      // Three partitions: the watermark is kept per partition (the closers reach every one of them).
      const producing = Effect.runPromise(produce(brokers, topic, { closers: true, partitions: 3 }))
      const rows = async () => totalsLines(await sql(totalsQuery))
      const result = await killLoop({
        config: (run) =>
          writeConfig(
            dir,
            run,
            topic,
            { type: "postgres", table: "totals", mode: "upsert", keys: ["windowStart", "user"] },
            { type: "postgres", url: pgUrl, schema },
            {
              transforms: windowTransforms,
              state: { type: "postgres", connection: "db" }
            }
          ),
        kills: KILLS,
        minMs: 300,
        maxMs: 3000,
        env: () => ({ ETL_KAFKA_BROKERS: brokers }),
        done: async () => (await rows()).length >= want.length,
        timeoutMs: 120_000,
        // The first run is killed only once it saved a checkpoint, so the final run always has one to resume from.
        before: async (run) =>
          run > 0 ||
          (await sql("SELECT count(*) AS n FROM etl_state").then(
            (r) => Number(r[0]?.n ?? 0) > 0,
            () => false
          ))
      })
      await producing
      assert.strictEqual(result.last.code, 0, result.last.stderr.slice(-3000))
      assert.isAtLeast(result.kills, 3, "most runs were killed while running")
      // The last run resumed from a checkpoint (it did not read the topic again from its start).
      const report = JSON.parse(result.last.stdout) as { records: { read: number } }
      assert.isBelow(report.records.read, RECORDS)
      assert.deepStrictEqual((await rows()).sort(), want)
      const state = await sql("SELECT key FROM etl_state")
      assert.deepStrictEqual(
        state.map((r) => r.key),
        [`pipeline:kill-${topic}`]
      )
    } finally {
      await Effect.runPromise(Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${schema}" CASCADE`)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
