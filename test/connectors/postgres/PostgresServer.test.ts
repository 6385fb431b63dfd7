import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as NodePostgres from "../../../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import { system } from "../../../src/connectors/postgres/PostgresClient.ts"
import * as Identifier from "../../../src/connectors/sql/Identifier.ts"
import type { Row } from "../../../src/connectors/sql/SqlClient.ts"
import * as SqlTable from "../../../src/connectors/sql/SqlTable.ts"
import * as Batch from "../../../src/core/Batch.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import * as CountedSource from "../../support/CountedSource.ts"
import { type PgDatabase, PgTest, pgUrl } from "../../support/Databases.ts"

const AllTypes = Schema.Struct({
  id: Schema.Number,
  i2: Schema.Unknown,
  i4: Schema.Unknown,
  i8: Schema.Unknown,
  f4: Schema.Unknown,
  f8: Schema.Unknown,
  n: Schema.Unknown,
  t: Schema.Unknown,
  vc: Schema.Unknown,
  b: Schema.Unknown,
  ts: Schema.Unknown,
  tstz: Schema.Unknown,
  d: Schema.Unknown,
  tm: Schema.Unknown,
  u: Schema.Unknown,
  j: Schema.Unknown,
  jb: Schema.Unknown,
  by: Schema.Unknown,
  ai: Schema.Unknown,
  at: Schema.Unknown,
  an: Schema.Unknown
})

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)

const typeRows: ReadonlyArray<typeof AllTypes.Type> = [
  {
    id: 1,
    i2: -32768,
    i4: 2147483647,
    i8: Number.MAX_SAFE_INTEGER,
    f4: 16777216,
    f8: 1.7976931348623157e308,
    n: BigDecimal.fromStringUnsafe("12345678901234567890123456.0123456789"),
    t: "tab\there, newline\nthere, back\\slash, quote ' \" and ünïcødé 🎉",
    vc: "short",
    b: true,
    ts: new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)),
    tstz: new Date(Date.UTC(2026, 10, 27, 1, 2, 3, 456)),
    d: "9999-12-31",
    tm: "23:59:59.999999",
    u: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    j: { nested: { a: [1, 2.5, null, "ü"] }, 'k"ey': true },
    jb: [{ x: 1 }, "s", 3],
    by: allBytes,
    ai: [1, null, -3],
    at: ["a,b", 'q"uote', "back\\slash", null, ""],
    an: [BigDecimal.fromStringUnsafe("1.5"), null]
  },
  {
    id: 2,
    i2: 32767,
    i4: -2147483648,
    i8: -Number.MAX_SAFE_INTEGER,
    f4: -1.5,
    f8: -0,
    n: BigDecimal.fromStringUnsafe("-0.0000000001"),
    t: "",
    vc: "é",
    b: false,
    ts: new Date(Date.UTC(1, 0, 1)),
    tstz: new Date(Date.UTC(1970, 0, 1)),
    d: "0001-01-01",
    tm: "00:00:00",
    u: "00000000-0000-0000-0000-000000000000",
    j: "just a string",
    jb: {},
    by: new Uint8Array(0),
    ai: [],
    at: [],
    an: []
  },
  {
    id: 3,
    i2: null,
    i4: null,
    i8: null,
    f4: null,
    f8: null,
    n: null,
    t: null,
    vc: null,
    b: null,
    ts: null,
    tstz: null,
    d: null,
    tm: null,
    u: null,
    j: null,
    jb: null,
    by: null,
    ai: null,
    at: null,
    an: null
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
    const report = yield* Pipeline.from(source).pipe(
      Pipeline.to(out),
      Pipeline.withQuality({ dropRejected: true }),
      Pipeline.run
    )
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
  CountedSource.countedSource(system, Postgres.client(), table, schema)

/** Waits until a backend runs a statement mentioning `fragment`, and returns its pid. */
const backendRunning = (db: PgDatabase, fragment: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const rows = yield* db.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'effect-etl' AND query LIKE $1 AND pid <> pg_backend_pid()",
        [`%${fragment}%`]
      )
      if (rows.length > 0) return rows[0]!.pid!
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`no backend runs ${fragment}`))
  })

