/**
 * Avro on the wire: single Avro binary payloads (one datum per message, no container header) and the Confluent wire
 * format (magic byte `0`, a 4-byte big-endian schema id, then the Avro binary datum).
 *
 * These are plain, total functions for hot loops: they return {@link Decoded} / {@link Encoded} values instead of
 * throwing, so a Kafka source can turn a bad message into a dead letter and go on. Types come from
 * `AvroBridge.toAvroType`, so timestamps are `Date`s and decimals `BigDecimal`s.
 *
 * @example
 * ```ts
 * const codec = AvroWire.confluent({ schemas: new Map([[7, AvroBridge.toAvroType(transactionAvsc)]]), writeId: 7 })
 * const bytes = codec.encode(record)            // { ok: true, bytes } — 0x00, 0x00000007, datum
 * const back = codec.decode(bytes.bytes)        // { ok: true, value: record, schemaId: 7 }
 * ```
 */
import * as AvroFast from "../schema/AvroFast.ts"
import type * as AvroFile from "./AvroFile.ts"
import { explainInvalid, sameSchema } from "./AvroFile.ts"

/** The outcome of decoding one payload. */
export type Decoded =
  | { readonly ok: true; readonly value: unknown; readonly schemaId?: number }
  | { readonly ok: false; readonly message: string }

/** The outcome of encoding one value. */
export type Encoded =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly message: string }

/** A codec between values and single payloads. */
export interface Codec {
  readonly encode: (value: unknown) => Encoded
  readonly decode: (bytes: Uint8Array) => Decoded
}

/** The first byte of a Confluent-framed payload. */
export const MAGIC_BYTE = 0

/** The length of the Confluent header: magic byte + 4-byte schema id. */
export const HEADER_SIZE = 5

const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const cursor: AvroFast.Cursor = { pos: 0 }

// A writer of the reader's very schema needs no resolver: its data reads as the reader reads it alone.
const isSame = (reader: AvroFile.Type, writer: AvroFile.Type): boolean =>
  reader === writer || sameSchema(reader, writer.schema({ exportAttrs: true }))

const decodeDatum = (type: AvroFile.Type, resolver: unknown, bytes: Buffer): Decoded => {
  if (resolver === undefined) {
    // The fast path gives avsc's value or bails; it must consume every byte, as `fromBuffer` requires.
    const fast = AvroFast.of(type)
    if (fast !== undefined) {
      cursor.pos = 0
      const value = fast.decode(bytes, cursor)
      if (value !== AvroFast.BAIL && cursor.pos === bytes.length) return { ok: true, value }
    }
  }
  try {
    // `fromBuffer` rejects trailing bytes, so a truncated or padded payload is an error, not a silent partial read.
    const value = resolver === undefined ? type.fromBuffer(bytes) : type.fromBuffer(bytes, resolver as never)
    return { ok: true, value }
  } catch (cause) {
    return { ok: false, message: `invalid Avro payload (${bytes.length} bytes): ${errorText(cause)}` }
  }
}

const encodeDatum = (type: AvroFile.Type, value: unknown): Encoded => {
  const fast = AvroFast.of(type)
  if (fast !== undefined) {
    const bytes = fast.toBuffer(value)
    if (bytes !== AvroFast.BAIL) return { ok: true, bytes }
  }
  try {
    return { ok: true, bytes: type.toBuffer(value) }
  } catch {
    return { ok: false, message: `cannot encode as Avro: ${explainInvalid(type, value)}` }
  }
}

/**
 * Avro binary payloads of one schema: `encode` writes the datum, `decode` reads it (with `writer` given, data written
 * with that older/newer schema is resolved to `type`).
 */
export const binary = (type: AvroFile.Type, options?: { readonly writer?: AvroFile.Type }): Codec => {
  const writer = options?.writer
  const resolver = writer === undefined || isSame(type, writer) ? undefined : type.createResolver(writer)
  return {
    encode: (value) => encodeDatum(type, value),
    decode: (bytes) => decodeDatum(type, resolver, asBuffer(bytes))
  }
}

