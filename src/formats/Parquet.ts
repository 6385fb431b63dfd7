/**
 * Parquet files, read and written a row group at a time, with the same record values as the Avro path: a timestamp is
 * a `Date`, a decimal a `BigDecimal`, a long a safe-integer number, a date a `"YYYY-MM-DD"` string, bytes a
 * `Uint8Array`, a record a plain object, a map a plain object and an array an array (see `schema/AvroLogical.ts`).
 *
 * {@link encode} turns record batches into the bytes of one file: records are converted to columns as they arrive, a
 * row group is encoded (hyparquet-writer's column writer) and emitted as soon as its estimated uncompressed size or
 * its row count reaches the limit, and the footer comes last, so memory holds one row group. {@link decode} reads a
 * file through ranged reads ({@link RangedFile}): the footer first, then one row group at a time (one read each),
 * decoded by hyparquet into physical values that are converted here against the reader schema. A file is never
 * buffered whole.
 *
 * @example
 * ```ts
 * const bytes = batches.pipe(Parquet.encode(orderSchema, { compression: "zstd" }))
 * const records = Parquet.decode({ size, read: (offset, length) => readRange(path, offset, length) }, { avro: orderSchema })
 * ```
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import * as Zlib from "node:zlib"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as Hyparquet from "hyparquet"
import type { CompressionCodec, FileMetaData, SchemaElement, SchemaTree } from "hyparquet"
import type * as HyparquetCompressors from "hyparquet-compressors"
import type * as HyparquetWriter from "hyparquet-writer"
import * as AvroLogical from "../schema/AvroLogical.ts"
import type * as AvroSchema from "../schema/AvroSchema.ts"
import * as FormatError from "./FormatError.ts"
import * as ParquetSchema from "./ParquetSchema.ts"
import * as Transcoder from "./Transcoder.ts"

/**
 * Compression of a Parquet file's pages.
 *
 * @since 0.1.0
 */
export type Compression = "snappy" | "zstd" | "gzip" | "none"

/**
 * The default uncompressed size of a row group: 64 MiB, as estimated from the values.
 *
 * @since 0.1.0
 */
export const defaultRowGroupBytes = 64 * 1024 * 1024

/**
 * The default largest number of rows in a row group: 128 Ki. A row group is held in memory as JavaScript values while
 * it is encoded or decoded, at many times its size in the file; in `bench/parquet.ts` 1M-row groups of narrow records
 * took about 40 % more peak memory to write than 128 Ki-row ones, and no less time.
 *
 * @since 0.1.0
 */
export const defaultRowGroupRows = 131_072

/**
 * The key-value metadata key under which the writer stores the Avro schema of the records (parquet-avro's key), so a
 * reader without a schema of its own reads the same values back (enum symbols, uuids, local timestamps).
 *
 * @since 0.1.0
 */
export const avroSchemaKey = "parquet.avro.schema"

/**
 * Options of {@link encode}.
 *
 * @since 0.1.0
 */
export interface EncodeOptions {
  /** The file name used in error messages. */
  readonly source?: string | undefined
  /** Page compression (default `snappy`). */
  readonly compression?: Compression | undefined
  /** A row group is cut once its estimated uncompressed size reaches this many bytes (default 64 MiB). */
  readonly rowGroupBytes?: number | undefined
  /** ... or once it holds this many rows (default 131,072). */
  readonly rowGroupRows?: number | undefined
}

/**
 * A file read in ranges: its size, and the bytes from `offset` (`length` of them).
 *
 * @since 0.1.0
 */
export interface RangedFile<E, R> {
  readonly size: number
  readonly read: (offset: number, length: number) => Effect.Effect<Uint8Array, E, R>
}

/**
 * Options of {@link decode}.
 *
 * @since 0.1.0
 */
export interface DecodeOptions {
  /** The file name used in error messages. */
  readonly source?: string | undefined
  /** Records per emitted batch (default 4096). */
  readonly batchSize?: number | undefined
  /**
   * The reader schema (a parsed Avro record schema): columns are matched by name, and a column whose type does not fit
   * is an error. Without it, the Avro schema the writer stored is used, else one derived from the Parquet schema.
   */
  readonly avro?: unknown
  /** Called with the number of bytes read for each row group, before its records are emitted. */
  readonly onRead?: ((bytes: number) => void) | undefined
  /** Only these row groups (0-based, `end` exclusive): a part of a file split by row groups (see {@link rowGroupBytes}). */
  readonly rowGroups?: { readonly start: number; readonly end: number } | undefined
}

const codecs: Record<Compression, CompressionCodec> = {
  snappy: "SNAPPY",
  zstd: "ZSTD",
  gzip: "GZIP",
  none: "UNCOMPRESSED"
}

const writeCompressors = {
  GZIP: (input: Uint8Array) => new Uint8Array(Zlib.gzipSync(input)),
  ZSTD: (input: Uint8Array) => new Uint8Array(Zlib.zstdCompressSync(input))
}

/** hyparquet-writer's byte writer, drained row group by row group (see `libraries`). */
type DrainWriter = HyparquetWriter.ByteWriter & { drain(): Uint8Array }

/** The Parquet libraries, and what is built on them. */
interface Libraries {
  readonly read: typeof Hyparquet
  readonly write: typeof HyparquetWriter
  readonly readCompressors: Hyparquet.Compressors
  readonly DrainWriter: new () => DrainWriter
}