layer(PgTest.layer, { timeout: 60_000, excludeTestServices: true })("PostgreSQL connector on the server", (it) => {
  it.effect("a connection's user and database override those of its URL", () =>
    Effect.gen(function* () {
      const real = new URL(pgUrl)
      const user = decodeURIComponent(real.username) || "root"
      const database = decodeURIComponent(real.pathname.slice(1)) || "test"
      const url = new URL(pgUrl)
      url.username = "no_such_role_x"
      url.pathname = "/no_such_db_x"
      const rows = yield* NodePostgres.execute(
        { url: Redacted.make(url.toString()), user, database },
        "SELECT current_user AS u, current_database() AS d"
      )
      assert.deepStrictEqual(rows, [{ u: user, d: database }])
    })
  )

  it.effect("round-trips every mapped type, NULLs, extreme values and non-ASCII text", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql(`CREATE TABLE all_types (id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, f4 real,
        f8 double precision, n numeric(38,10), t text, vc varchar(10), b boolean, ts timestamp(3), tstz timestamptz(3),
        d date, tm time, u uuid, j json, jb jsonb, by bytea, ai int[], at text[], an numeric[])`)
        const table = Postgres.table("all_types", AllTypes, { validate: false })
        const report = yield* Pipeline.from(Source.fromIterable("rows", typeRows)).pipe(
          Pipeline.to(table),
          Pipeline.run
        )
        assert.strictEqual(report.records.written, 3)
        const { records } = yield* collect(table)
        assert.deepStrictEqual([...records].sort((a, b) => a.id - b.id).map(comparable), typeRows.map(comparable))
        // and what the server itself stored, for a few of them
        const stored = yield* db.sql(
          "SELECT n::text, tstz::text, encode(by, 'hex') AS by, t FROM all_types WHERE id = 1"
        )
        assert.strictEqual(stored[0]!.n, "12345678901234567890123456.0123456789")
        assert.strictEqual(stored[0]!.tstz, "2026-11-27 01:02:03.456+00")
        assert.strictEqual(stored[0]!.by, Array.from(allBytes, (b) => b.toString(16).padStart(2, "0")).join(""))
        assert.strictEqual(stored[0]!.t, typeRows[0]!.t)
      })
    )
  )

  it.effect("reads a table whose column types guarantee the record schema without validating rows", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql(`CREATE TABLE typed_txn (id bigint PRIMARY KEY, user_id text NOT NULL,
        amount numeric(12,2) NOT NULL, note text, created_at timestamptz(3) NOT NULL)`)
        yield* db.sql(`INSERT INTO typed_txn VALUES (1, 'u1', 12.3, NULL, '2026-11-27 01:02:03.456+00'),
        (2, 'u2', -0.01, 'n', '1970-01-01 00:00:00+00'), (3, 'u3', 99.99, NULL, '2000-02-29 12:00:00+00')`)
        const Txn = Schema.Struct({
          id: AvroBridge.long,
          user_id: Schema.String,
          amount: AvroBridge.decimal({ precision: 12, scale: 2 }),
          note: Schema.NullOr(Schema.String),
          created_at: AvroBridge.timestampMillis
        })
        const { source, calls } = countedSource("typed_txn", Txn)
        const { records, report } = yield* collect(source)
        assert.strictEqual(calls(), 0)
        assert.strictEqual(report.records.rejected, 0)
        assert.deepStrictEqual([...records].sort((a, b) => a.id - b.id).map(comparable), [
          { id: 1, user_id: "u1", amount: "decimal 12.3", note: null, created_at: "date 2026-11-27T01:02:03.456Z" },
          { id: 2, user_id: "u2", amount: "decimal -0.01", note: "n", created_at: "date 1970-01-01T00:00:00.000Z" },
          { id: 3, user_id: "u3", amount: "decimal 99.99", note: null, created_at: "date 2000-02-29T12:00:00.000Z" }
        ])
        // A NaN numeric and an infinite timestamp are valid column values the schema rejects: only they are validated.
        yield* db.sql(`INSERT INTO typed_txn VALUES (4, 'u4', 'NaN', NULL, '2026-01-01 00:00:00+00'),
        (5, 'u5', 1, NULL, 'infinity')`)
        const again = countedSource("typed_txn", Txn)
        const dead = Sink.collect<DeadLetter>("dead")
        const out = Sink.collect<typeof Txn.Type>("out")
        yield* Pipeline.from(again.source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
        assert.strictEqual(again.calls(), 2)
        assert.deepStrictEqual(
          out
            .collected()
            .records.map((r) => r.id)
            .sort(),
          [1, 2, 3]
        )
        assert.deepStrictEqual(
          dead
            .collected()
            .records.map((d) => [(d.record as { id: number }).id, d.reason])
            .sort(),
          [
            [4, "invalid-record"],
            [5, "invalid-record"]
          ]
        )
      })
    )
  )

  it.effect("still rejects rows whose columns do not guarantee a field: enums and uuids in text, NULLs", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql(
          "CREATE TABLE loose_t (id bigint PRIMARY KEY, status text NOT NULL, ref text NOT NULL, name text)"
        )
        yield* db.sql(`INSERT INTO loose_t VALUES (1, 'paid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ann'),
        (2, 'lost', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'bob'), (3, 'new', 'not-a-uuid', 'cy'),
        (4, 'new', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL)`)
        const Loose = Schema.Struct({
          id: AvroBridge.long,
          status: Schema.Literals(["new", "paid"]),
          ref: AvroBridge.uuid,
          name: Schema.String
        })
        const out = Sink.collect<typeof Loose.Type>("out")
        const dead = Sink.collect<DeadLetter>("dead")
        const report = yield* Pipeline.from(Postgres.table("loose_t", Loose, { batchSize: 2 })).pipe(
          Pipeline.to(out),
          Pipeline.withDeadLetters(dead),
          Pipeline.run
        )
        assert.deepStrictEqual(
          out.collected().records.map((r) => r.id),
          [1]
        )
        assert.strictEqual(report.records.rejected, 3)
        const validate = SqlTable.typeValidator(Loose)
        const letters = [...dead.collected().records].sort(
          (a, b) => (a.record as { id: number }).id - (b.record as { id: number }).id
        )
        assert.deepStrictEqual(
          letters.map((d) => [(d.record as { id: number }).id, d.reason]),
          [
            [2, "invalid-record"],
            [3, "invalid-record"],
            [4, "invalid-record"]
          ]
        )
        for (const d of letters) {
          const expected = validate(d.record as Row)
          assert.isFalse(expected.ok)
          if (!expected.ok) assert.strictEqual(d.message, expected.message)
        }
        const counted = countedSource("loose_t", Loose)
        yield* collect(counted.source)
        assert.strictEqual(counted.calls(), 3)
      })
    )
  )

  it.effect("overwrite keeps a serial column's sequence, indexes and defaults", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE serial_t (id serial PRIMARY KEY, v text NOT NULL DEFAULT 'd', UNIQUE (v))")
        yield* db.sql("INSERT INTO serial_t (v) VALUES ('a'), ('b')")
        const Kv = Schema.Struct({ id: Schema.Number, v: Schema.String })
        for (let round = 0; round < 2; round++)
          yield* Pipeline.from(Source.fromIterable("rows", [{ id: 10, v: "x" }])).pipe(
            Pipeline.to(Postgres.table("serial_t", Kv, { mode: "overwrite" })),
            Pipeline.run
          )
        yield* db.sql("INSERT INTO serial_t (v) VALUES ('y')")
        const rows = yield* db.sql("SELECT id, v FROM serial_t ORDER BY v")
        assert.deepStrictEqual(rows, [
          { id: "10", v: "x" },
          { id: "3", v: "y" }
        ])
        const indexes = yield* db.sql("SELECT count(*) AS n FROM pg_indexes WHERE tablename = 'serial_t'")
        assert.strictEqual(indexes[0]!.n, "2")
      })
    )
  )

  it.effect("a bigint beyond 2^53 becomes a dead letter, never a rounded number", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE big (id bigint PRIMARY KEY)")
        yield* db.sql("INSERT INTO big VALUES (1), (9007199254740993), (-9223372036854775808)")
        const out = Sink.collect<{ id: number }>("out")
        const dead = Sink.collect<DeadLetter>("dead")
        const report = yield* Pipeline.from(Postgres.table("big", Schema.Struct({ id: Schema.Number }))).pipe(
          Pipeline.to(out),
          Pipeline.withDeadLetters(dead),
          Pipeline.run
        )
        assert.deepStrictEqual(out.collected().records, [{ id: 1 }])
        assert.strictEqual(report.records.rejected, 2)
        assert.isTrue(dead.collected().records.some((d) => d.message.includes("9007199254740993 is beyond ±2^53-1")))
        const exact = yield* collect(Postgres.query("exact", "SELECT id::numeric AS id FROM big ORDER BY id"))
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
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE kill_me (id int PRIMARY KEY, v text)")
        yield* db.sql("INSERT INTO kill_me SELECT i, 'old' FROM generate_series(1, 100) i")
        const fiber = yield* Pipeline.from(slowSource(30, 1000)).pipe(
          Pipeline.to(Postgres.table("kill_me", Kv, { mode: "overwrite" })),
          Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
          Pipeline.run,
          Effect.flip,
          Effect.forkChild
        )
        const pid = yield* backendRunning(db, "kill_me__etl_")
        const during = yield* db.sql("SELECT count(*) AS n, min(v) AS v FROM kill_me")
        assert.deepStrictEqual(during[0], { n: "100", v: "old" })
        yield* db.sql("SELECT pg_terminate_backend($1)", [pid])
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "LoadError")
        assert.isTrue(error.retryable)
        const after = yield* db.sql("SELECT count(*) AS n, min(v) AS v FROM kill_me")
        assert.deepStrictEqual(after[0], { n: "100", v: "old" })
        const leftovers = yield* db.sql("SELECT count(*) AS n FROM pg_tables WHERE tablename LIKE 'kill_me__etl_%'")
        assert.strictEqual(leftovers[0]!.n, "0")
      })
    )
  )

  it.effect("a connection dropped during an append is retried by the runtime, and every row lands exactly once", () =>
    withDb(
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE retried (id int PRIMARY KEY, v text)")
        const fiber = yield* Pipeline.from(slowSource(20, 1)).pipe(
          Pipeline.to(Postgres.table("retried", Kv)),
          Pipeline.withRetry({ attempts: 3, initialDelay: "50 millis", factor: 1 }),
          Pipeline.run,
          Effect.forkChild
        )
        const pid = yield* backendRunning(db, 'COPY "retried"')
        yield* Effect.sleep("100 millis")
        yield* db.sql("SELECT pg_terminate_backend($1)", [pid])
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
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE swapped (id int PRIMARY KEY, v text)")
        yield* db.sql("INSERT INTO swapped SELECT i, 'old' FROM generate_series(1, 100) i")
        const seen = new Set<string>()
        let done = false
        const reader = yield* Effect.forkChild(
          Effect.gen(function* () {
            while (!done) {
              const rows = yield* db.sql("SELECT count(*) AS n, string_agg(DISTINCT left(v, 3), ',') AS v FROM swapped")
              seen.add(`${rows[0]!.n} ${rows[0]!.v}`)
              yield* Effect.sleep("5 millis")
            }
          })
        )
        yield* Pipeline.from(slowSource(10, 1)).pipe(
          Pipeline.to(Postgres.table("swapped", Kv, { mode: "overwrite" })),
          Pipeline.run
        )
        yield* Effect.sleep("50 millis")
        done = true
        yield* Fiber.join(reader)
        assert.deepStrictEqual(Array.from(seen).sort(), ["100 old", "500 new"])
      })
    )
  )

  it.effect(
    "a whole-table source tells the table's row estimate once the table is analyzed; a filtered read does not",
    () =>
      withDb(
        Effect.gen(function* () {
          const db = yield* PgTest
          yield* db.sql("CREATE TABLE estimated (id int PRIMARY KEY, v text)")
          const table = Postgres.table("estimated", Kv)
          assert.deepStrictEqual(yield* table.size!, {})
          yield* db.sql("INSERT INTO estimated SELECT i, 'v' FROM generate_series(1, 1234) i")
          yield* db.sql("ANALYZE estimated")
          assert.deepStrictEqual(yield* table.size!, { records: 1234, estimated: true })
          assert.isUndefined(Postgres.table("estimated", Kv, { where: "id > 10" }).size)
        })
      )
  )
})

/** Provides the PostgreSQL client of the test schema. */
function withDb<A, E, R>(effect: Effect.Effect<A, E, R>) {
  return Effect.gen(function* () {
    const db = yield* PgTest
    return yield* Effect.provide(effect, NodePostgres.layer(db.options))
  })
}
