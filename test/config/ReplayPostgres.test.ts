import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Replay from "../../src/config/Replay.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { PgTest, pgUrl } from "../support/Databases.ts"

const Txn = Schema.Struct({ id: Schema.String, amount: Schema.Finite, currency: Schema.String })
const lookup: Build.SchemaLookup = (name, path) =>
  name === "txn"
    ? Effect.succeed(
        RecordSchema.fromSchema(Txn, "txn") as RecordSchema.RecordSchema<Readonly<Record<string, unknown>>>
      )
    : Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))

const input = [
  JSON.stringify({ id: "a", amount: 10, currency: "EUR" }),
  JSON.stringify({ id: "b", amount: 60, currency: "EUR" }),
  '{"id": "c", "amount": 1',
  JSON.stringify({ id: "f", amount: 70, currency: "usd" }),
  JSON.stringify({ id: "g", amount: 80, currency: "CHF" })
].join("\n")

const configWith = (schema: string, maxAmount: number) => ({
  name: "payments",
  connections: { pg: { type: "postgres", url: pgUrl, schema } },
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
  sink: { type: "postgres", connection: "pg", table: "payments", mode: "upsert", keys: ["id"] },
  dead_letters: { type: "postgres", connection: "pg", table: "dead_letters" },
  retry: { attempts: 1 }
})

const deadLetterTable = (name: string) =>
  `CREATE TABLE ${name} (stage text NOT NULL, reason text NOT NULL, message text, record jsonb, origin text)`

layer(PgTest.layer, { timeout: 60_000, excludeTestServices: true })("replay of PostgreSQL dead letters", (it) => {
  it.effect(
    "reads the dead-letter table back, upserts the records that now pass (again: the same rows), keeps the rest in a new table",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgTest
        yield* pg.sql("CREATE TABLE payments (id text PRIMARY KEY, amount double precision, currency text)")
        yield* pg.sql(deadLetterTable("dead_letters"))
        yield* pg.sql(deadLetterTable("dead_letters_2"))
        const files = FileStore.memory({ "in/a.jsonl": input })
        const original = yield* Load.decode("p.json", configWith(pg.schema, 100))
        const layer = Layer.merge(Build.connections(original), FileStore.layerMemory(files))
        const first = yield* Pipeline.run(yield* Build.build(original, { file: "p.json", schema: lookup })).pipe(
          Effect.provide(layer)
        )
        assert.deepStrictEqual([first.records.written, first.records.deadLettered], [1, 4])

        const fixed = yield* Load.decode("p.json", configWith(pg.schema, 1000))
        const replayOnce = Effect.gen(function* () {
          const replay = yield* Replay.build(fixed, {
            file: "p.json",
            schema: lookup,
            from: `pg:${pg.schema}.dead_letters`,
            deadLetters: "pg:dead_letters_2"
          })
          return yield* Pipeline.run(replay.pipeline).pipe(Effect.provide(layer))
        })
        const report = yield* replayOnce
        assert.isTrue(report.reconciliation.ok)
        assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [4, 2, 2])
        const rows = yield* pg.sql("SELECT id, amount::text AS amount FROM payments ORDER BY id")
        assert.deepStrictEqual(rows, [
          { id: "a", amount: "20" },
          { id: "b", amount: "120" },
          { id: "g", amount: "160" }
        ])
        const still = yield* pg.sql(
          "SELECT stage, reason, origin, record->>'id' AS id FROM dead_letters_2 ORDER BY reason, origin"
        )
        assert.deepStrictEqual(still, [
          { stage: "source", reason: "decode-error", origin: "in/a.jsonl:3", id: null },
          { stage: "validate", reason: "rule:currency-pattern", origin: null, id: "f" }
        ])

        // Upsert by key: replaying the same set again writes the same rows, no more.
        yield* replayOnce
        const again = yield* pg.sql("SELECT count(*)::int AS n FROM payments")
        assert.strictEqual(Number(again[0]!.n), 3)
        const original4 = yield* pg.sql("SELECT count(*)::int AS n FROM dead_letters")
        assert.strictEqual(Number(original4[0]!.n), 4)
      })
  )
})
