import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as Load from "../../../src/config/Load.ts"
import * as NodeMysql from "../../../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../../../src/connectors/postgres/NodePostgres.ts"
import * as Identifier from "../../../src/connectors/sql/Identifier.ts"
import * as SqlConfig from "../../../src/connectors/sql/SqlConfig.ts"
import { scrub } from "../../../src/connectors/sql/SqlError.ts"
import { inRange } from "../../../src/connectors/sql/SqlMemory.ts"
import { planPartitions } from "../../../src/connectors/sql/SqlTable.ts"
import * as SqlTypes from "../../../src/connectors/sql/SqlTypes.ts"

describe("identifiers", () => {
  it("quotes names per dialect, doubling the quote character", () => {
    assert.strictEqual(Identifier.quote("postgres", 'we"ird; --'), '"we""ird; --"')
    assert.strictEqual(Identifier.quote("mysql", "we`ird; /*"), "`we``ird; /*`")
    assert.strictEqual(Identifier.quoteTable("postgres", { schema: "a b", name: "c" }), '"a b"."c"')
  })

  it("rejects what no server can store, with a reason", () => {
    assert.strictEqual(Identifier.problem("postgres", ""), "an identifier cannot be empty")
    assert.strictEqual(Identifier.problem("mysql", "a\u0000b"), "an identifier cannot contain a NUL character")
    assert.include(Identifier.problem("postgres", "é".repeat(32))!, "longer than 63 bytes")
    assert.include(Identifier.problem("mysql", "x".repeat(65))!, "longer than 64 characters")
    assert.include(Identifier.problem("mysql", "trailing ")!, "ends with a space")
    assert.isUndefined(Identifier.problem("postgres", "drop table x; --"))
  })

  it("renders literals of values it produced, and refuses the rest", () => {
    assert.strictEqual(Identifier.literal("postgres", "it's"), "'it''s'")
    assert.strictEqual(Identifier.literal("postgres", 12.5), "12.5")
    assert.strictEqual(Identifier.literal("postgres", new Date(0)), "'1970-01-01T00:00:00.000Z'::timestamptz")
    assert.strictEqual(
      Identifier.literal("postgres", BigDecimal.fromStringUnsafe("1e30")),
      "1000000000000000000000000000000"
    )
    assert.isUndefined(Identifier.literal("postgres", Number.NaN))
    assert.isUndefined(Identifier.literal("postgres", "a\u0000"))
    assert.isUndefined(Identifier.literal("postgres", { a: 1 }))
  })

  it("formats decimals without exponents", () => {
    for (const [text, plain] of [
      ["0.00012", "0.00012"],
      ["-12.30", "-12.30"],
      ["1e3", "1000"],
      ["0", "0"],
      ["-0.5", "-0.5"]
    ] as const)
      assert.strictEqual(Identifier.plainDecimal(BigDecimal.fromStringUnsafe(text)), plain)
  })
})

describe("partition planning", () => {
  const count = (values: ReadonlyArray<unknown>, ranges: ReturnType<typeof planPartitions>) =>
    values.map((v) => ranges.filter((r) => inRange({ c: v }, r)).length)

  it("puts every value, NULL included, in exactly one partition, whatever the bounds", () =>
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constant(null)), { maxLength: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: -2000, max: 2000 }),
        fc.integer({ min: 0, max: 3000 }),
        (values, partitions, lower, width) => {
          const ranges = planPartitions("c", "bigint", lower, lower + width, partitions)
          assert.isAtMost(ranges.length, partitions)
          assert.isTrue(count(values, ranges).every((n) => n === 1))
        }
      ),
      { numRuns: 300 }
    ))

  it("splits timestamps, dates and fractional numbers too", () => {
    const times = Array.from({ length: 30 }, (_, i) => new Date(Date.UTC(2026, 0, 1) + i * 3_600_000))
    const byTime = planPartitions("c", "timestamptz", times[0], times[29], 4)
    assert.strictEqual(byTime.length, 4)
    assert.isTrue(count(times, byTime).every((n) => n === 1))
    const dates = ["2026-01-01", "2026-01-05", "2026-02-01", "2026-03-31"]
    const byDate = planPartitions("c", "date", dates[0], dates[3], 3)
    assert.isTrue(count(dates, byDate).every((n) => n === 1))
    const floats = [0.1, 0.15, 0.2, 0.9]
    assert.isTrue(count(floats, planPartitions("c", "float", 0.1, 0.9, 8)).every((n) => n === 1))
    assert.strictEqual(planPartitions("c", "bigint", 5, 5, 4).length, 1)
    assert.strictEqual(planPartitions("c", "bigint", 0, 2, 10).length, 3)
  })
})

