import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as AvroWire from "../../src/formats/AvroWire.ts"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../../src/schema/AvroSchema.ts"

const v1 = {
  type: "record",
  name: "Payment",
  fields: [
    { name: "id", type: "string" },
    { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 10, scale: 2 } },
    { name: "at", type: { type: "long", logicalType: "timestamp-millis" } }
  ]
} as const
const v2 = { ...v1, fields: [...v1.fields, { name: "note", type: ["null", "string"], default: null }] }
const type1 = AvroBridge.toAvroType(v1 as unknown as AvroSchema.Schema)
const type2 = AvroBridge.toAvroType(v2 as unknown as AvroSchema.Schema)
const payment = { id: "p1", amount: BigDecimal.fromStringUnsafe("12.30"), at: new Date("2026-11-26T10:00:00.000Z") }

describe("AvroWire", () => {
  it("round-trips a single Avro binary datum with logical types", () => {
    const codec = AvroWire.binary(type1)
    const encoded = codec.encode(payment)
    assert.isTrue(encoded.ok)
    const decoded = codec.decode(encoded.ok ? encoded.bytes : new Uint8Array())
    assert.isTrue(decoded.ok)
    assert.deepStrictEqual(decoded.ok ? { ...(decoded.value as object) } : undefined, payment)
  })

  it("resolves data written with an older schema to the reader schema", () => {
    const bytes = type1.toBuffer(payment)
    const decoded = AvroWire.binary(type2, { writer: type1 }).decode(bytes)
    assert.deepStrictEqual(decoded.ok ? { ...(decoded.value as object) } : undefined, { ...payment, note: null })
  })

  it("reports truncated, padded and garbage payloads instead of throwing", () => {
    const codec = AvroWire.binary(type1)
    const bytes = type1.toBuffer(payment)
    for (const bad of [
      bytes.subarray(0, 3),
      Buffer.concat([bytes, Buffer.from([1, 2])]),
      Uint8Array.from([0xff, 0xff, 0xff])
    ]) {
      const decoded = codec.decode(bad)
      assert.isFalse(decoded.ok)
      assert.include(decoded.ok ? "" : decoded.message, "invalid Avro payload")
    }
    const encoded = codec.encode({ id: 1 })
    assert.isFalse(encoded.ok)
    assert.include(encoded.ok ? "" : encoded.message, "cannot encode as Avro")
  })

  it("frames the Confluent wire format: magic byte 0 and a 4-byte big-endian schema id", () => {
    const framed = AvroWire.frame(0x01020304, Uint8Array.from([9, 8]))
    assert.deepStrictEqual([...framed], [0, 1, 2, 3, 4, 9, 8])
    const back = AvroWire.unframe(framed)
    assert.isTrue(back.ok && back.schemaId === 0x01020304 && back.datum.length === 2)
    const wrongMagic = AvroWire.unframe(Uint8Array.from([1, 0, 0, 0, 1, 0]))
    assert.isFalse(wrongMagic.ok)
    assert.include(wrongMagic.ok ? "" : wrongMagic.message, "magic byte 1")
    assert.include(AvroWire.unframe(Uint8Array.from([0, 0])).ok ? "" : "short", "short")
  })

  it("maps schema ids to local schemas, with an optional reader schema", () => {
    const codec = AvroWire.confluent({
      schemas: new Map([
        [7, type1],
        [8, type2]
      ]),
      writeId: 7
    })
    const encoded = codec.encode(payment)
    assert.isTrue(encoded.ok)
    const bytes = encoded.ok ? encoded.bytes : new Uint8Array()
    assert.strictEqual(Buffer.from(bytes).readUInt32BE(1), 7)
    const decoded = codec.decode(bytes)
    assert.isTrue(decoded.ok && decoded.schemaId === 7)
    const reader = AvroWire.confluent({ schemas: new Map([[7, type1]]), reader: type2 }).decode(bytes)
    assert.deepStrictEqual(reader.ok ? { ...(reader.value as object) } : undefined, { ...payment, note: null })
    const unknown = AvroWire.confluent({ schemas: new Map([[8, type2]]) }).decode(bytes)
    assert.isFalse(unknown.ok)
    assert.strictEqual(unknown.ok ? "" : unknown.message, "unknown schema id 7; known ids: 8")
    const noId = AvroWire.confluent({ schemas: new Map([[8, type2]]) }).encode(payment)
    assert.isFalse(noId.ok)
  })

  it("reads ids added after it was built, and reports a writer schema the reader cannot resolve", () => {
    const schemas = new Map<number, typeof type1>()
    const codec = AvroWire.confluent({ schemas, reader: type2 })
    const bytes = AvroWire.confluent({ schemas: new Map([[9, type1]]), writeId: 9 }).encode(payment)
    assert.isTrue(bytes.ok)
    const payload = bytes.ok ? bytes.bytes : new Uint8Array()
    assert.isFalse(codec.decode(payload).ok)
    schemas.set(9, type1)
    const read = codec.decode(payload)
    assert.deepStrictEqual(read.ok ? { ...(read.value as object) } : undefined, { ...payment, note: null })
    // A reader with a required field the writer lacks (no default) cannot read the data: an error, not a throw.
    const strict = AvroBridge.toAvroType({
      ...v1,
      fields: [...v1.fields, { name: "region", type: "string" }]
    } as unknown as AvroSchema.Schema)
    const unreadable = AvroWire.confluent({ schemas: new Map([[9, type1]]), reader: strict }).decode(payload)
    assert.isFalse(unreadable.ok)
    assert.include(
      unreadable.ok ? "" : unreadable.message,
      "the writer schema of id 9 cannot be read as the reader schema"
    )
  })
})