/** Frames an Avro datum in the Confluent wire format. */
export const frame = (schemaId: number, datum: Uint8Array): Uint8Array => {
  const out = Buffer.allocUnsafe(HEADER_SIZE + datum.length)
  out[0] = MAGIC_BYTE
  out.writeUInt32BE(schemaId >>> 0, 1)
  out.set(datum, HEADER_SIZE)
  return out
}

/** Splits a Confluent-framed payload into its schema id and datum. */
export const unframe = (
  bytes: Uint8Array
):
  | { readonly ok: true; readonly schemaId: number; readonly datum: Uint8Array }
  | { readonly ok: false; readonly message: string } => {
  if (bytes.length < HEADER_SIZE)
    return {
      ok: false,
      message: `not a Confluent-framed payload: ${bytes.length} bytes, expected at least ${HEADER_SIZE}`
    }
  if (bytes[0] !== MAGIC_BYTE)
    return { ok: false, message: `not a Confluent-framed payload: magic byte ${bytes[0]}, expected ${MAGIC_BYTE}` }
  const buffer = asBuffer(bytes)
  return { ok: true, schemaId: buffer.readUInt32BE(1), datum: buffer.subarray(HEADER_SIZE) }
}

/** Options of {@link confluent}. */
export interface ConfluentOptions {
  /** The writer schema of each schema id. */
  readonly schemas: ReadonlyMap<number, AvroFile.Type>
  /** The schema id `encode` writes with (must be in `schemas`). */
  readonly writeId?: number
  /** Reads every schema id's data as this type (schema resolution); by default each id's own type. */
  readonly reader?: AvroFile.Type
}

/** The resolver of a writer schema identical to the reader's: none (see `isSame`). */
const SAME: unique symbol = Symbol("same schema")

/**
 * The Confluent wire format with schema ids mapped to local schemas: `decode` finds the writer schema by the id in the
 * payload (an unknown id is an error naming it), `encode` writes with `writeId`.
 */
export const confluent = (options: ConfluentOptions): Codec => {
  const resolvers = new Map<number, unknown>()
  const reader = options.reader
  // Built on first use: ids may be added to `schemas` later (a schema registry's answers).
  const resolverOf = (
    id: number,
    writer: AvroFile.Type
  ): { readonly ok: true; readonly resolver: unknown } | { readonly ok: false; readonly message: string } => {
    let resolver = resolvers.get(id)
    if (resolver === undefined) {
      try {
        resolver = isSame(reader!, writer) ? SAME : reader!.createResolver(writer)
      } catch (cause) {
        return {
          ok: false,
          message: `the writer schema of id ${id} cannot be read as the reader schema: ${cause instanceof Error ? cause.message : String(cause)}`
        }
      }
      resolvers.set(id, resolver)
    }
    return { ok: true, resolver }
  }
  const writeType = options.writeId === undefined ? undefined : options.schemas.get(options.writeId)
  return {
    encode: (value) => {
      if (writeType === undefined || options.writeId === undefined)
        return {
          ok: false,
          message:
            options.writeId === undefined
              ? "no schema id to write with (writeId)"
              : `schema id ${options.writeId} has no schema in the mapping`
        }
      const datum = encodeDatum(writeType, value)
      return datum.ok ? { ok: true, bytes: frame(options.writeId, datum.bytes) } : datum
    },
    decode: (bytes) => {
      const framed = unframe(bytes)
      if (!framed.ok) return framed
      const writer = options.schemas.get(framed.schemaId)
      if (writer === undefined)
        return {
          ok: false,
          message: `unknown schema id ${framed.schemaId}; known ids: ${[...options.schemas.keys()].join(", ") || "none"}`
        }
      let decoded: ReturnType<typeof decodeDatum>
      if (reader === undefined) decoded = decodeDatum(writer, undefined, asBuffer(framed.datum))
      else {
        const resolved = resolverOf(framed.schemaId, writer)
        if (!resolved.ok) return resolved
        decoded = decodeDatum(
          reader,
          resolved.resolver === SAME ? undefined : resolved.resolver,
          asBuffer(framed.datum)
        )
      }
      return decoded.ok ? { ok: true, value: decoded.value, schemaId: framed.schemaId } : decoded
    }
  }
}
