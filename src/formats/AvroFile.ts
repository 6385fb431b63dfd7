/**
 * Avro object container files (OCF): a header (magic `Obj\x01`, metadata with `avro.schema` and `avro.codec`, a
 * 16-byte sync marker) followed by blocks of `count`, `size`, `size` bytes of (compressed) records and the sync marker.
 *
 * {@link decode} is a streaming block parser: it buffers at most one block (plus the chunk that completes it), checks
 * every sync marker, inflates `deflate` blocks with `node:zlib` and decodes records with `avsc`, resolving the
 * writer schema from the header against an optional reader type. {@link encode} writes a header and blocks of about
 * `blockSize` uncompressed bytes. {@link readHeader} reads only the header, e.g. to show a file's schema.
 *
 * Supported codecs are `null` and `deflate`; any other codec (`snappy`, `zstandard`, ...) fails with a
 * {@link FormatError.FormatError} naming it.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import * as Zlib from "node:zlib"
import type * as Avsc from "avsc"
import avro from "avsc"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as AvroBridge from "../schema/AvroBridge.ts"
import * as AvroFast from "../schema/AvroFast.ts"
import * as FormatError from "./FormatError.ts"
import * as JsonValue from "./JsonValue.ts"
import * as Transcoder from "./Transcoder.ts"

/**
 * An `avsc` type.
 *
 * @since 0.1.0
 */
export type Type = Avsc.Type

/**
 * Options for building an `avsc` type from a schema (`logicalTypes`, `wrapUnions`, ...).
 *
 * @since 0.1.0
 */
export type ForSchemaOptions = NonNullable<Parameters<typeof avro.Type.forSchema>[1]>

/**
 * The codecs this module reads and writes.
 *
 * @since 0.1.0
 */
export type Codec = "null" | "deflate"

/**
 * The header of an object container file.
 *
 * @since 0.1.0
 */
export interface Header {
  /** The writer schema, parsed from the `avro.schema` metadata. */
  readonly schema: unknown
  /** The `avro.codec` metadata (`"null"` when absent). */
  readonly codec: string
  /** All metadata entries, including `avro.schema` and `avro.codec`. */
  readonly metadata: Readonly<Record<string, Uint8Array>>
  /** The 16-byte sync marker that ends every block. */
  readonly syncMarker: Uint8Array
  /** The header's length in bytes: where the first block starts. */
  readonly size: number
}

const MAGIC = [0x4f, 0x62, 0x6a, 0x01]
const SYNC_SIZE = 16

/**
 * The most bytes {@link decode} and {@link readHeader} buffer for a header before giving up (16 MiB).
 *
 * @since 0.1.0
 */
export const maxHeaderSize = 16 * 1024 * 1024

/**
 * The default of {@link DecodeOptions.maxBlockSize} (256 MiB).
 *
 * @since 0.1.0
 */
export const defaultMaxBlockSize = 256 * 1024 * 1024

const supportedCodecs: ReadonlySet<string> = new Set(["null", "deflate"])

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const message = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Chunks received but not consumed yet, read as one contiguous range only when a whole unit is available. */
class ByteQueue {
  chunks: Array<Uint8Array> = []
  head = 0
  length = 0
  consumed = 0

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.length += chunk.length
  }

  /** The first `n` bytes (`n <= length`), copied only when they span chunks. */
  peek(n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n)
    const joined = new Uint8Array(n)
    let filled = 0
    let offset = this.head
    for (let i = 0; filled < n; i++) {
      const chunk = this.chunks[i]!
      const take = Math.min(chunk.length - offset, n - filled)
      joined.set(chunk.subarray(offset, offset + take), filled)
      filled += take
      offset = 0
    }
    return joined
  }

  /** Like `peek(length)`, merging the chunks so that repeated calls do not copy again. */
  all(): Uint8Array {
    if (this.length === 0) return new Uint8Array(0)
    const joined = this.peek(this.length)
    this.chunks = [joined]
    this.head = 0
    return joined
  }

  skip(n: number): void {
    this.length -= n
    this.consumed += n
    let left = n + this.head
    while (left > 0 && this.chunks.length > 0 && left >= this.chunks[0]!.length) {
      left -= this.chunks[0]!.length
      this.chunks.shift()
    }
    this.head = this.chunks.length === 0 ? 0 : left
  }
}

