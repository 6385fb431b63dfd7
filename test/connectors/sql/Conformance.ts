/**
 * The behaviours every SQL source and sink must have, run against each memory layer and each real server by the
 * connector test files: the same assertions, whatever the backend.
 */
import { assert, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as File from "../../../src/connectors/file/File.ts"
import type * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as Incremental from "../../../src/connectors/sql/Incremental.ts"
import { type OffsetRow, offsetsKey, type Row, type SqlClient } from "../../../src/connectors/sql/SqlClient.ts"
import * as SqlTable from "../../../src/connectors/sql/SqlTable.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import { LoadError } from "../../../src/core/Errors.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"

/** The record type of the conformance tables. */
export const Txn = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 18, scale: 2 }),
  status: Schema.String,
  created_at: AvroBridge.timestampMillis
})
/** A conformance record. */
export type Txn = typeof Txn.Type

const t0 = Date.UTC(2026, 0, 1)

/** `n` deterministic transactions starting at id `from`. */
export const txns = (n: number, from = 1, status = "settled"): ReadonlyArray<Txn> =>
  Array.from({ length: n }, (_, i) => ({
    id: from + i,
    user_id: `u${(from + i) % 7}`,
    amount: BigDecimal.fromStringUnsafe(`${(from + i) * 3}.${String(Math.abs(from + i) % 100).padStart(2, "0")}`),
    status,
    created_at: new Date(t0 + (from + i) * 60_000)
  }))

/** Compares records with exact decimals. */
export const normalize = (rows: ReadonlyArray<Readonly<Record<string, unknown>>>) =>
  rows
    .map((r) => {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(r))
        out[k] = BigDecimal.isBigDecimal(v)
          ? BigDecimal.format(BigDecimal.normalize(v))
          : v instanceof Date
            ? v.toISOString()
            : v
      return out
    })
    .sort((a, b) => Number(a.id) - Number(b.id))

/** Creates the conformance table through the client itself, so the same code works for every backend. */
export const createTxnTable =
  <Id, E>(key: Context.Key<Id, SqlClient<E>>) =>
  (name: string, options?: { readonly key?: boolean }) =>
    Effect.gen(function* () {
      const client = yield* key
      const pg = client.dialect === "postgres"
      yield* client.createTable(
        { name },
        [
          { name: "id", type: pg ? "bigint" : "BIGINT", nullable: false },
          { name: "user_id", type: pg ? "text" : "VARCHAR(100)", nullable: false },
          { name: "amount", type: pg ? "numeric(18,2)" : "DECIMAL(18,2)", nullable: true },
          { name: "status", type: pg ? "text" : "VARCHAR(20)", nullable: true },
          { name: "created_at", type: pg ? "timestamptz(3)" : "DATETIME(3)", nullable: true }
        ],
        options?.key === false ? [] : ["id"]
      )
    })

/** A backend of the conformance suite. */
export interface Backend<Id, E> {
  readonly name: string
  /** The client of the `default` connection. */
  readonly client: Context.Key<Id, SqlClient<E>>
  /** Builds a typed table (Postgres.table or Mysql.table). */
  readonly table: <S extends Schema.Top, ES = never, RS = never>(
    name: string,
    schema: S,
    options?: SqlTable.TableOptions<S["Type"], ES, RS>
  ) => SqlTable.Table<S["Type"], E | ES, Id | RS>
  /** Creates an empty transactions table named `name`, with `id` as primary key unless `key` is false. */
  readonly createTxnTable: (name: string, options?: { readonly key?: boolean }) => Effect.Effect<void, unknown, Id>
  /** Provides the backend to a test. */
  readonly provide: <A, E2>(effect: Effect.Effect<A, E2, Id | FileStore.FileStore>) => Effect.Effect<A, E2>
}

const unique = (prefix: string) => `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`

const readAll = <A, E, R>(source: Source.Source<A, E, R>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    return { records: out.collected().records, dead: dead.collected().records, report }
  })

