/**
 * A fast path for Avro binary in effect-etl's record representation: a decoder and an encoder compiled (with
 * `new Function`, as avsc does) from the Avro schema of a type made by `AvroBridge.toAvroType`, that build each record
 * as one object literal and write it with the validity checks inline, instead of going through avsc's record classes
 * and effect-etl's logical types.
 *
 * The contract that keeps it safe: a fast decoder or encoder returns exactly what the bridge's avsc type would (the
 * same value, deep-equal with its fields in the same order; the same bytes), or {@link BAIL}. On `BAIL` the caller runs
 * the avsc path, which gives the value or its usual error. Anything unusual bails: bytes running out, a long beyond
 * ±2^52, an invalid date, uuid, enum or union index, a value of the wrong type or out of range, a field that is
 * `undefined` (avsc would write its default), an object that is not plain, a decimal that does not fit. Schemas with
 * features the fast path does not cover (unions other than `["null", T]`, `[T, "null"]` and `[T]`, a field named
 * `__proto__`) get no fast codec at all.
 *
 * @example
 * ```ts
 * const type = AvroBridge.toAvroType(transactionAvsc)
 * const fast = AvroFast.of(type)
 * const cursor = { pos: 0 }
 * const record = fast?.decode(bytes, cursor) // BAIL → type.fromBuffer(bytes)
 * ```
 */
import type * as Avsc from "avsc"
import * as BigDecimal from "effect/BigDecimal"
import * as AvroBridge from "./AvroBridge.ts"
import * as AvroLogical from "./AvroLogical.ts"
import * as AvroSchema from "./AvroSchema.ts"

/** What a fast decoder or encoder returns when the avsc path must decide instead. */
export const BAIL: unique symbol = Symbol.for("effect-etl/schema/AvroFast/bail")

/** The type of {@link BAIL}. */
export type Bail = typeof BAIL

/** A read position, advanced by {@link FastCodec.decode} past the datum it read. */
export interface Cursor {
  pos: number
}

/** A compiled decoder and encoder for one schema. */
export interface FastCodec {
  /**
   * The datum at `cursor.pos` (as `type.decode(bytes, pos)` reads it), moving `cursor.pos` past it; {@link BAIL}
   * (with `cursor` untouched) when avsc must decide.
   */
  readonly decode: (bytes: Uint8Array, cursor: Cursor) => unknown
  /**
   * Checks `value` as `type.isValid` does and writes it at `pos` as `type.encode(value, buf, pos)`: the position after
   * it, or a negative number when `buf` lacks that many bytes; {@link BAIL} when avsc must decide.
   */
  readonly encode: (value: unknown, buf: Buffer, pos: number) => number | Bail
  /** Like `type.toBuffer(value)`; {@link BAIL} when avsc must decide. */
  readonly toBuffer: (value: unknown) => Buffer | Bail
}

// -----------------------------------------------------------------------------
// The schema, as the fast path sees it
// -----------------------------------------------------------------------------

type Fast =
  | {
      readonly kind:
        | "null"
        | "boolean"
        | "int"
        | "long"
        | "float"
        | "double"
        | "string"
        | "bytes"
        | "uuid"
        | "date"
        | "timestamp-millis"
        | "timestamp-micros"
    }
  | { readonly kind: "fixed"; readonly size: number }
  | { readonly kind: "decimal"; readonly spec: AvroLogical.DecimalSpec; readonly size: number | undefined }
  | { readonly kind: "enum"; readonly symbols: ReadonlyArray<string> }
  | { readonly kind: "array"; readonly items: Fast }
  | { readonly kind: "map"; readonly values: Fast }
  | { readonly kind: "nullable"; readonly nullIndex: 0 | 1; readonly inner: Fast }
  | { readonly kind: "single"; readonly inner: Fast }
  | RecordFast

interface RecordFast {
  readonly kind: "record"
  readonly id: number
  readonly fields: Array<{ readonly name: string; readonly type: Fast }>
}

class Unsupported {}

interface Scope {
  readonly namespace: string | undefined
  readonly named: Map<string, Fast>
  readonly records: Array<RecordFast>
}

const NULL: Fast = { kind: "null" }

