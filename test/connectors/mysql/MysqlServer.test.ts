import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Mysql from "../../../src/connectors/mysql/Mysql.ts"
import { system } from "../../../src/connectors/mysql/MysqlClient.ts"
import * as NodeMysql from "../../../src/connectors/mysql/NodeMysql.ts"
import * as Identifier from "../../../src/connectors/sql/Identifier.ts"
import * as Batch from "../../../src/core/Batch.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import * as CountedSource from "../../support/CountedSource.ts"
import { type MysqlDatabase, MysqlTest } from "../../support/Databases.ts"

const AllTypes = Schema.Struct({
  id: Schema.Number,
  i1: Schema.Unknown,
  i2: Schema.Unknown,
  i4: Schema.Unknown,
  i8: Schema.Unknown,
  f4: Schema.Unknown,
  f8: Schema.Unknown,
  n: Schema.Unknown,
  vc: Schema.Unknown,
  t: Schema.Unknown,
  b: Schema.Unknown,
  dt: Schema.Unknown,
  ts: Schema.Unknown,
  d: Schema.Unknown,
  tm: Schema.Unknown,
  u: Schema.Unknown,
  j: Schema.Unknown,
  bl: Schema.Unknown
})

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)

const typeRows: ReadonlyArray<typeof AllTypes.Type> = [
  {
    id: 1,
    i1: -128,
    i2: -32768,
    i4: 2147483647,
    i8: Number.MAX_SAFE_INTEGER,
    f4: 1.5,
    f8: 1.7976931348623157e308,
    n: BigDecimal.fromStringUnsafe("1234567890123456789012345678.0123456789"),
    vc: "ünïcødé 🎉 'q' \"d\"",
    t: "tab\there, newline\nthere, back\\slash, \\N not null",
    b: true,
    dt: new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)),
    ts: new Date(Date.UTC(2038, 0, 19, 3, 14, 7, 123)),
    d: "9999-12-31",
    tm: "23:59:59.999999",
    u: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    j: { nested: { a: [1, 2.5, null, "ü"] }, 'k"ey': true },
    bl: allBytes
  },
  {
    id: 2,
    i1: 127,
    i2: 32767,
    i4: -2147483648,
    i8: -Number.MAX_SAFE_INTEGER,
    f4: -1.5,
    f8: -1.25,
    n: BigDecimal.fromStringUnsafe("-0.0000000001"),
    vc: "",
    t: "",
    b: false,
    dt: new Date(Date.UTC(1000, 0, 1)),
    ts: new Date(Date.UTC(1970, 0, 1, 0, 0, 1)),
    d: "1000-01-01",
    tm: "00:00:00.000000",
    u: "00000000-0000-0000-0000-000000000000",
    j: [],
    bl: new Uint8Array(0)
  },
  {
    id: 3,
    i1: null,
    i2: null,
    i4: null,
    i8: null,
    f4: null,
    f8: null,
    n: null,
    vc: null,
    t: null,
    b: null,
    dt: null,
    ts: null,
    d: null,
    tm: null,
    u: null,
    j: null,
    bl: null
  }
]

const comparable = (value: unknown): unknown => {
  if (BigDecimal.isBigDecimal(value)) return `decimal ${Identifier.plainDecimal(BigDecimal.normalize(value))}`
  if (value instanceof Uint8Array) return `bytes ${Array.from(value).join(",")}`
  if (value instanceof Date) return `date ${value.toISOString()}`
  if (Array.isArray(value)) return value.map(comparable)
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]))
  return value
}

const collect = <A, E, R>(source: Source.Source<A, E, R>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.run)
    return { records: out.collected().records, report }
  })

/** A source that emits `batches` batches of 50 rows, sleeping between them: slow enough to be interrupted. */
const slowSource = (batches: number, from: number) =>
  Source.make({
    name: "slow",
    type: "memory",
    description: "slow",
    bounded: true,
    batches: () =>
      Stream.fromIterable(Array.from({ length: batches }, (_, b) => b)).pipe(
        Stream.mapEffect((b) =>
          Effect.as(
            Effect.sleep("40 millis"),
            Batch.make(Array.from({ length: 50 }, (_, i) => ({ id: from + b * 50 + i, v: `new ${b}` })))
          )
        )
      )
  })

