import { describe, it } from "@effect/vitest"
import avro from "avsc"
import * as BigDecimal from "effect/BigDecimal"
import * as fc from "fast-check"
import { assert } from "vitest"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import * as AvroFast from "../../src/schema/AvroFast.ts"
import * as AvroLogical from "../../src/schema/AvroLogical.ts"
import type * as AvroSchema from "../../src/schema/AvroSchema.ts"

// Values compared by representation: prototypes, key order, Buffer or not and decimal scales must all match.
const canonical = (value: unknown): unknown => {
  if (value instanceof Date) return { date: value.getTime() }
  if (value instanceof Uint8Array)
    return { bytes: [...value], proto: Object.getPrototypeOf(value) === Uint8Array.prototype }
  if (BigDecimal.isBigDecimal(value)) return { decimal: `${value.value}e-${value.scale}` }
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : value
  if (Array.isArray(value)) return { array: value.map(canonical), length: value.length }
  if (typeof value === "object" && value !== null) {
    return {
      proto: Object.getPrototypeOf(value) === Object.prototype,
      keys: Object.keys(value),
      values: Object.values(value).map(canonical)
    }
  }
  return value
}

const assertSame = (actual: unknown, expected: unknown) =>
  assert.deepStrictEqual(canonical(actual), canonical(expected))

// -----------------------------------------------------------------------------
// Random schemas with arbitraries of their valid values
// -----------------------------------------------------------------------------

type Shape =
  | { readonly k: "null" | "boolean" | "int" | "long" | "float" | "double" | "string" | "bytes" }
  | { readonly k: "timestamp-millis" | "timestamp-micros" | "date" | "uuid" }
  | { readonly k: "decimal"; readonly precision: number; readonly scale: number; readonly extra: number | undefined }
  | { readonly k: "fixed"; readonly size: number }
  | { readonly k: "enum"; readonly symbols: ReadonlyArray<string> }
  | { readonly k: "array"; readonly items: Shape }
  | { readonly k: "map"; readonly values: Shape }
  | { readonly k: "nullable"; readonly first: boolean; readonly inner: Shape }
  | { readonly k: "record"; readonly fields: ReadonlyArray<{ readonly name: string; readonly type: Shape }> }

const fieldName = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z_][A-Za-z0-9_]{0,6}$/) },
  { weight: 1, arbitrary: fc.constantFrom("constructor", "toString", "hasOwnProperty", "valueOf") }
)

const leaf: fc.Arbitrary<Shape> = fc.oneof(
  fc.constantFrom<Shape>(
    { k: "null" },
    { k: "boolean" },
    { k: "int" },
    { k: "long" },
    { k: "float" },
    { k: "double" },
    { k: "string" },
    { k: "bytes" },
    { k: "timestamp-millis" },
    { k: "timestamp-micros" },
    { k: "date" },
    { k: "uuid" }
  ),
  fc.integer({ min: 1, max: 40 }).chain((precision) =>
    fc.record({
      k: fc.constant("decimal" as const),
      precision: fc.constant(precision),
      scale: fc.integer({ min: 0, max: precision }),
      extra: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined })
    })
  ),
  fc.record({ k: fc.constant("fixed" as const), size: fc.integer({ min: 0, max: 6 }) }),
  fc.record({
    k: fc.constant("enum" as const),
    symbols: fc.uniqueArray(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,5}$/), { minLength: 1, maxLength: 5 })
  })
)

const { shape } = fc.letrec<{ shape: Shape; composite: Shape }>((tie) => ({
  shape: fc.oneof({ maxDepth: 3, depthIdentifier: "shape" }, leaf, tie("composite")),
  composite: fc.oneof(
    { depthIdentifier: "shape" },
    fc.record({ k: fc.constant("array" as const), items: tie("shape") }),
    fc.record({ k: fc.constant("map" as const), values: tie("shape") }),
    fc.record({
      k: fc.constant("nullable" as const),
      first: fc.boolean(),
      inner: tie("shape").filter((s) => s.k !== "null" && s.k !== "nullable")
    }),
    fc.record({
      k: fc.constant("record" as const),
      fields: fc.uniqueArray(fc.record({ name: fieldName, type: tie("shape") }), {
        maxLength: 5,
        selector: (field) => field.name
      })
    })
  )
}))

