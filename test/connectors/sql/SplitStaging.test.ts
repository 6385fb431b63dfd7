/**
 * Split runs whose parts stage their rows in the target's own database (`SqlClient.stage`): every part loads a staging
 * table next to the target, and the finish moves them all in with one load on the server. Against PostgreSQL and
 * MySQL: the result equals a one-process run for every write mode, nothing passes through the run's staging service,
 * a part read again replaces what it staged, a finish run again after its commit appends nothing twice, and the
 * staging tables are gone once the run has ended.
 */
import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Build from "../../../src/config/Build.ts"
import * as Load from "../../../src/config/Load.ts"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as Mysql from "../../../src/connectors/mysql/Mysql.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import * as SqlTable from "../../../src/connectors/sql/SqlTable.ts"
import * as ConfigError from "../../../src/core/ConfigError.ts"
import type * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as Split from "../../../src/runtime/Split.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl, withClients as withSqlClients } from "../../support/Databases.ts"
import { countingStaging } from "../../support/Staging.ts"

const Txn = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 18, scale: 2 }),
  status: Schema.String
})
type Txn = typeof Txn.Type

/** 400 records in 4 parts of 100; ids 1..300, then ids 1..100 again (a later part: an upsert keeps those). */
const records: ReadonlyArray<Txn> = Array.from({ length: 400 }, (_, i) => ({
  id: (i % 300) + 1,
  user_id: `ü${i % 13}`,
  amount: BigDecimal.fromStringUnsafe(`${i}.${String(i % 100).padStart(2, "0")}`),
  status: i >= 300 ? "late" : i % 3 === 0 ? "pending" : "settled"
}))

const PgSide = Postgres.client("pg_side")
const MySide = Mysql.client("my_side")

const pgDDL = (name: string) =>
  `CREATE TABLE ${name} (id bigint, user_id text NOT NULL, amount numeric(18,2) NOT NULL, status text NOT NULL, note text DEFAULT 'kept')`
const myDDL = (name: string) =>
  `CREATE TABLE ${name} (id BIGINT, user_id VARCHAR(20) NOT NULL, amount DECIMAL(18,2) NOT NULL, status VARCHAR(12) NOT NULL, note VARCHAR(10) DEFAULT 'kept') DEFAULT CHARSET = utf8mb4`

const withClients = withSqlClients({ postgres: ["pg_side"], mysql: ["my_side"] })

type System = "postgres" | "mysql"

const systems: ReadonlyArray<System> = ["postgres", "mysql"]

const tableOf = (
  system: System,
  name: string,
  mode: Sink.WriteMode
): Sink.Sink<Txn, unknown, Postgres.PostgresClient<"pg_side"> | Mysql.MysqlClient<"my_side">> => {
  const options = { mode, ...(mode === "upsert" ? { keys: ["id"] as const } : {}) }
  return system === "postgres"
    ? Postgres.table(name, Txn, { client: PgSide, ...options })
    : Mysql.table(name, Txn, { client: MySide, ...options })
}