describe("SQL type mapping", () => {
  it("parses timestamps exactly to the millisecond, with or without an offset", () => {
    assert.strictEqual(
      SqlTypes.parseTimestamp("2024-01-02 03:04:05.6789+00")?.toISOString(),
      "2024-01-02T03:04:05.678Z"
    )
    assert.strictEqual(SqlTypes.parseTimestamp("2024-01-02 03:04:05+05:30")?.toISOString(), "2024-01-01T21:34:05.000Z")
    assert.strictEqual(SqlTypes.parseTimestamp("0044-03-15 00:00:00")?.toISOString(), "0044-03-15T00:00:00.000Z")
    assert.strictEqual(SqlTypes.parseTimestamp("2024-01-02 03:04:05.5-08")?.toISOString(), "2024-01-02T11:04:05.500Z")
    assert.isUndefined(SqlTypes.parseTimestamp("infinity"))
    // PostgreSQL's own text of years past 9999 and before 1 AD (44 BC is the year -43).
    assert.strictEqual(
      SqlTypes.parseTimestamp("49991-02-21 05:39:21.394+00")?.toISOString(),
      "+049991-02-21T05:39:21.394Z"
    )
    assert.strictEqual(
      SqlTypes.parseTimestamp("0044-03-15 12:00:00+00 BC")?.toISOString(),
      "-000043-03-15T12:00:00.000Z"
    )
    assert.strictEqual(SqlTypes.parseTimestamp("0001-01-01 00:00:00+00 BC")?.toISOString(), "0000-01-01T00:00:00.000Z")
  })

  it("parses decimals exactly, and integers beyond 2^53 as bigints for rejection", () => {
    const d = SqlTypes.parseDecimal("-12345678901234567890.123456789")!
    assert.strictEqual(Identifier.plainDecimal(d), "-12345678901234567890.123456789")
    assert.strictEqual(Identifier.plainDecimal(SqlTypes.parseDecimal("0.10")!), "0.10")
    assert.isUndefined(SqlTypes.parseDecimal("NaN"))
    assert.strictEqual(SqlTypes.parseBigint("9007199254740991"), 9007199254740991)
    assert.strictEqual(SqlTypes.parseBigint("-9007199254740993"), -9007199254740993n)
    assert.include(SqlTypes.unsafeIntegerMessage("id", 9007199254740993n), "cannot be a number without losing digits")
  })

  it("encodes rows as tab-separated text with escapes and \\N for NULL", () => {
    const encode = SqlTypes.makeRowEncoder("postgres", [
      { name: "t", kind: "text", dbType: "text" },
      { name: "b", kind: "boolean", dbType: "bool" },
      { name: "x", kind: "bytes", dbType: "bytea" },
      { name: "a", kind: "array", element: "text", dbType: "text[]" },
      { name: "d", kind: "decimal", dbType: "numeric" }
    ])
    assert.strictEqual(
      encode([
        {
          t: "a\tb\nc\\d",
          b: true,
          x: new Uint8Array([0, 255]),
          a: ["x,y", 'q"', null],
          d: BigDecimal.fromStringUnsafe("1e2")
        },
        { t: null, b: false, x: null, a: [], d: null }
      ]),
      'a\\tb\\nc\\\\d\tt\t\\\\x00ff\t{"x,y","q\\\\"",NULL}\t100\n\\N\tf\t\\N\t{}\t\\N\n'
    )
    const mysql = SqlTypes.makeRowEncoder("mysql", [
      { name: "b", kind: "boolean", dbType: "tinyint(1)" },
      { name: "ts", kind: "timestamp", dbType: "datetime(3)" },
      { name: "x", kind: "bytes", dbType: "blob" }
    ])
    assert.strictEqual(
      mysql([{ b: true, ts: new Date(0), x: new Uint8Array([1]) }]),
      "1\t1970-01-01 00:00:00.000\t01\n"
    )
  })

  it("maps Avro types to SQL types for create-table", () => {
    const avro = {
      type: "record",
      name: "T",
      fields: [
        { name: "id", type: "long" },
        { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 } },
        { name: "at", type: ["null", { type: "long", logicalType: "timestamp-millis" }] },
        { name: "tags", type: { type: "array", items: "string" } }
      ]
    }
    assert.deepStrictEqual(SqlTypes.columnsOfAvro("postgres", avro), [
      { name: "id", type: "bigint", nullable: false },
      { name: "amount", type: "numeric(18,2)", nullable: false },
      { name: "at", type: "timestamptz(3)", nullable: true },
      { name: "tags", type: "text[]", nullable: false }
    ])
    assert.deepStrictEqual(SqlTypes.columnsOfAvro("mysql", avro), [
      { name: "id", type: "BIGINT", nullable: false },
      { name: "amount", type: "DECIMAL(18,2)", nullable: false },
      { name: "at", type: "DATETIME(3)", nullable: true },
      { name: "tags", type: "JSON", nullable: false }
    ])
    assert.include(
      SqlTypes.columnsOfAvro("postgres", {
        type: "record",
        name: "X",
        fields: [{ name: "u", type: ["int", "string"] }]
      }),
      "field u"
    )
  })
})

