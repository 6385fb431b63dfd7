import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import parquetjs from "@dsnp/parquetjs"
import { Result } from "effect"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { parquetWriteBuffer } from "hyparquet-writer"
import { assert, describe, it } from "vitest"
import * as Parquet from "../../src/formats/Parquet.ts"
import * as ParquetSchema from "../../src/formats/ParquetSchema.ts"

describe("ParquetSchema with an independent reader", () => {
  it("a file written with the schema reads back in @dsnp/parquetjs with its values and null", async () => {
    const schema = Result.getOrThrow(
      ParquetSchema.fromAvro({
        type: "record",
        name: "R",
        fields: [
          { name: "id", type: "long" },
          { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
          { name: "note", type: ["null", "string"] }
        ]
      })
    )
    const buf = parquetWriteBuffer({
      schema,
      columnData: [
        { name: "id", data: [1n, 2n] },
        { name: "at", data: [new Date(1000), new Date(2000)] },
        { name: "note", data: ["a", null] }
      ]
    })
    const reader = await parquetjs.ParquetReader.openBuffer(Buffer.from(buf))
    const cursor = reader.getCursor()
    const rows: Array<unknown> = []
    for (let row = await cursor.next(); row !== null; row = await cursor.next()) rows.push(row)
    await reader.close()
    assert.deepStrictEqual(rows, [
      { id: 1n, at: new Date(1000), note: "a" },
      { id: 2n, at: new Date(2000), note: null }
    ])
  })
})

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(chunks.map((c) => Buffer.from(c)))

const readWithParquetjs = async (bytes: Uint8Array): Promise<Array<Record<string, unknown>>> => {
  const reader = await parquetjs.ParquetReader.openBuffer(Buffer.from(bytes))
  const cursor = reader.getCursor()
  const rows: Array<Record<string, unknown>> = []
  for (let row = await cursor.next(); row !== null; row = await cursor.next()) rows.push(row as Record<string, unknown>)
  await reader.close()
  return rows
}

/** A two's complement big-endian decimal as @dsnp/parquetjs returns it (raw bytes), as a BigDecimal. */
const decimalOf = (bytes: unknown, scale: number) => {
  const b = bytes as Uint8Array
  let v = 0n
  for (const byte of b) v = (v << 8n) | BigInt(byte)
  if (b.length > 0 && (b[0]! & 0x80) !== 0) v -= 1n << BigInt(8 * b.length)
  return BigDecimal.make(v, scale)
}

describe("Parquet files with @dsnp/parquetjs, both ways", () => {
  const order = {
    type: "record",
    name: "Order",
    fields: [
      { name: "id", type: "long" },
      { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 } },
      { name: "small", type: { type: "bytes", logicalType: "decimal", precision: 9, scale: 3 } },
      { name: "wide", type: { type: "bytes", logicalType: "decimal", precision: 30, scale: 4 } },
      { name: "at", type: { type: "long", logicalType: "timestamp-micros" } },
      { name: "atMillis", type: { type: "long", logicalType: "timestamp-millis" } },
      { name: "note", type: ["null", "string"] },
      { name: "tags", type: { type: "array", items: "string" } },
      {
        name: "who",
        type: ["null", { type: "record", name: "Who", fields: [{ name: "name", type: "string" }] }]
      }
    ]
  }
  const records = [
    {
      id: Number.MAX_SAFE_INTEGER,
      amount: BigDecimal.make(-12345n, 2),
      small: BigDecimal.make(999_999_999n, 3),
      wide: BigDecimal.make(-(10n ** 29n) + 1n, 4),
      at: new Date("2026-12-05T10:11:12.345Z"),
      atMillis: new Date("1969-07-20T20:17:40.001Z"),
      note: "ünïcode ✓",
      tags: ["a", "b"],
      who: { name: "Ada" }
    },
    {
      id: -Number.MAX_SAFE_INTEGER,
      amount: BigDecimal.make(1_234_567_890_123n, 2),
      small: BigDecimal.make(-1n, 3),
      wide: BigDecimal.make(10n ** 29n + 7n, 4),
      at: new Date(0),
      atMillis: new Date(-1),
      note: null,
      tags: [],
      who: null
    }
  ]

  it("files we write read back exactly in @dsnp/parquetjs (long, decimals, timestamps, null, list, nested record)", async () => {
    for (const compression of ["snappy", "gzip", "none"] as const) {
      const chunks = await Effect.runPromise(
        Stream.runCollect(Stream.make(records).pipe(Parquet.encode(order, { compression })))
      )
      const rows = await readWithParquetjs(concat(chunks))
      const normalized = rows.map((row) => ({
        id: Number(row.id as bigint),
        // @dsnp/parquetjs reads INT32/INT64 decimals as the scaled number (exact here: at most 15 digits).
        amount: BigDecimal.make(BigInt(Math.round((row.amount as number) * 100)), 2),
        small: BigDecimal.make(BigInt(Math.round((row.small as number) * 1000)), 3),
        wide: decimalOf(row.wide, 4),
        at: row.at,
        atMillis: row.atMillis,
        note: row.note ?? null,
        tags: ((row.tags as { list: Array<{ element: string }> | null }).list ?? []).map((e) => e.element),
        who: row.who ?? null
      }))
      assert.deepStrictEqual(normalized, records)
      assert.strictEqual(typeof rows[0]!.id, "bigint")
      assert.strictEqual(rows[0]!.id, BigInt(Number.MAX_SAFE_INTEGER))
    }
  })

  it("files @dsnp/parquetjs writes read back exactly in effect-etl, with a reader schema and without", async () => {
    const schema = new parquetjs.ParquetSchema({
      id: { type: "INT64" },
      small: { type: "DECIMAL", precision: 10, scale: 2 },
      big: { type: "DECIMAL", precision: 30, scale: 3 },
      at: { type: "TIMESTAMP_MICROS" },
      atMillis: { type: "TIMESTAMP_MILLIS" },
      day: { type: "DATE" },
      note: { type: "UTF8", optional: true },
      tags: { type: "UTF8", repeated: true },
      who: { optional: true, fields: { name: { type: "UTF8" }, age: { type: "INT32", optional: true } } }
    })
    const path = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "pq-interop-")), "written.parquet")
    const writer = await parquetjs.ParquetWriter.openFile(schema, path, { rowGroupSize: 2 })
    await writer.appendRow({
      id: 9_007_199_254_740_991n,
      small: 123.45,
      big: Buffer.from([0x0f, 0xff, 0xff]),
      at: new Date("2026-12-05T10:11:12.345Z"),
      atMillis: new Date(-1),
      day: new Date("2024-02-29T00:00:00Z"),
      note: "hello",
      tags: ["x", "y"],
      who: { name: "Ada", age: 36 }
    })
    await writer.appendRow({
      id: -5n,
      small: -0.01,
      big: Buffer.from([0x80]),
      at: new Date(0),
      atMillis: new Date(1),
      day: new Date("1970-01-01T00:00:00Z"),
      tags: [],
      who: { name: "Bob" }
    })
    await writer.appendRow({
      id: 0n,
      small: 0,
      big: Buffer.from([0x00]),
      at: new Date(7),
      atMillis: new Date(8),
      day: new Date("1999-12-31T00:00:00Z"),
      note: "x",
      tags: ["z"]
    })
    await writer.close()
    const bytes = new Uint8Array(Fs.readFileSync(path))
    const expected = [
      {
        id: 9_007_199_254_740_991,
        small: BigDecimal.make(12345n, 2),
        big: BigDecimal.make(0x0fffffn, 3),
        at: new Date("2026-12-05T10:11:12.345Z"),
        atMillis: new Date(-1),
        day: "2024-02-29",
        note: "hello",
        tags: ["x", "y"],
        who: { name: "Ada", age: 36 }
      },
      {
        id: -5,
        small: BigDecimal.make(-1n, 2),
        big: BigDecimal.make(-128n, 3),
        at: new Date(0),
        atMillis: new Date(1),
        day: "1970-01-01",
        note: null,
        tags: [],
        who: { name: "Bob", age: null }
      },
      {
        id: 0,
        small: BigDecimal.make(0n, 2),
        big: BigDecimal.make(0n, 3),
        at: new Date(7),
        atMillis: new Date(8),
        day: "1999-12-31",
        note: "x",
        tags: ["z"],
        who: null
      }
    ]
    const derived = await Effect.runPromise(Stream.runCollect(Parquet.decode(Parquet.fromBytes(bytes))))
    assert.deepStrictEqual(derived.flat(), expected)
    const reader = {
      type: "record",
      name: "Written",
      fields: [
        { name: "id", type: "long" },
        { name: "small", type: { type: "bytes", logicalType: "decimal", precision: 12, scale: 2 } },
        { name: "big", type: { type: "bytes", logicalType: "decimal", precision: 30, scale: 3 } },
        { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
        { name: "atMillis", type: { type: "long", logicalType: "timestamp-millis" } },
        { name: "day", type: { type: "int", logicalType: "date" } },
        { name: "note", type: ["null", "string"] },
        { name: "tags", type: { type: "array", items: "string" } },
        {
          name: "who",
          type: [
            "null",
            {
              type: "record",
              name: "Who",
              fields: [
                { name: "name", type: "string" },
                { name: "age", type: ["null", "int"] }
              ]
            }
          ]
        }
      ]
    }
    const typed = await Effect.runPromise(Stream.runCollect(Parquet.decode(Parquet.fromBytes(bytes), { avro: reader })))
    assert.deepStrictEqual(typed.flat(), expected)
  })

  it("a long beyond 2^53 written by @dsnp/parquetjs is an error naming the column, not a rounded number", async () => {
    const schema = new parquetjs.ParquetSchema({ n: { type: "INT64" } })
    const path = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "pq-interop-")), "big.parquet")
    const writer = await parquetjs.ParquetWriter.openFile(schema, path)
    await writer.appendRow({ n: 2n ** 62n })
    await writer.close()
    const exit = await Effect.runPromiseExit(
      Stream.runCollect(
        Parquet.decode(Parquet.fromBytes(new Uint8Array(Fs.readFileSync(path))), { source: "big.parquet" })
      )
    )
    assert.isTrue(Exit.isFailure(exit))
    assert.match(
      String(exit),
      /big\.parquet column "n", record 1: long 4611686018427387904 is outside ±9007199254740991/
    )
  })
})
