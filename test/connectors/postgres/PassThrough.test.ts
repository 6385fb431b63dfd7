/**
 * PostgreSQL → PostgreSQL pass-through on the real server: a table copied to a table with no transform moves its rows
 * as COPY text (see `core/PassThrough.ts`). The oracle is the same copy with its records parsed (an identity `map`
 * keeps the pass-through out): both must leave the same rows in their targets and the same dead letters.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import * as NodePostgres from "../../../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import type { RunReport } from "../../../src/core/RunReport.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import { type PgDatabase, PgTest, pgUrl } from "../../support/Databases.ts"

const Txn = Schema.Struct({
  id: AvroBridge.long,
  n: Schema.Number,
  name: Schema.String,
  amount: AvroBridge.decimal({ precision: 12, scale: 2 }),
  at: AvroBridge.timestampMillis,
  flag: Schema.Boolean,
  note: Schema.NullOr(Schema.String)
})
type Txn = typeof Txn.Type

const columns = (key: boolean, at = "timestamptz(3)", name = "text") =>
  `id bigint${key ? " PRIMARY KEY" : " NOT NULL"}, n integer NOT NULL, name ${name} NOT NULL, amount numeric(12,2) NOT NULL, at ${at} NOT NULL, flag boolean NOT NULL, note text`

/** A source row as SQL text values: id, n, name, amount, at, flag, note. */
type Values = readonly [string, number, string, string, string, boolean, string | null]

const insert = (db: PgDatabase, table: string, rows: ReadonlyArray<Values>) =>
  rows.length === 0
    ? Effect.void
    : Effect.asVoid(
        db.sql(
          `INSERT INTO ${table} VALUES ${rows
            .map((_, r) =>
              [0, 1, 2, 3, 4, 5, 6]
                .map(
                  (c) =>
                    `$${r * 7 + c + 1}${["::bigint", "::int", "", "::numeric", "::timestamptz", "::boolean", ""][c]}`
                )
                .join(", ")
            )
            .map((row) => `(${row})`)
            .join(", ")}`,
          rows.flat()
        )
      )

interface Copied {
  readonly report: RunReport
  readonly deadLetters: ReadonlyArray<DeadLetter>
  readonly passedThrough: boolean
}

