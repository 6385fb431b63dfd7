/**
 * Issue 11: three processes of one streaming pipeline share a topic's partitions through their Kafka consumer group.
 * One of them at a time is SIGKILLed at random moments and started again (sometimes before the group notices, sometimes
 * after its partitions moved to the others), while the topic fills. In the end the table holds every record exactly
 * once, or the exact window totals:
 * - a rebalance commits what a process read from the partitions it gives up before they go (a drain), and with state
 *   per partition saves their states too;
 * - a partition a process gains starts where the table's stored positions end (or its state's checkpoint, restored);
 * - a commit whose partition another process stored further meanwhile is refused and read again.
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
  produce,
  RECORDS,
  totalsLines,
  totalsQuery,
  totalsTable,
  windowTransforms,
  writeConfig
} from "./support/KafkaKill.ts"
import { type Child, sleep, start, waitUntil } from "./support/KillLoop.ts"

const PROCESSES = 3
const KILLS = 5
const PARTITIONS = 6

/**
 * Starts PROCESSES members of one group, then KILLS times SIGKILLs a random one and starts it again after 0–9 s (the
 * session timeout is 6 s), while `produce` fills the topic; waits until `done`, stops them all with SIGINT and checks
 * they exit 0 and that the group rebalanced with drains.
 */
const groupKillLoop = async (options: {
  readonly config: (run: number) => string
  readonly produce: Promise<void>
  readonly done: () => Promise<boolean>
  readonly describe: () => Promise<string>
}) => {
  const brokers = inject("kafkaBrokers")
  const children: Array<Child | undefined> = []
  const launched: Array<Child> = []
  let runs = 0
  const launch = async (k: number) => {
    const child = start(options.config(runs++), { ETL_KAFKA_BROKERS: brokers, ETL_INSTANCE_ID: `member-${k}` })
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
  const logs = () => children.map((c) => c?.output().stderr.slice(-2000)).join("\n---\n")
  try {
    for (let k = 0; k < PROCESSES; k++) await launch(k)
    for (let i = 0; i < KILLS; i++) {
      await sleep(1_000 + Math.random() * 2_500)
      const k = Math.floor(Math.random() * PROCESSES)
      const child = children[k]!
      if (child.process.exitCode !== null)
        throw new Error(`process ${k} exited with ${child.process.exitCode}:\n${child.output().stderr.slice(-3000)}`)
      child.process.kill("SIGKILL")
      await child.exited
      // Back before the session timeout (it takes its partitions back), or after it (they moved to the others).
      await sleep(Math.random() * 9_000)
      await launch(k)
    }
    await options.produce
    await waitUntil(options.done, 120_000, "the results").catch(async (error) => {
      throw new Error(`${String(error)}: ${await options.describe()}\n${logs()}`)
    })
    for (const child of children) child!.process.kill("SIGINT")
    const codes = await Promise.all(children.map((c) => c!.exited))
    assert.deepStrictEqual(
      codes,
      children.map(() => 0),
      logs()
    )
    const drains = launched.reduce((n, c) => n + c.output().stderr.split("rebalance: committing").length - 1, 0)
    assert.isAtLeast(drains, 1, "the surviving processes gave partitions up in rebalances")
    return launched.map((c) => c.output().stderr).join("\n")
  } finally {
    for (const child of children)
      if (child !== undefined && child.process.exitCode === null) child.process.kill("SIGKILL")
  }
}

describe("a consumer group of three processes under SIGKILL (issue 11)", { timeout: 300_000 }, () => {
  const withSchema = async (f: (schema: string, dir: string) => Promise<void>) => {
    const schema = `etl_group_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
    const admin = { url: Redacted.make(pgUrl) }
    await Effect.runPromise(NodePostgres.execute(admin, `CREATE SCHEMA "${schema}"`))
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-group-"))
    try {
      await f(schema, dir)
    } finally {
      await Effect.runPromise(Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${schema}" CASCADE`)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }

  it("PostgreSQL append: every record is in the table exactly once", () =>
    withSchema(async (schema, dir) => {
      const brokers = inject("kafkaBrokers")
      const topic = uniqueTopic("kill-group")
      const sql = (text: string) => Effect.runPromise(NodePostgres.execute({ url: Redacted.make(pgUrl), schema }, text))
      await sql(`CREATE TABLE orders (id integer NOT NULL, amount double precision NOT NULL)`)
      const stats = async () =>
        (await sql("SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM orders"))[0]!
      await groupKillLoop({
        config: (run) =>
          writeConfig(
            dir,
            run,
            topic,
            { type: "postgres", table: "orders", mode: "append" },
            { type: "postgres", url: pgUrl, schema },
            { source: { group_id: `g-${topic}`, session_timeout: "6 seconds" } }
          ),
        produce: Effect.runPromise(produce(brokers, topic, { partitions: PARTITIONS })),
        done: async () => Number((await stats()).n) >= RECORDS,
        describe: async () => JSON.stringify(await stats())
      })
      assert.deepStrictEqual(await stats(), {
        n: String(RECORDS),
        d: String(RECORDS),
        lo: "0",
        hi: String(RECORDS - 1)
      })
      const offsets = await sql("SELECT part, position FROM etl_offsets ORDER BY part")
      assert.strictEqual(offsets.length, PARTITIONS)
      assert.strictEqual(
        offsets.reduce((n, r) => n + Number(r.position), 0),
        RECORDS
      )
    }))

  it("window → aggregate → PostgreSQL upsert, state per partition in PostgreSQL: the window totals are exact", () =>
    withSchema(async (schema, dir) => {
      const brokers = inject("kafkaBrokers")
      const topic = uniqueTopic("kill-group-win")
      const sql = (text: string) => Effect.runPromise(NodePostgres.execute({ url: Redacted.make(pgUrl), schema }, text))
      // Event time: record i at i × 10 ms; 2 s windows per user (i mod 5), the message key: a user's records are in
      // one partition, so a partition's state holds all of that user's windows.
      const want = expectedTotals()
      await sql(totalsTable)
      const rows = async () => totalsLines(await sql(totalsQuery))
      const logs = await groupKillLoop({
        config: (run) =>
          writeConfig(
            dir,
            run,
            topic,
            { type: "postgres", table: "totals", mode: "upsert", keys: ["windowStart", "user"] },
            { type: "postgres", url: pgUrl, schema },
            {
              transforms: windowTransforms,
              state: { type: "postgres", connection: "db" },
              stateScope: "partition",
              source: { group_id: `g-${topic}`, session_timeout: "6 seconds" }
            }
          ),
        produce: Effect.runPromise(
          produce(brokers, topic, { closers: true, partitions: PARTITIONS, key: (i) => `u${i % 5}` })
        ),
        done: async () => (await rows()).length >= want.length,
        describe: async () => `${(await rows()).length} of ${want.length} windows`
      })
      assert.deepStrictEqual((await rows()).sort(), want)
      assert.include(logs, "restoring the state of", "a partition's state moved to another process or came back")
      const state = await sql("SELECT key FROM etl_state ORDER BY key")
      assert.isAtLeast(state.length, 2)
      for (const r of state) assert.match(String(r.key), new RegExp(`^pipeline:kill-${topic}@${topic}/\\d+$`))
    }))
})
