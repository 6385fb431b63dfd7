/**
 * Config schemas of the file connector's source and sink.
 */
import * as Schema from "effect/Schema"
import { NonEmpty, PositiveInt, StageName } from "../../core/ConfigFields.ts"
import { FormatConfig } from "../../core/FormatConfig.ts"

/** A file source in a config. */
export const SourceConfig = Schema.Struct({
  type: Schema.Literal("file"),
  name: Schema.optionalKey(
    StageName.annotate({ description: "The stage name in logs and the RunReport (default: file)" })
  ),
  path: NonEmpty.annotate({
    description:
      "A file, a directory (every file under it) or a glob such as data/2026-*.jsonl.gz, relative to the working directory"
  }),
  format: Schema.optionalKey(FormatConfig),
  schema: Schema.optionalKey(
    NonEmpty.annotate({ description: "The name of an Avro schema in schemas/ that every record must match" })
  ),
  batch_size: Schema.optionalKey(PositiveInt.annotate({ description: "Records per batch (default 4096)" })),
  concurrency: Schema.optionalKey(
    PositiveInt.annotate({ description: "Files read at once (default 1: one after the other, in path order)" })
  )
}).annotate({ description: "Reads local files" })

/** A file sink in a config. */
export const SinkConfig = Schema.Struct({
  type: Schema.Literal("file"),
  name: Schema.optionalKey(StageName),
  path: NonEmpty.annotate({ description: "The directory part files are written to" }),
  format: FormatConfig,
  mode: Schema.optionalKey(
    Schema.Literals(["append", "overwrite", "upsert"])
      .check(
        Schema.makeFilter((mode: string) =>
          mode === "upsert"
            ? 'The file sink cannot upsert: files have no keys. Use "append" or "overwrite", or a database sink for upserts'
            : undefined
        )
      )
      .annotate({ description: "append (default) adds part files; overwrite replaces the directory atomically" })
  ),
  schema: Schema.optionalKey(
    NonEmpty.annotate({ description: "The Avro schema (name in schemas/) of the written records; required for avro" })
  ),
  max_records_per_file: Schema.optionalKey(
    PositiveInt.annotate({ description: "Start a new part file after this many records (default 1000000)" })
  )
}).annotate({ description: "Writes part files to a local directory" })

/** A decoded file source config. */
export type SourceConfig = typeof SourceConfig.Type
/** A decoded file sink config. */
export type SinkConfig = typeof SinkConfig.Type
