/**
 * A file format as data: which codec, its options and the compression around it. {@link fromPath} guesses one from
 * a file name, {@link decoder} and {@link encoder} turn one into a stream transform (gzip included), and
 * {@link extension} names part files written with it. Parquet is encoded here too, but decoded with ranged reads
 * ({@link Parquet.decode}), never from a byte stream: its footer comes first.
 *
 * @example
 * ```ts
 * const spec = Format.fromPath("in/tx.csv.gz") ?? { type: "jsonl" }
 * const batches = fileBytes.pipe(Format.decoder(spec, { source: "in/tx.csv.gz" }))
 * const bytes = batches.pipe(Format.encoder({ type: "jsonl", compression: "gzip" }))
 * ```
 *
 * @since 0.1.0
 */
import avro from "avsc"
import * as Stream from "effect/Stream"
import * as AvroBridge from "../schema/AvroBridge.ts"
import type * as AvroSchema from "../schema/AvroSchema.ts"
import * as AvroFile from "./AvroFile.ts"
import * as Csv from "./Csv.ts"
import * as FormatError from "./FormatError.ts"
import * as Gzip from "./Gzip.ts"
import * as Jsonl from "./Jsonl.ts"
import * as Parquet from "./Parquet.ts"

/**
 * Compression around the encoded bytes.
 *
 * @since 0.1.0
 */
export type Compression = "gzip" | "none"

/**
 * A file format and its options.
 *
 * @since 0.1.0
 */
export type FormatSpec =
  | {
      readonly type: "jsonl"
      /** See {@link Jsonl.DecodeOptions.maxDepth}. */
      readonly maxDepth?: number | undefined
      /** The longest line (record) read, see {@link Jsonl.DecodeOptions.maxLineLength}. */
      readonly maxRecordLength?: number | undefined
      readonly compression?: Compression | undefined
    }
  | {
      readonly type: "csv"
      /** The field delimiter (default `,`). */
      readonly delimiter?: string | undefined
      /** See {@link Csv.DecodeOptions.header}; encoding writes a header row only for `true` (the default). */
      readonly header?: boolean | ReadonlyArray<string> | undefined
      /** Column types for decoding. */
      readonly columns?: Readonly<Record<string, Csv.ColumnType>> | undefined
      /** See {@link Csv.DecodeOptions.emptyAsNull}. */
      readonly emptyAsNull?: boolean | undefined
      /** See {@link Csv.DecodeOptions.maxDepth}. */
      readonly maxDepth?: number | undefined
      /** See {@link Csv.DecodeOptions.maxRecordLength}. */
      readonly maxRecordLength?: number | undefined
      readonly compression?: Compression | undefined
    }
  | {
      readonly type: "avro"
      /** Block codec when encoding (default `null`); decoding reads it from the file. */
      readonly codec?: AvroFile.Codec | undefined
      readonly compression?: Compression | undefined
    }
  | {
      readonly type: "parquet"
      /** Page compression when encoding (default `snappy`); decoding reads it from the file. */
      readonly compression?: Parquet.Compression | undefined
      /** See {@link Parquet.EncodeOptions.rowGroupBytes} (default 64 MiB). */
      readonly rowGroupBytes?: number | undefined
      /** See {@link Parquet.EncodeOptions.rowGroupRows} (default 131,072). */
      readonly rowGroupRows?: number | undefined
    }

/**
 * Guesses a format from a file name's extensions, case-insensitively: `.jsonl`, `.ndjson`, `.json` (JSON Lines),
 * `.csv`, `.tsv` (tab-delimited CSV), `.avro`, each optionally followed by `.gz` (gzip), and `.parquet` (its pages
 * carry their own compression); `undefined` for anything else.
 *
 * @example
 * ```ts
 * Format.fromPath("s3://bucket/day=1/part-0001.csv.gz") // { type: "csv", compression: "gzip" }
 * ```
 *
 * @since 0.1.0
 */
export const fromPath = (path: string): FormatSpec | undefined => {
  let name = path.slice(path.lastIndexOf("/") + 1).toLowerCase()
  let compression: Compression = "none"
  if (name.endsWith(".gz")) {
    compression = "gzip"
    name = name.slice(0, -3)
  }
  const ext = name.slice(name.lastIndexOf(".") + 1)
  if (!name.includes(".")) return undefined
  switch (ext) {
    case "jsonl":
    case "ndjson":
    case "json":
      return { type: "jsonl", compression }
    case "csv":
      return { type: "csv", compression }
    case "tsv":
      return { type: "csv", delimiter: "\t", compression }
    case "avro":
      return { type: "avro", compression }
    case "parquet":
      return compression === "none" ? { type: "parquet" } : undefined
    default:
      return undefined
  }
}

/**
 * The file extension for part files written with a format, e.g. `.csv.gz`.
 *
 * @since 0.1.0
 */