describe("AvroWire with AvroFast", () => {
  it("writes avsc's bytes and reads avsc's values, rejecting padded and truncated payloads with avsc's messages", () => {
    const codec = AvroWire.binary(type2)
    const records = [payment, { ...payment, note: "ünïcode" }, { ...payment, id: "", amount: BigDecimal.make(-1n, 2) }]
    for (const record of records) {
      const value = { ...record, note: "note" in record ? record.note : null }
      const encoded = codec.encode(value)
      assert.isTrue(encoded.ok)
      const bytes = encoded.ok ? encoded.bytes : new Uint8Array()
      assert.deepStrictEqual([...bytes], [...type2.toBuffer(value)])
      const decoded = codec.decode(bytes)
      assert.deepStrictEqual(decoded.ok ? { ...(decoded.value as object) } : decoded, value)
      const padded = codec.decode(Buffer.concat([bytes, Buffer.of(0)]))
      assert.deepStrictEqual(padded, {
        ok: false,
        message: `invalid Avro payload (${bytes.length + 1} bytes): trailing data`
      })
      const truncated = codec.decode(bytes.subarray(0, bytes.length - 1))
      assert.isFalse(truncated.ok)
    }
    const invalid = codec.encode({ ...payment, note: null, amount: BigDecimal.make(1n, 3) })
    assert.isFalse(invalid.ok)
  })
})

describe("AvroWire on hostile data", () => {
  const zigzag = (n: number): Array<number> => {
    const out: Array<number> = []
    let v = n >= 0 ? n * 2 : -n * 2 - 1
    while (v >= 0x80) {
      out.push((v % 128) | 0x80)
      v = Math.floor(v / 128)
    }
    out.push(v)
    return out
  }
  const listed = AvroBridge.toAvroType({
    type: "record",
    name: "Listed",
    fields: [
      { name: "xs", type: { type: "array", items: "int" } },
      { name: "tags", type: { type: "map", values: "string" } },
      // A general union: no fast codec, so avsc reads it all.
      { name: "u", type: ["null", "int", "string"] }
    ]
  } as unknown as AvroSchema.Schema)

  it("a few bytes claiming billions of array or map items are a decode error at once, not gigabytes of memory", () => {
    const codec = AvroWire.binary(listed)
    // xs: a block of 2^31 ints, then nothing.
    const array = codec.decode(Uint8Array.from([...zigzag(2 ** 31), 2, 0]))
    assert.isFalse(array.ok)
    assert.include(array.ok ? "" : array.message, "a block of 2147483648 items with 2 bytes left")
    // xs empty, tags: a block of 10^9 entries (negative count: with its byte size).
    const map = codec.decode(Uint8Array.from([0, ...zigzag(-1e9), ...zigzag(4), 2, 0]))
    assert.isFalse(map.ok)
    assert.include(map.ok ? "" : map.message, "a block of 1000000000 items with 2 bytes left")
    // Legitimate data still reads.
    const fine = codec.encode({ xs: [1, 2, 3], tags: { a: "b" }, u: "x" })
    assert.isTrue(fine.ok)
    const back = codec.decode(fine.ok ? fine.bytes : new Uint8Array())
    assert.deepStrictEqual(back.ok ? back.value : undefined, { xs: [1, 2, 3], tags: { a: "b" }, u: "x" })
  })

  it("a decimal claiming a negative length is a decode error, not a read from bytes already read", () => {
    // amount: length -2 (zigzag 3), then the rest of a payment.
    const decoded = AvroWire.binary(type1).decode(Uint8Array.from([4, 0x70, 0x31, 3, 0x04, 0xce, 0x02]))
    assert.isFalse(decoded.ok)
    assert.include(decoded.ok ? "" : decoded.message, "a decimal of -2 bytes")
  })

  it("an enum takes only its own symbols (never `constructor`, `toString`, `__proto__`)", () => {
    const type = AvroBridge.toAvroType({
      type: "record",
      name: "E",
      fields: [{ name: "e", type: { type: "enum", name: "Sym", symbols: ["a", "b"] } }]
    } as unknown as AvroSchema.Schema)
    const codec = AvroWire.binary(type)
    for (const bad of ["constructor", "toString", "__proto__", "hasOwnProperty", "c"]) {
      const encoded = codec.encode({ e: bad })
      assert.isFalse(encoded.ok, bad)
      assert.include(encoded.ok ? "" : encoded.message, `got "${bad}"`)
      assert.isFalse(type.isValid({ e: bad }), bad)
    }
    const own = codec.encode({ e: "b" })
    const back = codec.decode(own.ok ? own.bytes : new Uint8Array())
    assert.deepStrictEqual(back.ok ? back.value : undefined, { e: "b" })
  })

  it("a string with a lone surrogate is an encode error, short or long, fast codec or not", () => {
    const plain = AvroBridge.toAvroType({
      type: "record",
      name: "T",
      fields: [{ name: "s", type: "string" }]
    } as unknown as AvroSchema.Schema)
    for (const [type, field] of [
      [plain, "s"],
      [listed, "u"]
    ] as const) {
      const codec = AvroWire.binary(type)
      const record = (s: string) => (field === "s" ? { s } : { xs: [], tags: {}, u: s })
      for (const s of ["a\ud800", `${"é".repeat(40)}\udc00`]) {
        const encoded = codec.encode(record(s))
        assert.isFalse(encoded.ok, s)
        assert.include(encoded.ok ? "" : encoded.message, "lone surrogate")
      }
      // A map key is text too.
      if (field === "u") {
        const keyed = codec.encode({ xs: [], tags: { "k\udbff": "v" }, u: null })
        assert.include(keyed.ok ? "" : keyed.message, "lone surrogate (\\udbff at index 1)")
      }
      // The same text with the pair whole is written and read back as it was.
      const whole = codec.encode(record(`${"é".repeat(40)}😀`))
      const back = codec.decode(whole.ok ? whole.bytes : new Uint8Array())
      assert.deepStrictEqual(back.ok ? back.value : undefined, record(`${"é".repeat(40)}😀`))
    }
  })

  it("a value avsc's checks throw on (a bigint where an int goes) is an encode error, not a crash", () => {
    const type = AvroBridge.toAvroType({
      type: "record",
      name: "N",
      fields: [{ name: "n", type: "int" }]
    } as unknown as AvroSchema.Schema)
    const encoded = AvroWire.binary(type).encode({ n: 1n })
    assert.isFalse(encoded.ok)
    assert.include(encoded.ok ? "" : encoded.message, "cannot be checked")
  })
})