describe("PostgreSQL COPY text", () => {
  it("parses arrays, escapes, and lines split across buffers (even inside a UTF-8 character)", () => {
    assert.deepStrictEqual(
      NodePostgres.parseArray('{1,NULL,"a,b","c\\"d"}', (t) => t),
      ["1", null, "a,b", 'c"d']
    )
    assert.deepStrictEqual(NodePostgres.parseArray("{{1,2},{3,4}}", Number), [
      [1, 2],
      [3, 4]
    ])
    assert.deepStrictEqual(NodePostgres.parseArray("{}", Number), [])
    assert.strictEqual(NodePostgres.unescapeCopy("a\\tb\\\\c\\nd\\101"), "a\tb\\c\ndA")
    const parser = NodePostgres.makeCopyParser([
      { name: "id", kind: "bigint", dbType: "int8" },
      { name: "t", kind: "text", dbType: "text" }
    ])
    const bytes = Buffer.from("1\tünï\\tcødé\n9007199254740993\tx\n2\t\\N\n")
    const rows: Array<Record<string, unknown>> = []
    const rejected: Array<{ row: unknown; message: string }> = []
    for (let i = 0; i < bytes.length; i += 3) parser.push(bytes.subarray(i, i + 3), rows, rejected)
    assert.deepStrictEqual(rows, [
      { id: 1, t: "ünï\tcødé" },
      { id: 2, t: null }
    ])
    assert.strictEqual(rejected.length, 1)
    assert.include(rejected[0]!.message, "9007199254740993 is beyond ±2^53-1")
  })

  it("knows the kinds of type OIDs", () => {
    assert.deepStrictEqual(NodePostgres.kindOfOid(1700), { kind: "decimal" })
    assert.deepStrictEqual(NodePostgres.kindOfOid(1016), { kind: "array", element: "bigint" })
    assert.deepStrictEqual(NodePostgres.kindOfOid(99999), { kind: "unknown" })
  })
})

