import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { parquetMetadata } from "hyparquet"
import { parquetWriteBuffer } from "hyparquet-writer"
import * as FormatError from "../../src/formats/FormatError.ts"
import * as Parquet from "../../src/formats/Parquet.ts"

const schema = {
  type: "record",
  name: "Order",
  namespace: "test",
  fields: [
    { name: "id", type: "long" },
    { name: "count", type: "int" },
    { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 } },
    {
      name: "big",
      type: { type: "fixed", name: "Big", size: 16, logicalType: "decimal", precision: 38, scale: 4 }
    },
    { name: "at", type: { type: "long", logicalType: "timestamp-micros" } },
    { name: "atMillis", type: ["null", { type: "long", logicalType: "timestamp-millis" }] },
    { name: "local", type: { type: "long", logicalType: "local-timestamp-millis" } },
    { name: "day", type: { type: "int", logicalType: "date" } },
    { name: "ref", type: { type: "string", logicalType: "uuid" } },
    { name: "ratio", type: "double" },
    { name: "small", type: "float" },
    { name: "ok", type: "boolean" },
    { name: "note", type: ["null", "string"] },
    { name: "raw", type: "bytes" },
    { name: "status", type: { type: "enum", name: "Status", symbols: ["SETTLED", "PENDING"] } },
    { name: "tags", type: { type: "array", items: "string" } },
    { name: "scores", type: ["null", { type: "array", items: ["null", "long"] }] },
    { name: "attrs", type: { type: "map", values: "string" } },
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
    },
    { name: "people", type: { type: "array", items: "Who" } }
  ]
} as const

const decimal = (precision: number, scale: number) =>
  fc
    .bigInt({ min: -(10n ** BigInt(precision)) + 1n, max: 10n ** BigInt(precision) - 1n })
    .map((n) => BigDecimal.make(n, scale))

const who = fc.record({ name: fc.string({ maxLength: 6 }), age: fc.option(fc.integer(), { nil: null }) })

const order = fc.record({
  id: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  count: fc.integer(),
  amount: decimal(18, 2),
  big: decimal(38, 4),
  at: fc.integer({ min: -8_000_000_000_000, max: 8_000_000_000_000 }).map((ms) => new Date(ms)),
  atMillis: fc.option(
    fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }).map((ms) => new Date(ms)),
    { nil: null }
  ),
  local: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  day: fc
    .integer({ min: -719_528, max: 2_932_896 })
    .map((days) => new Date(days * 86_400_000).toISOString().slice(0, 10)),
  ref: fc.uuid(),
  ratio: fc.double({ noNaN: true }),
  small: fc.float({ noNaN: true }).map(Math.fround),
  ok: fc.boolean(),
  note: fc.option(fc.string({ unit: "grapheme", maxLength: 10 }), { nil: null }),
  raw: fc.uint8Array({ maxLength: 12 }),
  status: fc.constantFrom("SETTLED", "PENDING"),
  tags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  scores: fc.option(fc.array(fc.option(fc.integer(), { nil: null }), { maxLength: 3 }), { nil: null }),
  attrs: fc.dictionary(
    fc.string({ maxLength: 4 }).filter((k) => k !== "__proto__"),
    fc.string({ maxLength: 4 }),
    { maxKeys: 3 }
  ),
  who: fc.option(who, { nil: null }),
  people: fc.array(who, { maxLength: 2 })
})

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let offset = 0
  for (const c of chunks) {
    out.set(c, offset)
    offset += c.length
  }
  return out
}

const encode = (batches: ReadonlyArray<ReadonlyArray<unknown>>, options?: Parquet.EncodeOptions, with_ = schema) =>
  Effect.map(Stream.runCollect(Stream.fromIterable(batches).pipe(Parquet.encode(with_, options))), concat)

const decode = (bytes: Uint8Array, options?: Parquet.DecodeOptions) =>
  Effect.map(Stream.runCollect(Parquet.decode(Parquet.fromBytes(bytes), options)), (batches) => batches.flat())

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") throw new Error(`expected a failure, got ${String(exit.cause)}`)
  return error.error
}

const sample = fc.sample(order, { numRuns: 30, seed: 7 })

