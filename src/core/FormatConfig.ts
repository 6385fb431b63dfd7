/**
 * The `format` object of file-like sources and sinks (local files, S3 objects) in a config.
 */
import * as Schema from "effect/Schema"
import type * as Format from "../formats/Format.ts"

const compression = Schema.optionalKey(
  Schema.Literals(["none", "gzip"]).annotate({
    description: "Compression of the bytes (default: none, or gzip for .gz files)"
  })
)

const maxDepth = Schema.optionalKey(
  Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })).annotate({
    description:
      "How deeply objects and arrays may nest in a record (default 100); a deeper record is dead-lettered before it is parsed"
  })
)

const maxRecordLength = Schema.optionalKey(
  Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 512 * 1024 * 1024 })).annotate({
    description:
      "The longest record read, in characters (default 67108864, 64 Mi); a longer record is dead-lettered with its first 200 characters"
  })
)

/** A format in a config. */
export const FormatConfig = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("jsonl").annotate({ description: "JSON Lines: one JSON object per line" }),
    max_depth: maxDepth,
    max_record_length: maxRecordLength,
    compression
  }),
  Schema.Struct({
    type: Schema.Literal("csv").annotate({ description: "CSV with a header row (RFC 4180 quoting)" }),
    delimiter: Schema.optionalKey(
      Schema.String.check(
        Schema.makeFilter((s: string) => (s.length === 1 ? undefined : "Expected a single character"))
      ).annotate({
        description: 'The field separator (default ",")'
      })
    ),
    header: Schema.optionalKey(
      Schema.Boolean.annotate({ description: "Whether the first row names the columns (default true)" })
    ),
    empty_as_null: Schema.optionalKey(
      Schema.Boolean.annotate({
        description:
          'Whether an empty unquoted field reads as null (default true, as in Spark and PostgreSQL COPY); a quoted "" stays an empty string'
      })
    ),
    max_depth: Schema.optionalKey(
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })).annotate({
        description: "How deeply objects and arrays may nest in a json column (default 100)"
      })
    ),
    max_record_length: maxRecordLength,
    compression
  }),
  Schema.Struct({
    type: Schema.Literal("avro").annotate({ description: "Avro object container files" }),
    codec: Schema.optionalKey(
      Schema.Literals(["null", "deflate"]).annotate({ description: "Block compression when writing (default deflate)" })
    ),
    compression
  }),
  Schema.Struct({
    type: Schema.Literal("parquet").annotate({
      description: "Parquet files: columns typed by the record schema, read a row group at a time"
    }),
    compression: Schema.optionalKey(
      Schema.Literals(["snappy", "zstd", "gzip", "none"]).annotate({
        description: "Page compression when writing (default snappy); reading takes it from the file"
      })
    ),
    row_group_bytes: Schema.optionalKey(
      Schema.Int.check(Schema.isBetween({ minimum: 1024, maximum: 1024 * 1024 * 1024 })).annotate({
        description:
          "Start a new row group once the current one holds about this many uncompressed bytes (default 67108864, 64 MiB); a writer holds one row group in memory"
      })
    ),
    row_group_rows: Schema.optionalKey(
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000_000 })).annotate({
        description: "... or this many rows (default 131072)"
      })
    )
  })
]).annotate({ description: "The file format: jsonl, csv, avro or parquet" })

/** A decoded format config. */
export type FormatConfig = typeof FormatConfig.Type

/** The format spec a config describes. */
export const toSpec = (config: FormatConfig): Format.FormatSpec => {
  if (config.type === "avro") return config
  if (config.type === "parquet") {
    const { row_group_bytes, row_group_rows, ...rest } = config
    return {
      ...rest,
      ...(row_group_bytes === undefined ? {} : { rowGroupBytes: row_group_bytes }),
      ...(row_group_rows === undefined ? {} : { rowGroupRows: row_group_rows })
    }
  }
  const { max_depth, max_record_length, ...common } = config
  const limits = {
    ...(max_depth === undefined ? {} : { maxDepth: max_depth }),
    ...(max_record_length === undefined ? {} : { maxRecordLength: max_record_length })
  }
  if (common.type === "jsonl") return { ...common, ...limits }
  const { empty_as_null, ...rest } = common
  return { ...rest, ...limits, ...(empty_as_null === undefined ? {} : { emptyAsNull: empty_as_null }) }
}
