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
import * as ConfigError from "../../../src/core/ConfigError.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl, withClients as withSqlClients } from "../../support/Databases.ts"

const Txn = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 18, scale: 2 }),
  currency: Schema.String,
  status: Schema.String,
  created_at: AvroBridge.timestampMillis
})
type Txn = typeof Txn.Type

const rows = (n: number, from = 1, status?: string): ReadonlyArray<Txn> =>
  Array.from({ length: n }, (_, i) => ({
    id: from + i,
    user_id: `ü${(from + i) % 13}`,
    amount: BigDecimal.fromStringUnsafe(`${from + i}.${String((from + i) % 100).padStart(2, "0")}`),
    currency: "EUR",
    status: status ?? ((from + i) % 3 === 0 ? "pending" : "settled"),
    created_at: new Date(Date.UTC(2026, 10, 1) + (from + i) * 1000)
  }))

const view = (records: ReadonlyArray<Txn>) =>
  [...records]
    .sort((a, b) => a.id - b.id)
    .map((r) => ({
      ...r,
      amount: BigDecimal.format(BigDecimal.normalize(r.amount)),
      created_at: r.created_at.toISOString()
    }))

const PgSide = Postgres.client("pg_side")
const MySide = Mysql.client("my_side")
const PgOther = Postgres.client("pg_other")

const pgDDL = (name: string) =>
  `CREATE TABLE ${name} (id bigint PRIMARY KEY, user_id text NOT NULL, amount numeric(18,2) NOT NULL, currency text NOT NULL, status text NOT NULL, created_at timestamptz(3) NOT NULL)`
const myDDL = (name: string) =>
  `CREATE TABLE ${name} (id BIGINT PRIMARY KEY, user_id VARCHAR(20) NOT NULL, amount DECIMAL(18,2) NOT NULL, currency CHAR(3) NOT NULL, status VARCHAR(12) NOT NULL, created_at DATETIME(3) NOT NULL) DEFAULT CHARSET = utf8mb4`

const both = Layer.mergeAll(PgTest.layer, MysqlTest.layer)

const withClients = withSqlClients({ postgres: ["pg_side", "pg_other"], mysql: ["my_side"] })

const readAll = <E, R>(source: Source.Source<Txn, E, R>) =>
  Effect.map(
    Pipeline.from(source).pipe(
      Pipeline.to({
        name: "out",
        type: "memory",
        description: "out",
        mode: "append",
        durability: "on-commit",
        open: Effect.sync(() => {
          const got: Array<Txn> = []
          return {
            write: (records: ReadonlyArray<Txn>) => Effect.sync(() => void got.push(...records)),
            commit: Effect.sync(() => {
              collected.push(got)
              return { written: got.length }
            })
          }
        })
      }),
      Pipeline.run
    ),
    () => view(collected.pop() ?? [])
  )
const collected: Array<ReadonlyArray<Txn>> = []

