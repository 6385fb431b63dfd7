import { describe, it } from "@effect/vitest"
import avro from "avsc"
import { Effect, Schema, type SchemaAST } from "effect"
import * as BigDecimal from "effect/BigDecimal"
import { assert } from "vitest"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import * as AvroSchema from "../../src/schema/AvroSchema.ts"

// Records compared by value and representation: class instances, Buffers and decimal scales must all match.
const canonical = (value: unknown): unknown => {
  if (value instanceof Date) return { date: value.toISOString() }
  if (value instanceof Uint8Array)
    return { bytes: [...value], proto: Object.getPrototypeOf(value) === Uint8Array.prototype }
  if (BigDecimal.isBigDecimal(value)) return { decimal: `${value.value}e-${value.scale}` }
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = { plain: Object.getPrototypeOf(value) === Object.prototype }
    for (const [k, v] of Object.entries(value)) out[k] = canonical(v)
    return out
  }
  return value
}

const assertSame = (actual: unknown, expected: unknown) =>
  assert.deepStrictEqual(canonical(actual), canonical(expected))

const Kitchen = AvroSchema.makeUnsafe({
  type: "record",
  name: "Kitchen",
  namespace: "test.bridge",
  doc: "Every Avro type at once",
  fields: [
    { name: "n", type: "null" },
    { name: "flag", type: "boolean" },
    { name: "i", type: "int" },
    { name: "l", type: "long" },
    { name: "f", type: "float" },
    { name: "d", type: "double" },
    { name: "s", type: "string", doc: "a string field" },
    { name: "b", type: "bytes" },
    { name: "fx", type: { type: "fixed", name: "Four", size: 4 } },
    { name: "e", type: { type: "enum", name: "Color", symbols: ["red", "green"] } },
    { name: "arr", type: { type: "array", items: "Color" } },
    { name: "map", type: { type: "map", values: "long" } },
    { name: "nested", type: { type: "record", name: "Point", fields: [{ name: "x", type: "double" }] } },
    { name: "opt", type: ["null", "Point"], default: null },
    { name: "tail", type: ["string", "null"], default: "none" },
    { name: "choice", type: ["null", "long", "string", "Point", { type: "array", items: "int" }], default: null },
    { name: "ts", type: { type: "long", logicalType: "timestamp-millis" } },
    { name: "tsu", type: { type: "long", logicalType: "timestamp-micros" } },
    { name: "day", type: { type: "int", logicalType: "date" } },
    { name: "id", type: { type: "string", logicalType: "uuid" } },
    { name: "price", type: { type: "bytes", logicalType: "decimal", precision: 9, scale: 3 } },
    { name: "wide", type: { type: "fixed", name: "Wide", size: 16, logicalType: "decimal", precision: 38, scale: 10 } },
    { name: "tod", type: { type: "int", logicalType: "time-millis" } },
    { name: "withDefault", type: { type: "bytes", logicalType: "decimal", precision: 4, scale: 1 }, default: "\u0001" },
    { name: "days", type: { type: "array", items: { type: "int", logicalType: "date" } }, default: [0, 1] }
  ]
})

const kitchenJson = {
  n: null,
  flag: true,
  i: -7,
  l: 9007199254740991,
  f: 1.5,
  d: -2.25,
  s: "héllo",
  b: "AAEC",
  fx: "3q2+7w==",
  e: "green",
  arr: ["red", "green"],
  map: { a: 1, b: -2 },
  nested: { x: 0.5 },
  opt: { x: 2 },
  choice: [1, 2, 3],
  ts: "2024-05-01T12:00:00.123Z",
  tsu: 1714564800123,
  day: "2024-02-29",
  id: "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e",
  price: "-123456.789",
  wide: "1234567890123456789012345678.0123456789",
  tod: 1000
}

const kitchenRecord = {
  n: null,
  flag: true,
  i: -7,
  l: 9007199254740991,
  f: 1.5,
  d: -2.25,
  s: "héllo",
  b: new Uint8Array([0, 1, 2]),
  fx: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
  e: "green",
  arr: ["red", "green"],
  map: { a: 1, b: -2 },
  nested: { x: 0.5 },
  opt: { x: 2 },
  tail: "none",
  choice: [1, 2, 3],
  ts: new Date("2024-05-01T12:00:00.123Z"),
  tsu: new Date("2024-05-01T12:00:00.123Z"),
  day: "2024-02-29",
  id: "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e",
  price: BigDecimal.make(-123456789n, 3),
  wide: BigDecimal.make(12345678901234567890123456780123456789n, 10),
  tod: 1000,
  withDefault: BigDecimal.make(1n, 1),
  days: ["1970-01-01", "1970-01-02"]
}

