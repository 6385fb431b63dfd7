import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Batch from "../../src/core/Batch.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import { ExtractError, messageOf } from "../../src/core/Errors.ts"
import type * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Runner from "../../src/runtime/Runner.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"

type Rows = ReadonlyArray<Readonly<Record<string, unknown>>>

interface System {
  readonly type: "postgres" | "mysql"
  readonly connection: Effect.Effect<Record<string, unknown>, never, PgTest | MysqlTest>
  readonly sql: (text: string, values?: ReadonlyArray<unknown>) => Effect.Effect<Rows, never, PgTest | MysqlTest>
  /** Fills `table` with `n` rows (id, padding). */
  readonly fill: (table: string, n: number) => string
  /** What is killed mid-load: the source's reading backend, or the backend of a batch the sink is writing. */
  readonly victim: "reader" | "writer"
  /** Kills the backend running a statement on `table` now; `false` when none is running. */
  readonly kill: (table: string) => Effect.Effect<boolean, never, PgTest | MysqlTest>
}

const systems: ReadonlyArray<System> = [
  {
    type: "postgres",
    connection: Effect.map(PgTest, (db) => ({ type: "postgres", url: pgUrl, schema: db.schema })),
    sql: (text, values) => Effect.flatMap(PgTest, (db) => db.sql(text, values)),
    fill: (table, n) => `INSERT INTO ${table} SELECT g, repeat('x', 200) FROM generate_series(1, ${n}) g`,
    victim: "reader",
    kill: (table) =>
      Effect.flatMap(PgTest, (db) =>
        Effect.map(
          db.sql(
            `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
              WHERE state = 'active' AND query LIKE 'COPY (SELECT%' AND query LIKE $1 AND pid <> pg_backend_pid()`,
            [`%${table}%`]
          ),
          (rows) => rows.length > 0
        )
      )
  },
  {
    type: "mysql",
    connection: Effect.map(MysqlTest, (db) => ({ type: "mysql", url: mysqlUrl, database: db.database })),
    sql: (text, values) => Effect.flatMap(MysqlTest, (db) => db.sql(text, values)),
    fill: (table, n) => `INSERT INTO ${table} SELECT seq, REPEAT('x', 200) FROM seq_1_to_${n}`,
    // mysql2 takes a streamed result in faster than it hands it on, so the reader is done early: kill a writer.
    victim: "writer",
    kill: (table) =>
      Effect.gen(function* () {
        const db = yield* MysqlTest
        const rows = yield* db.sql(
          `SELECT ID AS id FROM information_schema.PROCESSLIST
            WHERE DB = DATABASE() AND COMMAND = 'Query' AND INFO LIKE 'LOAD DATA%' AND INFO LIKE ?
              AND ID <> CONNECTION_ID()`,
          [`%${table}%`]
        )
        for (const row of rows) yield* db.sql(`KILL ${Number(row.id)}`)
        return rows.length > 0
      })
  }
]

const file = "pipeline.json"

const configured = (system: System, config: Record<string, unknown>) =>
  Effect.gen(function* () {
    const value = { name: "retry", connections: { db: yield* system.connection }, ...config }
    const decoded = yield* Load.decode(file, value)
    const pipeline = yield* Build.build(decoded, {
      file,
      schema: (name, path) => Effect.fail(ConfigError.single(file, path, `no schema ${name}`))
    })
    return Pipeline.run(pipeline).pipe(Effect.provide(Layer.merge(Build.connections(decoded), FileStore.layerMemory())))
  })

/** A sink that makes every write durable at once, like `"transaction": "batch"`, keeping what it wrote. */
const perWrite = (mode: Sink.WriteMode) => {
  const written: Array<number> = []
  const sink: Sink.Sink<{ readonly id: number }> = {
    name: "durable",
    type: "memory",
    description: "durable per write",
    mode,
    durability: "per-write",
    open: Effect.sync(() => {
      let count = 0
      return {
        write: (records: ReadonlyArray<{ readonly id: number }>) =>
          Effect.sync(() => {
            count += records.length
            written.push(...records.map((r) => r.id))
          }),
        commit: Effect.sync(() => ({ written: count }))
      }
    })
  }
  return { sink, written }
}