const rootShape: fc.Arbitrary<Shape> = fc
  .uniqueArray(fc.record({ name: fieldName, type: shape }), { maxLength: 6, selector: (field) => field.name })
  .map((fields) => ({ k: "record", fields }))

const sizeFor = (precision: number): number => AvroLogical.twosComplementLength(10n ** BigInt(precision))

const toSchema = (root: Shape): AvroSchema.Schema => {
  let names = 0
  const go = (s: Shape): AvroSchema.Schema => {
    switch (s.k) {
      case "timestamp-millis":
      case "timestamp-micros":
        return { type: "long", logicalType: s.k }
      case "date":
        return { type: "int", logicalType: "date" }
      case "uuid":
        return { type: "string", logicalType: "uuid" }
      case "decimal":
        return s.extra === undefined
          ? { type: "bytes", logicalType: "decimal", precision: s.precision, scale: s.scale }
          : {
              type: "fixed",
              name: `D${names++}`,
              size: sizeFor(s.precision) + s.extra,
              logicalType: "decimal",
              precision: s.precision,
              scale: s.scale
            }
      case "fixed":
        return { type: "fixed", name: `F${names++}`, size: s.size }
      case "enum":
        return { type: "enum", name: `E${names++}`, symbols: s.symbols }
      case "array":
        return { type: "array", items: go(s.items) }
      case "map":
        return { type: "map", values: go(s.values) }
      case "nullable":
        return s.first ? ["null", go(s.inner)] : [go(s.inner), "null"]
      case "record":
        return {
          type: "record",
          name: `R${names++}`,
          namespace: "test.fast",
          fields: s.fields.map((field) => ({ name: field.name, type: go(field.type) }))
        }
      default:
        return s.k
    }
  }
  return go(root)
}

const EXACT = 2 ** 52
const text = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme-ascii", minLength: 60, maxLength: 90 }),
  fc.string({ unit: "binary", minLength: 30, maxLength: 80 })
)
const key = fc.string({ unit: "grapheme", maxLength: 6 }).filter((k) => k !== "__proto__")

const arbitraryOf = (s: Shape): fc.Arbitrary<unknown> => {
  switch (s.k) {
    case "null":
      return fc.constant(null)
    case "boolean":
      return fc.boolean()
    case "int":
      return fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 30, -(2 ** 30) - 1))
    case "long":
      return fc.oneof(
        fc.integer(),
        fc.integer({ min: -(EXACT - 1), max: EXACT - 1 }),
        fc.constantFrom(EXACT - 1, -(EXACT - 1), 2 ** 30, -(2 ** 30) - 1, 2 ** 31, -(2 ** 31) - 1)
      )
    case "float":
      return fc.oneof(fc.float({ noNaN: true }), fc.double({ noNaN: true }))
    case "double":
      return fc.double({ noNaN: true })
    case "string":
      return text
    case "bytes":
      return fc.uint8Array({ maxLength: 40 })
    case "timestamp-millis":
      return fc.integer({ min: -(EXACT - 1), max: EXACT - 1 }).map((t) => new Date(t))
    case "timestamp-micros":
      return fc.integer({ min: -4_503_599_627_370, max: 4_503_599_627_370 }).map((t) => new Date(t))
    case "date":
      return fc
        .integer({ min: AvroLogical.DATE_DAYS_RANGE[0], max: AvroLogical.DATE_DAYS_RANGE[1] })
        .map((days) => AvroLogical.daysToDate(days)!)
    case "uuid":
      return fc.oneof(
        fc.uuid(),
        fc.uuid().map((u) => u.toUpperCase())
      )
    case "decimal": {
      const limit = 10n ** BigInt(s.precision) - 1n
      return fc
        .tuple(fc.bigInt({ min: -limit, max: limit }), fc.integer({ min: -2, max: 2 }))
        .map(([unscaled, shift]) => {
          // The same value at another scale: fewer fraction digits when they are zeros, or more.
          if (shift > 0) return BigDecimal.make(unscaled * 10n ** BigInt(shift), s.scale + shift)
          if (shift < 0 && s.scale + shift >= 0 && unscaled % 10n ** BigInt(-shift) === 0n)
            return BigDecimal.make(unscaled / 10n ** BigInt(-shift), s.scale + shift)
          return BigDecimal.make(unscaled, s.scale)
        })
    }
    case "fixed":
      return fc.uint8Array({ minLength: s.size, maxLength: s.size })
    case "enum":
      return fc.constantFrom(...s.symbols)
    case "array":
      return fc.array(arbitraryOf(s.items), { maxLength: 4 })
    case "map":
      return fc.dictionary(key, arbitraryOf(s.values), { maxKeys: 4 }).map((m) => ({ ...m }))
    case "nullable":
      return fc.option(arbitraryOf(s.inner), { nil: null })
    case "record": {
      const fields: Record<string, fc.Arbitrary<unknown>> = {}
      for (const field of s.fields) fields[field.name] = arbitraryOf(field.type)
      return fc
        .record(fields)
        .chain((record) => fc.constantFrom(record, { ...record }, Object.assign(Object.create(null) as object, record)))
    }
  }
}