layer(both, { timeout: 120_000, excludeTestServices: true })("PostgreSQL ⇄ MySQL", (it) => {
  for (const mode of ["append", "overwrite", "upsert"] as const) {
    it.effect(`PostgreSQL → MySQL, ${mode}`, () =>
      withClients(
        Effect.gen(function* () {
          const pg = yield* PgTest
          const my = yield* MysqlTest
          yield* pg.sql(pgDDL(`p2m_${mode}`))
          yield* my.sql(myDDL(`p2m_${mode}`))
          const source = Postgres.table(`p2m_${mode}`, Txn, { client: PgSide })
          const target = Mysql.table(`p2m_${mode}`, Txn, {
            client: MySide,
            mode,
            ...(mode === "upsert" ? { keys: ["id"] as const } : {})
          })
          yield* Pipeline.from(Source.fromIterable("seed", rows(300))).pipe(Pipeline.to(source), Pipeline.run)
          yield* Pipeline.from(Source.fromIterable("old", rows(50, 1000))).pipe(
            Pipeline.to(Mysql.table(`p2m_${mode}`, Txn, { client: MySide })),
            Pipeline.run
          )
          const report = yield* Pipeline.from(source).pipe(Pipeline.to(target), Pipeline.run)
          assert.strictEqual(report.records.written, 300)
          const expected = mode === "overwrite" ? rows(300) : [...rows(300), ...rows(50, 1000)]
          assert.deepStrictEqual(yield* readAll(Mysql.table(`p2m_${mode}`, Txn, { client: MySide })), view(expected))
          if (mode === "upsert") {
            yield* Pipeline.from(source).pipe(Pipeline.to(target), Pipeline.run)
            assert.deepStrictEqual(yield* readAll(Mysql.table(`p2m_${mode}`, Txn, { client: MySide })), view(expected))
          }
        })
      )
    )

    it.effect(`MySQL → PostgreSQL, ${mode}`, () =>
      withClients(
        Effect.gen(function* () {
          const pg = yield* PgTest
          const my = yield* MysqlTest
          yield* pg.sql(pgDDL(`m2p_${mode}`))
          yield* my.sql(myDDL(`m2p_${mode}`))
          const source = Mysql.table(`m2p_${mode}`, Txn, {
            client: MySide,
            partitionBy: { column: "id", partitions: 3 }
          })
          const target = Postgres.table(`m2p_${mode}`, Txn, {
            client: PgSide,
            mode,
            ...(mode === "upsert" ? { keys: ["id"] as const } : {})
          })
          yield* Pipeline.from(Source.fromIterable("seed", rows(300))).pipe(Pipeline.to(source), Pipeline.run)
          yield* Pipeline.from(Source.fromIterable("old", rows(50, 1000))).pipe(
            Pipeline.to(Postgres.table(`m2p_${mode}`, Txn, { client: PgSide })),
            Pipeline.run
          )
          const report = yield* Pipeline.from(source).pipe(Pipeline.to(target), Pipeline.run)
          assert.strictEqual(report.records.written, 300)
          const expected = mode === "overwrite" ? rows(300) : [...rows(300), ...rows(50, 1000)]
          assert.deepStrictEqual(yield* readAll(Postgres.table(`m2p_${mode}`, Txn, { client: PgSide })), view(expected))
          if (mode === "upsert") {
            yield* Pipeline.from(source).pipe(Pipeline.to(target), Pipeline.run)
            assert.deepStrictEqual(
              yield* readAll(Postgres.table(`m2p_${mode}`, Txn, { client: PgSide })),
              view(expected)
            )
          }
        })
      )
    )
  }

  it.effect("a partitioned read and its sink share one small pool: the slices leave connections to the sink", () =>
    Effect.gen(function* () {
      const pg = yield* PgTest
      yield* pg.sql("CREATE TABLE shared_src (id int PRIMARY KEY, v text)")
      yield* pg.sql("INSERT INTO shared_src SELECT i, 'v' || i FROM generate_series(1, 20000) i")
      yield* pg.sql("CREATE TABLE shared_dst (id int, v text)")
      const file = "shared-pool.json"
      const config = yield* Load.decode(file, {
        name: "shared-pool",
        connections: {
          db: { type: "postgres", url: pgUrl, schema: pg.schema, pool_size: 4, connect_timeout: "5 seconds" }
        },
        source: {
          type: "postgres",
          connection: "db",
          table: "shared_src",
          partition: { column: "id", partitions: 16 },
          batch_size: 500
        },
        sink: { type: "postgres", connection: "db", table: "shared_dst", mode: "append" },
        retry: { attempts: 1 }
      })
      const pipeline = yield* Build.build(config, {
        file,
        schema: (name, path) => Effect.fail(ConfigError.single(file, path, `no schema ${name}`))
      })
      const report = yield* Pipeline.run(pipeline).pipe(
        Effect.provide(Layer.merge(Build.connections(config), FileStore.layerMemory()))
      )
      assert.strictEqual(report.records.written, 20000)
      const stored = yield* pg.sql("SELECT count(*)::int AS n FROM shared_dst")
      assert.strictEqual(Number(stored[0]!.n), 20000)
    })
  )

  it.effect("PostgreSQL → PostgreSQL over two named connections", () =>
    withClients(
      Effect.gen(function* () {
        const pg = yield* PgTest
        yield* pg.sql(pgDDL("p2p_src"))
        yield* pg.sql(pgDDL("p2p_dst"))
        yield* Pipeline.from(Source.fromIterable("seed", rows(120))).pipe(
          Pipeline.to(Postgres.table("p2p_src", Txn, { client: PgSide })),
          Pipeline.run
        )
        const p = Pipeline.from(Postgres.table("p2p_src", Txn, { client: PgSide })).pipe(
          Pipeline.to(Postgres.table("p2p_dst", Txn, { client: PgOther, mode: "overwrite" }))
        )
        const report = yield* Pipeline.run(p)
        assert.strictEqual(report.records.written, 120)
        assert.deepStrictEqual(yield* readAll(Postgres.table("p2p_dst", Txn, { client: PgOther })), view(rows(120)))
      })
    )
  )

  it.effect("examples/postgres-to-mysql.json runs against both servers, and again with the same result", () =>
    Effect.gen(function* () {
      const pg = yield* PgTest
      const my = yield* MysqlTest
      yield* pg.sql(pgDDL("transactions"))
      yield* my.sql(myDDL("settled_transactions"))
      yield* withClients(
        Pipeline.from(Source.fromIterable("seed", rows(1000))).pipe(
          Pipeline.to(Postgres.table("transactions", Txn, { client: PgSide })),
          Pipeline.run
        )
      )
      const file = "examples/postgres-to-mysql.json"
      const env = {
        ETL_PG_URL: pgUrl,
        ETL_PG_SCHEMA: pg.schema,
        ETL_MYSQL_URL: mysqlUrl,
        ETL_MYSQL_DATABASE: my.database
      }
      const config = yield* Load.readText(file).pipe(
        Effect.flatMap((text) => Load.parseJson(file, text)),
        Effect.flatMap((json) => Load.resolveEnv(file, json, env)),
        Effect.flatMap((resolved) => Load.decode(file, resolved))
      )
      const pipeline = yield* Build.build(config, {
        file,
        schema: (name, path) => Effect.fail(ConfigError.single(file, path, `no schema ${name}`))
      })
      const runIt = Pipeline.run(pipeline).pipe(
        Effect.provide(Layer.merge(Build.connections(config), FileStore.layerMemory()))
      )
      const settled = rows(1000).filter((r) => r.status === "settled")
      const first = yield* runIt
      assert.strictEqual(first.records.read, 1000)
      assert.strictEqual(first.records.written, settled.length)
      assert.strictEqual(first.records.filtered, 1000 - settled.length)
      const second = yield* runIt
      assert.strictEqual(second.records.written, settled.length)
      const stored = yield* my.sql("SELECT COUNT(*) AS n, SUM(amount) AS total FROM settled_transactions")
      assert.strictEqual(Number(stored[0]!.n), settled.length)
      const total = settled.reduce((acc, r) => BigDecimal.sum(acc, r.amount), BigDecimal.fromBigInt(0n))
      assert.strictEqual(BigDecimal.format(BigDecimal.normalize(total)), String(stored[0]!.total).replace(/\.?0+$/, ""))

      // the typed example does the same
      yield* my.sql("DELETE FROM settled_transactions")
      Object.assign(process.env, env)
      const example = yield* Effect.promise(() => import("../../../examples/postgres-to-mysql.ts"))
      const report = yield* Pipeline.run(example.pipeline).pipe(Effect.provide(example.layer))
      assert.strictEqual(report.records.written, settled.length)
      const again = yield* my.sql("SELECT COUNT(*) AS n FROM settled_transactions")
      assert.strictEqual(Number(again[0]!.n), settled.length)
    })
  )

  it.effect("a config naming an undeclared or mismatched connection is rejected before running", () =>
    Effect.gen(function* () {
      const file = "p.json"
      const build = (value: unknown) =>
        Load.decode(file, value).pipe(
          Effect.flatMap((config) =>
            Build.build(config, { file, schema: (n, path) => Effect.fail(ConfigError.single(file, path, n)) })
          ),
          Effect.flip,
          Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
        )
      const base = {
        name: "t",
        connections: { pg: { type: "postgres", url: pgUrl }, my: { type: "mysql", url: mysqlUrl } },
        source: { type: "postgres", connection: "pg", table: "t" },
        sink: { type: "mysql", connection: "my", table: "t" }
      }
      assert.deepStrictEqual(yield* build({ ...base, source: { ...base.source, connection: "nope" } }), [
        '$.source.connection: Unknown connection "nope": declare it under "connections" (declared: pg, my)'
      ])
      assert.deepStrictEqual(yield* build({ ...base, sink: { ...base.sink, connection: "pg" } }), [
        '$.sink.connection: Connection "pg" is a PostgreSQL connection; a mysql sink needs a MySQL one'
      ])
      assert.deepStrictEqual(yield* build({ ...base, sink: { ...base.sink, table: "x".repeat(70) } }), [
        `$.sink.table: Invalid identifier: "${"x".repeat(70)}" is longer than 64 characters, the MySQL limit`
      ])
    })
  )
})