describe("AvroBridge", () => {
  describe("toSchema", () => {
    const codec = AvroBridge.toSchema(Kitchen)

    it("decodes JSON into the record representation, applying defaults", () => {
      assertSame(Schema.decodeUnknownSync(codec)(kitchenJson), kitchenRecord)
    })

    it("encodes records back to JSON, and JSON round-trips", () => {
      const json = Schema.encodeSync(codec)(kitchenRecord)
      assert.deepStrictEqual(json, {
        ...kitchenJson,
        tail: "none",
        tsu: "2024-05-01T12:00:00.123Z",
        price: "-123456.789",
        wide: "1234567890123456789012345678.0123456789",
        withDefault: "0.1",
        days: ["1970-01-01", "1970-01-02"]
      })
      assertSame(Schema.decodeUnknownSync(codec)(JSON.parse(JSON.stringify(json))), kitchenRecord)
    })

    it("picks the first union branch that fits, and keeps union values unwrapped", () => {
      const decode = Schema.decodeUnknownSync(codec)
      assert.strictEqual((decode({ ...kitchenJson, choice: 5 }) as { choice: unknown }).choice, 5)
      assert.strictEqual((decode({ ...kitchenJson, choice: "5" }) as { choice: unknown }).choice, "5")
      assertSame((decode({ ...kitchenJson, choice: { x: 1 } }) as { choice: unknown }).choice, { x: 1 })
    })

    it("reports the field and the expectation in its errors", () => {
      const message = (input: unknown) => String(Schema.decodeUnknownExit(codec)(input))
      assert.include(message({ ...kitchenJson, price: "1.2345" }), "at most 3 fractional digits")
      assert.include(message({ ...kitchenJson, price: "1.2345" }), `["price"]`)
      assert.include(message({ ...kitchenJson, day: "2024-02-30" }), `Expected a date "YYYY-MM-DD", got "2024-02-30"`)
      assert.include(message({ ...kitchenJson, l: 2 ** 53 }), "Expected a long within")
      assert.include(message({ ...kitchenJson, fx: "AAEC" }), "Expected exactly 4 bytes")
      assert.include(message({ ...kitchenJson, i: 2 ** 31 }), "32-bit")
    })

    it("carries names and docs as annotations", () => {
      const ast = codec.ast
      assert.strictEqual(ast.annotations?.identifier, "test.bridge.Kitchen")
      assert.strictEqual(ast.annotations?.description, "Every Avro type at once")
    })

    it("handles recursive records", () => {
      const List = AvroSchema.makeUnsafe({
        type: "record",
        name: "List",
        fields: [
          { name: "value", type: "int" },
          { name: "next", type: ["null", "List"], default: null }
        ]
      })
      const list = AvroBridge.toSchema(List)
      const decoded = Schema.decodeUnknownSync(list)({ value: 1, next: { value: 2, next: { value: 3 } } })
      assert.deepStrictEqual(decoded, { value: 1, next: { value: 2, next: { value: 3, next: null } } })
      const validate = AvroBridge.makeValidator(list)
      const bad = validate({ value: 1, next: { value: 2, next: { value: "3" } } })
      assert.deepStrictEqual(bad, { ok: false, message: 'next.next.value: Expected an int (32-bit integer), got "3"' })
      const type = AvroBridge.toAvroType(List)
      assert.deepStrictEqual(type.fromBuffer(type.toBuffer(decoded)), decoded)
    })

    it("throws for schemas that were never validated", () => {
      assert.throws(() => AvroBridge.toSchema({ type: "record", name: "X", fields: [{ name: "a", type: "Nope" }] }))
    })
  })

  describe("makeValidator", () => {
    const validate = AvroBridge.makeValidator(AvroBridge.toSchema(Kitchen))

    it("returns the decoded record", () => {
      const result = validate(kitchenJson)
      assert.isTrue(result.ok)
      if (result.ok) assertSame(result.value, kitchenRecord)
    })

    it("names the field path and what was expected", () => {
      const fail = (patch: object) => {
        const result = validate({ ...kitchenJson, ...patch })
        assert.isFalse(result.ok)
        return result.ok ? "" : result.message
      }
      assert.strictEqual(
        fail({ price: "1.2345" }),
        `price: Expected a decimal string with at most 3 fractional digits, got "1.2345"`
      )
      assert.strictEqual(fail({ s: undefined }), "s: Missing required field (expected a string)")
      assert.strictEqual(fail({ arr: ["red", "blue"] }), `arr[1]: Expected one of "red", "green", got "blue"`)
      assert.strictEqual(fail({ map: { a: 1, "b c": "x" } }), `map["b c"]: Expected a long (integer), got "x"`)
      assert.strictEqual(fail({ nested: { x: "1" } }), `nested.x: Expected a finite number (double), got "1"`)
      assert.strictEqual(fail({ opt: { x: null } }), "opt.x: Expected a finite number (double), got null")
      assert.include(fail({ choice: true }), "choice: Expected null or a long (integer) or a string or a record")
      assert.strictEqual(
        fail({ l: 9007199254740992 }),
        "l: Expected a long within ±9007199254740991 (larger values lose digits in JavaScript numbers), got 9007199254740992"
      )
      assert.strictEqual(fail({ id: "1234" }), `id: Expected a UUID (8-4-4-4-12 hex digits), got "1234"`)
      assert.strictEqual(fail({ b: "***" }), `b: Expected a base64 string, got "***"`)
      assert.include(fail({ ts: "2024-05-01T12:00:00" }), "ts: Expected an ISO-8601 timestamp with a time zone")
      assert.include(fail({ tsu: "3000-01-01T00:00:00Z" }), "tsu: Expected a timestamp within about ±285 years")
      const root = validate([1, 2])
      assert.deepStrictEqual(root, {
        ok: false,
        message: "Expected a record test.bridge.Kitchen (JSON object), got an array"
      })
    })

    it("agrees with the effect codec", () => {
      const codec = AvroBridge.toSchema(Kitchen)
      const decode = Schema.decodeUnknownExit(codec)
      const inputs = [
        kitchenJson,
        { ...kitchenJson, price: 1 },
        { ...kitchenJson, price: "x" },
        { ...kitchenJson, e: "blue" },
        { ...kitchenJson, choice: { x: "no" } },
        { ...kitchenJson, tail: null },
        { ...kitchenJson, map: [] }
      ]
      for (const input of inputs) {
        const fast = validate(input)
        const exit = decode(input)
        assert.strictEqual(fast.ok, exit._tag === "Success", JSON.stringify(input))
        if (fast.ok && exit._tag === "Success") assertSame(fast.value, exit.value)
      }
    })

    it("works with any effect Schema, naming the field", () => {
      const Order = Schema.Struct({ id: Schema.String, lines: Schema.Array(Schema.Struct({ qty: Schema.Int })) })
      const validateOrder = AvroBridge.makeValidator(Order)
      assert.deepStrictEqual(validateOrder({ id: "a", lines: [{ qty: 1 }] }), {
        ok: true,
        value: { id: "a", lines: [{ qty: 1 }] }
      })
      const bad = validateOrder({ id: "a", lines: [{ qty: 1 }, { qty: 1.5 }] })
      assert.isFalse(bad.ok)
      if (!bad.ok) assert.match(bad.message, /^lines\[1\]\.qty: Expected an integer/)
    })

    it("validates straight from an Avro schema", () => {
      const validateAvro = AvroBridge.makeAvroValidator(Kitchen)
      assert.isTrue(validateAvro(kitchenJson).ok)
    })
  })

  describe("toAvroType", () => {
    const type = AvroBridge.toAvroType(Kitchen)

    it("round-trips records through Avro binary in the same representation", () => {
      const buffer = type.toBuffer(kitchenRecord)
      assertSame(type.fromBuffer(buffer), kitchenRecord)
      assert.isTrue(type.isValid(kitchenRecord))
    })

    it("writes union values by the first branch they fit", () => {
      for (const choice of [null, 5, "5", { x: 1 }, [1, 2]]) {
        const record = { ...kitchenRecord, choice }
        assertSame(type.fromBuffer(type.toBuffer(record)), record)
      }
    })

    it("exports the Avro schema without internal markers", () => {
      const exported = JSON.stringify(type.schema({ exportAttrs: true }))
      assert.notInclude(exported, "effect-etl")
      assert.include(exported, `"logicalType":"decimal","precision":9,"scale":3`)
      assert.include(exported, `"logicalType":"timestamp-micros"`)
    })

    it("refuses values that do not fit, with the reason", () => {
      assert.throws(
        () => type.toBuffer({ ...kitchenRecord, price: BigDecimal.fromStringUnsafe("1.0001") }),
        /at most 3 fractional digits/
      )
      assert.throws(() => type.toBuffer({ ...kitchenRecord, id: "x" }), /Expected a UUID/)
      assert.throws(() => type.toBuffer({ ...kitchenRecord, ts: new Date(Number.NaN) }), /valid Date/)
      assert.throws(() => type.toBuffer({ ...kitchenRecord, choice: true }), /Expected null or a long/)
      assert.isFalse(type.isValid({ ...kitchenRecord, day: "2024-02-30" }))
    })

    it("round-trips timestamps across the whole Date range, and micros within theirs", () => {
      const Times = AvroSchema.makeUnsafe({
        type: "record",
        name: "Times",
        fields: [
          { name: "ms", type: { type: "long", logicalType: "timestamp-millis" } },
          { name: "us", type: { type: "long", logicalType: "timestamp-micros" } }
        ]
      })
      const times = AvroBridge.toAvroType(Times)
      const maxMicros = new Date(Math.floor(Number.MAX_SAFE_INTEGER / 1000))
      for (const [ms, us] of [
        [new Date(8.64e15), maxMicros],
        [new Date(-8.64e15), new Date(-maxMicros.getTime())],
        [new Date(2 ** 52 + 1), new Date(0)],
        [new Date(-(2 ** 52) - 1), new Date(1)]
      ] as const) {
        assertSame(times.fromBuffer(times.toBuffer({ ms, us })), { ms, us })
      }
      assert.throws(() => times.toBuffer({ ms: new Date(0), us: new Date(8.64e15) }), /timestamp-micros/)
    })

    it("reads and writes every safe integer as a long, and reports longs beyond", () => {
      const Big = AvroSchema.makeUnsafe({ type: "record", name: "Big", fields: [{ name: "n", type: "long" }] })
      const big = AvroBridge.toAvroType(Big)
      for (const n of [
        0,
        -1,
        2 ** 31,
        2 ** 52 - 1,
        2 ** 52,
        -(2 ** 52),
        2 ** 53 - 1,
        -(2 ** 53 - 1),
        1234567890123456
      ]) {
        assert.deepStrictEqual(big.fromBuffer(big.toBuffer({ n })), { n })
      }
      const varint = (value: bigint) => {
        let zigzag = value >= 0n ? value << 1n : (-value << 1n) - 1n
        const bytes: Array<number> = []
        while (zigzag >= 0x80n) {
          bytes.push(Number(zigzag & 0x7fn) | 0x80)
          zigzag >>= 7n
        }
        bytes.push(Number(zigzag))
        return Buffer.from(bytes)
      }
      assert.deepStrictEqual(big.toBuffer({ n: 2 ** 53 - 1 }), varint(2n ** 53n - 1n))
      assert.throws(() => big.fromBuffer(varint(2n ** 53n)), /Avro long 9007199254740992 is outside ±9007199254740991/)
      assert.throws(() => big.fromBuffer(varint(-(2n ** 60n))), /outside ±9007199254740991/)
      assert.throws(() => big.toBuffer({ n: 2 ** 53 }), /Expected a long within/)
      assert.isFalse(big.isValid({ n: 1.5 }))
    })

    it("reads data written with an older schema version (schema evolution)", () => {
      const v1 = AvroSchema.makeUnsafe({
        type: "record",
        name: "Payment",
        fields: [
          { name: "id", type: { type: "string", logicalType: "uuid" } },
          { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 10, scale: 2 } },
          { name: "count", type: "int" },
          { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
          { name: "kind", type: { type: "enum", name: "Kind", symbols: ["card", "cash"] } },
          { name: "dropped", type: "string" }
        ]
      })
      const v2 = AvroSchema.makeUnsafe({
        type: "record",
        name: "Payment",
        fields: [
          { name: "id", type: { type: "string", logicalType: "uuid" } },
          { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 10, scale: 2 } },
          { name: "count", type: "long" },
          { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
          { name: "kind", type: { type: "enum", name: "Kind", symbols: ["card", "cash", "transfer"] } },
          { name: "note", type: ["null", "string"], default: null },
          { name: "tags", type: { type: "map", values: "string" }, default: { source: "v1" } },
          { name: "extra", type: ["null", "string", "long"], default: null }
        ]
      })
      const writer = AvroBridge.toAvroType(v1)
      const reader = AvroBridge.toAvroType(v2)
      const written = {
        id: "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e",
        amount: BigDecimal.make(1250n, 2),
        count: 3,
        at: new Date("2024-05-01T00:00:00Z"),
        kind: "cash",
        dropped: "gone"
      }
      const read = reader.fromBuffer(writer.toBuffer(written), reader.createResolver(writer))
      assertSame(read, {
        id: written.id,
        amount: written.amount,
        count: 3,
        at: written.at,
        kind: "cash",
        note: null,
        tags: { source: "v1" },
        extra: null
      })
    })
  })

  describe("strings with a lone surrogate (no Unicode text: UTF-8 cannot hold them)", () => {
    const schema = AvroSchema.makeUnsafe({
      type: "record",
      name: "Text",
      fields: [
        { name: "s", type: "string" },
        { name: "tags", type: { type: "array", items: "string" } }
      ]
    })

    it("are refused by validation, naming the field, the code unit and where it is", () => {
      const validate = AvroBridge.makeAvroValidator(schema)
      const bad = validate({ s: "ok 😀 then \ud83d", tags: [] })
      assert.isFalse(bad.ok)
      assert.strictEqual(
        bad.ok ? "" : bad.message,
        's: Expected a string of Unicode text, got one with a lone surrogate (\\ud83d at index 11), which UTF-8 cannot encode: "ok 😀 then \\ud83d"'
      )
      const low = validate({ s: "fine", tags: ["a", "\ude00b"] })
      assert.match(low.ok ? "" : low.message, /^tags\[1\]: .*lone surrogate \(\\ude00 at index 0\)/)
      // Pairs are text: emoji, and characters beyond the BMP, pass.
      assert.isTrue(validate({ s: "😀𝄞", tags: ["\u{10ffff}"] }).ok)
    })

    it("are refused by avsc's checks and encoder, whatever their length", () => {
      const type = AvroBridge.toAvroType(schema)
      for (const s of ["\ud800", `${"x".repeat(100)}\udfff`]) {
        assert.isFalse(type.isValid({ s, tags: [] }))
        assert.throws(() => type.toBuffer({ s, tags: [] }), /lone surrogate/)
      }
    })
  })

  describe("resolution with field names every object has", () => {
    const writer = AvroBridge.toAvroType(
      AvroSchema.makeUnsafe({
        type: "record",
        name: "Odd",
        fields: [
          { name: "id", type: "long" },
          { name: "constructor", type: "string" },
          { name: "toString", type: "int" },
          { name: "dropped", type: "string", aliases: ["valueOf"] }
        ]
      })
    )
    const bytes = writer.toBuffer({ id: 1, constructor: "c", toString: 7, dropped: "x" })

    it("matches them like any other name: both sides, reordered, promoted, and missing with a default", () => {
      const reader = AvroBridge.toAvroType(
        AvroSchema.makeUnsafe({
          type: "record",
          name: "Odd",
          fields: [
            { name: "toString", type: "long" },
            { name: "constructor", type: "string" },
            { name: "id", type: "long" },
            { name: "hasOwnProperty", type: ["null", "string"], default: null }
          ]
        })
      )
      assertSame(reader.fromBuffer(bytes, reader.createResolver(writer)), {
        toString: 7,
        constructor: "c",
        id: 1,
        hasOwnProperty: null
      })
    })

    it("refuses a reader field the writer lacks without a default, naming it", () => {
      const reader = AvroBridge.toAvroType(
        AvroSchema.makeUnsafe({
          type: "record",
          name: "Odd",
          fields: [
            { name: "id", type: "long" },
            { name: "isPrototypeOf", type: "string" }
          ]
        })
      )
      assert.throws(
        () => reader.createResolver(writer),
        /^no matching field for default-less (\S+\.)?Odd\.isPrototypeOf$/
      )
    })

    it("reads a field by an alias named like one", () => {
      const reader = AvroBridge.toAvroType(
        AvroSchema.makeUnsafe({
          type: "record",
          name: "Odd",
          fields: [
            { name: "id", type: "long" },
            { name: "renamed", type: "string", aliases: ["dropped"] }
          ]
        })
      )
      assertSame(reader.fromBuffer(bytes, reader.createResolver(writer)), { id: 1, renamed: "x" })
    })
  })

  describe("toAvroType with plain avsc writers", () => {
    it("reads data written by a plain avsc type into the record representation", () => {
      const plainWriter = avro.Type.forSchema(Kitchen as unknown as avro.Schema, { wrapUnions: "auto" })
      const reader = AvroBridge.toAvroType(Kitchen)
      // avsc's own long stops at ±(2^53-2); decimals are raw two's complement bytes (-123456.789 at scale 3).
      const written = {
        ...kitchenRecord,
        l: 12345,
        b: Buffer.from([0, 1, 2]),
        fx: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
        ts: kitchenRecord.ts.getTime(),
        tsu: kitchenRecord.tsu.getTime() * 1000,
        day: 19782,
        price: Buffer.from([0xf8, 0xa4, 0x32, 0xeb]),
        wide: Buffer.alloc(16),
        withDefault: Buffer.from([1]),
        days: [0, 1]
      }
      const read = reader.fromBuffer(plainWriter.toBuffer(written), reader.createResolver(plainWriter))
      assertSame(read, { ...kitchenRecord, l: 12345, wide: BigDecimal.make(0n, 10) })
    })
  })

  describe("fromSchema", () => {
    it.effect("gives back the Avro schema of a codec made by toSchema", () =>
      Effect.gen(function* () {
        const avro = yield* AvroBridge.fromSchema(AvroBridge.toSchema(Kitchen), {
          name: "Kitchen",
          namespace: "test.bridge"
        })
        assert.deepStrictEqual(avro, Kitchen)
      })
    )

    it.effect("describes hand-written structs, and toSchema of the result decodes the same records", () =>
      Effect.gen(function* () {
        const Status = Schema.Literals(["open", "closed"]).annotate({ identifier: "Status", description: "State" })
        const Order = Schema.Struct({
          id: AvroBridge.uuid,
          quantity: Schema.Int,
          small: Schema.Int.check(Schema.isInt32()),
          ratio: Schema.Finite,
          price: AvroBridge.decimal({ precision: 12, scale: 2 }).pipe(
            Schema.annotateKey({ description: "Unit price" })
          ),
          status: Status,
          previous: Schema.NullOr(Status),
          createdAt: Schema.Date,
          day: AvroBridge.date,
          payload: Schema.Uint8Array,
          lines: Schema.Array(Schema.Struct({ sku: Schema.String, qty: AvroBridge.int })),
          attributes: Schema.Record(Schema.String, Schema.Boolean),
          note: AvroBridge.optional(Schema.String),
          channel: Schema.String.pipe(AvroBridge.withDefault("web")),
          due: AvroBridge.timestampMicros.pipe(AvroBridge.withDefault(new Date(0)))
        })
        const avro = yield* AvroBridge.fromSchema(Order, { name: "Order", namespace: "shop", doc: "An order" })
        assert.deepStrictEqual(avro, {
          type: "record",
          name: "Order",
          namespace: "shop",
          doc: "An order",
          fields: [
            { name: "id", type: { type: "string", logicalType: "uuid" } },
            { name: "quantity", type: "long" },
            { name: "small", type: "int" },
            { name: "ratio", type: "double" },
            {
              name: "price",
              type: { type: "bytes", logicalType: "decimal", precision: 12, scale: 2 },
              doc: "Unit price"
            },
            { name: "status", type: { type: "enum", name: "Status", doc: "State", symbols: ["open", "closed"] } },
            { name: "previous", type: ["null", "Status"], default: null },
            { name: "createdAt", type: { type: "long", logicalType: "timestamp-millis" } },
            { name: "day", type: { type: "int", logicalType: "date" } },
            { name: "payload", type: "bytes" },
            {
              name: "lines",
              type: {
                type: "array",
                items: {
                  type: "record",
                  name: "Lines",
                  fields: [
                    { name: "sku", type: "string" },
                    { name: "qty", type: "int" }
                  ]
                }
              }
            },
            { name: "attributes", type: { type: "map", values: "boolean" } },
            { name: "note", type: ["null", "string"], default: null },
            { name: "channel", type: "string", default: "web" },
            { name: "due", type: { type: "long", logicalType: "timestamp-micros" }, default: 0 }
          ]
        })
        const input = {
          id: "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e",
          quantity: 3,
          small: 1,
          ratio: 0.5,
          price: "9.99",
          status: "open",
          previous: null,
          createdAt: "2024-05-01T00:00:00.000Z",
          day: "2024-05-01",
          payload: "AQI=",
          lines: [{ sku: "a", qty: 2 }],
          attributes: { gift: true },
          note: null,
          channel: "app",
          due: "1970-01-01T00:00:00.000Z"
        }
        const viaAvro = Schema.decodeUnknownSync(AvroBridge.toSchema(avro))(input)
        const viaEffect = Schema.decodeUnknownSync(
          Order.mapFields((fields) => ({ ...fields, createdAt: AvroBridge.timestampMillis, payload: AvroBridge.bytes }))
        )(input)
        assertSame(viaAvro, viaEffect)
      })
    )

    it.effect("names reused and recursive types once, and keeps the full names of types from other namespaces", () =>
      Effect.gen(function* () {
        interface Tree {
          readonly value: number
          readonly children: ReadonlyArray<Tree>
        }
        const Tree = Schema.Struct({
          value: AvroBridge.int,
          children: Schema.Array(Schema.suspend((): Schema.Codec<Tree> => Tree))
        })
        const tree = yield* AvroBridge.fromSchema(Tree, { name: "Tree", namespace: "t" })
        assert.deepStrictEqual(tree, {
          type: "record",
          name: "Tree",
          namespace: "t",
          fields: [
            { name: "value", type: "int" },
            { name: "children", type: { type: "array", items: "Tree" } }
          ]
        })
        const decoded = Schema.decodeUnknownSync(AvroBridge.toSchema(tree))({
          value: 1,
          children: [{ value: 2, children: [] }]
        })
        assert.deepStrictEqual(decoded, { value: 1, children: [{ value: 2, children: [] }] })

        const Other = AvroSchema.makeUnsafe({
          type: "record",
          name: "Other",
          namespace: "elsewhere",
          fields: [{ name: "level", type: { type: "enum", name: "Level", symbols: ["low", "high"] } }]
        })
        const level = (AvroBridge.toSchema(Other).ast as SchemaAST.Objects).propertySignatures[0]!.type
        const Level = Schema.make<Schema.Codec<"low" | "high">>(level)
        const Mixed = Schema.Struct({
          a: Level,
          b: Level,
          kind: Schema.Literal("only"),
          either: Schema.Union([Schema.Null, Schema.String, Schema.Int]),
          pair: Schema.Union([Schema.String, Schema.Boolean]),
          nested: Schema.Struct({ z: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10 })) }),
          maybe: Schema.NullOr(Schema.Union([Schema.Null, Schema.String]))
        })
        const mixed = yield* AvroBridge.fromSchema(Mixed, { name: "Mixed", namespace: "here" })
        assert.deepStrictEqual(mixed.fields, [
          { name: "a", type: { type: "enum", name: "Level", namespace: "elsewhere", symbols: ["low", "high"] } },
          { name: "b", type: "elsewhere.Level" },
          { name: "kind", type: { type: "enum", name: "Kind", symbols: ["only"] } },
          { name: "either", type: ["null", "string", "long"], default: null },
          { name: "pair", type: ["string", "boolean"] },
          { name: "nested", type: { type: "record", name: "Nested", fields: [{ name: "z", type: "int" }] } },
          { name: "maybe", type: ["null", "string"], default: null }
        ])
      })
    )

    it.effect("converts defaults between Avro's JSON encoding and record values, in both directions", () =>
      Effect.gen(function* () {
        const Defaults = AvroSchema.makeUnsafe({
          type: "record",
          name: "Defaults",
          fields: [
            { name: "b", type: "bytes", default: "\u0001\u00ff" },
            { name: "fx", type: { type: "fixed", name: "Two", size: 2 }, default: "ab" },
            {
              name: "money",
              type: { type: "fixed", name: "Money", size: 8, logicalType: "decimal", precision: 10, scale: 2 },
              default: "\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00fb\u002e"
            },
            { name: "day", type: { type: "int", logicalType: "date" }, default: 19782 },
            { name: "at", type: { type: "long", logicalType: "timestamp-millis" }, default: 1714564800000 },
            { name: "color", type: { type: "enum", name: "Color", symbols: ["red", "blue"] }, default: "blue" },
            {
              name: "point",
              type: {
                type: "record",
                name: "P",
                fields: [
                  { name: "x", type: "int" },
                  { name: "y", type: "int", default: 7 }
                ]
              },
              default: { x: 1 }
            },
            { name: "points", type: { type: "array", items: "P" }, default: [{ x: 2, y: 3 }] },
            { name: "byName", type: { type: "map", values: "P" }, default: { a: { x: 4 } } },
            { name: "maybe", type: ["P", "null"], default: { x: 5 } }
          ]
        })
        const expected = {
          b: new Uint8Array([1, 255]),
          fx: new Uint8Array([97, 98]),
          money: BigDecimal.make(-1234n, 2),
          day: "2024-02-29",
          at: new Date(1714564800000),
          color: "blue",
          point: { x: 1, y: 7 },
          points: [{ x: 2, y: 3 }],
          byName: { a: { x: 4, y: 7 } },
          maybe: { x: 5, y: 7 }
        }
        const codec = AvroBridge.toSchema(Defaults)
        assertSame(Schema.decodeUnknownSync(codec)({}), expected)
        const validated = AvroBridge.makeValidator(codec)({})
        assert.isTrue(validated.ok)
        if (validated.ok) assertSame(validated.value, expected)
        const type = AvroBridge.toAvroType(Defaults)
        assertSame(type.fromBuffer(type.toBuffer({})), expected)
        assert.deepStrictEqual(yield* AvroBridge.fromSchema(codec, { name: "Defaults" }), Defaults)

        const P = Schema.Struct({ x: AvroBridge.int, y: AvroBridge.int.pipe(AvroBridge.withDefault(7)) }).annotate({
          identifier: "P"
        })
        const HandWritten = Schema.Struct({
          b: AvroBridge.bytes.pipe(AvroBridge.withDefault(expected.b)),
          fx: AvroBridge.fixed({ name: "Two", size: 2 }).pipe(AvroBridge.withDefault(expected.fx)),
          money: AvroBridge.decimal({ precision: 10, scale: 2, fixed: { name: "Money", size: 8 } }).pipe(
            AvroBridge.withDefault(expected.money)
          ),
          day: AvroBridge.date.pipe(AvroBridge.withDefault(expected.day)),
          at: AvroBridge.timestampMillis.pipe(AvroBridge.withDefault(expected.at)),
          point: P.pipe(AvroBridge.withDefault(expected.point)),
          points: Schema.Array(P).pipe(AvroBridge.withDefault(expected.points)),
          byName: Schema.Record(Schema.String, P).pipe(AvroBridge.withDefault(expected.byName)),
          maybe: Schema.NullOr(P).pipe(AvroBridge.withDefault<Schema.NullOr<typeof P>>(null)),
          ratio: AvroBridge.float.pipe(AvroBridge.withDefault(0.5))
        })
        const derived = yield* AvroBridge.fromSchema(HandWritten, { name: "Defaults" })
        assert.deepStrictEqual(
          derived.fields.map((field) => [field.name, field.default]),
          [
            ["b", "\u0001\u00ff"],
            ["fx", "ab"],
            ["money", "\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00fb\u002e"],
            ["day", 19782],
            ["at", 1714564800000],
            ["point", { x: 1, y: 7 }],
            ["points", [{ x: 2, y: 3 }]],
            ["byName", { a: { x: 4, y: 7 } }],
            ["maybe", null],
            ["ratio", 0.5]
          ]
        )
        const decodedDefaults = Schema.decodeUnknownSync(HandWritten)({})
        const { color: _, ...withoutColor } = expected
        assertSame(decodedDefaults, { ...withoutColor, maybe: null, ratio: 0.5 })
      })
    )

    it.effect("fails clearly on schemas Avro cannot express, naming the field", () =>
      Effect.gen(function* () {
        const fail = (fields: Schema.Struct.Fields) =>
          AvroBridge.fromSchema(Schema.Struct(fields), { name: "X" }).pipe(Effect.flip)
        const optional = yield* fail({ a: Schema.optionalKey(Schema.String) })
        assert.strictEqual(optional._tag, "UnsupportedSchema")
        assert.include(optional.message, "Cannot convert X to Avro at a: optional keys have no Avro equivalent")
        assert.include(optional.message, "AvroBridge.optional")
        const decimal = yield* fail({ amount: Schema.BigDecimal })
        assert.include(decimal.message, "at amount: a BigDecimal needs a precision and scale")
        const tuple = yield* fail({ pair: Schema.Tuple([Schema.String, Schema.Number]) })
        assert.include(tuple.message, "at pair: tuples have no Avro equivalent")
        const bigint = yield* fail({ nested: Schema.Struct({ big: Schema.BigInt }) })
        assert.include(bigint.message, "at nested.big:")
        const undef = yield* fail({ u: Schema.UndefinedOr(Schema.String) })
        assert.include(undef.message, "undefined is not an Avro value")
        const badDefault = yield* fail({ d: Schema.String.pipe(AvroBridge.withDefault(5 as unknown as string)) })
        assert.include(badDefault.message, "the default 5 is not a value of the field's Avro type")
        const notStruct = yield* AvroBridge.fromSchema(Schema.String, { name: "X" }).pipe(Effect.flip)
        assert.include(notStruct.message, "expected a struct")
      })
    )
  })
})