const withValue = rootShape.chain((root) => arbitraryOf(root).map((value) => ({ schema: toSchema(root), root, value })))

// Arrays whose items take no bytes let a few corrupt bytes claim billions of items: avsc would loop on them.
const noBytes = (s: Shape): boolean =>
  s.k === "null" ||
  (s.k === "fixed" && s.size === 0) ||
  (s.k === "record" && s.fields.every((field) => noBytes(field.type)))
const boundedArrays = (s: Shape): boolean => {
  switch (s.k) {
    case "array":
      return !noBytes(s.items) && boundedArrays(s.items)
    case "map":
      return boundedArrays(s.values)
    case "nullable":
      return boundedArrays(s.inner)
    case "record":
      return s.fields.every((field) => boundedArrays(field.type))
    default:
      return true
  }
}

const codecOf = (schema: AvroSchema.Schema) => {
  const type = AvroBridge.toAvroType(schema)
  const fast = AvroFast.of(type)
  assert.isDefined(fast)
  return { type, fast: fast! }
}

const fastDecode = (fast: AvroFast.FastCodec, bytes: Uint8Array, pos = 0) => {
  const cursor = { pos }
  const value = fast.decode(bytes, cursor)
  return value === AvroFast.BAIL ? AvroFast.BAIL : { value, pos: cursor.pos }
}

const bridgeDecode = (type: avro.Type, bytes: Buffer, pos = 0) => {
  try {
    const decoded = type.decode(bytes, pos)
    return decoded.offset < 0 ? "error" : { value: decoded.value as unknown, pos: decoded.offset }
  } catch {
    return "error"
  }
}

// avsc's checks can throw (a bigint where an int is expected): that is a rejection too.
const isValid = (type: avro.Type, value: unknown): boolean => {
  try {
    return type.isValid(value)
  } catch {
    return false
  }
}

const runs = { numRuns: 300 }