// Mirrors AvroBridge's `compile`: the same name resolution, the same reading of logical types.
const toFast = (schema: AvroSchema.Schema, scope: Scope): Fast => {
  if (typeof schema === "string") {
    if (AvroSchema.isPrimitive(schema)) return schema === "null" ? NULL : { kind: schema }
    const found = scope.named.get(AvroSchema.qualify(schema, scope.namespace)) ?? scope.named.get(schema)
    if (found === undefined) throw new Unsupported()
    return found
  }
  if (AvroSchema.isUnion(schema)) {
    const branches = schema.map((branch) => toFast(branch, scope))
    if (branches.length === 1) return { kind: "single", inner: branches[0]! }
    if (branches.length !== 2) throw new Unsupported()
    const [first, second] = branches as [Fast, Fast]
    if (first.kind === "null" && second.kind !== "null") return { kind: "nullable", nullIndex: 0, inner: second }
    if (second.kind === "null" && first.kind !== "null") return { kind: "nullable", nullIndex: 1, inner: first }
    throw new Unsupported()
  }
  switch (schema.type) {
    case "record": {
      const record: RecordFast = { kind: "record", id: scope.records.length, fields: [] }
      scope.records.push(record)
      scope.named.set(AvroSchema.qualify(schema.name, schema.namespace ?? scope.namespace), record)
      const inner: Scope = { ...scope, namespace: AvroSchema.namespaceOf(schema, scope.namespace) }
      for (const field of schema.fields) {
        // The bridge copies fields with `out[name] = ...`, which sets the prototype for this name.
        if (field.name === "__proto__") throw new Unsupported()
        record.fields.push({ name: field.name, type: toFast(field.type, inner) })
      }
      return record
    }
    case "enum": {
      const node: Fast = { kind: "enum", symbols: schema.symbols }
      scope.named.set(AvroSchema.qualify(schema.name, schema.namespace ?? scope.namespace), node)
      return node
    }
    case "fixed": {
      const node: Fast =
        schema.logicalType === "decimal"
          ? { kind: "decimal", spec: decimalSpec(schema), size: schema.size }
          : { kind: "fixed", size: schema.size }
      scope.named.set(AvroSchema.qualify(schema.name, schema.namespace ?? scope.namespace), node)
      return node
    }
    case "array":
      return { kind: "array", items: toFast(schema.items, scope) }
    case "map":
      return { kind: "map", values: toFast(schema.values, scope) }
    default: {
      const primitive = schema as AvroSchema.PrimitiveSchema
      if (!AvroSchema.isPrimitive(primitive.type)) throw new Unsupported()
      const base: Fast = primitive.type === "null" ? NULL : { kind: primitive.type }
      switch (primitive.logicalType) {
        case "timestamp-millis":
        case "timestamp-micros":
          return expectBase(primitive, "long", { kind: primitive.logicalType })
        case "date":
          return expectBase(primitive, "int", { kind: "date" })
        case "uuid":
          return expectBase(primitive, "string", { kind: "uuid" })
        case "decimal":
          return expectBase(primitive, "bytes", { kind: "decimal", spec: decimalSpec(primitive), size: undefined })
        default:
          return base
      }
    }
  }
}

// A validated schema never has a known logical type on another type; anything else is left to avsc.
const expectBase = (schema: AvroSchema.PrimitiveSchema, type: AvroSchema.Primitive, fast: Fast): Fast => {
  if (schema.type !== type) throw new Unsupported()
  return fast
}

const decimalSpec = (schema: { readonly precision?: number; readonly scale?: number }): AvroLogical.DecimalSpec => {
  if (typeof schema.precision !== "number") throw new Unsupported()
  return { precision: schema.precision, scale: schema.scale ?? 0 }
}

// -----------------------------------------------------------------------------
// Decoding: helpers over one module-level input (decoding runs no user code, so it is never re-entered)
// -----------------------------------------------------------------------------

interface NodeBuffer extends Buffer {
  utf8Slice(start: number, end: number): string
  latin1Slice(start: number, end: number): string
  utf8Write(text: string, offset: number, length: number): number
}

const EMPTY = Buffer.alloc(0) as NodeBuffer