/** A bounded source that emits `before` records, then fails with a retryable error on its first `failures` reads. */
const flaky = (before: number, failures: number) => {
  let reads = 0
  return Source.make({
    name: "flaky",
    type: "memory",
    description: "fails while read",
    bounded: true,
    batches: () =>
      Stream.suspend(() => {
        reads++
        const records = Array.from({ length: 10 }, (_, i) => ({ id: i + 1 }))
        const head = Stream.fromIterable(before === 0 ? [] : [Batch.make(records.slice(0, before))])
        const tail = Stream.fromIterable([Batch.make(records.slice(before))])
        return reads <= failures
          ? Stream.concat(
              head,
              Stream.fail(new ExtractError({ stage: "flaky", message: "connection lost", retryable: true }))
            )
          : Stream.concat(head, tail)
      })
  })
}

const retried = { attempts: 3, initialDelay: "1 millis", factor: 1 } as const

layer(Layer.mergeAll(PgTest.layer, MysqlTest.layer), { timeout: 120_000, excludeTestServices: true })(
  "a sink that commits per batch is never retried into duplicates",
  (it) => {
    for (const system of systems) {
      it.effect(
        `${system.type}: "transaction": "batch" with a ${system.victim}'s backend killed mid-load fails without retrying, every row once`,
        () =>
          Effect.gen(function* () {
            const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 8)
            const src = `retry_src_${suffix}`
            const dst = `retry_dst_${suffix}`
            const total = 200_000
            yield* system.sql(`CREATE TABLE ${src} (id INT, pad VARCHAR(200))`)
            yield* system.sql(system.fill(src, total))
            yield* system.sql(`CREATE TABLE ${dst} (id INT, pad VARCHAR(200))`)
            const run = yield* configured(system, {
              source: { type: system.type, connection: "db", table: src, batch_size: 1000 },
              sink: { type: system.type, connection: "db", table: dst, transaction: "batch" },
              retry: { attempts: 3, initial_delay: "10 millis" }
            })
            const fiber = yield* Effect.forkChild(Effect.result(run))
            // Two batches committed: the first write's success was seen by the run before the second began.
            for (;;) {
              const rows = yield* system.sql(`SELECT COUNT(*) AS n FROM ${dst}`)
              if (Number(rows[0]!.n) >= 2000) break
              yield* Effect.sleep("5 millis")
            }
            while (!(yield* system.kill(system.victim === "reader" ? src : dst))) yield* Effect.sleep("1 millis")
            const result = yield* Fiber.join(fiber)
            const rows = yield* system.sql(`SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM ${dst}`)
            const n = Number(rows[0]!.n)
            assert.strictEqual(n, Number(rows[0]!.d), `${n - Number(rows[0]!.d)} rows were written twice`)
            assert.strictEqual(result._tag, "Failure", "the run reported success")
            if (result._tag !== "Failure") return
            const error = result.failure
            assert.strictEqual(error._tag, system.victim === "reader" ? "ExtractError" : "LoadError")
            assert.isFalse(error.retryable)
            assert.match(
              messageOf(error),
              /not retried: \d+ records were already committed to sink batch by batch, and a new attempt would read the source from its start and write them again/
            )
            assert.isAtLeast(n, 2000)
            assert.isBelow(n, total)
          })
      )
    }

    it.effect("a failure before the first durable write is still retried, and so is an upsert after one", () =>
      Effect.gen(function* () {
        const early = perWrite("append")
        const first = yield* Runner.execute(
          Pipeline.from(flaky(0, 1)).pipe(Pipeline.to(early.sink), Pipeline.withRetry(retried))
        )
        assert.strictEqual(first.report.status, "succeeded")
        assert.strictEqual(first.report.attempts, 2)
        assert.deepStrictEqual(early.written, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

        const late = perWrite("append")
        const second = yield* Runner.execute(
          Pipeline.from(flaky(4, 1)).pipe(Pipeline.to(late.sink), Pipeline.withRetry(retried))
        )
        assert.strictEqual(second.report.status, "failed")
        assert.strictEqual(second.report.attempts, 1)
        assert.include(second.report.error?.message ?? "", "not retried: 4 records were already committed to durable")
        assert.deepStrictEqual(late.written, [1, 2, 3, 4])

        const upsert = perWrite("upsert")
        const third = yield* Runner.execute(
          Pipeline.from(flaky(4, 1)).pipe(Pipeline.to(upsert.sink), Pipeline.withRetry(retried))
        )
        assert.strictEqual(third.report.status, "succeeded")
        assert.strictEqual(third.report.attempts, 2)
        assert.deepStrictEqual(upsert.written, [1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      })
    )
  }
)