// The libraries are loaded when a Parquet file is first read or written, not with this module: most runs have no
// Parquet, and every command would pay for loading them. They are ES modules without top-level await, which
// `require` loads synchronously.
const requireLibrary = createRequire(import.meta.url)
let loaded: Libraries | undefined
const libraries = (): Libraries => {
  if (loaded !== undefined) return loaded
  const read = requireLibrary("hyparquet") as typeof Hyparquet
  const write = requireLibrary("hyparquet-writer") as typeof HyparquetWriter
  const { compressors } = requireLibrary("hyparquet-compressors") as typeof HyparquetCompressors
  /**
   * Takes every written chunk out of the writer without copying: each drain hands over the buffer and starts a new
   * one as large (the next row group is about as big, so the buffer does not grow again by doubling and copying).
   */
  class Drain extends write.ByteWriter {
    drain(): Uint8Array {
      const bytes = new Uint8Array(this.buffer, 0, this.index)
      this.buffer = new ArrayBuffer(Math.max(64 * 1024, this.index + (this.index >> 3)))
      this.view = new DataView(this.buffer)
      this.index = 0
      return bytes
    }
  }
  loaded = {
    read,
    write,
    // Native zlib for gzip and zstd; hyparquet-compressors for the rest (snappy, brotli, lz4).
    readCompressors: {
      ...compressors,
      GZIP: (input: Uint8Array) => new Uint8Array(Zlib.gunzipSync(input)),
      ZSTD: (input: Uint8Array) => new Uint8Array(Zlib.zstdDecompressSync(input))
    },
    DrainWriter: Drain
  }
  return loaded
}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const error = (source: string | undefined, reason: string, extra?: Partial<FormatError.Fields>) =>
  FormatError.make({ format: "parquet", file: source, reason, ...extra })

/** A value that does not fit its column, thrown inside the per-record converters and turned into a FormatError. */
class Mismatch {
  readonly path: string
  readonly message: string
  constructor(path: string, message: string) {
    this.path = path
    this.message = message
  }
}

// -----------------------------------------------------------------------------
// Avro schemas: names and unions
// -----------------------------------------------------------------------------

type Named = Map<string, AvroSchema.Schema>

const register = (names: Named, schema: AvroSchema.Schema): void => {
  if (typeof schema !== "object" || Array.isArray(schema)) return
  const s = schema as { readonly type: string; readonly name?: string; readonly namespace?: string }
  if ((s.type === "record" || s.type === "enum" || s.type === "fixed") && s.name !== undefined) {
    const full = s.namespace !== undefined && !s.name.includes(".") ? `${s.namespace}.${s.name}` : s.name
    names.set(full, schema)
    names.set(full.split(".").pop()!, schema)
  }
}

const isNullable = (schema: AvroSchema.Schema): boolean => Array.isArray(schema) && schema.includes("null")

/** The non-null branch of a `[null, X]` union, or the schema itself; references resolved. */
const resolve = (names: Named, schema: AvroSchema.Schema): AvroSchema.Schema => {
  if (Array.isArray(schema)) {
    const branch = (schema as AvroSchema.UnionSchema).find((b) => b !== "null")
    return branch === undefined ? "null" : resolve(names, branch)
  }
  if (typeof schema === "string") return names.get(schema) ?? schema
  register(names, schema)
  return schema
}

type Shape =
  | { readonly kind: "primitive"; readonly type: AvroSchema.Primitive; readonly logical?: string | undefined }
  | { readonly kind: "decimal"; readonly precision: number; readonly scale: number; readonly size?: number | undefined }
  | { readonly kind: "fixed"; readonly size: number }
  | { readonly kind: "enum"; readonly symbols: ReadonlyArray<string> }
  | { readonly kind: "record"; readonly schema: AvroSchema.RecordSchema }
  | { readonly kind: "array"; readonly items: AvroSchema.Schema }
  | { readonly kind: "map"; readonly values: AvroSchema.Schema }

const shapeOf = (names: Named, schema: AvroSchema.Schema, path: string): Shape => {
  const s = resolve(names, schema)
  if (typeof s === "string") {
    if ((["null", "boolean", "int", "long", "float", "double", "bytes", "string"] as const).includes(s as never))
      return { kind: "primitive", type: s as AvroSchema.Primitive }
    throw new Mismatch(path, `unknown type name ${s}`)
  }
  const o = s as { readonly type: string; readonly logicalType?: string }
  switch (o.type) {
    case "record":
      return { kind: "record", schema: s as AvroSchema.RecordSchema }
    case "array":
      return { kind: "array", items: (s as AvroSchema.ArraySchema).items }
    case "map":
      return { kind: "map", values: (s as AvroSchema.MapSchema).values }
    case "enum":
      return { kind: "enum", symbols: (s as AvroSchema.EnumSchema).symbols }
    case "fixed": {
      const f = s as AvroSchema.FixedSchema
      return f.logicalType === "decimal" && f.precision !== undefined
        ? { kind: "decimal", precision: f.precision, scale: f.scale ?? 0, size: f.size }
        : { kind: "fixed", size: f.size }
    }
    default: {
      const p = s as AvroSchema.PrimitiveSchema
      if (p.logicalType === "decimal" && p.precision !== undefined)
        return { kind: "decimal", precision: p.precision, scale: p.scale ?? 0 }
      return { kind: "primitive", type: p.type, logical: p.logicalType }
    }
  }
}

const describeShape = (shape: Shape): string => {
  switch (shape.kind) {
    case "primitive":
      return shape.logical === undefined ? shape.type : `${shape.type} (${shape.logical})`
    case "decimal":
      return `decimal(${shape.precision}, ${shape.scale})`
    case "fixed":
      return `fixed(${shape.size})`
    default:
      return shape.kind
  }
}

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

// -----------------------------------------------------------------------------
// Writing: record values → the values hyparquet-writer takes
// -----------------------------------------------------------------------------

/** Converts a value to what the column writer takes and adds its estimated size to `size.bytes`. */
type ToColumn = (value: unknown, size: { bytes: number }) => unknown

const MAX_INT = 2147483647
const MIN_INT = -2147483648
const MAX_INT64 = 2n ** 63n - 1n
const MIN_INT64 = -(2n ** 63n)

const expected = (path: string, what: string, value: unknown): Mismatch =>
  new Mismatch(path, `expected ${what}, got ${AvroLogical.show(value)}`)