/** Copies `from` into `to`, straight (pass-through when both sides agree) or through an identity map (records). */
const copy = (
  db: PgDatabase,
  from: string,
  to: string,
  options: {
    readonly parsed?: boolean
    readonly mode?: "append" | "overwrite" | "upsert"
    readonly transaction?: "end" | "batch"
    readonly partitions?: number
    readonly batchSize?: number
  } = {}
) =>
  Effect.gen(function* () {
    const debug: Array<string> = []
    const dead = Sink.collect<DeadLetter>("dead")
    const source = Postgres.table(from, Txn, {
      batchSize: options.batchSize ?? 1000,
      ...(options.partitions === undefined ? {} : { partitionBy: { column: "id", partitions: options.partitions } })
    })
    const sink = Postgres.table(to, Txn, {
      mode: options.mode ?? "append",
      ...(options.mode === "upsert" ? { keys: ["id" as const] } : {}),
      ...(options.transaction === undefined ? {} : { transaction: options.transaction })
    })
    const flow =
      options.parsed === true ? Pipeline.from(source).pipe(Pipeline.map((t: Txn) => t)) : Pipeline.from(source)
    const report = yield* flow.pipe(
      Pipeline.to(sink),
      Pipeline.withDeadLetters(dead),
      Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
      Pipeline.run,
      Effect.provide(NodePostgres.layer(db.options)),
      Effect.provide(
        Logger.layer([
          Logger.make((entry) => {
            if (entry.logLevel === "Debug") debug.push(String(entry.message))
          })
        ])
      ),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
    return {
      report,
      deadLetters: dead.collected().records,
      passedThrough: debug.some((m) => m.startsWith("records pass through as postgres-copy-text"))
    } satisfies Copied
  })

const tableText = (db: PgDatabase, table: string) =>
  Effect.map(db.sql(`SELECT t::text AS row FROM ${table} t ORDER BY id, t::text`), (rows) => rows.map((r) => r.row))

const deadText = (copied: Copied) =>
  copied.deadLetters.map((d) => `${d.stage} ${d.reason} ${d.message} ${d.origin ?? ""}`).sort()

/** Both copies left the same rows and dead letters, and counted the same. */
const assertSame = (db: PgDatabase, raw: Copied, parsed: Copied, rawTable: string, parsedTable: string) =>
  Effect.gen(function* () {
    assert.isTrue(raw.passedThrough, "the straight copy passes its rows through")
    assert.isFalse(parsed.passedThrough, "a copy with a transform parses its rows")
    assert.deepStrictEqual(yield* tableText(db, rawTable), yield* tableText(db, parsedTable))
    assert.deepStrictEqual(deadText(raw), deadText(parsed))
    assert.deepStrictEqual(
      { ...raw.report.records, combined: undefined },
      { ...parsed.report.records, combined: undefined }
    )
  })

const special: ReadonlyArray<Values> = [
  ["1", 7, "plain", "12.50", "2026-11-01 10:00:00.123+00", true, null],
  [
    "2",
    -3,
    'tab\there, newline\nthere, back\\slash, quote " and ünïcødé 🎉',
    "-0.01",
    "2026-11-01 10:00:00+00",
    false,
    "x"
  ],
  ["3", 0, "", "NaN", "2026-11-01 10:00:00+00", true, "\\N"],
  ["4", 1, "infinite", "1.00", "infinity", true, null],
  ["5", 2, "minus infinite", "1.00", "-infinity", true, null],
  ["6", 3, "bc", "1.00", "0044-03-15 12:00:00+00 BC", true, null],
  ["7", 4, "year 50", "1.00", "0050-01-01 00:00:00+00", true, null],
  ["9007199254740993", 5, "beyond 2^53", "1.00", "2026-11-01 10:00:00+00", true, null],
  ["9007199254740991", 6, "just below 2^53", "9999999999.99", "9999-12-31 23:59:59.999+00", true, "last"]
]

describe("PostgreSQL pass-through (server)", () => {
  it.effect(
    "a straight copy moves odd values, escapes and NULLs exactly as a parsed copy does, and dead-letters the same rows",
    () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql(`CREATE TABLE src (${columns(true)})`)
        yield* db.sql(`CREATE TABLE raw_dst (${columns(true)})`)
        yield* db.sql(`CREATE TABLE parsed_dst (${columns(true)})`)
        yield* insert(db, "src", special)
        const raw = yield* copy(db, "src", "raw_dst")
        const parsed = yield* copy(db, "src", "parsed_dst", { parsed: true })
        yield* assertSame(db, raw, parsed, "raw_dst", "parsed_dst")
        assert.isAbove(raw.report.records.deadLettered, 0)
        assert.strictEqual(
          raw.report.records.read,
          raw.report.records.written + raw.report.records.deadLettered,
          "every record read is written or dead-lettered"
        )
        assert.include(deadText(raw).join("\n"), "beyond ±2^53-1")
      }).pipe(Effect.provide(PgTest.layer)),
    60_000
  )

  it.effect(
    "a property: random rows, straight and parsed, leave the same tables and dead letters",
    () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        const text = fc.string({ unit: "binary", maxLength: 12 }).map((s) => s.replaceAll("\u0000", ""))
        const amount = fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: -99_999_999, max: 99_999_999 }).map((c) => (c / 100).toFixed(2)) },
          { weight: 1, arbitrary: fc.constant("NaN") }
        )
        const at = fc.oneof(
          {
            weight: 8,
            arbitrary: fc
              .integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31) })
              .map((ms) => new Date(ms).toISOString())
          },
          { weight: 1, arbitrary: fc.constantFrom("infinity", "-infinity", "0010-06-01 00:00:00+00 BC") }
        )
        const row = fc.tuple(
          fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
          fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
          text,
          amount,
          at,
          fc.boolean(),
          fc.option(text, { nil: null })
        )
        let run = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(row, { maxLength: 40 }), (rows) =>
              Effect.runPromise(
                Effect.gen(function* () {
                  run++
                  const [src, a, b] = [`p_src_${run}`, `p_raw_${run}`, `p_parsed_${run}`]
                  for (const t of [src, a, b]) yield* db.sql(`CREATE TABLE ${t} (${columns(true)})`)
                  yield* insert(
                    db,
                    src,
                    rows.map(
                      ([big, n, name, amount, at, flag, note], i): Values => [
                        String(big ? 2n ** 53n + BigInt(i) : BigInt(i)),
                        n,
                        name,
                        amount,
                        at,
                        flag,
                        note
                      ]
                    )
                  )
                  // Small batches, so rows straddle the reader's chunks and batches.
                  const raw = yield* copy(db, src, a, { batchSize: 7 })
                  const parsed = yield* copy(db, src, b, { parsed: true, batchSize: 7 })
                  if (rows.length > 0) yield* assertSame(db, raw, parsed, a, b)
                })
              )
            ),
            { numRuns: 12 }
          )
        )
      }).pipe(Effect.provide(PgTest.layer)),
    120_000
  )

  it.effect(
    "overwrite, upsert (the last row of a key wins), per-batch commits and partitioned reads pass through too",
    () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql(`CREATE TABLE src (${columns(false)})`)
        const rows: Array<Values> = []
        for (let i = 0; i < 3000; i++)
          rows.push([
            String(i % 2000),
            i,
            `name ${i}\t${"x".repeat(i % 50)}`,
            (i / 100).toFixed(2),
            "2026-11-01 00:00:00+00",
            i % 2 === 0,
            i % 3 === 0 ? null : `n${i}`
          ])
        for (let i = 0; i < rows.length; i += 500) yield* insert(db, "src", rows.slice(i, i + 500))
        for (const t of ["ow_raw", "ow_parsed", "up_raw", "up_parsed"]) {
          yield* db.sql(`CREATE TABLE ${t} (${columns(true)})`)
          yield* db.sql(
            `INSERT INTO ${t} VALUES (99999, 0, 'old', 0, '2026-01-01', true, NULL), (5, 0, 'old', 0, '2026-01-01', true, NULL)`
          )
        }
        for (const t of ["batch_raw", "batch_parsed", "part_raw", "part_parsed"])
          yield* db.sql(`CREATE TABLE ${t} (${columns(false)})`)
        // Upsert: the odd keys come twice (the last row read wins), the even ones once.
        yield* db.sql(
          "DELETE FROM src WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY id ORDER BY n) AS k FROM src) s WHERE k > 1 AND id % 2 = 0)"
        )
        const upRaw = yield* copy(db, "src", "up_raw", { mode: "upsert" })
        const upParsed = yield* copy(db, "src", "up_parsed", { mode: "upsert", parsed: true })
        yield* assertSame(db, upRaw, upParsed, "up_raw", "up_parsed")
        const batchRaw = yield* copy(db, "src", "batch_raw", { transaction: "batch", batchSize: 400 })
        const batchParsed = yield* copy(db, "src", "batch_parsed", {
          transaction: "batch",
          batchSize: 400,
          parsed: true
        })
        yield* assertSame(db, batchRaw, batchParsed, "batch_raw", "batch_parsed")
        const partRaw = yield* copy(db, "src", "part_raw", { partitions: 3 })
        const partParsed = yield* copy(db, "src", "part_parsed", { partitions: 3, parsed: true })
        yield* assertSame(db, partRaw, partParsed, "part_raw", "part_parsed")
        // Overwrite: one row per key, replacing the target's old rows.
        yield* db.sql(
          "DELETE FROM src WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY id ORDER BY n) AS k FROM src) s WHERE k > 1)"
        )
        const owRaw = yield* copy(db, "src", "ow_raw", { mode: "overwrite" })
        const owParsed = yield* copy(db, "src", "ow_parsed", { mode: "overwrite", parsed: true })
        yield* assertSame(db, owRaw, owParsed, "ow_raw", "ow_parsed")
        assert.strictEqual((yield* tableText(db, "ow_raw")).length, 2000)
      }).pipe(Effect.provide(PgTest.layer)),
    120_000
  )

  it.effect(
    "columns whose text a record would change, or of another type in the target, are parsed and written as records",
    () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        const rows: ReadonlyArray<Values> = [["1", 1, "a", "1.00", "2026-11-01 10:00:00.123456+00", true, null]]
        // Microseconds: a record keeps milliseconds, so the copy must go through records to write what a record holds.
        yield* db.sql(`CREATE TABLE micro (${columns(true, "timestamptz")})`)
        yield* db.sql(`CREATE TABLE micro_dst (${columns(true, "timestamptz")})`)
        yield* insert(db, "micro", rows)
        const micro = yield* copy(db, "micro", "micro_dst")
        assert.isFalse(micro.passedThrough)
        assert.deepStrictEqual(
          yield* db.sql("SELECT to_char(at AT TIME ZONE 'UTC', 'HH24:MI:SS.US') AS t FROM micro_dst"),
          [{ t: "10:00:00.123000" }]
        )
        // varchar(10) is not text: the server converts, so the records path (which checks the target) writes it.
        yield* db.sql(`CREATE TABLE plain (${columns(true)})`)
        yield* db.sql(`CREATE TABLE varchar_dst (${columns(true, "timestamptz(3)", "varchar(10)")})`)
        yield* insert(db, "plain", [["1", 1, "a", "1.00", "2026-11-01 10:00:00.123+00", true, null]])
        const other = yield* copy(db, "plain", "varchar_dst")
        assert.isFalse(other.passedThrough)
        assert.strictEqual(other.report.records.written, 1)
      }).pipe(Effect.provide(PgTest.layer))
  )

  it.effect(
    "a config copy on two threads passes each part's rows through to its staging table, as the parsed copy writes them",
    () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        for (const t of ["src", "raw_dst", "parsed_dst"]) yield* db.sql(`CREATE TABLE ${t} (${columns(true)})`)
        const rows: Array<Values> = [...special]
        for (let i = 100; i < 5000; i++)
          rows.push([String(i), i, `row ${i}`, (i / 7).toFixed(2), "2026-11-01 00:00:00.5+00", i % 2 === 0, null])
        for (let i = 0; i < rows.length; i += 500) yield* insert(db, "src", rows.slice(i, i + 500))
        const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-passthrough-"))
        fs.mkdirSync(nodePath.join(dir, "schemas"))
        fs.writeFileSync(
          nodePath.join(dir, "schemas", "txn.avsc"),
          JSON.stringify({
            type: "record",
            name: "txn",
            fields: [
              { name: "id", type: "long" },
              { name: "n", type: "int" },
              { name: "name", type: "string" },
              { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 12, scale: 2 } },
              { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
              { name: "flag", type: "boolean" },
              { name: "note", type: ["null", "string"] }
            ]
          })
        )
        const run = (sink: string, transforms: ReadonlyArray<unknown>) => {
          const file = nodePath.join(dir, `${sink}.json`)
          fs.writeFileSync(
            file,
            JSON.stringify({
              name: `copy-to-${sink}`,
              connections: { db: { type: "postgres", url: pgUrl, schema: db.schema } },
              source: {
                type: "postgres",
                connection: "db",
                table: "src",
                schema: "txn",
                partition: { column: "id", partitions: 4 }
              },
              transforms,
              sink: { type: "postgres", connection: "db", table: sink, mode: "append" },
              dead_letters: { type: "file", path: nodePath.join(dir, `${sink}-dead`), format: { type: "jsonl" } }
            })
          )
          const root = nodePath.resolve(import.meta.dirname, "../../..")
          const result = spawnSync(
            process.execPath,
            [nodePath.join(root, "src/main.ts"), "run", file, "--threads", "2", "--quiet", "--log-level", "debug"],
            { cwd: dir, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", ETL_LOG_FORMAT: "json" } }
          )
          assert.strictEqual(result.status, 0, result.stderr)
          const report = JSON.parse(result.stdout) as { records: Record<string, number> }
          return {
            records: report.records,
            passed: result.stderr.split("records pass through as postgres-copy-text").length - 1
          }
        }
        const raw = run("raw_dst", [])
        const parsed = run("parsed_dst", [{ type: "filter", condition: "true" }])
        assert.strictEqual(raw.passed, 4, "each of the 4 parts passes its rows through")
        assert.strictEqual(parsed.passed, 0)
        assert.deepStrictEqual(raw.records, parsed.records)
        assert.deepStrictEqual(yield* tableText(db, "raw_dst"), yield* tableText(db, "parsed_dst"))
        // The source checks its schema: NaN, the infinities and the id beyond 2^53 are dead letters on both paths.
        const dead = (sink: string) =>
          fs
            .readdirSync(nodePath.join(dir, `${sink}-dead`), { recursive: true, encoding: "utf8" })
            .filter((f) => f.endsWith(".jsonl"))
            .flatMap((f) => fs.readFileSync(nodePath.join(dir, `${sink}-dead`, f), "utf8").split("\n"))
            .filter((line) => line !== "")
            .sort()
        assert.deepStrictEqual(dead("raw_dst"), dead("parsed_dst"))
        assert.strictEqual(dead("raw_dst").length, raw.records.deadLettered)
        assert.isAtLeast(dead("raw_dst").length, 4)
        assert.strictEqual((yield* tableText(db, "raw_dst")).length, rows.length - dead("raw_dst").length)
      }).pipe(Effect.provide(PgTest.layer)),
    120_000
  )
})