describe("AvroFast", () => {
  it("decodes what the bridge encodes exactly as the bridge decodes it, without bailing", () => {
    fc.assert(
      fc.property(withValue, fc.uint8Array({ maxLength: 3 }), ({ schema, root, value }, prefix) => {
        const { type, fast } = codecOf(schema)
        const bytes = type.toBuffer(value)
        const decoded = fastDecode(fast, bytes)
        // More items than bytes left (items of no bytes) are left to avsc.
        if (!boundedArrays(root)) return
        assert.notStrictEqual(decoded, AvroFast.BAIL)
        if (decoded === AvroFast.BAIL) return
        assert.strictEqual(decoded.pos, bytes.length)
        assertSame(decoded.value, type.fromBuffer(bytes))
        // At an offset, from a plain Uint8Array.
        const shifted = new Uint8Array([...prefix, ...bytes])
        const atOffset = fastDecode(fast, shifted, prefix.length)
        assert.notStrictEqual(atOffset, AvroFast.BAIL)
        if (atOffset !== AvroFast.BAIL) assertSame(atOffset.value, decoded.value)
        // Resolving the same schema (as AvroFile does for its own files) reads the same values. (avsc cannot resolve
        // records with a field named like a property of Object.prototype: AvroFile then fails before reading.)
        const writer = avro.Type.forSchema(type.schema({ exportAttrs: true }) as avro.Schema)
        let resolver: ReturnType<avro.Type["createResolver"]> | undefined
        try {
          resolver = type.createResolver(writer)
        } catch {
          resolver = undefined
        }
        if (resolver !== undefined) assertSame(type.fromBuffer(bytes, resolver), decoded.value)
      }),
      runs
    )
  })

  it("encodes valid values to the bridge's bytes without bailing, with avsc's growth protocol", () => {
    fc.assert(
      fc.property(withValue, fc.nat(), ({ schema, value }, cut) => {
        const { type, fast } = codecOf(schema)
        assert.isTrue(type.isValid(value))
        const expected = type.toBuffer(value)
        const actual = fast.toBuffer(value)
        assert.notStrictEqual(actual, AvroFast.BAIL)
        assert.deepStrictEqual([...(actual as Buffer)], [...expected])
        const size = expected.length === 0 ? 0 : cut % expected.length
        const small = fast.encode(value, Buffer.alloc(size + 2).subarray(0, size), 0)
        assert.strictEqual(small, type.encode(value, Buffer.alloc(size), 0))
        const at = fast.encode(value, Buffer.alloc(expected.length + 5), 5)
        assert.strictEqual(at, expected.length + 5)
      }),
      runs
    )
  })

  it("bails on values the bridge rejects and writes the bridge's bytes for any value it accepts", () => {
    const odd = fc.constantFrom<unknown>(
      undefined,
      null,
      "x",
      "",
      1.5,
      -0,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 52,
      2 ** 53,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10n,
      true,
      {},
      [],
      [1],
      new Date(Number.NaN),
      new Date(8.64e15),
      new Date(2 ** 51),
      BigDecimal.make(1n, 60),
      BigDecimal.make(10n ** 40n, 0),
      new Uint8Array(3),
      Buffer.from("ab"),
      "2024-02-30",
      "00000000-0000-0000-0000-00000000000g",
      "toString",
      // Lone surrogates: no Unicode text, refused short (avsc's own loop) and long (utf8Write) alike.
      "a\ud800",
      `${"é".repeat(40)}\udc00`,
      new Map(),
      Object.create({ inherited: 1 })
    )
    fc.assert(
      fc.property(withValue, fc.array(fc.nat(), { maxLength: 6 }), odd, ({ schema, root, value }, path, wrong) => {
        const { type, fast } = codecOf(schema)
        const mutated = mutate(root, value, path, wrong)
        const actual = fast.toBuffer(mutated)
        if (!isValid(type, mutated)) assert.strictEqual(actual, AvroFast.BAIL)
        else if (actual !== AvroFast.BAIL) assert.deepStrictEqual([...actual], [...type.toBuffer(mutated)])
      }),
      { numRuns: 500 }
    )
  })

  it("never returns a value for bytes the bridge rejects, and returns the bridge's value otherwise", () => {
    const corrupt = fc.oneof(
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant("flip" as const),
        at: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
      }),
      fc.record({ kind: fc.constant("random" as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
      fc.record({ kind: fc.constant("trail" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 3 }) })
    )
    fc.assert(
      fc.property(
        withValue.filter(({ root }) => boundedArrays(root)),
        corrupt,
        ({ schema, value }, how) => {
          const { type, fast } = codecOf(schema)
          const valid = type.toBuffer(value)
          let bytes: Buffer
          switch (how.kind) {
            case "truncate":
              bytes = valid.subarray(0, valid.length === 0 ? 0 : how.at % valid.length)
              break
            case "flip":
              bytes = Buffer.from(valid)
              if (bytes.length > 0) for (const [at, byte] of how.at) bytes[at % bytes.length] = byte
              break
            case "random":
              bytes = Buffer.from(how.bytes)
              break
            case "trail":
              bytes = Buffer.concat([valid, how.bytes])
              break
          }
          // Only when the fast decoder returns a value is avsc asked: on corrupt counts avsc itself fills arrays of
          // millions of items before it notices that the bytes ran out.
          const actual = fastDecode(fast, bytes)
          if (actual === AvroFast.BAIL) return
          const expected = bridgeDecode(type, bytes)
          assert.notStrictEqual(expected, "error")
          if (expected !== "error") {
            assert.strictEqual(actual.pos, expected.pos)
            assertSame(actual.value, expected.value)
          }
        }
      ),
      { numRuns: 1000 }
    )
  })

  it("decodes strings with invalid UTF-8 to the bridge's replacement characters", () => {
    const { type, fast } = codecOf({
      type: "record",
      name: "Text",
      fields: [
        { name: "s", type: "string" },
        { name: "m", type: { type: "map", values: "string" } }
      ]
    })
    const nasty = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc
        .constantFrom(
          [0xed, 0xa0, 0x80],
          [0xc0, 0x80],
          [0xe2, 0x82],
          [0xf5, 0x80, 0x80, 0x80],
          [0xf0, 0x9f, 0x98],
          [0xff],
          [0x61, 0xed, 0xbf, 0xbf, 0x62],
          [0xef, 0xbb, 0xbf, 0x41]
        )
        .map((bytes) => Uint8Array.from(bytes))
    )
    const varint = (n: number): Array<number> => {
      const out: Array<number> = []
      let z = n * 2
      while (z >= 128) {
        out.push((z % 128) | 0x80)
        z = Math.floor(z / 128)
      }
      out.push(z)
      return out
    }
    fc.assert(
      fc.property(nasty, nasty, (a, b) => {
        const bytes = Buffer.from([...varint(a.length), ...a, ...varint(1), ...varint(b.length), ...b, 0, 0])
        const decoded = fastDecode(fast, bytes)
        assert.notStrictEqual(decoded, AvroFast.BAIL)
        if (decoded !== AvroFast.BAIL) {
          assertSame(decoded.value, type.fromBuffer(bytes))
          assert.strictEqual((decoded.value as { s: string }).s, Buffer.from(a).toString("utf8"))
        }
      }),
      { numRuns: 500 }
    )
  })

  it("reads any long as the bridge does for ints, longs, dates and timestamps", () => {
    const plainLong = avro.Type.forSchema("long")
    const shapes: ReadonlyArray<AvroSchema.Schema> = [
      "int",
      "long",
      { type: "int", logicalType: "date" },
      { type: "long", logicalType: "timestamp-millis" },
      { type: "long", logicalType: "timestamp-micros" }
    ]
    const codecs = shapes.map((schema) => codecOf({ type: "record", name: "L", fields: [{ name: "n", type: schema }] }))
    const long = fc.oneof(
      fc.integer({ min: -(EXACT - 1), max: EXACT - 1 }),
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map((n) => n * 1000 + 1),
      fc.constantFrom(-1, -999, -1000, -1001, 1001, 2 ** 31, -(2 ** 31) - 1, 2 ** 52 - 1)
    )
    fc.assert(
      fc.property(long, (n) => {
        const bytes = plainLong.toBuffer(n)
        for (const { type, fast } of codecs) {
          const expected = bridgeDecode(type, bytes)
          const actual = fastDecode(fast, bytes)
          if (expected === "error") assert.strictEqual(actual, AvroFast.BAIL)
          else {
            assert.notStrictEqual(actual, AvroFast.BAIL)
            if (actual !== AvroFast.BAIL) assertSame(actual.value, expected.value)
          }
        }
      }),
      { numRuns: 500 }
    )
  })

  it("bails on longs and timestamps beyond ±2^52, which the bridge codes with bigints", () => {
    const { type, fast } = codecOf({
      type: "record",
      name: "Big",
      fields: [
        { name: "n", type: "long" },
        { name: "t", type: { type: "long", logicalType: "timestamp-millis" } }
      ]
    })
    for (const record of [
      { n: 2 ** 52, t: new Date(0) },
      { n: -(2 ** 52), t: new Date(0) },
      { n: Number.MAX_SAFE_INTEGER, t: new Date(0) },
      { n: 0, t: new Date(8.64e15) }
    ]) {
      assert.strictEqual(fast.toBuffer(record), AvroFast.BAIL)
      assert.strictEqual(fastDecode(fast, type.toBuffer(record)), AvroFast.BAIL)
    }
  })

  it("reads and writes recursive schemas and references to named types across namespaces", () => {
    const schema: AvroSchema.Schema = {
      type: "record",
      name: "Node",
      namespace: "test.list",
      fields: [
        { name: "label", type: { type: "enum", name: "other.Label", symbols: ["a", "b"] } },
        { name: "again", type: "other.Label" },
        { name: "id", type: { type: "fixed", name: "Id", size: 2 } },
        { name: "ids", type: { type: "array", items: "test.list.Id" } },
        { name: "next", type: ["null", "Node"], default: null },
        { name: "only", type: ["string"] },
        { name: "empty", type: { type: "record", name: "Empty", fields: [] } }
      ]
    }
    const { type, fast } = codecOf(schema)
    const node = (depth: number): unknown => ({
      label: depth % 2 === 0 ? "a" : "b",
      again: "b",
      id: Uint8Array.of(depth, 1),
      ids: [Uint8Array.of(1, 2)],
      next: depth === 0 ? null : node(depth - 1),
      only: `n${depth}`,
      empty: {}
    })
    const value = node(5)
    const bytes = type.toBuffer(value)
    assert.deepStrictEqual([...(fast.toBuffer(value) as Buffer)], [...bytes])
    const decoded = fastDecode(fast, bytes)
    assert.notStrictEqual(decoded, AvroFast.BAIL)
    if (decoded !== AvroFast.BAIL) assertSame(decoded.value, type.fromBuffer(bytes))
  })

  it("bails on a map key __proto__, which avsc would turn into the map's prototype", () => {
    const { type, fast } = codecOf({ type: "map", values: "int" })
    const bytes = type.toBuffer(JSON.parse(`{"a": 1, "__proto__": 2}`))
    assert.strictEqual(fastDecode(fast, bytes), AvroFast.BAIL)
  })

  it("bails on text with a lone surrogate (a string, an array item, a map key), which the bridge refuses", () => {
    const { type, fast } = codecOf({
      type: "record",
      name: "S",
      fields: [
        { name: "s", type: "string" },
        { name: "xs", type: { type: "array", items: "string" } },
        { name: "m", type: { type: "map", values: "int" } },
        { name: "n", type: ["null", "string"] }
      ]
    })
    const good = { s: "é😀", xs: ["a", "𝄞"], m: { ключ: 1 }, n: "x" }
    assert.deepStrictEqual([...(fast.toBuffer(good) as Uint8Array)], [...type.toBuffer(good)])
    for (const lone of ["\ud800", `${"é".repeat(40)}\udfff`, "a\udc00b"]) {
      assert.strictEqual(fast.toBuffer({ ...good, s: lone }), AvroFast.BAIL)
      assert.strictEqual(fast.toBuffer({ ...good, xs: ["ok", lone] }), AvroFast.BAIL)
      assert.strictEqual(fast.toBuffer({ ...good, m: { [lone]: 1 } }), AvroFast.BAIL)
      assert.strictEqual(fast.toBuffer({ ...good, n: lone }), AvroFast.BAIL)
    }
  })

  it("has no fast codec for general unions, fields named __proto__ or types not made by the bridge", () => {
    assert.isUndefined(AvroFast.make(["null", "string", "long"]))
    assert.isUndefined(AvroFast.make(["string", "long"]))
    assert.isUndefined(AvroFast.make({ type: "record", name: "P", fields: [{ name: "__proto__", type: "string" }] }))
    assert.isUndefined(AvroFast.of(avro.Type.forSchema("string")))
    assert.isDefined(AvroFast.of(AvroBridge.toAvroType("string")))
  })
})