const compileWriter = (names: Named, schema: AvroSchema.Schema, path: string): ToColumn => {
  const nullable = isNullable(schema)
  const inner = compileWriterShape(names, shapeOf(names, schema, path), path)
  return (value, size) => {
    if (value === null || value === undefined) {
      if (nullable) return null
      throw new Mismatch(path, "null in a required field")
    }
    return inner(value, size)
  }
}

const compileWriterShape = (names: Named, shape: Shape, path: string): ToColumn => {
  switch (shape.kind) {
    case "record": {
      const fields = shape.schema.fields.map((f) => ({
        name: f.name,
        convert: compileWriter(names, f.type, `${path}.${f.name}`)
      }))
      return (value, size) => {
        if (!isPlainObject(value)) throw expected(path, `a record ${shape.schema.name}`, value)
        const out: Record<string, unknown> = {}
        for (const f of fields) out[f.name] = f.convert(value[f.name], size)
        return out
      }
    }
    case "array": {
      const item = compileWriter(names, shape.items, `${path}[]`)
      return (value, size) => {
        if (!Array.isArray(value)) throw expected(path, "an array", value)
        size.bytes += 4
        return value.map((v) => item(v, size))
      }
    }
    case "map": {
      const item = compileWriter(names, shape.values, `${path}{}`)
      return (value, size) => {
        if (!isPlainObject(value)) throw expected(path, "a map (plain object)", value)
        const entries: Array<{ key: string; value: unknown }> = []
        for (const key of Object.keys(value)) {
          size.bytes += key.length + 4
          entries.push({ key, value: item(value[key], size) })
        }
        return entries
      }
    }
    case "enum": {
      const encoded = new Map(shape.symbols.map((s) => [s, new TextEncoder().encode(s)]))
      return (value, size) => {
        const bytes = typeof value === "string" ? encoded.get(value) : undefined
        if (bytes === undefined) throw expected(path, `one of ${shape.symbols.join(", ")}`, value)
        size.bytes += bytes.length + 4
        return bytes
      }
    }
    case "fixed":
      return (value, size) => {
        if (!(value instanceof Uint8Array) || value.length !== shape.size)
          throw expected(path, `exactly ${shape.size} bytes (fixed)`, value)
        size.bytes += shape.size
        return value
      }
    case "decimal": {
      const spec = { precision: shape.precision, scale: shape.scale }
      return (value, size) => {
        if (!BigDecimal.isBigDecimal(value)) throw expected(path, `a BigDecimal (${describeShape(shape)})`, value)
        const unscaled = AvroLogical.toUnscaled(value, spec)
        if (unscaled instanceof AvroLogical.Invalid) throw new Mismatch(path, unscaled.message)
        size.bytes += shape.size ?? 16
        return unscaled
      }
    }
    case "primitive":
      return primitiveWriter(shape.type, shape.logical, path)
  }
}

const primitiveWriter = (type: AvroSchema.Primitive, logical: string | undefined, path: string): ToColumn => {
  switch (logical) {
    case "timestamp-millis":
      return (value, size) => {
        if (!AvroLogical.isValidDate(value)) throw expected(path, "a valid Date (timestamp-millis)", value)
        size.bytes += 8
        return BigInt(value.getTime())
      }
    case "timestamp-micros":
      return (value, size) => {
        if (!AvroLogical.isMicrosDate(value)) throw expected(path, "a Date within ±285 years (timestamp-micros)", value)
        size.bytes += 8
        return BigInt(value.getTime()) * 1000n
      }
    case "date":
      return (value, size) => {
        const days = typeof value === "string" ? AvroLogical.dateToDays(value) : undefined
        if (days === undefined) throw expected(path, 'a date "YYYY-MM-DD"', value)
        size.bytes += 4
        return days
      }
    case "uuid":
      return (value, size) => {
        if (!AvroLogical.isUuid(value)) throw expected(path, "a UUID", value)
        size.bytes += 40
        return value
      }
  }
  switch (type) {
    case "boolean":
      return (value, size) => {
        if (typeof value !== "boolean") throw expected(path, "a boolean", value)
        size.bytes += 1
        return value
      }
    case "int":
      return (value, size) => {
        if (typeof value !== "number" || !Number.isInteger(value) || value < MIN_INT || value > MAX_INT)
          throw expected(path, "an int (32-bit integer)", value)
        size.bytes += 4
        return value
      }
    case "long":
      return (value, size) => {
        size.bytes += 8
        if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value)
        if (typeof value === "bigint" && value >= MIN_INT64 && value <= MAX_INT64) return value
        throw expected(path, `a long (an integer within ±${Number.MAX_SAFE_INTEGER})`, value)
      }
    case "float":
    case "double":
      return (value, size) => {
        if (typeof value !== "number") throw expected(path, `a number (${type})`, value)
        size.bytes += type === "float" ? 4 : 8
        return value
      }
    case "string":
      return (value, size) => {
        if (typeof value !== "string") throw expected(path, "a string", value)
        size.bytes += value.length + 4
        return value
      }
    case "bytes":
      return (value, size) => {
        if (!(value instanceof Uint8Array)) throw expected(path, "a Uint8Array (bytes)", value)
        size.bytes += value.length + 4
        return value
      }
    case "null":
      return () => {
        throw new Mismatch(path, "a null-only column cannot be written to Parquet")
      }
  }
}

/** A parsed Avro record schema, from a schema object or an avsc Type. */
const recordSchemaOf = (schema: unknown): AvroSchema.RecordSchema | undefined => {
  const s =
    typeof schema === "object" && schema !== null && typeof (schema as { schema?: unknown }).schema === "function"
      ? (schema as { schema: (o: object) => unknown }).schema({ exportAttrs: true })
      : schema
  return typeof s === "object" && s !== null && (s as { type?: unknown }).type === "record"
    ? (s as AvroSchema.RecordSchema)
    : undefined
}

