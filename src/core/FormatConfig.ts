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

/** A format in a config. */
export const FormatConfig = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("jsonl").annotate({ description: "JSON Lines: one JSON object per line" }),
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
  if (config.type !== "csv") return config
  const { empty_as_null, ...rest } = config
  return empty_as_null === undefined ? rest : { ...rest, emptyAsNull: empty_as_null }
}