/** Reads Avro's zig-zag varints; `pos` becomes -1 when the bytes run out. */
class Reader {
  readonly buf: Uint8Array
  pos: number

  constructor(buf: Uint8Array, pos = 0) {
    this.buf = buf
    this.pos = pos
  }

  get ok(): boolean {
    return this.pos >= 0
  }

  long(): number {
    if (this.pos < 0) return 0
    let n = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) {
        this.pos = -1
        return 0
      }
      const b = this.buf[this.pos++]!
      n += (b & 0x7f) * scale
      if ((b & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2
      scale *= 128
    }
    return Number.NaN
  }

  bytes(): Uint8Array {
    const n = this.long()
    if (this.pos < 0) return new Uint8Array(0)
    if (!(n >= 0) || this.pos + n > this.buf.length) {
      this.pos = n >= 0 ? -1 : -2
      return new Uint8Array(0)
    }
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
}

const utf8 = new TextDecoder("utf-8")

/**
 * Whether a writer schema (from a header, or a writer type's `schema({ exportAttrs: true })`) is the reader type's own
 * schema, attributes and logical types included: data written with it then reads as the reader type reads it alone, no
 * resolver needed (and the fast path applies).
 */
export const sameSchema = (reader: Avsc.Type, writerSchema: unknown): boolean => {
  try {
    return JSON.stringify(writerSchema) === JSON.stringify(reader.schema({ exportAttrs: true }))
  } catch {
    return false
  }
}

/** Parses a header from the start of `buf`: the header, `undefined` when more bytes are needed, or a reason. */
const parseHeader = (buf: Uint8Array): Header | undefined | string => {
  for (let i = 0; i < MAGIC.length; i++) {
    if (i >= buf.length) return undefined
    if (buf[i] !== MAGIC[i]) return "not an Avro object container file (bad magic bytes)"
  }
  const reader = new Reader(buf, MAGIC.length)
  const metadata: Record<string, Uint8Array> = {}
  for (;;) {
    let count = reader.long()
    if (!reader.ok) return undefined
    if (Number.isNaN(count)) return "corrupt header: invalid metadata count"
    if (count === 0) break
    if (count < 0) {
      count = -count
      reader.long()
    }
    for (let i = 0; i < count; i++) {
      const key = reader.bytes()
      const value = reader.bytes()
      if (reader.pos === -2) return "corrupt header: negative metadata length"
      if (!reader.ok) return undefined
      Object.defineProperty(metadata, utf8.decode(key), { value, enumerable: true, writable: true, configurable: true })
    }
  }
  if (reader.pos + SYNC_SIZE > buf.length) return undefined
  const syncMarker = buf.slice(reader.pos, reader.pos + SYNC_SIZE)
  const codec = metadata["avro.codec"] === undefined ? "null" : utf8.decode(metadata["avro.codec"])
  const schemaBytes = metadata["avro.schema"]
  if (schemaBytes === undefined) return "corrupt header: no avro.schema metadata"
  let schema: unknown
  try {
    schema = JsonValue.parse(utf8.decode(schemaBytes))
  } catch (cause) {
    return `corrupt header: avro.schema is not JSON: ${message(cause)}`
  }
  return { schema, codec, metadata, syncMarker, size: reader.pos + SYNC_SIZE }
}

const headerError = (source: string | undefined, reason: string): FormatError.FormatError =>
  FormatError.make({ format: "avro", file: source, reason })

/**
 * Options of {@link decode}.
 *
 * @since 0.1.0
 */
export interface DecodeOptions {
  /** The file or source name used in error messages. */
  readonly source?: string | undefined
  /** Records per emitted batch (default {@link Transcoder.defaultBatchSize}). */
  readonly batchSize?: number | undefined
  /** Options for building the writer type from the header schema (`logicalTypes`, `wrapUnions`, ...). */
  readonly typeOptions?: ForSchemaOptions | undefined
  /** The largest block accepted, compressed and inflated, in bytes (default {@link defaultMaxBlockSize}). */
  readonly maxBlockSize?: number | undefined
  /**
   * Without a reader type: builds the type records are read with from the writer schema in the header (e.g. one with
   * logical types, so timestamps come back as `Date`); the file's bytes are resolved from the writer schema into it.
   */
  readonly readerFor?: ((writerSchema: unknown) => Avsc.Type) | undefined
}

/** The parts of an avsc type that {@link emptyItemArray} looks at. */
interface TypeShape {
  readonly typeName: string
  readonly itemsType?: TypeShape
  readonly valuesType?: TypeShape
  readonly underlyingType?: TypeShape
  readonly types?: ReadonlyArray<TypeShape>
  readonly fields?: ReadonlyArray<{ readonly name: string; readonly type: TypeShape }>
  readonly size?: number
}

/** Whether a value of the type can be encoded in no bytes at all. */
const takesNoBytes = (type: TypeShape, seen: Set<TypeShape>): boolean => {
  if (type.underlyingType !== undefined) return takesNoBytes(type.underlyingType, seen)
  if (type.typeName === "null") return true
  if (type.typeName === "fixed") return type.size === 0
  if (type.typeName !== "record" && type.typeName !== "error") return false
  // A record that contains itself needs at least one union index to end, hence a byte.
  if (seen.has(type)) return false
  seen.add(type)
  const empty = (type.fields ?? []).every((field) => takesNoBytes(field.type, seen))
  seen.delete(type)
  return empty
}

/**
 * The path of an array whose items can take no bytes (its block count alone would make a decoder build arrays of
 * any length from a few bytes), or `undefined`.
 */
const emptyItemArray = (type: TypeShape, path: string, seen: Set<TypeShape>): string | undefined => {
  if (seen.has(type)) return undefined
  seen.add(type)
  if (type.underlyingType !== undefined) return emptyItemArray(type.underlyingType, path, seen)
  if (type.itemsType !== undefined) {
    if (takesNoBytes(type.itemsType, new Set())) return path
    return emptyItemArray(type.itemsType, `${path}[]`, seen)
  }
  if (type.valuesType !== undefined) return emptyItemArray(type.valuesType, `${path}{}`, seen)
  for (const member of type.types ?? []) {
    const found = emptyItemArray(member, path, seen)
    if (found !== undefined) return found
  }
  for (const field of type.fields ?? []) {
    const found = emptyItemArray(field.type, path.length === 0 ? field.name : `${path}.${field.name}`, seen)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * Options of {@link decode} in lenient mode: a block that does not decode is not a failure but is skipped as one
 * {@link FormatError.Rejected} holding the block's bytes, and reading goes on with the next block.
 *
 * @since 0.1.0
 */
export interface CollectOptions extends DecodeOptions {
  readonly onError: "collect"
}

type Out = ReadonlyArray<unknown> | FormatError.LenientBatch

class Decoder implements Transcoder.Transcoder<Uint8Array, Out> {
  readonly queue = new ByteQueue()
  readonly batcher: Transcoder.Batcher<unknown>
  readonly source: string | undefined
  readerType: Avsc.Type | undefined
  readonly readerFor: ((writerSchema: unknown) => Avsc.Type) | undefined
  readonly typeOptions: ForSchemaOptions
  readonly typeOptionsPlain: boolean
  readonly maxBlockSize: number
  header: Header | undefined
  type: Avsc.Type | undefined
  resolver: ReturnType<Avsc.Type["createResolver"]> | undefined
  // Reads records as `type.decode(buf, pos, resolver)` would, or bails to it.
  fast: AvroFast.FastCodec | undefined
  blocks = 0
  records = 0

  constructor(readerType: Avsc.Type | undefined, options: DecodeOptions | undefined) {
    this.readerType = readerType
    this.readerFor = options?.readerFor
    this.batcher = new Transcoder.Batcher(
      options?.batchSize ?? Transcoder.defaultBatchSize,
      (options as Partial<CollectOptions> | undefined)?.onError === "collect"
    )
    this.source = options?.source
    // avsc records named types in `registry`; a fresh one per run keeps the caller's options reusable.
    this.typeOptions = { omitRecordMethods: true, ...options?.typeOptions, registry: {} }
    this.typeOptionsPlain = options?.typeOptions === undefined
    this.maxBlockSize = options?.maxBlockSize ?? defaultMaxBlockSize
  }

  error(reason: string, offset?: number, block?: number): FormatError.FormatError {
    return FormatError.make({ format: "avro", file: this.source, block, offset, reason })
  }

  push(bytes: Uint8Array, out: Array<Out>): FormatError.FormatError | undefined {
    this.queue.push(bytes)
    return this.drain(out)
  }

  flush(out: Array<Out>): FormatError.FormatError | undefined {
    if (this.header === undefined) {
      return this.error(`truncated Avro file: the input ends inside the header (${this.queue.length} bytes)`)
    }
    if (this.queue.length > 0) {
      return this.error(
        `truncated Avro file: the input ends inside block ${this.blocks + 1} (${this.queue.length} bytes left)`,
        this.queue.consumed
      )
    }
    this.batcher.cut(out)
    return undefined
  }

  readHeader(): FormatError.FormatError | undefined | "wait" {
    const parsed = parseHeader(this.queue.all())
    if (parsed === undefined) {
      return this.queue.length > maxHeaderSize ? this.error(`header larger than ${maxHeaderSize} bytes`) : "wait"
    }
    if (typeof parsed === "string") return this.error(parsed)
    if (!supportedCodecs.has(parsed.codec)) {
      return this.error(`unsupported codec ${JSON.stringify(parsed.codec)} (supported: null, deflate)`)
    }
    let writerType: Avsc.Type
    try {
      writerType = avro.Type.forSchema(parsed.schema as Parameters<typeof avro.Type.forSchema>[0], this.typeOptions)
    } catch (cause) {
      return this.error(`invalid writer schema: ${message(cause)}`)
    }
    const unbounded = emptyItemArray(writerType as unknown as TypeShape, "", new Set())
    if (unbounded !== undefined) {
      return this.error(
        `unsupported writer schema: ${unbounded.length === 0 ? "the top-level array" : `the array ${unbounded}`} has items of zero bytes (null, empty records or fixed), so a few bytes could claim billions of them`
      )
    }
    if (this.readerType === undefined && this.readerFor !== undefined) {
      try {
        this.readerType = this.readerFor(parsed.schema)
      } catch (cause) {
        return this.error(`invalid writer schema: ${message(cause)}`)
      }
    }
    if (this.readerType !== undefined) {
      try {
        this.resolver = this.readerType.createResolver(writerType)
      } catch (cause) {
        return this.error(`the reader schema cannot read the writer schema: ${message(cause)}`)
      }
      this.type = this.readerType
      // Resolving a writer schema into the very same schema reads what the reader type reads on its own, so the fast
      // path (which reads as the reader type) applies; only with avsc's default type options, which cannot change how
      // the writer type is built.
      if (this.typeOptionsPlain && sameSchema(this.readerType, parsed.schema)) this.fast = AvroFast.of(this.readerType)
    } else {
      this.type = writerType
      this.fast = AvroFast.of(writerType)
    }
    this.header = parsed
    this.queue.skip(parsed.size)
    return undefined
  }

  drain(out: Array<Out>): FormatError.FormatError | undefined {
    if (this.header === undefined) {
      const result = this.readHeader()
      if (result !== undefined) return result === "wait" ? undefined : result
    }
    const queue = this.queue
    const sync = this.header!.syncMarker
    while (queue.length > 0) {
      const offset = queue.consumed
      const head = new Reader(queue.peek(Math.min(queue.length, 20)))
      const count = head.long()
      const size = head.long()
      if (!head.ok) {
        if (queue.length >= 20) return this.error(`corrupt block header`, offset, this.blocks + 1)
        return undefined
      }
      if (!(count >= 0) || !(size >= 0) || !Number.isSafeInteger(count) || !Number.isSafeInteger(size)) {
        return this.error(`corrupt block header (count ${count}, size ${size})`, offset, this.blocks + 1)
      }
      if (size > this.maxBlockSize) {
        return this.error(
          `block of ${size} bytes is larger than the limit of ${this.maxBlockSize}`,
          offset,
          this.blocks + 1
        )
      }
      const total = head.pos + size + SYNC_SIZE
      if (queue.length < total) return undefined
      const block = queue.peek(total)
      queue.skip(total)
      this.blocks++
      for (let i = 0; i < SYNC_SIZE; i++) {
        if (block[head.pos + size + i] !== sync[i]) {
          return this.error("invalid sync marker at the end of the block: the file is corrupt", offset, this.blocks)
        }
      }
      const error = this.decodeBlock(block.subarray(head.pos, head.pos + size), count, offset, out)
      if (error !== undefined) return error
    }
    return undefined
  }

  decodeBlock(data: Uint8Array, count: number, offset: number, out: Array<Out>): FormatError.FormatError | undefined {
    let buf: Buffer
    if (this.header!.codec === "deflate") {
      try {
        // Bounded: a few bytes of deflate can inflate to gigabytes.
        buf = Zlib.inflateRawSync(data, { maxOutputLength: this.maxBlockSize })
      } catch (cause) {
        return this.badBlock(data, `cannot inflate deflate block: ${message(cause)}`, offset, out)
      }
    } else {
      buf = asBuffer(data)
    }
    const type = this.type!
    const resolver = this.resolver
    const batcher = this.batcher
    // In lenient mode a block's records are kept aside until all of them decoded, so a bad block is skipped whole.
    const records: Array<unknown> | undefined = batcher.lenient ? [] : undefined
    let pos = 0
    let i = 0
    const fast = this.fast
    if (fast !== undefined) {
      // Records the fast path reads are exactly avsc's; from the first one it bails on, avsc goes on as before.
      const cursor: AvroFast.Cursor = { pos: 0 }
      for (; i < count; i++) {
        const value = fast.decode(buf, cursor)
        if (value === AvroFast.BAIL) break
        if (records === undefined) batcher.add(value, out)
        else records.push(value)
      }
      pos = cursor.pos
    }
    try {
      for (; i < count; i++) {
        const decoded = type.decode(buf, pos, resolver)
        if (decoded.offset < 0) break
        pos = decoded.offset
        if (records === undefined) batcher.add(decoded.value, out)
        else records.push(decoded.value)
      }
    } catch (cause) {
      return this.badBlock(data, `corrupt record ${i + 1} of ${count}: ${message(cause)}`, offset, out)
    }
    if (i < count) {
      return this.badBlock(
        data,
        `corrupt block: record ${i + 1} of ${count} runs past the end of the block`,
        offset,
        out
      )
    }
    if (pos !== buf.length) {
      return this.badBlock(
        data,
        `corrupt block: ${buf.length - pos} bytes left after its ${count} records`,
        offset,
        out
      )
    }
    this.records += count
    if (records !== undefined) for (const record of records) batcher.add(record, out)
    return undefined
  }

  /** Fails with, or (lenient mode) collects, the current block. */
  badBlock(data: Uint8Array, reason: string, offset: number, out: Array<Out>): FormatError.FormatError | undefined {
    const error = this.error(reason, offset, this.blocks)
    if (!this.batcher.lenient) return error
    const bytes = data.slice()
    this.batcher.reject(
      { line: 0, block: this.blocks, message: error.message, raw: `block ${this.blocks}`, bytes },
      out
    )
    return undefined
  }
}

/**
 * Decodes an object container file into record batches. Without `readerType` records have the writer schema's
 * shape; with it, the writer schema is resolved against it (added fields take their defaults, promotions apply).
 *
 * @example
 * ```ts
 * const batches = fileBytes.pipe(AvroFile.decode(undefined, { source: "events.avro" }))
 * ```
 *
 * @since 0.1.0
 */
export const decode: {
  (
    readerType: Type | undefined,
    options: CollectOptions
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<FormatError.LenientBatch, FormatError.FormatError | E, R>
  (
    readerType?: Type,
    options?: DecodeOptions
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<ReadonlyArray<unknown>, FormatError.FormatError | E, R>
} = ((readerType?: Type, options?: DecodeOptions) =>
  <E, R>(bytes: Stream.Stream<Uint8Array, E, R>) =>
    Transcoder.transform(() => new Decoder(readerType, options))(bytes)) as never

/**
 * Reads only the header of an object container file, pulling no more chunks than it needs.
 *
 * @example
 * ```ts
 * const { schema, codec } = yield* AvroFile.readHeader(fileBytes)
 * ```
 *
 * @since 0.1.0
 */
export const readHeader = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  options?: { readonly source?: string | undefined }
): Effect.Effect<Header, FormatError.FormatError | E, R> => {
  const source = options?.source
  const headers = Transcoder.transform((): Transcoder.Transcoder<Uint8Array, Header> => {
    const queue = new ByteQueue()
    let done = false
    return {
      push: (chunk, out) => {
        if (done) return undefined
        queue.push(chunk)
        const parsed = parseHeader(queue.all())
        if (typeof parsed === "string") return headerError(source, parsed)
        if (parsed === undefined) {
          return queue.length > maxHeaderSize
            ? headerError(source, `header larger than ${maxHeaderSize} bytes`)
            : undefined
        }
        done = true
        out.push(parsed)
        return undefined
      },
      flush: () =>
        done
          ? undefined
          : headerError(source, `truncated Avro file: the input ends inside the header (${queue.length} bytes)`)
    }
  })(bytes)
  return Effect.flatMap(runFirst(headers), (header) =>
    header === undefined ? Effect.fail(headerError(source, "truncated Avro file: no header")) : Effect.succeed(header)
  )
}

/**
 * Options of {@link encode}.
 *
 * @since 0.1.0
 */
export interface EncodeOptions {
  /** `null` (default) or `deflate`. */
  readonly codec?: Codec | undefined
  /** Uncompressed bytes per block before it is written (default 64 KiB). */
  readonly blockSize?: number | undefined
  /** The 16-byte sync marker (default: random). */
  readonly syncMarker?: Uint8Array | undefined
  /** Extra metadata entries; `avro.schema` and `avro.codec` are always set by the encoder. */
  readonly metadata?: Readonly<Record<string, string | Uint8Array>> | undefined
  /** zlib level for `deflate` (default zlib's default, 6). */
  readonly compressionLevel?: number | undefined
  /** Check every record against the type before writing it (default `true`); see {@link encode}. */
  readonly validate?: boolean | undefined
  /** The file or sink name used in error messages. */
  readonly source?: string | undefined
}

/**
 * The default of {@link EncodeOptions.blockSize} (64 KiB, as avsc and the Java implementation).
 *
 * @since 0.1.0
 */
export const defaultBlockSize = 64 * 1024

const varint = (n: number, out: Array<number>): void => {
  let z = n >= 0 ? n * 2 : -n * 2 - 1
  while (z >= 128) {
    out.push((z % 128) | 0x80)
    z = Math.floor(z / 128)
  }
  out.push(z)
}

const encodeHeader = (
  schema: string,
  codec: Codec,
  syncMarker: Uint8Array,
  extra: Readonly<Record<string, string | Uint8Array>>
): Buffer => {
  const entries = new Map<string, Uint8Array>()
  for (const [key, value] of Object.entries(extra)) {
    entries.set(key, typeof value === "string" ? Buffer.from(value, "utf8") : value)
  }
  entries.set("avro.schema", Buffer.from(schema, "utf8"))
  entries.set("avro.codec", Buffer.from(codec, "utf8"))
  const parts: Array<Uint8Array> = [Uint8Array.from(MAGIC)]
  const prefix: Array<number> = []
  varint(entries.size, prefix)
  parts.push(Uint8Array.from(prefix))
  for (const [key, value] of entries) {
    const keyBytes = Buffer.from(key, "utf8")
    const lengths: Array<number> = []
    varint(keyBytes.length, lengths)
    parts.push(Uint8Array.from(lengths), keyBytes)
    const valueLength: Array<number> = []
    varint(value.length, valueLength)
    parts.push(Uint8Array.from(valueLength), value)
  }
  parts.push(Uint8Array.of(0), syncMarker)
  return Buffer.concat(parts)
}

/**
 * Describes why a value does not match a type, with the path of the first mismatch.
 *
 * @since 0.1.0
 */
export const explainInvalid = (type: Type, value: unknown): string => {
  let reason = "the value does not match the schema"
  const checked = checks(type, value, {
    errorHook: (path, found, expected) => {
      const at = path.length === 0 ? "" : ` at ${path.join(".")}`
      if (typeof found === "string" && !found.isWellFormed()) {
        reason = `${AvroBridge.loneSurrogate(found)}${at}`
        return
      }
      let shown: string
      try {
        shown = typeof found === "bigint" ? `${found}n` : (JSON.stringify(found) ?? String(found))
      } catch {
        shown = String(found)
      }
      reason = `expected ${JSON.stringify(expected.schema())}${at}, got ${FormatError.snippet(shown, 100)}`
    }
  })
  return checked === "threw" ? `${reason} (${thrown(type, value)})` : reason
}

// avsc's checks throw on some values instead of rejecting them (a bigint where an int goes): such a value is invalid.
const checks = (type: Type, value: unknown, options?: Parameters<Type["isValid"]>[1]): boolean | "threw" => {
  try {
    return type.isValid(value, options)
  } catch {
    return "threw"
  }
}

const thrown = (type: Type, value: unknown): string => {
  try {
    type.isValid(value)
    return "it cannot be checked"
  } catch (cause) {
    return `it cannot be checked: ${message(cause)}`
  }
}

/** A block's records, framed once compressed. */
interface RawBlock {
  readonly count: number
  readonly data: Uint8Array
}

const frame = (count: number, data: Uint8Array, syncMarker: Uint8Array): Uint8Array => {
  const head: Array<number> = []
  varint(count, head)
  varint(data.length, head)
  const block = Buffer.allocUnsafe(head.length + data.length + SYNC_SIZE)
  block.set(head, 0)
  block.set(data, head.length)
  block.set(syncMarker, head.length + data.length)
  return block
}

/**
 * How many deflate blocks are compressed at once on libuv's thread pool while the next ones are encoded.
 *
 * @since 0.1.0
 */
export const deflateConcurrency = 4

/**
 * Encodes record batches as an object container file: the header first (also for an empty input), then a block
 * whenever about `blockSize` uncompressed bytes have been written, and the last partial block at the end. `deflate`
 * blocks are compressed on libuv's thread pool, {@link deflateConcurrency} at a time, in order.
 *
 * With `validate` (the default) each record is checked against the type first and a mismatch fails the stream with
 * its record number and path; without it, values avsc cannot write still fail, but some mismatches (a fraction for an
 * `int`, a missing field) are written wrongly without notice, like avsc's own encoder.
 *
 * @example
 * ```ts
 * const type = avro.Type.forSchema({ type: "record", name: "Tx", fields: [{ name: "id", type: "string" }] })
 * const bytes = batches.pipe(AvroFile.encode(type, { codec: "deflate" }))
 * ```
 *
 * @since 0.1.0
 */
export const encode =
  (type: Type, options?: EncodeOptions) =>
  <E, R>(
    batches: Stream.Stream<ReadonlyArray<unknown>, E, R>
  ): Stream.Stream<Uint8Array, FormatError.FormatError | E, R> => {
    const source = options?.source
    const codec = options?.codec ?? "null"
    const level = options?.compressionLevel
    const syncMarker = options?.syncMarker ?? Crypto.randomBytes(SYNC_SIZE)
    const configError =
      syncMarker.length !== SYNC_SIZE
        ? FormatError.make({
            format: "avro",
            file: source,
            reason: `sync marker must be 16 bytes, got ${syncMarker.length}`
          })
        : !supportedCodecs.has(codec)
          ? FormatError.make({
              format: "avro",
              file: source,
              reason: `unsupported codec ${JSON.stringify(codec)} (supported: null, deflate)`
            })
          : undefined
    if (configError !== undefined) return Stream.fail(configError)
    const pieces = batches.pipe(Transcoder.transform(() => blockWriter(type, codec, syncMarker, options)))
    if (codec === "null") return pieces as Stream.Stream<Uint8Array, FormatError.FormatError | E, R>
    const zlibOptions = level === undefined ? {} : { level }
    return pieces.pipe(
      Stream.mapEffect(
        (piece) =>
          piece instanceof Uint8Array
            ? Effect.succeed(piece)
            : Effect.callback<Uint8Array, FormatError.FormatError>((resume) => {
                Zlib.deflateRaw(piece.data, zlibOptions, (cause, compressed) => {
                  resume(
                    cause === null
                      ? Effect.succeed(frame(piece.count, compressed, syncMarker))
                      : Effect.fail(
                          FormatError.make({
                            format: "avro",
                            file: source,
                            reason: `deflate failed: ${message(cause)}`
                          })
                        )
                  )
                })
              }),
        { concurrency: deflateConcurrency }
      )
    )
  }

// A buffer with room for `-missing` more bytes after the first `pos`, which are kept.
const grow = (buf: Buffer<ArrayBuffer>, pos: number, missing: number): Buffer<ArrayBuffer> => {
  const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, buf.length - missing + 1024))
  buf.copy(grown, 0, 0, pos)
  return grown
}

/** Writes the header and the records into blocks: framed for `null`, raw (to compress) for `deflate`. */
const blockWriter = (
  type: Type,
  codec: Codec,
  syncMarker: Uint8Array,
  options: EncodeOptions | undefined
): Transcoder.Transcoder<ReadonlyArray<unknown>, Uint8Array | RawBlock> => {
  const source = options?.source
  const blockSize = Math.max(1, options?.blockSize ?? defaultBlockSize)
  const validate = options?.validate ?? true
  const fast = AvroFast.of(type)
  let headerSent = false
  let buf = Buffer.allocUnsafe(blockSize + 1024)
  let pos = 0
  let count = 0
  let records = 0

  const sendHeader = (out: Array<Uint8Array | RawBlock>): void => {
    if (headerSent) return
    headerSent = true
    out.push(
      encodeHeader(JSON.stringify(type.schema({ exportAttrs: true })), codec, syncMarker, options?.metadata ?? {})
    )
  }

  const sendBlock = (out: Array<Uint8Array | RawBlock>): void => {
    if (count === 0) return
    if (codec === "deflate") {
      // The buffer goes to the thread pool: the next block gets a new one.
      out.push({ count, data: buf.subarray(0, pos) })
      buf = Buffer.allocUnsafe(buf.length)
    } else {
      out.push(frame(count, buf.subarray(0, pos), syncMarker))
    }
    pos = 0
    count = 0
  }

  const invalid = (record: unknown, index: number, cause?: unknown): FormatError.FormatError =>
    FormatError.make({
      format: "avro",
      file: source,
      record: index,
      reason: `cannot encode record: ${cause === undefined ? explainInvalid(type, record) : `${message(cause)} (${explainInvalid(type, record)})`}`,
      cause
    })

  return {
    push: (batch, out) => {
      sendHeader(out)
      for (let i = 0; i < batch.length; i++) {
        const record = batch[i]
        records++
        if (fast !== undefined) {
          // Checks as `isValid` and writes as `encode`, or bails to them (and their messages) below.
          let next = fast.encode(record, buf, pos)
          if (next !== AvroFast.BAIL && next < 0) {
            buf = grow(buf, pos, next)
            next = fast.encode(record, buf, pos)
          }
          if (next !== AvroFast.BAIL) {
            pos = next
            count++
            if (pos >= blockSize) sendBlock(out)
            continue
          }
        }
        if (validate && checks(type, record) !== true) return invalid(record, records)
        let next: number
        try {
          next = type.encode(record, buf, pos)
          if (next < 0) {
            buf = grow(buf, pos, next)
            next = type.encode(record, buf, pos)
          }
        } catch (cause) {
          return invalid(record, records, cause)
        }
        pos = next
        count++
        if (pos >= blockSize) sendBlock(out)
      }
      return undefined
    },
    flush: (out) => {
      sendHeader(out)
      sendBlock(out)
      return undefined
    }
  }
}

const runFirst = <A, E, R>(stream: Stream.Stream<A, E, R>): Effect.Effect<A | undefined, E, R> =>
  Effect.map(Stream.runCollect(Stream.take(stream, 1)), (items) => items[0])