const rowGroupWriter = (
  record: AvroSchema.RecordSchema,
  elements: Array<SchemaElement>,
  options: EncodeOptions | undefined
): Transcoder.Transcoder<ReadonlyArray<unknown>, Uint8Array> => {
  const source = options?.source
  const maxBytes = Math.max(1, options?.rowGroupBytes ?? defaultRowGroupBytes)
  const maxRows = Math.max(1, options?.rowGroupRows ?? defaultRowGroupRows)
  const names: Named = new Map()
  register(names, record)
  const fields = record.fields.map((f) => ({ name: f.name, convert: compileWriter(names, f.type, f.name) }))
  const writer = new (libraries().DrainWriter)()
  let parquet: HyparquetWriter.ParquetWriter | undefined
  let columns: Array<Array<unknown>> = fields.map(() => [])
  const size = { bytes: 0 }
  let rows = 0
  let records = 0

  const start = (): FormatError.FormatError | undefined => {
    if (parquet !== undefined) return undefined
    try {
      parquet = new (libraries().write.ParquetWriter)({
        writer,
        schema: elements,
        codec: codecs[options?.compression ?? "snappy"],
        compressors: writeCompressors,
        kvMetadata: [{ key: avroSchemaKey, value: JSON.stringify(record) }],
        createdBy: "effect-etl (hyparquet-writer)"
      })
    } catch (cause) {
      return error(source, `cannot start the file: ${messageOf(cause)}`, { cause })
    }
    return undefined
  }

  const writeGroup = (out: Array<Uint8Array>): FormatError.FormatError | undefined => {
    if (rows === 0 || parquet === undefined) return undefined
    const columnData = fields.map((f, i) => ({ name: f.name, data: columns[i]! }))
    try {
      parquet.write({ columnData, rowGroupSize: rows })
    } catch (cause) {
      return error(source, `cannot write a row group ending at record ${records}: ${messageOf(cause)}`, { cause })
    }
    columns = fields.map(() => [])
    rows = 0
    size.bytes = 0
    out.push(writer.drain())
    return undefined
  }

  return {
    push: (batch, out) => {
      const failed = start()
      if (failed !== undefined) return failed
      for (let r = 0; r < batch.length; r++) {
        const value = batch[r]
        records++
        if (!isPlainObject(value))
          return error(source, `expected a record (plain object), got ${AvroLogical.show(value)}`, { record: records })
        try {
          for (let i = 0; i < fields.length; i++) {
            const f = fields[i]!
            columns[i]!.push(f.convert(value[f.name], size))
          }
        } catch (cause) {
          if (cause instanceof Mismatch) return error(source, cause.message, { record: records, column: cause.path })
          return error(source, messageOf(cause), { record: records, cause })
        }
        rows++
        if (rows >= maxRows || size.bytes >= maxBytes) {
          const failure = writeGroup(out)
          if (failure !== undefined) return failure
        }
      }
      return undefined
    },
    flush: (out) => {
      const failed = start() ?? writeGroup(out)
      if (failed !== undefined) return failed
      try {
        parquet!.finish()
      } catch (cause) {
        return error(source, `cannot write the footer: ${messageOf(cause)}`, { cause })
      }
      out.push(writer.drain())
      return undefined
    }
  }
}

/**
 * Encodes record batches into the bytes of one Parquet file, with the columns of `schema` (a parsed Avro record
 * schema, or an avsc Type of one). Row groups are emitted as they fill; a record that does not fit its schema fails
 * the stream with a {@link FormatError.FormatError} naming the record and the field.
 *
 * @since 0.1.0
 */
export const encode =
  (schema: unknown, options?: EncodeOptions) =>
  <E, R>(
    batches: Stream.Stream<ReadonlyArray<unknown>, E, R>
  ): Stream.Stream<Uint8Array, FormatError.FormatError | E, R> => {
    const source = options?.source
    const record = recordSchemaOf(schema)
    if (record === undefined)
      return Stream.fail(error(source, "encoding Parquet needs the Avro record schema of the records"))
    const elements = ParquetSchema.fromAvro(record)
    if (Result.isFailure(elements))
      return Stream.fail(
        error(source, elements.failure.message, {
          column: elements.failure.path
        })
      )
    return batches.pipe(Transcoder.transform(() => rowGroupWriter(record, elements.success, options)))
  }

// -----------------------------------------------------------------------------
// Reading: the footer, then row groups
// -----------------------------------------------------------------------------

const MAGIC = 0x31524150 // "PAR1", little-endian
const TAIL = 64 * 1024

const u32 = (bytes: Uint8Array, at: number): number =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at, true)

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/**
 * Reads a file's footer (one read of its last 64 KiB, a second one when the footer is longer) and parses it. A file
 * that does not end with `PAR1` is either truncated (it starts with `PAR1`) or not Parquet.
 *
 * @since 0.1.0
 */
export const readFooter = <E, R>(
  file: RangedFile<E, R>,
  source?: string
): Effect.Effect<FileMetaData, FormatError.FormatError | E, R> =>
  Effect.gen(function* () {
    const size = file.size
    const notParquet = (why: string) => error(source, `not a Parquet file: ${why}`)
    if (size < 12) return yield* notParquet(`${size} bytes, too short for a Parquet header and footer`)
    const tailLength = Math.min(size, TAIL)
    let tail = yield* file.read(size - tailLength, tailLength)
    if (tail.length !== tailLength) return yield* error(source, `the file is ${size} bytes but ended early`)
    if (u32(tail, tail.length - 4) !== MAGIC) {
      const head = size === tailLength ? tail.subarray(0, 4) : yield* file.read(0, 4)
      return yield* head.length === 4 && u32(head, 0) === MAGIC
        ? error(source, "truncated: the file starts with PAR1 but has no footer (it was not written completely)")
        : notParquet("it does not start or end with the magic bytes PAR1")
    }
    const metadataLength = u32(tail, tail.length - 8)
    if (metadataLength + 12 > size)
      return yield* error(source, `corrupt footer: metadata of ${metadataLength} bytes in a file of ${size} bytes`)
    if (metadataLength + 8 > tail.length) {
      const missing = metadataLength + 8 - tail.length
      tail = concat(yield* file.read(size - tail.length - missing, missing), tail)
    }
    return yield* Effect.try({
      try: () => libraries().read.parquetMetadata(tail),
      catch: (cause) => error(source, `corrupt footer: ${messageOf(cause)}`, { cause })
    })
  })

