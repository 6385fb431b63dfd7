/**
 * Message payload formats of the Kafka connector: Avro binary with a known schema, the Confluent wire format with
 * schema ids mapped to local schemas, JSON, UTF-8 strings and raw bytes. Each compiles once into a plain
 * encoder/decoder pair used per message.
 */
import avro from "avsc"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as AvroBridge from "../schema/AvroBridge.ts"
import type * as AvroSchema from "../schema/AvroSchema.ts"
import type * as RegistryClient from "../schema/RegistryClient.ts"
import * as AvroWire from "./AvroWire.ts"
import * as JsonValue from "./JsonValue.ts"
import * as Utf8 from "./Utf8.ts"

/** An Avro schema: an avsc `Type` (e.g. `RecordSchema.avro` from the registry) or a parsed `.avsc` schema. */
export type AvroInput = unknown

/** How message values (or keys) are encoded. */
export type PayloadFormat =
  | { readonly type: "avro"; readonly schema: AvroInput }
  | {
      readonly type: "confluent"
      /** Schema id → writer schema. */
      readonly schemas: ReadonlyMap<number, AvroInput> | Readonly<Record<number, AvroInput>>
      /** The id produced messages are framed with (sinks). */
      readonly writeId?: number
    }
  | {
      /**
       * The Confluent wire format with ids resolved by a schema registry: a sink registers `schema` under `subject`
       * (or only looks it up, `autoRegister: false`) and frames messages with its id; a source fetches the writer
       * schema of each id it meets (cached) and reads the data as `schema` (Avro schema resolution).
       */
      readonly type: "registry"
      readonly registry: RegistryClient.Service
      /** The subject a sink registers (or looks up) `schema` under; a source reads by id and needs none (""). */
      readonly subject: string
      readonly schema: AvroSchema.Schema
      readonly autoRegister?: boolean | undefined
    }
  | {
      readonly type: "json"
      /** How deeply objects and arrays may nest in a message (default {@link JsonValue.defaultMaxDepth}). */
      readonly maxDepth?: number
    }
  | { readonly type: "string" }
  | { readonly type: "bytes" }

/** A compiled payload codec. */
export interface PayloadCodec {
  readonly decode: (bytes: Uint8Array) => AvroWire.Decoded
  readonly encode: (value: unknown) => AvroWire.Encoded
}

/** The avsc type of an Avro input, with effect-etl's logical types for parsed schemas. */
export const avroType = (input: AvroInput): avro.Type =>
  avro.Type.isType(input) ? (input as avro.Type) : AvroBridge.toAvroType(input as AvroSchema.Schema)

const textDecoder = new TextDecoder("utf-8", { fatal: true })
const textEncoder = new TextEncoder()

const jsonReplacer = (_key: string, value: unknown): unknown =>
  typeof value === "bigint" ? value.toString() : BigDecimal.isBigDecimal(value) ? BigDecimal.format(value) : value

/** A codec that may need to look up schemas before decoding a batch of payloads. */
export interface PreparedCodec extends PayloadCodec {
  /** Fetches what decoding these payloads needs (the registry's writer schemas of their ids); absent: nothing. */
  readonly prefetch?:
    | ((payloads: ReadonlyArray<Uint8Array | null>) => Effect.Effect<void, RegistryClient.RegistryError>)
    | undefined
}

/**
 * Compiles a payload format, asking its schema registry what it needs first: a sink's schema id (registered, or looked
 * up), a source's way to fetch writer schemas. Fails on an invalid Avro schema (`Error`) or the registry's refusal.
 */