let src: NodeBuffer = EMPTY
let at = 0
let end = 0
// Set by a helper that met something only avsc may decide about; loops stop on it, the entry point bails.
let bad = false

// Below 2^52 in magnitude the bridge reads longs as numbers; beyond, with bigints (and rejects unsafe ones).
const EXACT = 2 ** 52

// avsc's `Tap.readLong`, operation for operation, so the values agree for every byte sequence.
const readLong = (): number => {
  const buf = src
  let n = 0
  let k = 0
  let b: number
  let h: number
  do {
    if (at >= end) return fail(0)
    b = buf[at++]!
    h = b & 0x80
    n |= (b & 0x7f) << k
    k += 7
  } while (h && k < 28)
  if (h) {
    let f = n
    let fk = 268435456
    do {
      if (at >= end) return fail(0)
      b = buf[at++]!
      f += (b & 0x7f) * fk
      fk *= 128
    } while (b & 0x80)
    const r = (f % 2 ? -(f + 1) : f) / 2
    return r > -EXACT && r < EXACT ? r : fail(0)
  }
  return (n >> 1) ^ -(n & 1)
}

const fail = <A>(value: A): A => {
  bad = true
  end = at
  return value
}

// A length, within the bytes left.
const readLength = (): number => {
  const n = readLong()
  return n >= 0 && n <= end - at ? n : fail(0)
}

const readBoolean = (): boolean => (at < end ? src[at++] !== 0 : fail(false))

const f32 = new Float32Array(1)
const f32Bytes = new Uint8Array(f32.buffer)
const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)

// Typed arrays use the platform's byte order; Avro's is little-endian, as is every platform Node runs on.
const readFloat = (): number => {
  if (end - at < 4) return fail(0)
  const buf = src
  f32Bytes[0] = buf[at]!
  f32Bytes[1] = buf[at + 1]!
  f32Bytes[2] = buf[at + 2]!
  f32Bytes[3] = buf[at + 3]!
  at += 4
  return f32[0]!
}

const readDouble = (): number => {
  if (end - at < 8) return fail(0)
  const buf = src
  for (let i = 0; i < 8; i++) f64Bytes[i] = buf[at + i]!
  at += 8
  return f64[0]!
}

// `utf8Slice`, as avsc: the same text for every input, replacement characters included (and, measured, faster than
// building short ASCII strings in JavaScript).
const readString = (): string => {
  const length = readLength()
  const start = at
  at += length
  return src.utf8Slice(start, at)
}

// The bridge's bytes are plain Uint8Array copies (not Buffers, not views of the input).
const readFixed = (size: number): Uint8Array => {
  if (end - at < size) return fail(new Uint8Array(0))
  const start = at
  at += size
  return new Uint8Array(src.buffer, src.byteOffset + start, size).slice()
}

const readBytes = (): Uint8Array => readFixed(readLength())

const readDecimal = (scale: number, size: number): BigDecimal.BigDecimal => {
  const length = size < 0 ? readLength() : end - at >= size ? size : fail(0)
  const start = at
  at += length
  return BigDecimal.make(AvroLogical.bytesToBigint(src, start, length), scale)
}

const readTimestampMillis = (): Date => new Date(readLong())

const readTimestampMicros = (): Date => new Date(Math.floor(readLong() / 1000))

const readDate = (): string => {
  const text = AvroLogical.daysToDate(readLong())
  return text === undefined ? fail("") : text
}

const readUuid = (): string => {
  const text = readString()
  return AvroLogical.isUuid(text) ? text : fail("")
}

const readEnum = (symbols: ReadonlyArray<string>): string => {
  const symbol = symbols[readLong()]
  return symbol === undefined ? fail("") : symbol
}

// The item count of the next array or map block (0 ends it), at most the bytes left: a larger count can only be
// honest for items of no bytes, rare enough to leave to avsc.
const readCount = (): number => {
  let n = readLong()
  if (n < 0) {
    n = -n
    readLong()
  }
  return n <= end - at ? n : fail(0)
}

const readKey = (): string => {
  const key = readString()
  // avsc's `val[key] = ...` would set the map's prototype.
  return key === "__proto__" ? fail("") : key
}

// A union index that must be `expected`.
const readIndex = (expected: number): void => {
  if (readLong() !== expected) fail(undefined)
}