/** The file's schema with the leaves' logical annotations removed (strings aside), so hyparquet hands over physical values. */
const physicalMetadata = (metadata: FileMetaData): FileMetaData => ({
  ...metadata,
  schema: metadata.schema.map((element) => {
    if (element.type === undefined) return element
    const { converted_type, logical_type, ...rest } = element
    const text =
      converted_type === "UTF8" ||
      converted_type === "ENUM" ||
      logical_type?.type === "STRING" ||
      logical_type?.type === "ENUM"
    return text ? { ...rest, converted_type: "UTF8" } : rest
  })
})

/** Converts one physical value of a column (hyparquet's output) to the record value. */
type FromColumn = (value: unknown) => unknown

const describeElement = (element: SchemaElement): string => {
  const lt = element.logical_type
  let annotation = ""
  if (lt !== undefined) {
    if (lt.type === "DECIMAL") annotation = ` DECIMAL(${lt.precision}, ${lt.scale})`
    else if (lt.type === "TIMESTAMP") annotation = ` TIMESTAMP(${lt.unit}, ${lt.isAdjustedToUTC ? "UTC" : "local"})`
    else annotation = ` ${lt.type}`
  } else if (element.converted_type !== undefined) annotation = ` ${element.converted_type}`
  if (element.converted_type === "DECIMAL" && lt === undefined)
    annotation = ` DECIMAL(${element.precision}, ${element.scale ?? 0})`
  return element.type === undefined ? `a group${annotation}` : `${element.type}${annotation}`
}

type Unit = "MILLIS" | "MICROS" | "NANOS"

const timestampUnit = (element: SchemaElement): Unit | undefined => {
  const lt = element.logical_type
  if (lt?.type === "TIMESTAMP") return lt.unit
  if (element.converted_type === "TIMESTAMP_MILLIS") return "MILLIS"
  if (element.converted_type === "TIMESTAMP_MICROS") return "MICROS"
  if (element.type === "INT96") return "NANOS"
  return undefined
}

const decimalOf = (element: SchemaElement): { precision: number; scale: number } | undefined => {
  const lt = element.logical_type
  if (lt?.type === "DECIMAL") return { precision: lt.precision, scale: lt.scale }
  if (element.converted_type === "DECIMAL") return { precision: element.precision ?? 38, scale: element.scale ?? 0 }
  return undefined
}

const isText = (element: SchemaElement): boolean => element.type === "BYTE_ARRAY" && decimalOf(element) === undefined

const isPlainInteger = (element: SchemaElement): boolean =>
  decimalOf(element) === undefined &&
  element.converted_type !== "DATE" &&
  element.logical_type?.type !== "DATE" &&
  timestampUnit(element) === undefined

const decoder = new TextDecoder()
const text = (value: unknown): unknown => (value instanceof Uint8Array ? decoder.decode(value) : value)

const floorDiv = (n: bigint, d: bigint): bigint => {
  const q = n / d
  return n % d !== 0n && n < 0n ? q - 1n : q
}

const toNumber = (path: string, n: bigint, what: string): number => {
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER))
    throw new Mismatch(path, `${what} ${n} is outside ±${Number.MAX_SAFE_INTEGER} (a JavaScript number cannot hold it)`)
  return Number(n)
}

/** The unscaled integer of a physical decimal value. */
const unscaledOf = (value: unknown): bigint =>
  typeof value === "bigint"
    ? value
    : typeof value === "number"
      ? BigInt(value)
      : AvroLogical.bytesToBigint(value as Uint8Array)