describe("error classification", () => {
  it("maps SQLSTATEs and socket errors to PostgreSQL reasons", () => {
    const pg = (code: string) => NodePostgres.classifyError({ code, message: "x" })
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      ["40P01", "Deadlock", true],
      ["40001", "SerializationFailure", true],
      ["53300", "TooManyConnections", true],
      ["57P01", "ConnectionLost", true],
      ["08006", "ConnectionLost", true],
      ["57014", "Timeout", true],
      ["55P03", "LockTimeout", true],
      ["ECONNRESET", "ConnectionLost", true],
      ["ECONNREFUSED", "ConnectionRefused", true],
      ["28P01", "AuthenticationFailed", false],
      ["42501", "PermissionDenied", false],
      ["23505", "UniqueViolation", false],
      ["23502", "ConstraintViolation", false],
      ["42601", "SyntaxError", false],
      ["42P01", "UndefinedTable", false],
      ["42703", "UndefinedColumn", false],
      ["22003", "InvalidData", false],
      ["XX000", "Unknown", false]
    ]
    for (const [code, tag, retryable] of cases) {
      assert.strictEqual(pg(code)._tag, tag, code)
      assert.strictEqual(pg(code).retryable, retryable, code)
    }
    assert.strictEqual(
      NodePostgres.classifyError(new Error("Connection terminated unexpectedly"))._tag,
      "ConnectionLost"
    )
    assert.strictEqual(NodePostgres.classifyError("weird")._tag, "Unknown")
  })

  it("maps MySQL errnos and socket errors to MySQL reasons", () => {
    const my = (errno: number) => NodeMysql.classifyError({ errno, code: "X", message: "x" })
    const cases: ReadonlyArray<readonly [number, string, boolean]> = [
      [1213, "Deadlock", true],
      [1205, "LockTimeout", true],
      [1040, "TooManyConnections", true],
      [2013, "ConnectionLost", true],
      [1927, "ConnectionLost", true],
      [1969, "Timeout", true],
      [1045, "AuthenticationFailed", false],
      [1142, "PermissionDenied", false],
      [1062, "UniqueViolation", false],
      [1452, "ConstraintViolation", false],
      [1064, "SyntaxError", false],
      [1146, "UndefinedTable", false],
      [1054, "UndefinedColumn", false],
      [1366, "InvalidData", false],
      [9999, "Unknown", false]
    ]
    for (const [errno, tag, retryable] of cases) {
      assert.strictEqual(my(errno)._tag, tag, String(errno))
      assert.strictEqual(my(errno).retryable, retryable, String(errno))
    }
    assert.strictEqual(
      NodeMysql.classifyError({ code: "PROTOCOL_CONNECTION_LOST", message: "x" })._tag,
      "ConnectionLost"
    )
    assert.strictEqual(NodeMysql.classifyError({ code: "ECONNREFUSED", message: "x" })._tag, "ConnectionRefused")
  })

  it("never lets a URL's password into a message", () => {
    assert.strictEqual(
      scrub("cannot reach postgres://etl:s3cret@db:5432/app and mysql://u:p@h/x"),
      "cannot reach postgres://***@db:5432/app and mysql://***@h/x"
    )
  })
})