const decodeHelpers = {
  readLong,
  readBoolean,
  readFloat,
  readDouble,
  readString,
  readFixed,
  readBytes,
  readDecimal,
  readTimestampMillis,
  readTimestampMicros,
  readDate,
  readUuid,
  readEnum,
  readCount,
  readKey,
  readIndex,
  bail: (): null => fail(null)
}

// -----------------------------------------------------------------------------
// Encoding: helpers over one module-level output
// -----------------------------------------------------------------------------

let out: NodeBuffer = EMPTY
let to = 0
// Reading a value may run its getters (user code), which might encode too: such a nested call bails.
let busy = false

// avsc's `Tap.writeLong`, the same bytes by the same arithmetic. Writes past the end of a typed array are ignored, so like avsc it
// only counts the bytes a value needs when the buffer is too small.
const writeLong = (n: number): void => {
  const buf = out
  if (n >= -1073741824 && n < 1073741824) {
    let m = n >= 0 ? n << 1 : (~n << 1) | 1
    while (m > 0x7f) {
      buf[to++] = (m & 0x7f) | 0x80
      m >>= 7
    }
    buf[to++] = m
  } else {
    let f = n >= 0 ? n * 2 : -n * 2 - 1
    while (f >= 128) {
      buf[to++] = (f & 0x7f) | 0x80
      f /= 128
    }
    buf[to++] = f & 0x7f
  }
}

const writeByte = (b: number): void => {
  out[to++] = b
}

const writeFloat = (n: number): void => {
  f32[0] = n
  const buf = out
  buf[to] = f32Bytes[0]!
  buf[to + 1] = f32Bytes[1]!
  buf[to + 2] = f32Bytes[2]!
  buf[to + 3] = f32Bytes[3]!
  to += 4
}

const writeDouble = (n: number): void => {
  f64[0] = n
  const buf = out
  for (let i = 0; i < 8; i++) buf[to + i] = f64Bytes[i]!
  to += 8
}

// avsc's `Tap.writeString`: ASCII below 64 characters is written directly (the same bytes); other text as avsc writes
// it, `utf8Write` above 64 bytes and its own loop below. False (nothing written) for text with a lone surrogate, which
// UTF-8 cannot hold: avsc, hardened (`AvroBridge`), refuses it.
const writeString = (text: string): boolean => {
  const length = text.length
  if (length < 64) {
    const buf = out
    const start = to + 1
    let i = 0
    for (; i < length; i++) {
      const c = text.charCodeAt(i)
      if (c >= 0x80) break
      buf[start + i] = c
    }
    if (i === length) {
      buf[to] = length << 1
      to = start + length
      return true
    }
  }
  return writeText(text)
}

const writeText = (text: string): boolean => {
  if (!text.isWellFormed()) return false
  const length = Buffer.byteLength(text)
  writeLong(length)
  let pos = to
  to += length
  const buf = out
  if (to > buf.length) return true
  if (length > 64) {
    buf.utf8Write(text, pos, length)
    return true
  }
  for (let i = 0; i < text.length; i++) {
    let c1 = text.charCodeAt(i)
    if (c1 < 0x80) {
      buf[pos++] = c1
    } else if (c1 < 0x800) {
      buf[pos++] = (c1 >> 6) | 0xc0
      buf[pos++] = (c1 & 0x3f) | 0x80
    } else if ((c1 & 0xfc00) === 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (text.charCodeAt(i + 1) & 0x03ff)
      i++
      buf[pos++] = (c1 >> 18) | 0xf0
      buf[pos++] = ((c1 >> 12) & 0x3f) | 0x80
      buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80
      buf[pos++] = (c1 & 0x3f) | 0x80
    } else {
      buf[pos++] = (c1 >> 12) | 0xe0
      buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80
      buf[pos++] = (c1 & 0x3f) | 0x80
    }
  }
  return true
}

const writeFixed = (bytes: Uint8Array): void => {
  const length = bytes.length
  const buf = out
  if (to + length <= buf.length) {
    if (length < 32) for (let i = 0; i < length; i++) buf[to + i] = bytes[i]!
    else buf.set(bytes, to)
  }
  to += length
}