const uuidOf = (bytes: Uint8Array): string => {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

const children = (node: SchemaTree): Map<string, SchemaTree> => new Map(node.children.map((c) => [c.element.name, c]))

const isList = (node: SchemaTree): boolean =>
  node.element.converted_type === "LIST" &&
  node.children.length === 1 &&
  node.children[0]!.element.repetition_type === "REPEATED" &&
  node.children[0]!.children.length <= 1

const isMap = (node: SchemaTree): boolean =>
  (node.element.converted_type === "MAP" || node.element.converted_type === "MAP_KEY_VALUE") &&
  node.children.length === 1 &&
  node.children[0]!.children.length === 2

/** Compiles the converter of a column against the reader schema, or fails with a message on a type mismatch. */
const compileReader = (
  names: Named,
  schema: AvroSchema.Schema,
  node: SchemaTree,
  path: string,
  // A bare repeated field (a legacy list) is read as an array only where the reader expects one.
  repeatedAsArray = true
): FromColumn => {
  const nullable = isNullable(schema)
  const shape = shapeOf(names, schema, path)
  if (repeatedAsArray && node.element.repetition_type === "REPEATED" && shape.kind === "array") {
    // A bare repeated field has no null: no values is an empty array.
    const repeated = compileRepeated(names, shape.items, node, path)
    return (value) => (value === null || value === undefined ? [] : repeated(value))
  }
  const inner = compileReaderShape(names, shape, node, path)
  return (value) => {
    if (value === null || value === undefined) {
      if (nullable) return null
      throw new Mismatch(path, "null in a required field")
    }
    return inner(value)
  }
}

const compileRepeated = (names: Named, items: AvroSchema.Schema, node: SchemaTree, path: string): FromColumn => {
  const item = compileReader(names, items, node, `${path}[]`, false)
  return (value) => {
    if (!Array.isArray(value)) throw new Mismatch(path, `expected an array, got ${AvroLogical.show(value)}`)
    return value.map(item)
  }
}

const mismatch = (path: string, shape: Shape, node: SchemaTree): Mismatch =>
  new Mismatch(path, `the reader schema expects ${describeShape(shape)}, the file has ${describeElement(node.element)}`)

const compileReaderShape = (names: Named, shape: Shape, node: SchemaTree, path: string): FromColumn => {
  const element = node.element
  switch (shape.kind) {
    case "record": {
      if (element.type !== undefined || isList(node) || isMap(node)) throw mismatch(path, shape, node)
      return recordReader(names, shape.schema, node, path)
    }
    case "array": {
      if (!isList(node)) throw mismatch(path, shape, node)
      const list = node.children[0]!
      const elementNode = list.children.length === 1 ? list.children[0]! : list
      const item = compileReader(names, shape.items, elementNode, `${path}[]`, false)
      return (value) => {
        if (!Array.isArray(value)) throw new Mismatch(path, `expected an array, got ${AvroLogical.show(value)}`)
        return value.map(item)
      }
    }
    case "map": {
      if (!isMap(node)) throw mismatch(path, shape, node)
      const kv = children(node.children[0]!)
      const valueNode = kv.get("value") ?? node.children[0]!.children[1]!
      const item = compileReader(names, shape.values, valueNode, `${path}{}`)
      return (value) => {
        const out: Record<string, unknown> = {}
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = item(v)
        return out
      }
    }
    case "enum": {
      if (!isText(element)) throw mismatch(path, shape, node)
      const symbols = new Set(shape.symbols)
      return (value) => {
        const s = text(value)
        if (typeof s !== "string" || !symbols.has(s))
          throw new Mismatch(path, `expected one of ${shape.symbols.join(", ")}, got ${AvroLogical.show(s)}`)
        return s
      }
    }
    case "fixed": {
      if (element.type !== "FIXED_LEN_BYTE_ARRAY" || element.type_length !== shape.size)
        throw mismatch(path, shape, node)
      return (value) => (value as Uint8Array).slice()
    }
    case "decimal": {
      const found = decimalOf(element)
      if (found === undefined || found.scale !== shape.scale || found.precision > shape.precision)
        throw mismatch(path, shape, node)
      const scale = shape.scale
      return (value) => BigDecimal.make(unscaledOf(value), scale)
    }
    case "primitive":
      return primitiveReader(shape, node, path)
  }
}

const recordReader = (names: Named, record: AvroSchema.RecordSchema, node: SchemaTree, path: string): FromColumn => {
  const fields = fieldReaders(names, record, node, path)
  return (value) => {
    const source = value as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const f of fields) out[f.name] = f.convert(source[f.name])
    return out
  }
}

/**
 * The top-level record of a row as hyparquet hands it over: an array of the file's top-level columns, in schema order.
 */
const rowReader = (
  names: Named,
  record: AvroSchema.RecordSchema,
  tree: SchemaTree
): ((row: ReadonlyArray<unknown>) => Record<string, unknown>) => {
  const position = new Map(tree.children.map((c, i) => [c.element.name, i]))
  const fields = fieldReaders(names, record, tree, "").map((f) => ({ ...f, at: position.get(f.name) ?? -1 }))
  return (row) => {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!
      out[f.name] = f.convert(f.at < 0 ? undefined : row[f.at])
    }
    return out
  }
}

const fieldReaders = (
  names: Named,
  record: AvroSchema.RecordSchema,
  node: SchemaTree,
  path: string
): Array<{ readonly name: string; readonly convert: FromColumn }> => {
  const byName = children(node)
  return record.fields.map((f) => {
    const child = byName.get(f.name)
    const fieldPath = path === "" ? f.name : `${path}.${f.name}`
    if (child === undefined) {
      if (!isNullable(f.type))
        throw new Mismatch(fieldPath, "the file has no such column and the reader schema does not allow null")
      return { name: f.name, convert: () => null }
    }
    return { name: f.name, convert: compileReader(names, f.type, child, fieldPath) }
  })
}

const primitiveReader = (shape: Extract<Shape, { kind: "primitive" }>, node: SchemaTree, path: string): FromColumn => {
  const element = node.element
  const type = element.type
  const fail = () => mismatch(path, shape, node)
  const unit = timestampUnit(element)
  switch (shape.logical) {
    case "timestamp-millis":
    case "timestamp-micros": {
      if (unit === undefined) throw fail()
      const divisor = unit === "MILLIS" ? 1n : unit === "MICROS" ? 1000n : 1_000_000n
      return (value) => {
        const ms = floorDiv(value as bigint, divisor)
        const date = new Date(Number(ms))
        if (Number.isNaN(date.getTime()) || ms > 8_640_000_000_000_000n || ms < -8_640_000_000_000_000n)
          throw new Mismatch(path, `timestamp ${String(value)} (${unit}) is outside the range of a JavaScript Date`)
        return date
      }
    }
    case "local-timestamp-millis":
    case "local-timestamp-micros": {
      if (unit === undefined) throw fail()
      const want = shape.logical === "local-timestamp-millis" ? "MILLIS" : "MICROS"
      const scale: Record<Unit, bigint> = { MILLIS: 1n, MICROS: 1000n, NANOS: 1_000_000n }
      return (value) => {
        const v = value as bigint
        const converted =
          scale[unit] >= scale[want] ? floorDiv(v, scale[unit] / scale[want]) : v * (scale[want] / scale[unit])
        return toNumber(path, converted, "timestamp")
      }
    }
    case "date": {
      if (type !== "INT32" || (element.converted_type !== "DATE" && element.logical_type?.type !== "DATE")) throw fail()
      return (value) => {
        const day = AvroLogical.daysToDate(value as number)
        if (day === undefined) throw new Mismatch(path, `date ${String(value)} (days) is outside years 0000-9999`)
        return day
      }
    }
    case "uuid": {
      if (type === "FIXED_LEN_BYTE_ARRAY" && element.type_length === 16) return (value) => uuidOf(value as Uint8Array)
      if (!isText(element)) throw fail()
      return text
    }
  }
  switch (shape.type) {
    case "boolean":
      if (type !== "BOOLEAN") throw fail()
      return (value) => value
    case "int":
      if (type !== "INT32" || !isPlainInteger(element)) throw fail()
      return (value) => value
    case "long":
      if ((type !== "INT64" && type !== "INT32") || !isPlainInteger(element)) throw fail()
      return type === "INT32" ? (value) => value : (value) => toNumber(path, value as bigint, "long")
    case "float":
      if (type !== "FLOAT") throw fail()
      return (value) => value
    case "double":
      if (type !== "DOUBLE" && type !== "FLOAT") throw fail()
      return (value) => value
    case "string":
      if (!isText(element)) throw fail()
      return text
    case "bytes":
      if ((type !== "BYTE_ARRAY" && type !== "FIXED_LEN_BYTE_ARRAY") || decimalOf(element) !== undefined) throw fail()
      return (value) => (value instanceof Uint8Array ? value.slice() : new TextEncoder().encode(String(value)))
    case "null":
      return () => null
  }
}