export const extension = (spec: FormatSpec): string => {
  if (spec.type === "parquet") return ".parquet"
  const base =
    spec.type === "jsonl" ? ".jsonl" : spec.type === "avro" ? ".avro" : spec.delimiter === "\t" ? ".tsv" : ".csv"
  return spec.compression === "gzip" ? `${base}.gz` : base
}

/**
 * A short human description of a format, e.g. `csv (delimiter ";"), gzip`.
 *
 * @since 0.1.0
 */
export const describe = (spec: FormatSpec): string => {
  const details: Array<string> = []
  if (spec.type === "csv") {
    if (spec.delimiter !== undefined && spec.delimiter !== ",")
      details.push(`delimiter ${JSON.stringify(spec.delimiter)}`)
    if (spec.header === false) details.push("no header")
    else if (typeof spec.header === "object") details.push(`columns ${spec.header.join(", ")}`)
  }
  if (spec.type === "avro" && spec.codec !== undefined) details.push(`codec ${spec.codec}`)
  if (spec.type === "parquet") {
    if (spec.compression !== undefined) details.push(spec.compression)
    if (spec.rowGroupBytes !== undefined) details.push(`row groups of ${spec.rowGroupBytes} bytes`)
    if (spec.rowGroupRows !== undefined) details.push(`row groups of at most ${spec.rowGroupRows} rows`)
    return details.length === 0 ? spec.type : `${spec.type} (${details.join(", ")})`
  }
  const base = details.length === 0 ? spec.type : `${spec.type} (${details.join(", ")})`
  return spec.compression === "gzip" ? `${base}, gzip` : base
}

