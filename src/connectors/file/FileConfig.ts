/**
 * Config schemas of the file connector's source and sink.
 */
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Schema from "effect/Schema"
import { BatchSize, Concurrency, NonEmpty, PositiveInt, StageName, UnknownFields } from "../../core/ConfigFields.ts"
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
  unknown_fields: Schema.optionalKey(UnknownFields),
  batch_size: Schema.optionalKey(BatchSize.annotate({ description: "Records per batch (default 4096)" })),
  concurrency: Schema.optionalKey(
    Concurrency.annotate({ description: "Files read at once (default 1: one after the other, in path order)" })
  )
}).annotate({ description: "Reads local files" })

/**
 * Why a directory cannot take a sink's part files, or `undefined` when it can: a sink writes into its own directory,
 * and an overwrite replaces that directory whole, so it must not be the file system root, the working directory, the
 * home directory or a parent of either (`/`, `.`, `..`, `~`'s parents).
 */
export const unsafeSinkDirectory = (
  path: string,
  cwd: string = process.cwd(),
  home: string = os.homedir()
): string | undefined => {
  const target = nodePath.resolve(cwd, path)
  if (target === nodePath.parse(target).root) return "the file system root"
  const contains = (dir: string) => {
    const rel = nodePath.relative(target, dir)
    return rel === "" || (rel.split(nodePath.sep)[0] !== ".." && !nodePath.isAbsolute(rel))
  }
  if (target === nodePath.resolve(cwd)) return "the working directory"
  if (contains(cwd)) return "a parent of the working directory"
  if (contains(home)) return "the home directory or one of its parents"
  return undefined
}

const SinkDirectory = NonEmpty.check(
  Schema.makeFilter((path: string) => {
    const why = unsafeSinkDirectory(path)
    return why === undefined
      ? undefined
      : `This is ${why}: a sink writes part files into its own directory and an overwrite replaces that directory whole; name a directory of its own, e.g. "out/orders"`
  })
)

/** A file sink in a config. */
export const SinkConfig = Schema.Struct({
  type: Schema.Literal("file"),
  name: Schema.optionalKey(StageName),
  path: SinkDirectory.annotate({
    description:
      "The directory part files are written to: a directory of its own (not the root, the working or home directory, nor a parent of them)"
  }),
  format: FormatConfig,
  mode: Schema.optionalKey(
    Schema.Literals(["append", "overwrite", "upsert"])
      .check(
        Schema.makeFilter(
          (mode: string) =>
            mode === "upsert"
              ? 'The file sink cannot upsert: files have no keys. Use "append" or "overwrite", or a database sink for upserts'
              : undefined,
          { toJsonSchema: () => ({ enum: ["append", "overwrite"] }) }
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