// -----------------------------------------------------------------------------
// A reader schema from a Parquet schema
// -----------------------------------------------------------------------------

const avroOfLeaf = (element: SchemaElement): AvroSchema.Schema | undefined => {
  const dec = decimalOf(element)
  if (dec !== undefined) return { type: "bytes", logicalType: "decimal", precision: dec.precision, scale: dec.scale }
  const unit = timestampUnit(element)
  if (unit !== undefined) {
    const utc = element.logical_type?.type === "TIMESTAMP" ? element.logical_type.isAdjustedToUTC : true
    return { type: "long", logicalType: `${utc ? "" : "local-"}timestamp-${unit === "MILLIS" ? "millis" : "micros"}` }
  }
  if (element.converted_type === "DATE" || element.logical_type?.type === "DATE")
    return { type: "int", logicalType: "date" }
  if (element.logical_type?.type === "UUID") return { type: "string", logicalType: "uuid" }
  switch (element.type) {
    case "BOOLEAN":
      return "boolean"
    case "INT32":
      return "int"
    case "INT64":
      return "long"
    case "FLOAT":
      return "float"
    case "DOUBLE":
      return "double"
    case "BYTE_ARRAY":
      return element.converted_type === "UTF8" ||
        element.converted_type === "ENUM" ||
        element.converted_type === "JSON" ||
        element.logical_type?.type === "STRING" ||
        element.logical_type?.type === "ENUM" ||
        element.logical_type?.type === "JSON"
        ? "string"
        : "bytes"
    case "FIXED_LEN_BYTE_ARRAY":
      return "bytes"
    default:
      return undefined
  }
}

/** An Avro schema for a Parquet schema node, so that a file read without a reader schema has the usual values. */
const avroOfNode = (node: SchemaTree, path: string, names: { n: number }): AvroSchema.Schema => {
  const element = node.element
  const wrap = (s: AvroSchema.Schema): AvroSchema.Schema => (element.repetition_type === "OPTIONAL" ? ["null", s] : s)
  if (element.repetition_type === "REPEATED" && node.children.length === 0) {
    const leaf = avroOfLeaf(element)
    if (leaf === undefined) throw new Mismatch(path, `unsupported column type ${describeElement(element)}`)
    return { type: "array", items: leaf }
  }
  if (isList(node)) {
    const list = node.children[0]!
    const item = list.children.length === 1 ? list.children[0]! : list
    return wrap({ type: "array", items: avroOfNode(item, `${path}[]`, names) })
  }
  if (isMap(node)) {
    const kv = node.children[0]!
    const value = children(kv).get("value") ?? kv.children[1]!
    return wrap({ type: "map", values: avroOfNode(value, `${path}{}`, names) })
  }
  if (element.type === undefined) {
    names.n++
    return wrap({
      type: "record",
      name: `${element.name.replace(/[^A-Za-z0-9_]/g, "_")}_${names.n}`,
      fields: node.children.map((c) => ({
        name: c.element.name,
        type: avroOfNode(c, `${path}.${c.element.name}`, names)
      }))
    })
  }
  const leaf = avroOfLeaf(element)
  if (leaf === undefined) throw new Mismatch(path, `unsupported column type ${describeElement(element)}`)
  return wrap(leaf)
}

const readerSchemaOf = (metadata: FileMetaData, tree: SchemaTree, given: unknown): AvroSchema.RecordSchema => {
  const explicit = recordSchemaOf(given)
  if (explicit !== undefined) return explicit
  const stored = metadata.key_value_metadata?.find((kv) => kv.key === avroSchemaKey)?.value
  if (stored !== undefined) {
    const parsed = Result.try(() => JSON.parse(stored) as unknown)
    const record = Result.isSuccess(parsed) ? recordSchemaOf(parsed.success) : undefined
    if (record !== undefined) return record
  }
  const names = { n: 0 }
  return {
    type: "record",
    name: tree.element.name.replace(/[^A-Za-z0-9_]/g, "_") || "root",
    fields: tree.children.map((c) => ({ name: c.element.name, type: avroOfNode(c, c.element.name, names) }))
  }
}

/**
 * The bytes each row group of a file takes (its column chunks, compressed), in order: what a split cuts a big file
 * into parts by.
 *
 * @since 0.1.0
 */
export const rowGroupBytes = (metadata: FileMetaData): ReadonlyArray<number> =>
  metadata.row_groups.map((_, i) => {
    const range = rowGroupRange(metadata, i)
    return range.end - range.start
  })