const Kv = Schema.Struct({ id: Schema.Number, v: Schema.String })

const countedSource = <S extends Schema.Top>(table: string, schema: S) =>
  CountedSource.countedSource(system, Mysql.client(), table, schema)

/** Waits until a backend runs a statement mentioning `fragment`, and returns its pid. */
const backendRunning = (db: MysqlDatabase, fragment: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const rows = yield* db.sql(
        "SELECT ID AS pid FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
        [`%${fragment}%`]
      )
      if (rows.length > 0) return rows[0]!.pid as number
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`no backend runs ${fragment}`))
  })

layer(MysqlTest.layer, { timeout: 60_000, excludeTestServices: true })("MySQL connector on the server", (it) => {
  it.effect("round-trips every mapped type, NULLs, extreme values and non-ASCII text", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql(`CREATE TABLE all_types (id INT PRIMARY KEY, i1 TINYINT, i2 SMALLINT, i4 INT, i8 BIGINT, f4 FLOAT,
        f8 DOUBLE, n DECIMAL(38,10), vc VARCHAR(50), t TEXT, b BOOLEAN, dt DATETIME(3), ts TIMESTAMP(3) NULL, d DATE,
        tm TIME(6), u UUID, j JSON, bl BLOB) DEFAULT CHARSET = utf8mb4`)
        const table = Mysql.table("all_types", AllTypes, { validate: false })
        const report = yield* Pipeline.from(Source.fromIterable("rows", typeRows)).pipe(
          Pipeline.to(table),
          Pipeline.run
        )
        assert.strictEqual(report.records.written, 3)
        const { records } = yield* collect(table)
        assert.deepStrictEqual([...records].sort((a, b) => a.id - b.id).map(comparable), typeRows.map(comparable))
        const stored = yield* db.sql(
          "SELECT CAST(n AS CHAR) AS n, CAST(ts AS CHAR) AS ts, HEX(bl) AS bl, t FROM all_types WHERE id = 1"
        )
        assert.strictEqual(stored[0]!.n, "1234567890123456789012345678.0123456789")
        assert.strictEqual(stored[0]!.ts, "2038-01-19 03:14:07.123")
        assert.strictEqual(
          stored[0]!.bl,
          Array.from(allBytes, (b) => b.toString(16).padStart(2, "0"))
            .join("")
            .toUpperCase()
        )
        assert.strictEqual(stored[0]!.t, typeRows[0]!.t)
      })
    )
  )

  it.effect("reads a table whose column types guarantee the record schema without validating rows", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql(`CREATE TABLE typed_txn (id BIGINT PRIMARY KEY, user_id VARCHAR(20) NOT NULL, qty INT NOT NULL,
        amount DECIMAL(12,2) NOT NULL, note TEXT, status ENUM('new','paid') NOT NULL, created_at DATETIME(3) NOT NULL)`)
        yield* db.sql(`INSERT INTO typed_txn VALUES (1, 'u1', -2147483648, 12.3, NULL, 'new', '2026-11-27 01:02:03.456'),
        (2, 'u2', 2147483647, -0.01, 'n', 'paid', '1970-01-01 00:00:00'), (3, 'u3', 0, 99.99, NULL, 'new', '2000-02-29 12:00:00')`)
        const Txn = Schema.Struct({
          id: AvroBridge.long,
          user_id: Schema.String,
          qty: AvroBridge.int,
          amount: AvroBridge.decimal({ precision: 12, scale: 2 }),
          note: Schema.NullOr(Schema.String),
          status: Schema.String,
          created_at: AvroBridge.timestampMillis
        })
        const { source, calls } = countedSource("typed_txn", Txn)
        const { records, report } = yield* collect(source)
        assert.strictEqual(calls(), 0)
        assert.strictEqual(report.records.rejected, 0)
        assert.deepStrictEqual([...records].sort((a, b) => a.id - b.id).map(comparable), [
          {
            id: 1,
            user_id: "u1",
            qty: -2147483648,
            amount: "decimal 12.3",
            note: null,
            status: "new",
            created_at: "date 2026-11-27T01:02:03.456Z"
          },
          {
            id: 2,
            user_id: "u2",
            qty: 2147483647,
            amount: "decimal -0.01",
            note: "n",
            status: "paid",
            created_at: "date 1970-01-01T00:00:00.000Z"
          },
          {
            id: 3,
            user_id: "u3",
            qty: 0,
            amount: "decimal 99.99",
            note: null,
            status: "new",
            created_at: "date 2000-02-29T12:00:00.000Z"
          }
        ])
      })
    )
  )

  it.effect(
    "still validates what the columns do not guarantee: an int unsigned for an int, a spatial or inet column for a string, NULLs",
    () =>
      withDb(
        Effect.gen(function* () {
          const db = yield* MysqlTest
          yield* db.sql(`CREATE TABLE loose_t (id BIGINT PRIMARY KEY, qty INT UNSIGNED NOT NULL, place POINT NOT NULL,
        addr INET6 NOT NULL, name VARCHAR(10))`)
          yield* db.sql(`INSERT INTO loose_t VALUES (1, 5, POINT(1, 2), '::1', 'ann'),
        (2, 4294967295, POINT(1, 2), '::1', 'bob'), (3, 7, POINT(1, 2), '::1', NULL)`)
          const Loose = Schema.Struct({
            id: AvroBridge.long,
            qty: AvroBridge.int,
            addr: Schema.String,
            name: Schema.String
          })
          const out = Sink.collect<typeof Loose.Type>("out")
          const dead = Sink.collect<DeadLetter>("dead")
          const report = yield* Pipeline.from(Mysql.table("loose_t", Loose, { batchSize: 2 })).pipe(
            Pipeline.to(out),
            Pipeline.withDeadLetters(dead),
            Pipeline.run
          )
          assert.deepStrictEqual(
            out.collected().records.map((r) => [r.id, r.qty, r.addr, r.name]),
            [[1, 5, "::1", "ann"]]
          )
          assert.strictEqual(report.records.rejected, 2)
          const letters = [...dead.collected().records].sort(
            (a, b) => (a.record as { id: number }).id - (b.record as { id: number }).id
          )
          assert.deepStrictEqual(
            letters.map((d) => [(d.record as { id: number }).id, d.reason]),
            [
              [2, "invalid-record"],
              [3, "invalid-record"]
            ]
          )
          // A spatial column read for a string field is checked too, and rejected: the driver reads it as an object (the
          // full validator runs on the rows the per-row check turned down: here every row).
          const Spatial = Schema.Struct({ id: AvroBridge.long, place: Schema.String })
          const spatial = countedSource("loose_t", Spatial)
          const read = yield* Pipeline.from(spatial.source).pipe(
            Pipeline.to(Sink.collect("out3")),
            Pipeline.withQuality({ dropRejected: true }),
            Pipeline.run
          )
          assert.strictEqual(spatial.calls(), 3)
          assert.strictEqual(read.records.rejected, 3)
        })
      )
  )

  it.effect("a bigint beyond 2^53 becomes a dead letter, never a rounded number", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql("CREATE TABLE big (id BIGINT PRIMARY KEY)")
        yield* db.sql("INSERT INTO big VALUES (1), (9007199254740993), (-9223372036854775808)")
        const out = Sink.collect<{ id: number }>("out")
        const dead = Sink.collect<DeadLetter>("dead")
        const report = yield* Pipeline.from(Mysql.table("big", Schema.Struct({ id: Schema.Number }))).pipe(
          Pipeline.to(out),
          Pipeline.withDeadLetters(dead),
          Pipeline.run
        )
        assert.deepStrictEqual(out.collected().records, [{ id: 1 }])
        assert.strictEqual(report.records.rejected, 2)
        assert.isTrue(dead.collected().records.some((d) => d.message.includes("9007199254740993 is beyond ±2^53-1")))
        const exact = yield* collect(
          Mysql.query("exact", "SELECT CAST(id AS DECIMAL(20,0)) AS id FROM big ORDER BY id")
        )
        assert.deepStrictEqual(
          exact.records.map((r) => Identifier.plainDecimal(r.id as BigDecimal.BigDecimal)),
          ["-9223372036854775808", "1", "9007199254740993"]
        )
      })
    )
  )

  it.effect("an overwrite whose connection is killed mid-load leaves the old table, which readers see throughout", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql("CREATE TABLE kill_me (id INT PRIMARY KEY, v VARCHAR(20))")
        yield* db.sql("INSERT INTO kill_me SELECT seq, 'old' FROM seq_1_to_100")
        const fiber = yield* Pipeline.from(slowSource(30, 1000)).pipe(
          Pipeline.to(Mysql.table("kill_me", Kv, { mode: "overwrite" })),
          Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
          Pipeline.run,
          Effect.flip,
          Effect.forkChild
        )
        const pid = yield* backendRunning(db, "kill_me__etl_")
        const during = yield* db.sql("SELECT count(*) AS n, min(v) AS v FROM kill_me")
        assert.deepStrictEqual(during[0], { n: "100", v: "old" })
        yield* db.sql(`KILL ${Number(pid)}`)
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "LoadError")
        assert.isTrue(error.retryable)
        const after = yield* db.sql("SELECT count(*) AS n, min(v) AS v FROM kill_me")
        assert.deepStrictEqual(after[0], { n: "100", v: "old" })
        const leftovers = yield* db.sql(
          "SELECT count(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'kill\\_me\\_\\_etl\\_%'"
        )
        assert.strictEqual(leftovers[0]!.n, "0")
      })
    )
  )

  it.effect("a connection dropped during an append is retried by the runtime, and every row lands exactly once", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql("CREATE TABLE retried (id INT PRIMARY KEY, v VARCHAR(20))")
        const fiber = yield* Pipeline.from(slowSource(20, 1)).pipe(
          Pipeline.to(Mysql.table("retried", Kv)),
          Pipeline.withRetry({ attempts: 3, initialDelay: "50 millis", factor: 1 }),
          Pipeline.run,
          Effect.forkChild
        )
        const pid = yield* backendRunning(db, "INTO TABLE `retried`")
        yield* Effect.sleep("100 millis")
        yield* db.sql(`KILL ${Number(pid)}`)
        const report = yield* Fiber.join(fiber)
        assert.strictEqual(report.attempts, 2)
        assert.strictEqual(report.records.written, 1000)
        const rows = yield* db.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM retried")
        assert.deepStrictEqual(rows[0], { n: "1000", d: "1000" })
      })
    )
  )

  it.effect("readers see the old rows or the new ones during an overwrite, never a mix or an empty table", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql("CREATE TABLE swapped (id INT PRIMARY KEY, v VARCHAR(20))")
        yield* db.sql("INSERT INTO swapped SELECT seq, 'old' FROM seq_1_to_100")
        const seen = new Set<string>()
        let done = false
        const reader = yield* Effect.forkChild(
          Effect.gen(function* () {
            while (!done) {
              const rows = yield* db.sql("SELECT count(*) AS n, GROUP_CONCAT(DISTINCT LEFT(v, 3)) AS v FROM swapped")
              seen.add(`${rows[0]!.n} ${rows[0]!.v}`)
              yield* Effect.sleep("5 millis")
            }
          })
        )
        yield* Pipeline.from(slowSource(10, 1)).pipe(
          Pipeline.to(Mysql.table("swapped", Kv, { mode: "overwrite" })),
          Pipeline.run
        )
        yield* Effect.sleep("50 millis")
        done = true
        yield* Fiber.join(reader)
        assert.deepStrictEqual(Array.from(seen).sort(), ["100 old", "500 new"])
      })
    )
  )

  it.effect("a whole-table source tells the table's row estimate; a filtered read does not", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* MysqlTest
        yield* db.sql("CREATE TABLE estimated (id INT PRIMARY KEY, v VARCHAR(20))")
        yield* db.sql("INSERT INTO estimated SELECT seq, 'v' FROM seq_1_to_1234")
        yield* db.sql("ANALYZE TABLE estimated")
        const size = yield* Mysql.table("estimated", Kv).size!
        assert.isTrue(size.estimated)
        // InnoDB samples pages for its estimate: near the count, not always the count.
        assert.isAbove(size.records!, 600)
        assert.isBelow(size.records!, 2500)
        assert.isUndefined(Mysql.table("estimated", Kv, { where: "id > 10" }).size)
      })
    )
  )
})

/** Provides the MySQL client of the test database. */
function withDb<A, E, R>(effect: Effect.Effect<A, E, R>) {
  return Effect.gen(function* () {
    const db = yield* MysqlTest
    return yield* Effect.provide(effect, NodeMysql.layer(db.options))
  })
}
