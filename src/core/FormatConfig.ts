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
  })
]).annotate({ description: "The file format: jsonl, csv or avro" })

/** A decoded format config. */
export type FormatConfig = typeof FormatConfig.Type

/** The format spec a config describes. */
export const toSpec = (config: FormatConfig): Format.FormatSpec => {
  if (config.type === "avro") return config
  const { max_depth, max_record_length, ...common } = config
  const limits = {
    ...(max_depth === undefined ? {} : { maxDepth: max_depth }),
    ...(max_record_length === undefined ? {} : { maxRecordLength: max_record_length })
  }
  if (common.type === "jsonl") return { ...common, ...limits }
  const { empty_as_null, ...rest } = common
  return { ...rest, ...limits, ...(empty_as_null === undefined ? {} : { emptyAsNull: empty_as_null }) }
}