const writeBytes = (bytes: Uint8Array): void => {
  writeLong(bytes.length)
  writeFixed(bytes)
}

// The bridge's DecimalType: the unscaled value at the schema's scale, in its shortest two's complement (`bytes`) or
// sign-extended to the size (`fixed`).
const writeDecimal = (value: unknown, spec: AvroLogical.DecimalSpec, size: number): boolean => {
  if (!BigDecimal.isBigDecimal(value)) return false
  const unscaled = AvroLogical.toUnscaled(value, spec)
  if (typeof unscaled !== "bigint") return false
  const shortest = AvroLogical.twosComplementLength(unscaled)
  if (size >= 0 && shortest > size) return false
  const length = size >= 0 ? size : shortest
  if (size < 0) writeLong(length)
  if (to + length <= out.length) AvroLogical.writeTwosComplement(unscaled, out, to, length)
  to += length
  return true
}

// Dates with a long's worth of milliseconds below 2^52 (all of them, since a Date stops at 8.64e15).
const timestampMillis = (value: unknown): number => {
  if (!(value instanceof Date)) return Number.NaN
  const t = value.getTime()
  return t > -EXACT && t < EXACT ? t : Number.NaN
}

const timestampMicros = (value: unknown): number => {
  if (!(value instanceof Date)) return Number.NaN
  const t = value.getTime() * 1000
  return t > -EXACT && t < EXACT ? t : Number.NaN
}

const dateDays = (value: unknown): number => {
  const days = typeof value === "string" ? AvroLogical.dateToDays(value) : undefined
  return days === undefined ? Number.NaN : days
}

// Plain objects only: avsc's checks accept more (a Date as a map), which the avsc path is left to handle.
const isPlain = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const encodeHelpers = {
  writeLong,
  writeByte,
  writeFloat,
  writeDouble,
  writeString,
  writeFixed,
  writeBytes,
  writeDecimal,
  timestampMillis,
  timestampMicros,
  dateDays,
  isPlain,
  isUuid: AvroLogical.isUuid,
  isArray: Array.isArray,
  keys: Object.keys
}

// -----------------------------------------------------------------------------
// Code generation
// -----------------------------------------------------------------------------

class Generator {
  readonly functions: Array<string> = []
  readonly constants: Array<unknown> = []
  readonly decoders = new Map<Fast, string>()
  readonly encoders = new Map<Fast, string>()
  vars = 0

  constant(value: unknown): string {
    this.constants.push(value)
    return `K[${this.constants.length - 1}]`
  }

  fresh(prefix: string): string {
    return `${prefix}${this.vars++}`
  }

  /** A JavaScript expression reading a value of `type`. */
  read(type: Fast): string {
    switch (type.kind) {
      case "null":
        return "null"
      case "boolean":
        return "readBoolean()"
      case "int":
      case "long":
        return "readLong()"
      case "float":
        return "readFloat()"
      case "double":
        return "readDouble()"
      case "string":
        return "readString()"
      case "bytes":
        return "readBytes()"
      case "uuid":
        return "readUuid()"
      case "date":
        return "readDate()"
      case "timestamp-millis":
        return "readTimestampMillis()"
      case "timestamp-micros":
        return "readTimestampMicros()"
      case "fixed":
        return `readFixed(${type.size})`
      case "decimal":
        return `readDecimal(${type.spec.scale}, ${type.size ?? -1})`
      case "enum":
        return `readEnum(${this.constant(type.symbols)})`
      default:
        return `${this.decoder(type)}()`
    }
  }

