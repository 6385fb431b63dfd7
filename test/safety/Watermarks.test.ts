import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as NodeFileStore from "../../src/connectors/file/NodeFileStore.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import type { RunReport } from "../../src/core/RunReport.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { PgTest, pgUrl } from "../support/Databases.ts"

type Row = Readonly<Record<string, unknown>>

const HOUR = 3_600_000
const base = Date.parse("2026-03-01T00:00:00Z")

const tempDir = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-watermarks-"))

const readJsonl = (dir: string): Array<Row> => {
  if (!fs.existsSync(dir)) return []
  const rows: Array<Row> = []
  for (const name of fs.readdirSync(dir).sort())
    if (name.endsWith(".jsonl"))
      for (const line of fs.readFileSync(nodePath.join(dir, name), "utf8").split("\n"))
        if (line !== "") rows.push(JSON.parse(line) as Row)
  return rows
}

const writeJsonl = (file: string, rows: ReadonlyArray<Row>) =>
  fs.writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(""))

/** Hourly windows with an hour of allowed lateness, counted and summed per user: the pipeline. */
const hourly = (time: string, user: string, amount: string) => [
  { type: "window", kind: "tumbling", time, size: "1 hour", allowed_lateness: "1 hour" },
  {
    type: "aggregate",
    group_by: [user, "windowStart", "windowEnd"],
    fields: { n: { fn: "count" }, total: { fn: "sum", field: amount } }
  }
]

/** Runs a config through the config front door on the real file system (and the connections it declares). */
const runConfig = (config: Record<string, unknown>) =>
  Effect.gen(function* () {
    const file = "watermarks.json"
    const decoded = yield* Load.decode(file, { name: "watermarks", ...config })
    const pipeline = yield* Build.build(decoded, {
      file,
      schema: (name, path) => Effect.fail(ConfigError.single(file, path, `no schema ${name}`))
    })
    return yield* Pipeline.run(pipeline).pipe(
      Effect.provide(Layer.merge(Build.connections(decoded), NodeFileStore.layer))
    )
  })

const fileSink = (path: string) => ({ type: "file", path, format: { type: "jsonl" }, mode: "overwrite" })

/** Per user and hour: how many records and their total, from the records themselves. */
const expectedWindows = (records: ReadonlyArray<{ user: string; amount: number; at: number }>) => {
  const out = new Map<string, { n: number; total: number }>()
  for (const r of records) {
    const start = Math.floor(r.at / HOUR) * HOUR
    const key = `${r.user} ${new Date(start).toISOString()} ${new Date(start + HOUR).toISOString()}`
    const w = out.get(key) ?? { n: 0, total: 0 }
    w.n++
    w.total += r.amount
    out.set(key, w)
  }
  return [...out.entries()].map(([k, v]) => `${k} ${v.n} ${v.total}`).sort()
}

const windowsOf = (rows: ReadonlyArray<Row>, user: string) =>
  rows
    .map(
      (r) =>
        `${String(r[user])} ${new Date(r.windowStart as string).toISOString()} ${new Date(r.windowEnd as string).toISOString()} ${Number(r.n)} ${Number(r.total)}`
    )
    .sort()

const assertNothingLate = (report: RunReport, deadLetters: ReadonlyArray<Row>) => {
  assert.deepStrictEqual(
    deadLetters.map((d) => d.message),
    []
  )
  assert.strictEqual(report.status, "succeeded")
  assert.strictEqual(report.records.rejected, 0)
  assert.strictEqual(report.records.filtered, 0)
}

/** `parts` parts of `perPart` records; each part in event-time order, all of them spanning the same two days. */
const partitioned = (parts: number, perPart: number) =>
  Array.from({ length: parts }, (_, p) =>
    Array.from({ length: perPart }, (_, i) => ({
      id: p * perPart + i,
      user: `u${(p + i) % 5}`,
      amount: ((p * 7 + i) % 100) + 1,
      at: base + Math.floor((i * 48 * HOUR) / perPart) + p * 60_000
    }))
  )