const write = <E, R>(sink: Sink.Sink<Txn, E, R>, rows: ReadonlyArray<Txn>, batchSize = 7) =>
  Pipeline.from(Source.fromIterable("rows", rows, { batchSize })).pipe(Pipeline.to(sink), Pipeline.run)

/** Runs the conformance suite for one backend. */
export const conformance = <Id, E>(backend: Backend<Id, E>) => {
  const run = <A, E2>(effect: Effect.Effect<A, E2, Id | FileStore.FileStore>) => backend.provide(effect)
  const { table } = backend

  it.effect(`${backend.name}: append writes every row, and reads them back typed`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("append")
        yield* backend.createTxnTable(name)
        const report = yield* write(table(name, Txn), txns(20))
        assert.strictEqual(report.records.written, 20)
        assert.isTrue(report.reconciliation.ok)
        yield* write(table(name, Txn), txns(5, 21))
        const { records, dead } = yield* readAll(table(name, Txn, { batchSize: 6 }))
        assert.strictEqual(dead.length, 0)
        assert.deepStrictEqual(normalize(records), normalize(txns(25)))
      })
    )
  )

  it.effect(`${backend.name}: overwrite replaces the rows`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("overwrite")
        yield* backend.createTxnTable(name)
        yield* write(table(name, Txn), txns(10))
        const report = yield* write(table(name, Txn, { mode: "overwrite" }), txns(3, 100))
        assert.strictEqual(report.records.written, 3)
        const { records } = yield* readAll(table(name, Txn))
        assert.deepStrictEqual(normalize(records), normalize(txns(3, 100)))
        // a second overwrite works on the swapped-in table too
        yield* write(table(name, Txn, { mode: "overwrite" }), txns(2, 200))
        assert.deepStrictEqual(normalize((yield* readAll(table(name, Txn))).records), normalize(txns(2, 200)))
      })
    )
  )

  it.effect(`${backend.name}: a failed overwrite leaves the old rows`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("overwrite_fail")
        yield* backend.createTxnTable(name)
        yield* write(table(name, Txn), txns(4))
        const failing = Source.make<Txn, LoadError>({
          name: "failing",
          type: "memory",
          description: "fails after one batch",
          bounded: true,
          batches: () =>
            Stream.concat(
              Stream.make({ records: txns(50, 500), deadLetters: [], ack: Effect.void }),
              Stream.fail(new LoadError({ stage: "failing", message: "boom", retryable: false }))
            )
        })
        const error = yield* Pipeline.from(failing).pipe(
          Pipeline.to(table(name, Txn, { mode: "overwrite" })),
          Pipeline.run,
          Effect.flip
        )
        assert.strictEqual(error._tag, "LoadError")
        assert.deepStrictEqual(normalize((yield* readAll(table(name, Txn))).records), normalize(txns(4)))
      })
    )
  )

  it.effect(`${backend.name}: transaction "batch" makes each batch durable on its own`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("per_batch")
        yield* backend.createTxnTable(name)
        const failing = Source.make<Txn, LoadError>({
          name: "failing",
          type: "memory",
          description: "fails after two batches",
          bounded: true,
          batches: () =>
            Stream.concat(
              Stream.make(
                { records: txns(5), deadLetters: [], ack: Effect.void },
                { records: txns(5, 6), deadLetters: [], ack: Effect.void }
              ),
              Stream.fail(new LoadError({ stage: "failing", message: "boom", retryable: false }))
            )
        })
        const sink = table(name, Txn, { transaction: "batch" })
        assert.strictEqual(sink.durability, "per-write")
        yield* Pipeline.from(failing).pipe(Pipeline.to(sink), Pipeline.run, Effect.flip)
        assert.deepStrictEqual(normalize((yield* readAll(table(name, Txn))).records), normalize(txns(10)))
        const rejected = yield* write(table(name, Txn, { mode: "overwrite", transaction: "batch" }), txns(1)).pipe(
          Effect.flip
        )
        assert.include(rejected.message, "append only")
      })
    )
  )

  it.effect(`${backend.name}: upsert inserts and updates by key; twice gives the same table`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("upsert")
        yield* backend.createTxnTable(name)
        yield* write(table(name, Txn), txns(10))
        const changes = [...txns(5, 8, "refunded"), ...txns(3, 20)]
        const sink = table(name, Txn, { mode: "upsert", keys: ["id"] })
        const first = yield* write(sink, changes)
        assert.strictEqual(first.records.written, 8)
        assert.isTrue(first.reconciliation.ok)
        const after = normalize((yield* readAll(table(name, Txn))).records)
        assert.strictEqual(after.length, 15)
        assert.deepStrictEqual(
          after.filter((r) => r.status === "refunded").map((r) => r.id),
          [8, 9, 10, 11, 12]
        )
        yield* write(sink, changes)
        assert.deepStrictEqual(normalize((yield* readAll(table(name, Txn))).records), after)
      })
    )
  )

  it.effect(`${backend.name}: upsert with the same key twice in one run keeps the last row`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("upsert_dup")
        yield* backend.createTxnTable(name)
        const rows = [...txns(3, 1, "first"), ...txns(2, 2, "second")]
        const report = yield* write(table(name, Txn, { mode: "upsert", keys: ["id"] }), rows, 2)
        assert.strictEqual(report.records.written, 5)
        const after = normalize((yield* readAll(table(name, Txn))).records)
        assert.deepStrictEqual(
          after.map((r) => [r.id, r.status]),
          [
            [1, "first"],
            [2, "second"],
            [3, "second"]
          ]
        )
      })
    )
  )

  it.effect(`${backend.name}: upsert keys that are not a unique key fail before any row is written`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("upsert_bad")
        yield* backend.createTxnTable(name)
        const error = yield* write(table(name, Txn, { mode: "upsert", keys: ["user_id"] }), txns(3)).pipe(Effect.flip)
        assert.strictEqual(error._tag, "LoadError")
        assert.isFalse(error.retryable)
        assert.include(error.message, "The upsert keys (user_id) are not the primary key or a unique index")
        assert.include(error.message, "its unique keys are (id)")
        const noKeys = yield* write(table(name, Txn, { mode: "upsert" }), txns(3)).pipe(Effect.flip)
        assert.include(noKeys.message, "needs key columns")
        assert.strictEqual((yield* readAll(table(name, Txn))).records.length, 0)
        const keyless = unique("keyless")
        yield* backend.createTxnTable(keyless, { key: false })
        const none = yield* write(table(keyless, Txn, { mode: "upsert", keys: ["id"] }), txns(3)).pipe(Effect.flip)
        assert.include(none.message, "it has no unique key")
      })
    )
  )

  it.effect(`${backend.name}: a missing table is a clear, non-retryable error`, () =>
    run(
      Effect.gen(function* () {
        const error = yield* write(table("no_such_table_here", Txn), txns(1)).pipe(Effect.flip)
        assert.isFalse(error.retryable)
        assert.include(error.message, "no_such_table_here")
        const read = yield* readAll(table("no_such_table_here", Txn)).pipe(Effect.flip)
        assert.strictEqual(read._tag, "ExtractError")
        assert.isFalse(read.retryable)
      })
    )
  )

  it.effect(`${backend.name}: create_if_missing creates the table from the record schema`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("created")
        yield* write(table(name, Txn, { createIfMissing: true, mode: "upsert", keys: ["id"] }), txns(4))
        yield* write(table(name, Txn, { createIfMissing: true, mode: "upsert", keys: ["id"] }), txns(4, 3))
        assert.deepStrictEqual(normalize((yield* readAll(table(name, Txn))).records), normalize(txns(6)))
      })
    )
  )

  it.effect(`${backend.name}: partitioned reads return exactly the rows of a plain read`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("parts")
        yield* backend.createTxnTable(name)
        yield* write(table(name, Txn), txns(60, -10), 50)
        const plain = normalize((yield* readAll(table(name, Txn))).records)
        const samples = fc.sample(
          fc.record({
            partitions: fc.integer({ min: 1, max: 9 }),
            lower: fc.option(fc.integer({ min: -40, max: 80 }), { nil: undefined }),
            width: fc.integer({ min: 0, max: 120 })
          }),
          { numRuns: 12, seed: 7 }
        )
        for (const s of samples) {
          const partitionBy = {
            column: "id",
            partitions: s.partitions,
            ...(s.lower === undefined ? {} : { lowerBound: s.lower, upperBound: s.lower + s.width })
          }
          const parted = yield* readAll(table(name, Txn, { partitionBy, batchSize: 8 }))
          assert.deepStrictEqual(normalize(parted.records), plain, JSON.stringify(partitionBy))
        }
        const byTime = yield* readAll(table(name, Txn, { partitionBy: { column: "created_at", partitions: 4 } }))
        assert.deepStrictEqual(normalize(byTime.records), plain)
      })
    )
  )

  it.effect(
    `${backend.name}: incremental reads take only new rows, hold back the lag, and save the mark after the run`,
    () =>
      run(
        Effect.gen(function* () {
          const name = unique("incr")
          yield* backend.createTxnTable(name)
          yield* write(table(name, Txn), txns(10))
          const state = Incremental.memory()
          const source = table(name, Txn, { incremental: { column: "id", lag: 2, state } })
          const first = yield* readAll(source)
          assert.deepStrictEqual(
            first.records.map((r) => r.id),
            [1, 2, 3, 4, 5, 6, 7, 8]
          )
          assert.deepStrictEqual(state.current(), { column: "id", kind: "number", value: 8 })
          yield* write(table(name, Txn), txns(5, 11))
          const second = yield* readAll(source)
          assert.deepStrictEqual(
            second.records.map((r) => r.id).sort((a, b) => a - b),
            [9, 10, 11, 12, 13]
          )
          const third = yield* readAll(source)
          assert.strictEqual(third.records.length, 0)
          // a failed run does not move the mark
          const before = state.current()
          yield* write(table(name, Txn), txns(5, 16))
          const failingSink = Sink.make<Txn, LoadError>({
            ...Sink.collect<Txn>("x"),
            open: Effect.succeed({
              write: () => Effect.void,
              commit: Effect.fail(new LoadError({ stage: "x", message: "no", retryable: false }))
            })
          })
          yield* Pipeline.from(source).pipe(Pipeline.to(failingSink), Pipeline.run, Effect.flip)
          assert.deepStrictEqual(state.current(), before)
          // timestamps with a duration lag, kept in a state file
          const fileState = File.cursorState(`.etl-state/${name}.json`)
          const byTime = table(name, Txn, { incremental: { column: "created_at", lag: "3 minutes", state: fileState } })
          const all = yield* readAll(byTime)
          assert.strictEqual(all.records.length, 17)
          const saved = yield* fileState.load
          assert.strictEqual(saved?.kind, "timestamp")
          assert.strictEqual(saved?.value, new Date(t0 + 17 * 60_000).toISOString())
        })
      )
  )

  it.effect(`${backend.name}: hostile table and column names are names, never SQL`, () =>
    run(
      Effect.gen(function* () {
        const client = yield* backend.client
        const hostile = `we"ird\`; DROP TABLE x; -- ${unique("t")}`
        const Hostile = Schema.Struct({ "id'; --": AvroBridge.long, 'v"`/*': Schema.String })
        yield* client.createTable(
          { name: hostile },
          [
            { name: "id'; --", type: "bigint", nullable: false },
            { name: 'v"`/*', type: client.dialect === "postgres" ? "text" : "VARCHAR(50)", nullable: true }
          ],
          ["id'; --"]
        )
        const rows = [
          { "id'; --": 1, 'v"`/*': "a'b\"c\\d\te\nf" },
          { "id'; --": 2, 'v"`/*': "ünïcødé 🎉" }
        ]
        yield* Pipeline.from(Source.fromIterable("rows", rows)).pipe(
          Pipeline.to(backend.table(hostile, Hostile, { mode: "upsert", keys: ["id'; --"] })),
          Pipeline.run
        )
        const { records } = yield* readAll(
          backend.table(hostile, Hostile, { partitionBy: { column: "id'; --", partitions: 2 } })
        )
        assert.deepStrictEqual(
          [...records].sort((a, b) => a["id'; --"] - b["id'; --"]),
          rows
        )
      })
    )
  )

  it.effect(`${backend.name}: rows the record schema rejects become dead letters`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("dead")
        yield* backend.createTxnTable(name)
        yield* write(table(name, Txn), txns(3))
        const Strict = Schema.Struct({
          id: AvroBridge.long,
          status: Schema.Literal("pending")
        })
        const { records, dead } = yield* readAll(table(name, Strict))
        assert.strictEqual(records.length, 0)
        assert.strictEqual(dead.length, 3)
        assert.strictEqual(dead[0]!.reason, "invalid-record")
        assert.include(dead[0]!.message, "status")
      })
    )
  )

  it.effect(`${backend.name}: a commit whose source positions another process stored further is refused`, () =>
    run(
      Effect.gen(function* () {
        const name = unique("fenced")
        const offsets = { name: unique("offsets") }
        yield* backend.createTxnTable(name)
        const client = yield* backend.client
        yield* client.createTable(offsets, SqlTable.offsetsColumns(client.dialect), offsetsKey)
        const info = (yield* client.table({ name }))!
        const commit = (rows: ReadonlyArray<Txn>, positions: ReadonlyArray<Omit<OffsetRow, "pipeline" | "target">>) =>
          Effect.scoped(
            Effect.gen(function* () {
              const loader = yield* client.load({
                table: { name },
                mode: "append",
                columns: info.columns.filter((c) => c.name === "id" || c.name === "user_id"),
                keys: [],
                transaction: "end",
                offsets
              })
              loader.positions!(positions.map((p) => ({ pipeline: "p", target: name, ...p })))
              yield* loader.write(rows.map((r) => ({ id: r.id, user_id: r.user_id })))
              return yield* loader.commit
            })
          )
        const count = Effect.map(rowsOf(backend.client, name), (rows) => rows.length)
        yield* commit(txns(3), [{ part: "t/0", from: "0", position: "3" }])
        // Rows 0..2 of t/0 are stored: a commit from 1 (a process that read them too) is rolled back whole.
        const moved = yield* Effect.flip(
          commit(txns(2, 10), [
            { part: "t/0", from: "1", position: "5" },
            { part: "t/1", from: "0", position: "4" }
          ])
        )
        assert.strictEqual((moved as { readonly reason: { readonly _tag: string } }).reason._tag, "PositionsMoved")
        assert.isTrue((moved as { readonly retryable: boolean }).retryable)
        assert.include((moved as { readonly message: string }).message, "t/0 from position 1")
        assert.strictEqual(yield* count, 3)
        // A commit that continues where the stored positions end goes through (a gap is a skipped control record).
        yield* commit(txns(2, 20), [
          { part: "t/0", from: "4", position: "6" },
          { part: "t/1", from: "0", position: "4" }
        ])
        assert.strictEqual(yield* count, 5)
        const stored = yield* rowsOf(backend.client, offsets.name)
        assert.deepStrictEqual(stored.map((r) => `${r.part}=${r.position}`).sort(), ["t/0=6", "t/1=4"])
        // Two processes that read a part nobody stored yet: the first commit wins, the second is refused.
        yield* commit(txns(1, 30), [{ part: "t/2", from: "0", position: "1" }])
        const second = yield* Effect.flip(commit(txns(1, 40), [{ part: "t/2", from: "0", position: "1" }]))
        assert.strictEqual((second as { readonly reason: { readonly _tag: string } }).reason._tag, "PositionsMoved")
        assert.strictEqual(yield* count, 6)
      })
    )
  )
}

/** Rows of a table as the client reads them (for assertions outside pipelines). */
export const rowsOf = <Id, E>(key: Context.Key<Id, SqlClient<E>>, name: string) =>
  Effect.gen(function* () {
    const client = yield* key
    const chunks = yield* Stream.runCollect(
      client.read({ relation: { _tag: "Table", ref: { name } }, batchSize: 1000 })
    )
    return chunks.flatMap((c): ReadonlyArray<Row> => c.rows)
  })