  // Composite types get a function each (records one per named type, so recursive schemas work).
  decoder(type: Fast): string {
    const known = this.decoders.get(type)
    if (known !== undefined) return known
    const name = this.fresh("d")
    this.decoders.set(type, name)
    let body: string
    switch (type.kind) {
      case "record":
        body = `return {${type.fields.map((field) => `${JSON.stringify(field.name)}: ${this.read(field.type)}`).join(", ")}}`
        break
      case "array":
        // As avsc: the first block's count sizes the array.
        body = `let out; let i = 0; let n;
  while ((n = readCount()) !== 0) {
    if (out === undefined) out = new Array(n);
    while (n-- > 0) out[i++] = ${this.read(type.items)};
  }
  return out === undefined ? [] : out`
        break
      case "map":
        body = `const out = {}; let n;
  while ((n = readCount()) !== 0) {
    while (n-- > 0) { const key = readKey(); out[key] = ${this.read(type.values)}; }
  }
  return out`
        break
      case "nullable": {
        const other = 1 - type.nullIndex
        body = `const i = readLong();
  if (i === ${type.nullIndex}) return null;
  if (i !== ${other}) return bail();
  return ${this.read(type.inner)}`
        break
      }
      case "single":
        body = `readIndex(0); return ${this.read(type.inner)}`
        break
      default:
        throw new Unsupported()
    }
    this.functions.push(`function ${name}() {\n  ${body}\n}`)
    return name
  }

  /** Statements checking the value in variable `x` against `type` and writing it; `return false` when it does not fit. */
  write(type: Fast, x: string): string {
    switch (type.kind) {
      case "null":
        return `if (${x} !== null) return false;`
      case "boolean":
        return `if (typeof ${x} !== "boolean") return false; writeByte(${x} ? 1 : 0);`
      case "int":
        return `if (typeof ${x} !== "number" || ${x} !== (${x} | 0)) return false; writeLong(${x});`
      case "long":
        return `if (typeof ${x} !== "number" || !(${x} > -${EXACT} && ${x} < ${EXACT}) || ${x} !== Math.floor(${x})) return false; writeLong(${x});`
      case "float":
        return `if (typeof ${x} !== "number" || ${x} !== ${x}) return false; writeFloat(${x});`
      case "double":
        return `if (typeof ${x} !== "number" || ${x} !== ${x}) return false; writeDouble(${x});`
      case "string":
        return `if (typeof ${x} !== "string" || !writeString(${x})) return false;`
      case "bytes":
        return `if (!(${x} instanceof Uint8Array)) return false; writeBytes(${x});`
      case "fixed":
        return `if (!(${x} instanceof Uint8Array) || ${x}.length !== ${type.size}) return false; writeFixed(${x});`
      case "uuid":
        return `if (!isUuid(${x})) return false; writeString(${x});`
      case "decimal":
        return `if (!writeDecimal(${x}, ${this.constant(type.spec)}, ${type.size ?? -1})) return false;`
      case "enum": {
        const t = this.fresh("t")
        const indices = this.constant(new Map(type.symbols.map((symbol, i) => [symbol, i])))
        return `const ${t} = ${indices}.get(${x}); if (${t} === undefined) return false; writeLong(${t});`
      }
      case "date":
      case "timestamp-millis":
      case "timestamp-micros": {
        const t = this.fresh("t")
        const helper =
          type.kind === "date" ? "dateDays" : type.kind === "timestamp-millis" ? "timestampMillis" : "timestampMicros"
        return `const ${t} = ${helper}(${x}); if (${t} !== ${t}) return false; writeLong(${t});`
      }
      case "nullable":
        return `if (${x} === null) writeByte(${type.nullIndex * 2}); else { writeByte(${(1 - type.nullIndex) * 2}); ${this.write(type.inner, x)} }`
      case "single":
        return `writeByte(0); ${this.write(type.inner, x)}`
      case "array": {
        const n = this.fresh("n")
        const i = this.fresh("i")
        const y = this.fresh("y")
        return `if (!isArray(${x})) return false;
  const ${n} = ${x}.length;
  if (${n} > 0) {
    writeLong(${n});
    for (let ${i} = 0; ${i} < ${n}; ${i}++) { const ${y} = ${x}[${i}]; ${this.write(type.items, y)} }
  }
  writeByte(0);`
      }
      case "map": {
        const ks = this.fresh("k")
        const n = this.fresh("n")
        const i = this.fresh("i")
        const y = this.fresh("y")
        return `if (!isPlain(${x})) return false;
  const ${ks} = keys(${x});
  const ${n} = ${ks}.length;
  if (${n} > 0) {
    writeLong(${n});
    for (let ${i} = 0; ${i} < ${n}; ${i}++) { if (!writeString(${ks}[${i}])) return false; const ${y} = ${x}[${ks}[${i}]]; ${this.write(type.values, y)} }
  }
  writeByte(0);`
      }
      case "record":
        return `if (!${this.encoder(type)}(${x})) return false;`
    }
  }