const typeError = (source: string | undefined, cause: unknown): FormatError.FormatError =>
  FormatError.make({
    format: "avro",
    file: source,
    reason: `invalid Avro schema: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

/** An avsc type as given, or built from a parsed schema; a FormatError for an invalid schema. */
const avroTypeOf = (
  schema: unknown,
  typeOptions: AvroFile.ForSchemaOptions | undefined,
  source: string | undefined
): AvroFile.Type | FormatError.FormatError => {
  if (avro.Type.isType(schema)) return schema as AvroFile.Type
  try {
    return avro.Type.forSchema(schema as Parameters<typeof avro.Type.forSchema>[0], { ...typeOptions, registry: {} })
  } catch (cause) {
    return typeError(source, cause)
  }
}

/**
 * Options of {@link decoder}.
 *
 * @since 0.1.0
 */
export interface DecoderOptions {
  /** The file or source name used in error messages. */
  readonly source?: string | undefined
  /** Records per emitted batch. */
  readonly batchSize?: number | undefined
  /** Fail on the first malformed record (default) or collect malformed records (JSON Lines and CSV). */
  readonly onError?: FormatError.OnError | undefined
  /** CSV: column types, merged over `spec.columns`. */
  readonly columns?: Readonly<Record<string, Csv.ColumnType>> | undefined
  /**
   * Avro: the reader schema the writer schema is resolved against, as an avsc `Type` or a parsed `.avsc` schema
   * (built with `typeOptions`).
   */
  readonly avro?: unknown
  /** Avro: options for building types from schemas (the writer schema in the header, a parsed `avro`). */
  readonly typeOptions?: AvroFile.ForSchemaOptions | undefined
  /** JSON Lines and CSV: the lines before the first one read (a range of a file): line numbers count from it. */
  readonly linesBefore?: number | undefined
}

const gunzipIf =
  (spec: FormatSpec, source: string | undefined) =>
  <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, FormatError.FormatError | E, R> =>
    spec.type !== "parquet" && spec.compression === "gzip" ? bytes.pipe(Gzip.gunzip({ source })) : bytes

const decodeAny = <E, R>(
  spec: FormatSpec,
  options: DecoderOptions | undefined,
  bytes: Stream.Stream<Uint8Array, E, R>
): Stream.Stream<ReadonlyArray<unknown> | FormatError.LenientBatch, FormatError.FormatError | E, R> => {
  const source = options?.source
  if (spec.type === "parquet")
    return Stream.fail(
      FormatError.make({
        format: "parquet",
        file: source,
        reason:
          "a Parquet file is read with ranged reads, footer first (Parquet.decode), not from a stream of its bytes"
      })
    )
  const input = gunzipIf(spec, source)(bytes)
  const common = { source, batchSize: options?.batchSize }
  const collect = options?.onError === "collect"
  switch (spec.type) {
    case "jsonl": {
      const jsonl = {
        ...common,
        maxDepth: spec.maxDepth,
        maxLineLength: spec.maxRecordLength,
        linesBefore: options?.linesBefore
      }
      return collect ? input.pipe(Jsonl.decode({ ...jsonl, onError: "collect" })) : input.pipe(Jsonl.decode(jsonl))
    }
    case "csv": {
      const csv = {
        ...common,
        delimiter: spec.delimiter,
        header: spec.header,
        columns: options?.columns === undefined ? spec.columns : { ...spec.columns, ...options.columns },
        emptyAsNull: spec.emptyAsNull,
        maxDepth: spec.maxDepth,
        maxRecordLength: spec.maxRecordLength,
        linesBefore: options?.linesBefore
      }
      return collect ? input.pipe(Csv.decode({ ...csv, onError: "collect" })) : input.pipe(Csv.decode(csv))
    }
    case "avro": {
      let readerType: AvroFile.Type | undefined
      if (options?.avro !== undefined) {
        const type = avroTypeOf(options.avro, options.typeOptions, source)
        if (type instanceof FormatError.FormatError) return Stream.fail(type)
        readerType = type
      }
      // Without a reader schema, records are read with the writer schema and effect-etl's logical types, so a
      // timestamp is a Date and a decimal a BigDecimal whether or not the caller named a schema.
      const avroOptions = {
        ...common,
        typeOptions: options?.typeOptions,
        ...(options?.typeOptions === undefined
          ? { readerFor: (schema: unknown) => AvroBridge.toAvroType(schema as AvroSchema.Schema) }
          : {})
      }
      return collect
        ? input.pipe(AvroFile.decode(readerType, { ...avroOptions, onError: "collect" }))
        : input.pipe(AvroFile.decode(readerType, avroOptions))
    }
  }
}

/**
 * The decoder for a format: gunzip if compressed, then the codec. With `onError: "collect"` it emits
 * {@link FormatError.LenientBatch}es (Avro records cannot be skipped one by one: a block that does not decode is
 * rejected whole).
 *
 * @since 0.1.0
 */
export const decoder: {
  (
    spec: FormatSpec,
    options: DecoderOptions & { readonly onError: "collect" }
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<FormatError.LenientBatch, FormatError.FormatError | E, R>
  (
    spec: FormatSpec,
    options?: DecoderOptions & { readonly onError?: "fail" | undefined }
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<ReadonlyArray<unknown>, FormatError.FormatError | E, R>
  (
    spec: FormatSpec,
    options: DecoderOptions
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<ReadonlyArray<unknown> | FormatError.LenientBatch, FormatError.FormatError | E, R>
} = ((spec: FormatSpec, options?: DecoderOptions) =>
  <E, R>(bytes: Stream.Stream<Uint8Array, E, R>) =>
    decodeAny(spec, options, bytes)) as never

/**
 * Options of {@link encoder}.
 *
 * @since 0.1.0
 */
export interface EncoderOptions {
  /** The file or sink name used in error messages. */
  readonly source?: string | undefined
  /**
   * Avro and Parquet: the schema records are written with, an avsc `Type` or a parsed `.avsc` schema (required for
   * both; Parquet takes its columns from it).
   */
  readonly avro?: unknown
  /** Avro: options for building the type from a parsed `avro` schema. */
  readonly typeOptions?: AvroFile.ForSchemaOptions | undefined
  /** Avro: uncompressed bytes per block. */
  readonly blockSize?: number | undefined
  /** CSV: the columns and their order (default: `spec.header` when it lists names, else the first record's keys). */
  readonly columns?: ReadonlyArray<string> | undefined
  /** Gzip level when `compression` is `gzip`. */
  readonly level?: number | undefined
}

/**
 * The encoder for a format: the codec, then gzip if compressed. Avro needs the `avro` schema; without it the stream fails
 * with a {@link FormatError.FormatError}.
 *
 * @since 0.1.0
 */
export const encoder =
  (spec: FormatSpec, options?: EncoderOptions) =>
  <E, R>(
    batches: Stream.Stream<ReadonlyArray<unknown>, E, R>
  ): Stream.Stream<Uint8Array, FormatError.FormatError | E, R> => {
    const source = options?.source
    let bytes: Stream.Stream<Uint8Array, FormatError.FormatError | E, R>
    switch (spec.type) {
      case "jsonl":
        bytes = batches.pipe(Jsonl.encode({ source }))
        break
      case "csv":
        bytes = batches.pipe(
          Csv.encode({
            source,
            delimiter: spec.delimiter,
            // An explicit list of names means a file without a header row, as when decoding.
            header: spec.header === undefined || spec.header === true,
            columns: options?.columns ?? (typeof spec.header === "object" ? spec.header : undefined)
          })
        )
        break
      case "avro": {
        if (options?.avro === undefined) {
          return Stream.fail(
            FormatError.make({ format: "avro", file: source, reason: "encoding Avro needs a schema (the avro option)" })
          )
        }
        const type = avroTypeOf(options.avro, options.typeOptions, source)
        if (type instanceof FormatError.FormatError) return Stream.fail(type)
        bytes = batches.pipe(AvroFile.encode(type, { source, codec: spec.codec, blockSize: options?.blockSize }))
        break
      }
      case "parquet":
        return batches.pipe(
          Parquet.encode(options?.avro, {
            source,
            compression: spec.compression,
            rowGroupBytes: spec.rowGroupBytes,
            rowGroupRows: spec.rowGroupRows
          })
        )
    }
    return spec.compression === "gzip" ? bytes.pipe(Gzip.gzip({ source, level: options?.level })) : bytes
  }