export const prepare = (
  format: PayloadFormat,
  role: "source" | "sink"
): Effect.Effect<PreparedCodec, RegistryClient.RegistryError | Error> => {
  if (format.type !== "registry") return Effect.try({ try: () => compile(format), catch: asError })
  const { registry, subject, schema } = format
  if (role === "sink")
    return Effect.flatMap(
      format.autoRegister === false ? registry.lookup(subject, schema) : registry.register(subject, schema),
      (id) =>
        Effect.try({
          try: () => AvroWire.confluent({ schemas: new Map([[id, avroType(schema)]]), writeId: id }),
          catch: asError
        })
    )
  return Effect.try({
    try: () => {
      const writers = new Map<number, avro.Type>()
      const reader = avroType(schema)
      const codec = AvroWire.confluent({ schemas: writers, reader })
      const missing = new Set<number>()
      return {
        ...codec,
        prefetch: (payloads: ReadonlyArray<Uint8Array | null>) =>
          Effect.suspend(() => {
            missing.clear()
            for (const bytes of payloads) {
              if (bytes === null || bytes.length < AvroWire.HEADER_SIZE || bytes[0] !== AvroWire.MAGIC_BYTE) continue
              const id = ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0
              if (!writers.has(id)) missing.add(id)
            }
            if (missing.size === 0) return Effect.void
            return Effect.forEach(
              [...missing],
              (id) =>
                registry.schemaById(id).pipe(
                  Effect.flatMap((writer) => Effect.sync(() => void writers.set(id, avroType(writer)))),
                  // An id the registry does not know stays unknown: its messages become dead letters naming it.
                  Effect.catchIf(
                    (e) => e.errorCode === 40403,
                    () => Effect.void
                  )
                ),
              { discard: true, concurrency: 4 }
            )
          })
      }
    },
    catch: asError
  })
}

const asError = (cause: unknown): Error => (cause instanceof Error ? cause : new Error(String(cause)))

/** Compiles a payload format (may throw on an invalid Avro schema: call it where building can fail). */
export const compile = (format: PayloadFormat): PayloadCodec => {
  switch (format.type) {
    case "registry":
      throw new Error(`a "registry" payload format needs its registry first: use Payload.prepare`)
    case "avro":
      return AvroWire.binary(avroType(format.schema))
    case "confluent": {
      const entries: Array<[number, unknown]> =
        format.schemas instanceof Map
          ? [...(format.schemas as ReadonlyMap<number, unknown>)]
          : Object.entries(format.schemas).map(([id, schema]) => [Number(id), schema])
      return AvroWire.confluent({
        schemas: new Map(entries.map(([id, schema]) => [id, avroType(schema)])),
        ...(format.writeId === undefined ? {} : { writeId: format.writeId })
      })
    }
    case "json": {
      const maxDepth = format.maxDepth ?? JsonValue.defaultMaxDepth
      return {
        decode: (bytes) => {
          let text: string
          try {
            text = textDecoder.decode(bytes)
          } catch {
            return { ok: false, message: `invalid JSON: ${Utf8.invalidReason(bytes, "message")}` }
          }
          // Checked before parsing: such a value would overflow the stack of whatever encodes it next.
          if (JsonValue.exceedsDepth(text, maxDepth))
            return { ok: false, message: `invalid JSON: objects and arrays nested deeper than ${maxDepth} levels` }
          try {
            return { ok: true, value: JsonValue.parse(text) }
          } catch (cause) {
            return { ok: false, message: `invalid JSON: ${cause instanceof Error ? cause.message : String(cause)}` }
          }
        },
        encode: (value) => {
          try {
            return { ok: true, bytes: textEncoder.encode(JSON.stringify(value, jsonReplacer)) }
          } catch (cause) {
            return {
              ok: false,
              message: `cannot encode as JSON: ${cause instanceof Error ? cause.message : String(cause)}`
            }
          }
        }
      }
    }
    case "string":
      return {
        decode: (bytes) => {
          try {
            return { ok: true, value: textDecoder.decode(bytes) }
          } catch {
            return { ok: false, message: Utf8.invalidReason(bytes, "message") }
          }
        },
        encode: (value) => ({ ok: true, bytes: textEncoder.encode(typeof value === "string" ? value : String(value)) })
      }
    case "bytes":
      return {
        decode: (bytes) => ({ ok: true, value: bytes }),
        encode: (value) =>
          value instanceof Uint8Array
            ? { ok: true, bytes: value }
            : { ok: false, message: `expected bytes (Uint8Array), got ${typeof value}` }
      }
  }
}

/** A short description: `avro`, `confluent (ids 1, 2)`, `json`. */
export const describe = (format: PayloadFormat): string =>
  format.type === "registry"
    ? `confluent (schema registry ${format.registry.url}${format.subject === "" ? "" : `, subject ${format.subject}`})`
    : format.type === "confluent"
      ? `confluent (ids ${(format.schemas instanceof Map ? [...format.schemas.keys()] : Object.keys(format.schemas)).join(", ")})`
      : format.type

/** The text of a key field value: strings as they are, dates as ISO, decimals formatted, the rest as JSON. */
export const keyText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value instanceof Date) return value.toISOString()
  if (BigDecimal.isBigDecimal(value)) return BigDecimal.format(value)
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value)
  return JSON.stringify(value, jsonReplacer) ?? "null"
}