const create = (system: System, name: string, mode: Sink.WriteMode) =>
  Effect.gen(function* () {
    const ddl = system === "postgres" ? pgDDL(name) : myDDL(name)
    const keyed = mode === "upsert" ? ddl.replace(/\(id (bigint|BIGINT)/, "(id $1 PRIMARY KEY") : ddl
    if (system === "postgres") yield* (yield* PgTest).sql(keyed)
    else yield* (yield* MysqlTest).sql(keyed)
  })

const sql = (system: System, text: string) =>
  Effect.gen(function* () {
    if (system === "postgres") return yield* (yield* PgTest).sql(text)
    return yield* (yield* MysqlTest).sql(text)
  })

/** The target's rows, sorted, as text (decimals normalised). */
const contents = (system: System, name: string) =>
  Effect.map(sql(system, `SELECT id, user_id, amount, status, note FROM ${name} ORDER BY id, status, amount`), (rows) =>
    rows.map((r) => [String(r.id), r.user_id, String(Number(r.amount)), r.status, r.note].join("|"))
  )

/** The split run's staging tables left in the test's schema or database. */
const leftovers = (system: System) =>
  Effect.gen(function* () {
    if (system === "postgres") {
      const pg = yield* PgTest
      const rows = yield* pg.sql(
        `SELECT tablename FROM pg_tables WHERE schemaname = '${pg.schema}' AND tablename LIKE '%\\_\\_etlp\\_%'`
      )
      return rows.map((r) => r.tablename)
    }
    const my = yield* MysqlTest
    const rows = yield* my.sql(
      `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = '${my.database}' AND table_name LIKE '%\\_\\_etlp\\_%'`
    )
    return rows.map((r) => String(r.name))
  })

const pipelineOf = (system: System, name: string, mode: Sink.WriteMode) =>
  Pipeline.from(Source.fromIterable("txns", records, { parts: 4, batchSize: 30 })).pipe(
    Pipeline.filter((t: Txn) => t.status !== "pending"),
    Pipeline.to(tableOf(system, name, mode)),
    Pipeline.withQuality({ allowEmptyOverwrite: true })
  )

layer(Layer.mergeAll(PgTest.layer, MysqlTest.layer), { timeout: 120_000, excludeTestServices: true })(
  "split runs staging in the target's database",
  (it) => {
    for (const system of systems)
      for (const mode of ["append", "overwrite", "upsert"] as const)
        it.effect(`${system} ${mode}: equals a one-process run, staged next to the target, cleared after`, () =>
          withClients(
            Effect.gen(function* () {
              const single = `single_${mode}`
              const split = `split_${mode}`
              yield* create(system, single, mode)
              yield* create(system, split, mode)
              // What was there before the run (an overwrite replaces it; the others keep it).
              for (const name of [single, split])
                yield* sql(
                  system,
                  `INSERT INTO ${name} (id, user_id, amount, status, note) VALUES (1000, 'x', 1.00, 'old', 'old')`
                )
              const one = yield* Pipeline.run(pipelineOf(system, single, mode))
              const p = pipelineOf(system, split, mode)
              assert.isTrue(Split.planOf(p).native)
              const staging = countingStaging()
              const { report, error } = yield* Split.runLocal(p, { runId: `run-${mode}`, concurrency: 3 }).pipe(
                Effect.provideService(Split.Staging, staging.shape)
              )
              assert.isUndefined(error)
              assert.strictEqual(staging.counted.records, 0)
              assert.deepStrictEqual(yield* contents(system, split), yield* contents(system, single))
              assert.strictEqual(report.records.written, one.records.written)
              assert.strictEqual(report.records.filtered, one.records.filtered)
              assert.isTrue(report.reconciliation.ok)
              assert.deepStrictEqual(yield* leftovers(system), [])
              if (mode === "upsert") {
                // The later part's rows of ids 1..100 won, as in one process (which reads the parts in order).
                const late = yield* sql(system, `SELECT count(*) AS n FROM ${split} WHERE status = 'late'`)
                assert.strictEqual(Number(late[0]!.n), 100)
              }
            })
          )
        )

    for (const system of systems)
      it.effect(
        `${system}: a config pipeline without a record schema stages the fields its rows have; an empty part stages nothing`,
        () =>
          Effect.gen(function* () {
            const schema = system === "postgres" ? (yield* PgTest).schema : (yield* MysqlTest).database
            yield* sql(system, "CREATE TABLE src (id bigint PRIMARY KEY, name varchar(20), qty int)")
            yield* sql(
              system,
              "CREATE TABLE dst_single (id bigint, name varchar(20), qty int, note varchar(10) DEFAULT 'kept')"
            )
            yield* sql(
              system,
              "CREATE TABLE dst_split (id bigint, name varchar(20), qty int, note varchar(10) DEFAULT 'kept')"
            )
            const values = Array.from({ length: 300 }, (_, i) => `(${i + 1}, 'n${i % 7}', ${i % 5})`).join(", ")
            yield* sql(system, `INSERT INTO src (id, name, qty) VALUES ${values}`)
            const single = yield* configPipeline(system, schema, "dst_single")
            const one = yield* Pipeline.run(single.pipeline).pipe(Effect.provide(single.layer))
            const split = yield* configPipeline(system, schema, "dst_split")
            assert.isTrue(Split.planOf(split.pipeline).native)
            const staging = countingStaging()
            const { report, error } = yield* Split.runLocal(split.pipeline, {
              runId: "config-run",
              concurrency: 2
            }).pipe(Effect.provideService(Split.Staging, staging.shape), Effect.provide(split.layer))
            assert.isUndefined(error)
            assert.strictEqual(staging.counted.records, 0)
            assert.strictEqual(report.records.written, one.records.written)
            assert.strictEqual(report.records.written, 240)
            assert.isTrue(report.reconciliation.ok)
            const rows = (table: string) =>
              Effect.map(sql(system, `SELECT id, name, qty, note FROM ${table} ORDER BY id`), (r) => JSON.stringify(r))
            assert.strictEqual(yield* rows("dst_split"), yield* rows("dst_single"))
            assert.deepStrictEqual(yield* leftovers(system), [])
          })
      )

    for (const system of systems)
      it.effect(`${system}: a part read again replaces what it staged; a finish run again appends nothing twice`, () =>
        withClients(
          Effect.gen(function* () {
            yield* create(system, "again", "append")
            const p = pipelineOf(system, "again", "append")
            const staging = countingStaging()
            const runId = "run-again"
            const effect = Effect.gen(function* () {
              const parts = yield* p.split!({ targetBytes: 1 })
              assert.strictEqual(parts.length, 4)
              // Part 0 read twice (a runner died after staging it): only its last read counts.
              yield* Split.readPart(p, { runId, part: parts[0]!, index: 0 })
              const results = yield* Effect.forEach(parts, (part, index) => Split.readPart(p, { runId, part, index }))
              assert.lengthOf(yield* leftovers(system), 4)
              const first = yield* Split.finish(p, { runId, parts, results })
              assert.isUndefined(first.error)
              // The finish ran again after its commit (its runner died before the cluster recorded that it ended).
              const second = yield* Split.finish(p, { runId, parts, results })
              assert.isUndefined(second.error)
              assert.strictEqual(second.report.records.written, first.report.records.written)
              assert.isTrue(second.report.reconciliation.ok)
              yield* Split.clear(p, runId, parts)
              return first
            })
            const first = yield* Effect.provideService(effect, Split.Staging, staging.shape)
            const expected = records.filter((t) => t.status !== "pending").length
            assert.strictEqual(first.report.records.written, expected)
            const stored = yield* sql(system, "SELECT count(*) AS n FROM again")
            assert.strictEqual(Number(stored[0]!.n), expected)
            assert.deepStrictEqual(yield* leftovers(system), [])
          })
        )
      )
  }
)

/** A config pipeline: the record fields are known only from the rows read (no record schema). */
const configPipeline = (system: System, schema: string, target: string) =>
  Effect.gen(function* () {
    const file = `split-staging-${system}.json`
    const url = system === "postgres" ? pgUrl : mysqlUrl
    const config = yield* Load.decode(file, {
      name: `split-staging-${system}`,
      connections: {
        db: { type: system, url, ...(system === "postgres" ? { schema } : { database: schema }) }
      },
      source: {
        type: system,
        connection: "db",
        table: "src",
        // ids 1..300 in 4 slices of 100: the last one is empty.
        partition: { column: "id", partitions: 4, lower_bound: 1, upper_bound: 401 }
      },
      transforms: [{ type: "filter", condition: "qty != 3" }],
      sink: { type: system, connection: "db", table: target, mode: "append" },
      retry: { attempts: 1 }
    })
    const pipeline = yield* Build.build(config, {
      file,
      schema: (name, path) => Effect.fail(ConfigError.single(file, path, `no schema ${name}`))
    })
    return { pipeline, layer: Layer.merge(Build.connections(config), FileStore.layerMemory()) }
  })

/** The staging table's name stays within what both servers allow, and differs per run and part. */
layer(Layer.empty)("staging table names", (it) => {
  it("are at most 63 bytes, in the target's schema, distinct per run and part", () => {
    const long = { schema: "s", name: "ä".repeat(40) }
    const a = SqlTable.partTable(long, "run", "part-1")
    const b = SqlTable.partTable(long, "run", "part-2")
    const c = SqlTable.partTable(long, "run-2", "part-1")
    assert.isAtMost(new TextEncoder().encode(a.name).length, 63)
    assert.strictEqual(a.schema, "s")
    assert.match(a.name, /^ä+__etlp_[0-9a-f]{16}$/)
    assert.notStrictEqual(a.name, b.name)
    assert.notStrictEqual(a.name, c.name)
    assert.strictEqual(SqlTable.partTable({ name: "orders" }, "run", "part-1").schema, undefined)
  })
})