// Replaces the value somewhere along `path` (indices into fields, items, entries) with `wrong`.
const mutate = (s: Shape, value: unknown, path: ReadonlyArray<number>, wrong: unknown): unknown => {
  if (path.length === 0) return wrong
  const [step, ...rest] = path as [number, ...Array<number>]
  switch (s.k) {
    case "record": {
      if (s.fields.length === 0) return wrong
      const field = s.fields[step % s.fields.length]!
      const out: Record<string, unknown> = { ...(value as object) }
      if (wrong === undefined && rest.length === 0 && step % 2 === 0) delete out[field.name]
      else out[field.name] = mutate(field.type, out[field.name], rest, wrong)
      return out
    }
    case "array": {
      const items = [...(value as ReadonlyArray<unknown>)]
      if (items.length === 0) return wrong
      items[step % items.length] = mutate(s.items, items[step % items.length], rest, wrong)
      return items
    }
    case "map": {
      const entries = Object.entries(value as object)
      if (entries.length === 0) return wrong
      const [k, v] = entries[step % entries.length]!
      return { ...(value as object), [k]: mutate(s.values, v, rest, wrong) }
    }
    case "nullable":
      return value === null ? wrong : mutate(s.inner, value, rest, wrong)
    default:
      return wrong
  }
}