  encoder(type: RecordFast): string {
    const known = this.encoders.get(type)
    if (known !== undefined) return known
    const name = this.fresh("w")
    this.encoders.set(type, name)
    const statements = type.fields.map((field) => {
      const x = this.fresh("v")
      return `const ${x} = v[${JSON.stringify(field.name)}];\n  ${this.write(field.type, x)}`
    })
    this.functions.push(
      `function ${name}(v) {\n  if (!isPlain(v)) return false;\n  ${statements.join("\n  ")}\n  return true;\n}`
    )
    return name
  }
}

interface Compiled {
  readonly read: () => unknown
  readonly write: (value: unknown) => boolean
}

const generate = (root: Fast): Compiled => {
  const generator = new Generator()
  const read = generator.read(root)
  const rootWrite =
    root.kind === "record" ? generator.encoder(root) : `(function (x) { ${generator.write(root, "x")} return true; })`
  const helpers = { ...decodeHelpers, ...encodeHelpers }
  const names = Object.keys(helpers)
  const source = `"use strict";
${generator.functions.join("\n")}
return { read: function () { return ${read}; }, write: ${rootWrite} };`
  const make = new Function("K", ...names, source) as (...args: ReadonlyArray<unknown>) => Compiled
  return make(generator.constants, ...names.map((name) => helpers[name as keyof typeof helpers]))
}

const asNodeBuffer = (bytes: Uint8Array): NodeBuffer =>
  (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as NodeBuffer

let scratch = Buffer.allocUnsafe(1024) as NodeBuffer

const makeCodec = (compiled: Compiled): FastCodec => {
  const decode = (bytes: Uint8Array, cursor: Cursor): unknown => {
    src = asNodeBuffer(bytes)
    at = cursor.pos
    end = bytes.length
    bad = !(at >= 0 && at <= end)
    let value: unknown
    try {
      value = bad ? undefined : compiled.read()
    } catch {
      // Only a stack overflow on absurdly nested data: avsc reports it.
      bad = true
    }
    src = EMPTY
    if (bad) return BAIL
    cursor.pos = at
    return value
  }
  const encode = (value: unknown, buf: Buffer, pos: number): number | Bail => {
    if (busy) return BAIL
    busy = true
    out = buf as NodeBuffer
    to = pos
    let ok = false
    try {
      ok = compiled.write(value)
    } catch {
      ok = false
    } finally {
      busy = false
      out = EMPTY
    }
    if (!ok) return BAIL
    return to > buf.length ? buf.length - to : to
  }
  const toBuffer = (value: unknown): Buffer | Bail => {
    let n = encode(value, scratch, 0)
    if (n === BAIL) return BAIL
    if (n < 0) {
      scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - n)) as NodeBuffer
      n = encode(value, scratch, 0)
      if (n === BAIL || n < 0) return BAIL
    }
    const bytes = Buffer.allocUnsafe(n)
    scratch.copy(bytes, 0, 0, n)
    return bytes
  }
  return { decode, encode, toBuffer }
}

/**
 * Compiles the fast codec of an Avro schema (as `AvroBridge.toAvroType(schema)` reads and writes it); `undefined` when
 * the schema uses something the fast path does not cover.
 */
export const make = (schema: AvroSchema.Schema): FastCodec | undefined => {
  try {
    return makeCodec(generate(toFast(schema, { namespace: undefined, named: new Map(), records: [] })))
  } catch (cause) {
    if (cause instanceof Unsupported) return undefined
    throw cause
  }
}

const codecs = new WeakMap<Avsc.Type, FastCodec | null>()

/**
 * The fast codec of a type made by `AvroBridge.toAvroType`, compiled on first use; `undefined` for other avsc types
 * and for schemas the fast path does not cover.
 */
export const of = (type: Avsc.Type): FastCodec | undefined => {
  let codec = codecs.get(type)
  if (codec === undefined) {
    const schema = AvroBridge.avroTypeSchema(type)
    codec = (schema === undefined ? undefined : make(schema)) ?? null
    codecs.set(type, codec)
  }
  return codec ?? undefined
}