describe("AvroWire with a writer schema identical to the reader's", () => {
  it("reads without a resolver what it reads with one (binary and Confluent), and still resolves a different writer", () => {
    const again = AvroBridge.toAvroType(v1 as unknown as AvroSchema.Schema)
    const bytes = AvroWire.binary(type1).encode(payment)
    const datum = bytes.ok ? bytes.bytes : new Uint8Array()
    const same = AvroWire.binary(type1, { writer: again }).decode(datum)
    assert.deepStrictEqual(same.ok ? { ...(same.value as object) } : undefined, payment)
    const confluent = AvroWire.confluent({
      schemas: new Map([
        [1, again],
        [2, type1]
      ]),
      reader: type1,
      writeId: 1
    })
    const framed = confluent.encode(payment)
    const back = confluent.decode(framed.ok ? framed.bytes : new Uint8Array())
    assert.deepStrictEqual(back.ok ? { ...(back.value as object) } : undefined, payment)
    // A writer with one field more is no longer the same schema: its data is resolved to the reader's.
    const newer = AvroWire.confluent({ schemas: new Map([[3, type2]]), reader: type1, writeId: 3 })
    const written = newer.encode({ ...payment, note: "n" })
    const resolved = newer.decode(written.ok ? written.bytes : new Uint8Array())
    assert.deepStrictEqual(resolved.ok ? { ...(resolved.value as object) } : undefined, payment)
  })
})

describe("AvroWire map keys", () => {
  it("a map key `__proto__` is data: written, read back, and never the record's prototype", () => {
    const type = AvroBridge.toAvroType({
      type: "record",
      name: "M",
      fields: [{ name: "tags", type: { type: "map", values: "string" } }]
    } as unknown as AvroSchema.Schema)
    const codec = AvroWire.binary(type)
    const tags: Record<string, string> = { a: "1" }
    Object.defineProperty(tags, "__proto__", { value: "2", enumerable: true, writable: true, configurable: true })
    const encoded = codec.encode({ tags })
    assert.isTrue(encoded.ok)
    const back = codec.decode(encoded.ok ? encoded.bytes : new Uint8Array())
    const read = (back.ok ? back.value : undefined) as { readonly tags: Record<string, string> }
    assert.deepStrictEqual(Object.keys(read.tags), ["a", "__proto__"])
    assert.strictEqual(Object.getOwnPropertyDescriptor(read.tags, "__proto__")?.value, "2")
    assert.strictEqual(Object.getPrototypeOf(read.tags), Object.prototype)
  })
})