describe("Parquet", () => {
  it("encode then decode gives the same records for any records, compression and row group size", () =>
    fc.assert(
      fc.asyncProperty(
        fc.array(order, { maxLength: 30 }),
        fc.constantFrom<Parquet.Compression>("snappy", "zstd", "gzip", "none"),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 9 }),
        async (records, compression, rowGroupRows, batchSize) => {
          const bytes = await Effect.runPromise(
            encode([records.slice(0, 5), [], records.slice(5)], { compression, rowGroupRows })
          )
          const withSchema = await Effect.runPromise(decode(bytes, { avro: schema, batchSize }))
          assert.deepStrictEqual(withSchema, records)
          const stored = await Effect.runPromise(decode(bytes))
          assert.deepStrictEqual(stored, records)
        }
      ),
      { numRuns: 60 }
    ))

  it.effect("cuts row groups by rows and by estimated bytes, emitting each as it fills", () =>
    Effect.gen(function* () {
      const byRows = yield* encode([sample], { rowGroupRows: 7 })
      assert.strictEqual(parquetMetadata(byRows).row_groups.length, 5)
      const byBytes = yield* encode([sample], { rowGroupBytes: 200 })
      const groups = parquetMetadata(byBytes).row_groups.map((g) => Number(g.num_rows))
      assert.isAbove(groups.length, 3)
      assert.strictEqual(
        groups.reduce((a, b) => a + b, 0),
        sample.length
      )
      // The first row group comes out while the input is still open.
      const first = yield* Stream.runCollect(
        Stream.concat(Stream.make(sample.slice(0, 3)), Stream.never).pipe(
          Parquet.encode(schema, { rowGroupRows: 2 }),
          Stream.take(1)
        )
      )
      assert.strictEqual(first.length, 1)
      assert.deepStrictEqual(Array.from(first[0]!.subarray(0, 4)), [0x50, 0x41, 0x52, 0x31])
    })
  )

  it.effect("reads the footer first, then one range per row group, never the whole file", () =>
    Effect.gen(function* () {
      const many = Array.from({ length: 300 }, () => sample).flat()
      const bytes = yield* encode([many], { rowGroupRows: 1500, compression: "none" })
      const reads: Array<[number, number]> = []
      const file: Parquet.RangedFile<never, never> = {
        size: bytes.length,
        read: (offset, length) =>
          Effect.sync(() => {
            reads.push([offset, length])
            return bytes.subarray(offset, offset + length)
          })
      }
      const seen: Array<number> = []
      const out = (yield* Stream.runCollect(Parquet.decode(file, { onRead: (n) => seen.push(n) }))).flat()
      assert.strictEqual(out.length, many.length)
      assert.isAbove(bytes.length, 2 * 64 * 1024)
      assert.deepStrictEqual(reads[0], [bytes.length - 64 * 1024, 64 * 1024])
      assert.strictEqual(reads.length, 1 + 6)
      for (const [, length] of reads.slice(1)) assert.isBelow(length, bytes.length / 4)
      assert.strictEqual(seen.length, 6)
    })
  )

  it.effect("names the file for a non-Parquet file and for a truncated one", () =>
    Effect.gen(function* () {
      const text = new TextEncoder().encode('{"id":1}\n{"id":2}\n')
      const notParquet = failure(yield* Effect.exit(decode(text, { source: "in/a.parquet" })))
      assert.instanceOf(notParquet, FormatError.FormatError)
      assert.strictEqual(
        notParquet.message,
        "in/a.parquet: not a Parquet file: it does not start or end with the magic bytes PAR1"
      )
      const bytes = yield* encode([sample.slice(0, 5)])
      const truncated = failure(
        yield* Effect.exit(decode(bytes.subarray(0, bytes.length - 10), { source: "b.parquet" }))
      )
      assert.match(truncated.message, /^b\.parquet: truncated: the file starts with PAR1 but has no footer/)
      const tiny = failure(yield* Effect.exit(decode(bytes.subarray(0, 5), { source: "c.parquet" })))
      assert.match(tiny.message, /^c\.parquet: not a Parquet file: 5 bytes/)
    })
  )

  it.effect("a file whose footer survived but whose data did not, or whose footer is corrupt, is an error", () =>
    Effect.gen(function* () {
      const bytes = yield* encode([sample.slice(0, 5)], { compression: "none" })
      const footerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 8, true) + 8
      const cut = new Uint8Array(4 + footerLength)
      cut.set(bytes.subarray(0, 4))
      cut.set(bytes.subarray(bytes.length - footerLength), 4)
      const truncated = failure(yield* Effect.exit(decode(cut, { source: "cut.parquet" })))
      assert.match(
        truncated.message,
        /^cut\.parquet block 1: truncated: row group 1 needs bytes 4-\d+, but the data ends at byte \d+ where the footer starts$/
      )
      const corrupt = bytes.slice()
      corrupt.fill(0xff, bytes.length - footerLength, bytes.length - 8)
      const bad = failure(yield* Effect.exit(decode(corrupt, { source: "bad.parquet" })))
      assert.match(bad.message, /^bad\.parquet: corrupt footer: /)
    })
  )

  it.effect("a footer longer than the first 64 KiB read is read with a second read", () =>
    Effect.gen(function* () {
      const many = Array.from({ length: 20 }, () => sample).flat()
      const bytes = yield* encode([many], { rowGroupRows: 1 })
      const footerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 8, true)
      assert.isAbove(footerLength, 64 * 1024)
      const reads: Array<number> = []
      const file: Parquet.RangedFile<never, never> = {
        size: bytes.length,
        read: (offset, length) =>
          Effect.sync(() => {
            reads.push(length)
            return bytes.subarray(offset, offset + length)
          })
      }
      const out = (yield* Stream.runCollect(Parquet.decode(file))).flat()
      assert.deepStrictEqual(out, many)
      assert.strictEqual(reads.length, 2 + many.length)
      assert.strictEqual(reads[0]! + reads[1]!, footerLength + 8)
    })
  )

  it.effect("a column whose type does not fit the reader schema is an error naming the column and both types", () =>
    Effect.gen(function* () {
      const bytes = yield* encode([sample.slice(0, 3)])
      const reader = {
        type: "record",
        name: "R",
        fields: [
          { name: "id", type: "long" },
          { name: "at", type: { type: "bytes", logicalType: "decimal", precision: 10, scale: 2 } }
        ]
      }
      const e = failure(yield* Effect.exit(decode(bytes, { avro: reader, source: "o.parquet" })))
      assert.strictEqual(
        e.message,
        'o.parquet column "at": the reader schema expects decimal(10, 2), the file has INT64 TIMESTAMP(MICROS, UTC)'
      )
      assert.strictEqual(e.column, "at")
      const wrongScale = {
        type: "record",
        name: "R",
        fields: [{ name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 3 } }]
      }
      const scale = failure(yield* Effect.exit(decode(bytes, { avro: wrongScale })))
      assert.match(scale.message, /reader schema expects decimal\(18, 3\), the file has INT64 DECIMAL\(18, 2\)/)
      const missing = {
        type: "record",
        name: "R",
        fields: [
          { name: "id", type: "long" },
          { name: "extra", type: "string" }
        ]
      }
      const absent = failure(yield* Effect.exit(decode(bytes, { avro: missing })))
      assert.match(absent.message, /column "extra": the file has no such column/)
      const optional = {
        type: "record",
        name: "R",
        fields: [
          { name: "id", type: "long" },
          { name: "extra", type: ["null", "string"] }
        ]
      }
      const read = yield* decode(bytes, { avro: optional })
      assert.deepStrictEqual(read[0], { id: sample[0]!.id, extra: null })
    })
  )

  it.effect("a null in a required field is an error when writing and when reading, naming record and column", () =>
    Effect.gen(function* () {
      const write = failure(
        yield* Effect.exit(encode([[sample[0], { ...sample[1], amount: null }]], { source: "out.parquet" }))
      )
      assert.strictEqual(write.message, 'out.parquet column "amount", record 2: null in a required field')
      const loose = {
        type: "record",
        name: "R",
        fields: [{ name: "note", type: ["null", "string"] }]
      }
      const bytes = yield* encode([[{ note: "a" }, { note: null }]], {}, loose as never)
      const strict = { type: "record", name: "R", fields: [{ name: "note", type: "string" }] }
      const read = failure(yield* Effect.exit(decode(bytes, { avro: strict, source: "in.parquet" })))
      assert.strictEqual(read.message, 'in.parquet column "note", record 2: null in a required field')
    })
  )

  it.effect("a value of the wrong type and a long beyond 2^53 are errors naming the field", () =>
    Effect.gen(function* () {
      const wrong = failure(yield* Effect.exit(encode([[{ ...sample[0], who: { name: 3, age: null } }]])))
      assert.match(wrong.message, /column "who\.name", record 1: expected a string, got 3/)
      const big = { type: "record", name: "B", fields: [{ name: "n", type: "long" }] }
      const bytes = yield* encode([[{ n: 2n ** 60n }]], {}, big as never)
      const read = failure(yield* Effect.exit(decode(bytes)))
      assert.match(read.message, /column "n", record 1: long 1152921504606846976 is outside ±9007199254740991/)
    })
  )

  it.effect("reads files without a stored Avro schema with the usual values (from the Parquet schema)", () =>
    Effect.gen(function* () {
      const buffer = parquetWriteBuffer({
        columnData: [
          { name: "id", data: [1n, 2n], type: "INT64" },
          { name: "name", data: ["a", null], type: "STRING", nullable: true },
          { name: "at", data: [new Date(5), new Date(6)], type: "TIMESTAMP" }
        ]
      })
      const read = yield* decode(new Uint8Array(buffer))
      assert.deepStrictEqual(read, [
        { id: 1, name: "a", at: new Date(5) },
        { id: 2, name: null, at: new Date(6) }
      ])
    })
  )
})
