import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Replay from "../../src/config/Replay.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"
import { lookup } from "../support/ReplayFixture.ts"

const input = [
  JSON.stringify({ id: "a", amount: 10, currency: "EUR" }),
  JSON.stringify({ id: "b", amount: 60, currency: "EUR" }),
  '{"id": "c", "amount": 1',
  JSON.stringify({ id: "f", amount: 70, currency: "usd" }),
  JSON.stringify({ id: "g", amount: 80, currency: "CHF" })
].join("\n")

interface System {
  readonly type: "postgres" | "mysql"
  readonly connection: Record<string, unknown>
  /** Where the tables are, as `--from` names them. */
  readonly prefix: string
  readonly sql: (text: string) => Effect.Effect<ReadonlyArray<Readonly<Record<string, unknown>>>>
  readonly amount: string
  readonly idType: string
  readonly jsonType: string
}

const configWith = (system: System, maxAmount: number) => ({
  name: "payments",
  connections: { db: system.connection },
  source: { type: "file", path: "in", format: { type: "jsonl" }, schema: "txn" },
  transforms: [
    { type: "derive", fields: { amount: "amount * 2.0" } },
    {
      type: "validate",
      rules: [
        { rule: "range", field: "amount", max: maxAmount },
        { rule: "pattern", field: "currency", regex: "^[A-Z]{3}$" }
      ]
    }
  ],
  sink: { type: system.type, connection: "db", table: "payments", mode: "upsert", keys: ["id"] },
  dead_letters: { type: system.type, connection: "db", table: "dead_letters" },
  retry: { attempts: 1 }
})

/** The id of a dead letter's record as the table holds it (JSON, or JSON text), `null` when it has none. */
const idOf = (record: unknown): unknown => {
  let value = record
  if (typeof record === "string" && record.startsWith("{"))
    try {
      value = JSON.parse(record)
    } catch {
      return null
    }
  return typeof value === "object" && value !== null ? ((value as { readonly id?: unknown }).id ?? null) : null
}

const replays = (system: System) =>
  Effect.gen(function* () {
    const deadLetterTable = (name: string) =>
      `CREATE TABLE ${name} (stage text NOT NULL, reason text NOT NULL, message text, record ${system.jsonType}, origin text)`
    yield* system.sql(`CREATE TABLE payments (id ${system.idType} PRIMARY KEY, amount double precision, currency text)`)
    yield* system.sql(deadLetterTable("dead_letters"))
    yield* system.sql(deadLetterTable("dead_letters_2"))
    const files = FileStore.memory({ "in/a.jsonl": input })
    const original = yield* Load.decode("p.json", configWith(system, 100))
    const layer = Layer.merge(Build.connections(original), FileStore.layerMemory(files))
    const first = yield* Pipeline.run(yield* Build.build(original, { file: "p.json", schema: lookup })).pipe(
      Effect.provide(layer)
    )
    assert.deepStrictEqual([first.records.written, first.records.deadLettered], [1, 4])

    const fixed = yield* Load.decode("p.json", configWith(system, 1000))
    const replayOnce = Effect.gen(function* () {
      const replay = yield* Replay.build(fixed, {
        file: "p.json",
        schema: lookup,
        from: `db:${system.prefix}dead_letters`,
        deadLetters: "db:dead_letters_2"
      })
      return yield* Pipeline.run(replay.pipeline).pipe(Effect.provide(layer))
    })
    const report = yield* replayOnce
    assert.isTrue(report.reconciliation.ok)
    assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [4, 2, 2])
    const rows = yield* system.sql(`SELECT id, ${system.amount} AS amount FROM payments ORDER BY id`)
    assert.deepStrictEqual(
      rows.map((r) => [r.id, Number(r.amount)]),
      [
        ["a", 20],
        ["b", 120],
        ["g", 160]
      ]
    )
    const still = yield* system.sql("SELECT stage, reason, origin, record FROM dead_letters_2 ORDER BY reason")
    assert.deepStrictEqual(
      still.map((r) => [r.stage, r.reason, r.origin, idOf(r.record)]),
      [
        ["source", "decode-error", "in/a.jsonl:3", null],
        ["validate", "rule:currency-pattern", null, "f"]
      ]
    )

    // Upsert by key: replaying the same set again writes the same rows, no more.
    yield* replayOnce
    const again = yield* system.sql("SELECT count(*) AS n FROM payments")
    assert.strictEqual(Number(again[0]!.n), 3)
    const kept = yield* system.sql("SELECT count(*) AS n FROM dead_letters")
    assert.strictEqual(Number(kept[0]!.n), 4)
  })

const test =
  "reads the dead-letter table back, upserts the records that now pass (again: the same rows), keeps the rest in a new table"

layer(PgTest.layer, { timeout: 60_000, excludeTestServices: true })("replay of PostgreSQL dead letters", (it) => {
  it.effect(test, () =>
    Effect.gen(function* () {
      const pg = yield* PgTest
      yield* replays({
        type: "postgres",
        connection: { type: "postgres", url: pgUrl, schema: pg.schema },
        prefix: `${pg.schema}.`,
        sql: (text) => pg.sql(text),
        amount: "amount",
        idType: "text",
        jsonType: "jsonb"
      })
    })
  )
})

layer(MysqlTest.layer, { timeout: 60_000, excludeTestServices: true })("replay of MySQL dead letters", (it) => {
  it.effect(test, () =>
    Effect.gen(function* () {
      const my = yield* MysqlTest
      yield* replays({
        type: "mysql",
        connection: { type: "mysql", url: mysqlUrl, database: my.database },
        prefix: "",
        sql: (text) => my.sql(text),
        amount: "amount",
        idType: "varchar(20)",
        // A text column: MySQL's sink writes a string record into a JSON column as it is, not as JSON.
        jsonType: "text"
      })
    })
  )
})