describe("SQL config decoding", () => {
  const base = {
    name: "t",
    connections: { pg: { type: "postgres", url: "postgres://etl:s3cret@db/app" } },
    source: { type: "postgres", connection: "pg", table: "orders" },
    sink: { type: "file", path: "out", format: { type: "jsonl" } }
  }
  const issuesOf = (value: unknown) =>
    Load.decode("p.json", value).pipe(
      Effect.flip,
      Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
    )

  it.effect("accepts connections, sources and sinks, and keeps credentials redacted", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", {
        ...base,
        connections: {
          ...base.connections,
          dw: { type: "mysql", host: "db", port: 3306, user: "etl", password: "hunter2", ssl: { mode: "verify-full" } }
        },
        source: {
          ...base.source,
          partition: { column: "id", partitions: 4 },
          incremental: { column: "updated_at", lag: "5 minutes" }
        },
        sink: { type: "mysql", connection: "dw", table: "o", mode: "upsert", keys: ["id"] }
      })
      const text = JSON.stringify(config)
      assert.notInclude(text, "hunter2")
      assert.notInclude(text, "s3cret")
      const dw = config.connections!.dw!
      assert.isTrue(dw.type === "mysql")
      if (dw.type !== "mysql") return
      assert.include(String(dw.password), "redacted")
      const options = SqlConfig.connectionOptions(dw)
      assert.strictEqual(SqlConfig.reveal(options.password), "hunter2")
    })
  )

  it.effect("explains what is wrong, at its JSON path", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issuesOf({ ...base, source: { type: "postgres", connection: "pg" } }), [
        '$.source: A PostgreSQL source needs a "table" or a "query"'
      ])
      assert.deepStrictEqual(yield* issuesOf({ ...base, source: { ...base.source, query: "SELECT 1" } }), [
        '$.source: Give either "table" or "query", not both'
      ])
      assert.deepStrictEqual(
        yield* issuesOf({
          ...base,
          source: { ...base.source, partition: { column: "id", partitions: 2 }, predicates: ["a < 1"] }
        }),
        ['$.source: Give either "partition" or "predicates", not both']
      )
      assert.deepStrictEqual(
        yield* issuesOf({ ...base, sink: { type: "postgres", connection: "pg", table: "t", mode: "upsert" } }),
        ['$.sink: An upsert needs "keys": the columns of the primary key or of a unique index of the table']
      )
      assert.deepStrictEqual(
        yield* issuesOf({ ...base, sink: { type: "mysql", connection: "pg", table: "t", keys: ["id"] } }),
        ['$.sink: "keys" only apply to "mode": "upsert"']
      )
      assert.deepStrictEqual(
        yield* issuesOf({ ...base, sink: { type: "mysql", connection: "pg", table: "t", create_if_missing: true } }),
        ['$.sink: "create_if_missing" needs a "schema" to create the table from']
      )
      assert.deepStrictEqual(
        yield* issuesOf({
          ...base,
          sink: { type: "postgres", connection: "pg", table: "t", mode: "overwrite", transaction: "batch" }
        }),
        ['$.sink: "transaction": "batch" is for append only: overwrite and upsert commit once, at the end']
      )
      assert.deepStrictEqual(yield* issuesOf({ ...base, connections: { pg: { type: "postgres" } } }), [
        '$.connections.pg: A connection needs a "url" or a "host"'
      ])
      assert.deepStrictEqual(
        yield* issuesOf({ ...base, connections: { pg: { type: "postgres", host: "h", password: 1234 } } }),
        ["$.connections.pg.password: Expected a string, got a value that is not shown (it may be a secret)"]
      )
      assert.deepStrictEqual(
        yield* issuesOf({
          ...base,
          connections: { pg: { type: "postgres", host: "h", pool_size: 0, ssl: { mode: "x" } } }
        }),
        [
          '$.connections.pg.ssl.mode: Expected "disable" | "require" | "verify-full", got "x"',
          "$.connections.pg.pool_size: Expected a value greater than or equal to 1, got 0"
        ]
      )
      assert.deepStrictEqual(yield* issuesOf({ ...base, source: { ...base.source, tabel: "x" } }), [
        "$.source.tabel: Unknown key (not allowed here; check its spelling)"
      ])
    })
  )
})

describe("SQL columns to Avro", () => {
  it("describes a table's records as an Avro record, nullable columns as unions with null", () => {
    const { schema, unsupported } = SqlTypes.avroOfColumns("T", [
      { name: "id", kind: "bigint", dbType: "bigint", nullable: false },
      { name: "amount", kind: "decimal", dbType: "numeric(18,2)", nullable: true },
      { name: "at", kind: "timestamptz", dbType: "timestamp with time zone", nullable: false },
      { name: "day", kind: "date", dbType: "date", nullable: false },
      { name: "tags", kind: "array", element: "text", dbType: "text[]", nullable: false },
      { name: "doc", kind: "json", dbType: "jsonb", nullable: true },
      { name: "free", kind: "decimal", dbType: "numeric", nullable: false }
    ])
    assert.deepStrictEqual(schema, {
      type: "record",
      name: "T",
      fields: [
        { name: "id", type: "long" },
        {
          name: "amount",
          type: ["null", { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 }],
          default: null
        },
        { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
        { name: "day", type: { type: "int", logicalType: "date" } },
        { name: "tags", type: { type: "array", items: ["null", "string"] } }
      ]
    })
    assert.deepStrictEqual(unsupported, ["doc", "free"])
  })
})

describe("bulk-load encoding safety", () => {
  it("escapes a string smuggled into a typed column, so it cannot start a new row", () => {
    for (const dialect of ["postgres", "mysql"] as const) {
      const encode = SqlTypes.makeRowEncoder(dialect, [
        { name: "n", kind: "bigint", dbType: "bigint" },
        { name: "d", kind: "date", dbType: "date" },
        { name: "ts", kind: "timestamptz", dbType: "timestamptz" },
        { name: "x", kind: "decimal", dbType: "numeric" }
      ])
      const text = encode([{ n: "1\n2\tevil", d: "2024-01-01\nx", ts: "t\t", x: "1\\" }])
      assert.strictEqual(text.split("\n").length, 2, dialect)
      assert.strictEqual(text.split("\t").length, 4, dialect)
    }
  })
})
