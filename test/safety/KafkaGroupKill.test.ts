/**
 * Issue 11: three processes of one streaming pipeline share a topic's partitions through their Kafka consumer group.
 * One of them at a time is SIGKILLed at random moments and started again (sometimes before the group notices, sometimes
 * after its partitions moved to the others), while the topic fills. In the end the table holds every record exactly
 * once: a rebalance commits what a process read from the partitions it gives up before they go (a drain), a partition
 * a process gains starts where the table's stored positions end, and a commit whose partition another process stored
 * further meanwhile is refused and read again.
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
import { produce, RECORDS, writeConfig } from "./support/KafkaKill.ts"
import { type Child, sleep, start, waitUntil } from "./support/KillLoop.ts"

const PROCESSES = 3
const KILLS = 5

describe("a consumer group of three processes under SIGKILL (issue 11)", { timeout: 300_000 }, () => {
  it("PostgreSQL append: every record is in the table exactly once", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("kill-group")
    const schema = `etl_group_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
    const admin = { url: Redacted.make(pgUrl) }
    const sql = (text: string) => Effect.runPromise(NodePostgres.execute({ url: Redacted.make(pgUrl), schema }, text))
    await Effect.runPromise(NodePostgres.execute(admin, `CREATE SCHEMA "${schema}"`))
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-group-"))
    const children: Array<Child | undefined> = []
    const launched: Array<Child> = []
    let runs = 0
    const launch = async (k: number) => {
      const config = writeConfig(
        dir,
        runs++,
        topic,
        { type: "postgres", table: "orders", mode: "append" },
        { type: "postgres", url: pgUrl, schema },
        { source: { group_id: `g-${topic}`, session_timeout: "6 seconds" } }
      )
      const child = start(config, { ETL_KAFKA_BROKERS: brokers, ETL_INSTANCE_ID: `member-${k}` })
      children[k] = child
      launched.push(child)
      await waitUntil(
        async () => child.process.exitCode !== null || child.output().stderr.includes("run started"),
        60_000,
        `process ${k} to start`
      )
      if (child.process.exitCode !== null)
        throw new Error(`process ${k} exited with ${child.process.exitCode}:\n${child.output().stderr.slice(-3000)}`)
    }
    try {
      await sql(`CREATE TABLE orders (id integer NOT NULL, amount double precision NOT NULL)`)
      const producing = Effect.runPromise(produce(brokers, topic, { partitions: 6 }))
      for (let k = 0; k < PROCESSES; k++) await launch(k)
      let kills = 0
      for (let i = 0; i < KILLS; i++) {
        await sleep(1_000 + Math.random() * 2_500)
        const k = Math.floor(Math.random() * PROCESSES)
        const child = children[k]!
        if (child.process.exitCode !== null)
          throw new Error(`process ${k} exited with ${child.process.exitCode}:\n${child.output().stderr.slice(-3000)}`)
        child.process.kill("SIGKILL")
        await child.exited
        kills++
        // Back before the session timeout (it takes its partitions back), or after it (they moved to the others).
        await sleep(Math.random() * 9_000)
        await launch(k)
      }
      await producing
      const count = async () => Number((await sql("SELECT count(*) AS n FROM orders"))[0]!.n)
      await waitUntil(async () => (await count()) >= RECORDS, 120_000, "every record to be written").catch(
        async (error) => {
          const [stats] = await sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders")
          throw new Error(
            `${String(error)}: ${JSON.stringify(stats)}\n${children.map((c) => c?.output().stderr.slice(-2000)).join("\n---\n")}`
          )
        }
      )
      for (const child of children) child!.process.kill("SIGINT")
      const codes = await Promise.all(children.map((c) => c!.exited))
      assert.deepStrictEqual(
        codes,
        children.map(() => 0),
        children.map((c) => c!.output().stderr.slice(-2000)).join("\n---\n")
      )
      assert.strictEqual(kills, KILLS)
      const drains = launched.reduce((n, c) => n + c.output().stderr.split("rebalance: committing").length - 1, 0)
      assert.isAtLeast(drains, 1, "the surviving processes gave partitions up in rebalances")
      const [stats] = await sql(
        "SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM orders"
      )
      assert.deepStrictEqual(stats, { n: String(RECORDS), d: String(RECORDS), lo: "0", hi: String(RECORDS - 1) })
      const offsets = await sql("SELECT part, position FROM etl_offsets ORDER BY part")
      assert.strictEqual(offsets.length, 6)
      assert.strictEqual(
        offsets.reduce((n, r) => n + Number(r.position), 0),
        RECORDS
      )
    } finally {
      for (const child of children)
        if (child !== undefined && child.process.exitCode === null) child.process.kill("SIGKILL")
      await Effect.runPromise(Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${schema}" CASCADE`)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