/** The byte range of a row group's column chunks. */
const rowGroupRange = (metadata: FileMetaData, index: number): { start: number; end: number } => {
  let start = Number.POSITIVE_INFINITY
  let end = 0
  for (const column of metadata.row_groups[index]!.columns) {
    const meta = column.meta_data
    if (meta === undefined) continue
    const from = Number(meta.dictionary_page_offset || meta.data_page_offset)
    start = Math.min(start, from)
    end = Math.max(end, from + Number(meta.total_compressed_size))
  }
  return start === Number.POSITIVE_INFINITY ? { start: 0, end: 0 } : { start, end }
}

/**
 * The rows of one row group, decoded by hyparquet from bytes already read: an in-memory view of the file's range.
 */
const decodeRowGroup = (
  metadata: FileMetaData,
  size: number,
  range: { start: number; end: number },
  bytes: Uint8Array,
  rowStart: number,
  rowEnd: number,
  columns: Array<string>
): Promise<Array<Array<unknown>>> =>
  new Promise((resolve, reject) => {
    const file = {
      byteLength: size,
      slice: (start: number, end?: number): ArrayBuffer => {
        const to = end ?? size
        if (start < range.start || to > range.end)
          throw new Error(`read of bytes ${start}-${to} outside the row group's bytes ${range.start}-${range.end}`)
        return bytes.slice(start - range.start, to - range.start).buffer
      }
    }
    let rows: Array<Array<unknown>> = []
    const { read, readCompressors } = libraries()
    read
      .parquetRead({
        file,
        metadata,
        columns,
        rowStart,
        rowEnd,
        rowFormat: "array",
        utf8: false,
        compressors: readCompressors,
        parsers: { timestampFromNanoseconds: (nanos: bigint) => nanos },
        onComplete: (data: Array<Array<unknown>>) => {
          rows = data
        }
      })
      .then(() => resolve(rows), reject)
  })

/**
 * Decodes a Parquet file read in ranges into record batches: the footer first, then each row group with one read of
 * its bytes. Values are converted against the reader schema (`avro`), or the writer's stored Avro schema, or one
 * derived from the Parquet schema. A column whose type does not fit the reader schema, a null in a required field, a
 * truncated or non-Parquet file fail the stream with a {@link FormatError.FormatError} naming the file and column.
 *
 * @since 0.1.0
 */
export const decode = <E, R>(
  file: RangedFile<E, R>,
  options?: DecodeOptions
): Stream.Stream<ReadonlyArray<unknown>, FormatError.FormatError | E, R> => {
  const source = options?.source
  const batchSize = Math.max(1, options?.batchSize ?? Transcoder.defaultBatchSize)
  return Stream.unwrap(
    Effect.gen(function* () {
      const metadata = yield* readFooter(file, source)
      const tree = libraries().read.parquetSchema(metadata)
      const reader = yield* Effect.try({
        try: () => {
          const schema = readerSchemaOf(metadata, tree, options?.avro)
          const names: Named = new Map()
          register(names, schema)
          return rowReader(names, schema, tree)
        },
        catch: (cause) =>
          cause instanceof Mismatch
            ? error(source, cause.message, { column: cause.path })
            : error(source, messageOf(cause), { cause })
      })
      const columns = tree.children.map((c) => c.element.name)
      const physical = physicalMetadata(metadata)
      const starts: Array<number> = []
      let rowStart = 0
      for (const group of metadata.row_groups) {
        starts.push(rowStart)
        rowStart += Number(group.num_rows)
      }
      const only = options?.rowGroups
      const groups = metadata.row_groups
        .map((_, i) => i)
        .filter(
          (i) =>
            Number(metadata.row_groups[i]!.num_rows) > 0 && (only === undefined || (i >= only.start && i < only.end))
        )
      return Stream.fromIterable(groups).pipe(
        Stream.mapEffect((index) =>
          Effect.gen(function* () {
            const range = rowGroupRange(metadata, index)
            // Data that was cut out of a file whose footer survived would be read from the footer's bytes.
            const footerStart = file.size - 8 - metadata.metadata_length
            if (range.end > footerStart || range.start < 4)
              return yield* error(
                source,
                `truncated: row group ${index + 1} needs bytes ${range.start}-${range.end}, but the data ends at byte ${footerStart} where the footer starts`,
                { block: index + 1 }
              )
            const bytes = yield* file.read(range.start, range.end - range.start)
            const start = starts[index]!
            const rows = yield* Effect.tryPromise({
              try: () =>
                decodeRowGroup(
                  physical,
                  file.size,
                  range,
                  bytes,
                  start,
                  start + Number(metadata.row_groups[index]!.num_rows),
                  columns
                ),
              catch: (cause) =>
                error(source, `row group ${index + 1} does not decode: ${messageOf(cause)}`, {
                  block: index + 1,
                  cause
                })
            })
            options?.onRead?.(bytes.length)
            const batches: Array<ReadonlyArray<unknown>> = []
            let batch: Array<unknown> = []
            for (let r = 0; r < rows.length; r++) {
              const row = rows[r]!
              let record: unknown
              try {
                record = reader(row)
              } catch (cause) {
                return yield* cause instanceof Mismatch
                  ? error(source, cause.message, {
                      column: cause.path,
                      record: start + r + 1
                    })
                  : error(source, messageOf(cause), { record: start + r + 1, cause })
              }
              batch.push(record)
              if (batch.length >= batchSize) {
                batches.push(batch)
                batch = []
              }
            }
            if (batch.length > 0) batches.push(batch)
            return batches
          })
        ),
        Stream.flattenIterable
      )
    })
  )
}

/**
 * A {@link RangedFile} over bytes in memory (tests, small payloads).
 *
 * @since 0.1.0
 */
export const fromBytes = (bytes: Uint8Array): RangedFile<never, never> => ({
  size: bytes.length,
  read: (offset, length) => Effect.succeed(bytes.subarray(offset, offset + length))
})