describe("watermarks per input part (files)", () => {
  it.effect("the smallest case: two files read one after the other, or at once, keep every on-time record", () =>
    Effect.gen(function* () {
      for (const concurrency of [1, 2]) {
        const dir = tempDir()
        const at = (hhmm: string) => Date.parse(`2026-03-01T${hhmm}:00Z`)
        fs.mkdirSync(nodePath.join(dir, "in"))
        writeJsonl(nodePath.join(dir, "in", "p0.jsonl"), [
          { user: "a", amount: 1, at: at("00:10") },
          { user: "a", amount: 2, at: at("03:10") }
        ])
        writeJsonl(nodePath.join(dir, "in", "p1.jsonl"), [
          { user: "a", amount: 3, at: at("00:20") },
          { user: "a", amount: 4, at: at("03:20") }
        ])
        const report = yield* runConfig({
          source: { type: "file", path: nodePath.join(dir, "in"), concurrency },
          transforms: hourly("at", "user", "amount"),
          sink: fileSink(nodePath.join(dir, "out")),
          dead_letters: fileSink(nodePath.join(dir, "rejected"))
        })
        assertNothingLate(report, readJsonl(nodePath.join(dir, "rejected")))
        assert.deepStrictEqual(windowsOf(readJsonl(nodePath.join(dir, "out")), "user"), [
          "a 2026-03-01T00:00:00.000Z 2026-03-01T01:00:00.000Z 2 4",
          "a 2026-03-01T03:00:00.000Z 2026-03-01T04:00:00.000Z 2 6"
        ])
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  )

  it.effect("a directory of files read four at a time gives the windows of the same records in one file", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const parts = partitioned(7, 1500)
      fs.mkdirSync(nodePath.join(dir, "in"))
      for (const [p, records] of parts.entries()) writeJsonl(nodePath.join(dir, "in", `part-${p}.jsonl`), records)
      const all = parts.flat()
      writeJsonl(
        nodePath.join(dir, "one.jsonl"),
        [...all].sort((a, b) => a.at - b.at || a.id - b.id)
      )
      const run = (path: string, out: string, concurrency: number) =>
        runConfig({
          source: { type: "file", path, concurrency, batch_size: 250 },
          transforms: hourly("at", "user", "amount"),
          sink: fileSink(nodePath.join(dir, out)),
          dead_letters: fileSink(nodePath.join(dir, `${out}-rejected`))
        })
      const split = yield* run(nodePath.join(dir, "in"), "split", 4)
      assertNothingLate(split, readJsonl(nodePath.join(dir, "split-rejected")))
      assert.strictEqual(split.records.read, all.length)
      const single = yield* run(nodePath.join(dir, "one.jsonl"), "single", 1)
      assertNothingLate(single, readJsonl(nodePath.join(dir, "single-rejected")))
      const windows = windowsOf(readJsonl(nodePath.join(dir, "split")), "user")
      assert.deepStrictEqual(windows, windowsOf(readJsonl(nodePath.join(dir, "single")), "user"))
      assert.deepStrictEqual(windows, expectedWindows(all))
      fs.rmSync(dir, { recursive: true, force: true })
    })
  )
})

layer(PgTest.layer, { timeout: 120_000, excludeTestServices: true })("watermarks per input part (PostgreSQL)", (it) => {
  it.effect("a table read in 8 slices at once keeps every on-time record, and its windows match PostgreSQL's", () =>
    Effect.gen(function* () {
      const db = yield* PgTest
      // 8 slices of 2,000 ids; inside each slice event time grows with the id, and every slice spans the same 50 hours.
      yield* db.sql(`CREATE TABLE tx (id INT PRIMARY KEY, user_id TEXT NOT NULL, amount INT NOT NULL,
        event_time TIMESTAMPTZ NOT NULL)`)
      yield* db.sql(`INSERT INTO tx SELECT i, 'u' || (i % 7), (i % 100) + 1,
        TIMESTAMPTZ '2026-03-01 00:00:00+00' + ((i % 2000) * 90 + (i / 2000) * 7) * INTERVAL '1 second'
        FROM generate_series(0, 15999) AS i ORDER BY i`)
      yield* db.sql(`CREATE TABLE summary (user_id TEXT NOT NULL, "windowStart" TIMESTAMPTZ NOT NULL,
        "windowEnd" TIMESTAMPTZ NOT NULL, n BIGINT NOT NULL, total BIGINT NOT NULL)`)
      const dir = tempDir()
      const report = yield* runConfig({
        connections: { db: { type: "postgres", url: pgUrl, schema: db.schema } },
        source: {
          type: "postgres",
          connection: "db",
          table: "tx",
          batch_size: 500,
          partition: { column: "id", partitions: 8, lower_bound: 0, upper_bound: 16000 }
        },
        transforms: hourly("event_time", "user_id", "amount"),
        sink: { type: "postgres", connection: "db", table: "summary", mode: "append" },
        dead_letters: fileSink(nodePath.join(dir, "rejected"))
      })
      assertNothingLate(report, readJsonl(nodePath.join(dir, "rejected")))
      assert.strictEqual(report.records.read, 16_000)
      const missing = yield* db.sql(`
        (SELECT user_id, date_bin('1 hour', event_time, TIMESTAMPTZ 'epoch') AS s, count(*) AS n, sum(amount) AS total
         FROM tx GROUP BY 1, 2
         EXCEPT SELECT user_id, "windowStart", n, total FROM summary)
        UNION ALL
        (SELECT user_id, "windowStart", n, total FROM summary
         EXCEPT SELECT user_id, date_bin('1 hour', event_time, TIMESTAMPTZ 'epoch'), count(*), sum(amount)
         FROM tx GROUP BY 1, 2)`)
      assert.deepStrictEqual(missing, [])
      const counts = yield* db.sql(`SELECT sum(n) AS records,
        count(*) FILTER (WHERE "windowEnd" <> "windowStart" + INTERVAL '1 hour') AS odd FROM summary`)
      assert.deepStrictEqual(counts, [{ records: "16000", odd: "0" }])
      fs.rmSync(dir, { recursive: true, force: true })
    })
  )
})
