/**
 * The local file connector: the embedded default.
 *
 * - `source` reads one file, every file under a directory (hidden `.`/`_` entries skipped) or a glob, in path order
 *   (or `concurrency` files at once), decoding JSON Lines, CSV or Avro container files (gzip-compressed or not), or
 *   Parquet files in ranges (the footer first, then a row group at a time). Each
 *   batch names its file (`Batch.part`), so that event-time stages keep a watermark per file. Lines that do not parse
 *   and records that do not match the schema become dead letters that name the file and line; the rest flows on. Its
 *   input size is the sum of the files' sizes, and each batch carries the bytes it was read from.
 * - `sink` writes part files under a directory. `append` adds new uniquely named part files; `overwrite` writes the new
 *   set to a staging directory and publishes it at commit: the directory is a symbolic link to a complete generation,
 *   swapped in one rename (see `Generations.ts`), so readers see the old data or the new, never a mix and never
 *   nothing, and an interrupted run leaves the old data. Both write `_SUCCESS` when done. Files have no keys: `upsert`
 *   is rejected.
 */
import * as nodePath from "node:path"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Batch from "../../core/Batch.ts"
import * as Checkpoint from "../../core/Checkpoint.ts"
import * as Cursor from "../../core/Cursor.ts"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import * as Sink from "../../core/Sink.ts"
import * as Source from "../../core/Source.ts"
import type { SplitPart } from "../../core/Stage.ts"
import * as Format from "../../formats/Format.ts"
import type { FormatError } from "../../formats/FormatError.ts"
import type * as Parquet from "../../formats/Parquet.ts"
import * as Datasets from "../internal/Datasets.ts"
import * as LineRanges from "../internal/LineRanges.ts"
import * as Objects from "../internal/Objects.ts"
import * as Checkpoints from "./Checkpoints.ts"
import { FileError, reasons } from "./FileError.ts"
import { FileStore, type FileStoreShape } from "./FileStore.ts"
import * as Generations from "./Generations.ts"

/** Options of a file source. */
export interface SourceOptions<A> {
  /** A file, a directory, or a glob (`data/2026-*.jsonl.gz`). */
  readonly path: string
  /** The stage name (default: `file`). */
  readonly name?: string
  /** The format; by default it follows each file's extension. */
  readonly format?: Format.FormatSpec
  /** Validates and converts every record; without it records are passed on as decoded. */
  readonly schema?: RecordSchema<A>
  /** Records per batch (default 4096). */
  readonly batchSize?: number
  /** Files read at once (default 1: one after the other, in path order). Batches of one file stay in order. */
  readonly concurrency?: number
}

const formatOf = (path: string, format: Format.FormatSpec | undefined): Effect.Effect<Format.FormatSpec, FileError> => {
  if (format !== undefined) return Effect.succeed(format)
  const detected = Format.fromPath(path)
  return detected === undefined
    ? Effect.fail(
        new FileError({
          reason: reasons.Unknown,
          operation: "read",
          path,
          message: `Cannot tell the format of ${path} from its extension (.jsonl, .ndjson, .json, .csv, .avro, optionally .gz, or .parquet); set "format"`
        })
      )
    : Effect.succeed(detected)
}

const readFile = <A>(
  store: FileStoreShape,
  stage: string,
  file: FileRead,
  options: SourceOptions<A>
): Stream.Stream<Batch.Batch<A>, FileError | FormatError> =>
  Stream.unwrap(
    Effect.map(formatOf(file.path, options.format), (format) =>
      format.type === "parquet"
        ? readParquet(store, stage, file, options)
        : Objects.decode(store.read(file.path, file.range), {
            stage,
            location: file.path,
            // A range of a CSV file after its header reads with the header's names.
            format: format.type === "csv" && file.header !== undefined ? { ...format, header: file.header } : format,
            schema: options.schema,
            batchSize: options.batchSize,
            before: file.range
          })
    )
  )

/** A Parquet file, read in ranges: its size (from the listing, or looked up), then the footer and each row group. */
const readParquet = <A>(
  store: FileStoreShape,
  stage: string,
  file: FileRead,
  options: SourceOptions<A>
): Stream.Stream<Batch.Batch<A>, FileError | FormatError> =>
  Stream.unwrap(
    Effect.map(
      file.size === undefined
        ? Effect.map(store.list(file.path), (found) => found[0]?.size ?? 0)
        : Effect.succeed(file.size),
      (size) =>
        Objects.decodeParquet(rangedFile(store, file.path, size), {
          stage,
          location: file.path,
          schema: options.schema,
          batchSize: options.batchSize,
          rowGroups: file.rowGroups
        })
    )
  )

/** A file a source reads, or a range of its lines (a part of a split run that reads a big file in pieces). */
interface FileRead {
  readonly path: string
  /** The file's size, when the listing gave it (Parquet reads its footer from the end). */
  readonly size?: number | undefined
  /** Parquet: the row groups to read (a part of a file split by row groups). */
  readonly rowGroups?: Objects.RowGroups | undefined
  readonly range?: LineRanges.LineRange | undefined
  /** CSV: the names in the file's header, for a range that starts after it. */
  readonly header?: ReadonlyArray<string> | undefined
}

/** What a part of a file source reads: a group of files, or a range of the records of one. */
interface PartSpec {
  readonly paths: ReadonlyArray<string>
  readonly rowGroups?: Objects.RowGroups | undefined
  readonly range?: LineRanges.LineRange | undefined
  readonly header?: ReadonlyArray<string> | undefined
}

/** A Parquet file read in ranges through the file store. */
const rangedFile = (store: FileStoreShape, path: string, size: number): Parquet.RangedFile<FileError, never> => ({
  size,
  read: (offset, length) => Objects.collectBytes(store.read(path, { start: offset, end: offset + length }))
})

/** The paths that match `path`, in order; none is an error. */
const listed = (store: FileStoreShape, path: string) =>
  Effect.gen(function* () {
    const files = yield* store.list(path)
    if (files.length === 0)
      return yield* new FileError({
        reason: reasons.NotFound,
        operation: "list",
        path,
        message: `No files match ${path}`
      })
    return files
  })

/** The dataset of a local path (namespace `file`, name the absolute path or glob) and its span attributes. */
const fileLineage = (path: string, fields: Datasets.Fields | undefined) => {
  const absolute = nodePath.resolve(path)
  return { dataset: Datasets.make("file", absolute, fields), attributes: { "file.path": absolute } }
}

/**
 * A source over local files.
 *
 * @example
 * File.source({ path: "examples/data/*.jsonl", schema: transactions })
 */
export const source = <A = Readonly<Record<string, unknown>>>(
  options: SourceOptions<A>
): Source.Source<A, FileError | FormatError, FileStore> => {
  const name = options.name ?? "file"
  return Source.make({
    name,
    type: "file",
    description: `files ${options.path}${options.format === undefined ? "" : ` (${Format.describe(options.format)})`}${options.schema === undefined ? "" : `, schema ${options.schema.name}`}`,
    bounded: true,
    ...fileLineage(options.path, Datasets.fieldsOf(options.schema)),
    batches: (ctx) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const store = yield* FileStore
          // A split run reads the files of its parts (see `split`), else every file that matches.
          const files: ReadonlyArray<FileRead> =
            ctx.parts === undefined
              ? (yield* listed(store, options.path)).map((file) => ({ path: file.path, size: file.size }))
              : ctx.parts.flatMap((part) => {
                  const spec = part.spec as PartSpec
                  return spec.paths.map((path) => ({
                    path,
                    range: spec.range,
                    header: spec.header,
                    rowGroups: spec.rowGroups
                  }))
                })
          return Source.readParts(files, (file) => readFile(store, name, file, options), {
            concurrency: options.concurrency ?? 1,
            id: (file) =>
              file.range !== undefined
                ? `${file.path}@${file.range.start}`
                : file.rowGroups !== undefined
                  ? `${file.path}#${file.rowGroups.start}`
                  : file.path
          })
        })
      ),
    split: (split) =>
      Effect.gen(function* () {
        const store = yield* FileStore
        const files = yield* listed(store, options.path)
        const parts: Array<SplitPart> = []
        for (const group of Source.groupBySize(files, split.targetBytes)) {
          const first = group[0]!
          // A big JSON Lines or CSV file alone in its group is cut into ranges of records, when the run allows it.
          const format = options.format ?? Format.fromPath(first.path)
          // A big Parquet file alone in its group is cut into ranges of its row groups.
          if (
            group.length === 1 &&
            split.withinFiles === true &&
            first.size > split.targetBytes &&
            format?.type === "parquet"
          ) {
            const ranges = yield* Objects.rowGroupRanges(
              rangedFile(store, first.path, first.size),
              first.path,
              split.targetBytes
            )
            if (ranges.length > 1) {
              for (const range of ranges)
                parts.push({
                  id: `${first.path}#${range.start}`,
                  description: `${first.path} row groups ${range.start + 1} to ${range.end}`,
                  size: { bytes: range.bytes },
                  spec: { paths: [first.path], rowGroups: { start: range.start, end: range.end } } satisfies PartSpec
                })
              continue
            }
          }
          if (
            group.length === 1 &&
            split.withinFiles === true &&
            first.size > Math.max(split.targetBytes, LineRanges.MIN_RANGE) &&
            LineRanges.cuttable(format)
          ) {
            const { ranges, header } = yield* LineRanges.rangesOf(
              (range) => store.read(first.path, range),
              first.path,
              first.size,
              Math.max(split.targetBytes, LineRanges.MIN_RANGE),
              format
            )
            for (const range of ranges)
              parts.push({
                id: `${first.path}@${range.start}`,
                description: `${first.path} bytes ${range.start} to ${range.end} (from line ${range.lines + 1})`,
                size: { bytes: range.end - range.start },
                spec: {
                  paths: [first.path],
                  range,
                  ...(range.start > 0 && header !== undefined ? { header } : {})
                } satisfies PartSpec
              })
            continue
          }
          parts.push({
            id: first.path,
            description:
              group.length === 1 ? first.path : `${group.length} files from ${first.path} to ${group.at(-1)!.path}`,
            size: { bytes: group.reduce((sum, file) => sum + file.size, 0) },
            spec: { paths: group.map((file) => file.path) } satisfies PartSpec
          })
        }
        return parts
      }),
    size: Effect.gen(function* () {
      const files = yield* (yield* FileStore).list(options.path)
      return { bytes: files.reduce((sum, file) => sum + file.size, 0) }
    })
  })
}

/** Options of a file sink. */
export interface SinkOptions {
  /** The directory the part files go to. */
  readonly path: string
  readonly name?: string
  readonly format: Format.FormatSpec
  /** `append` (default) adds part files; `overwrite` replaces the directory's content atomically. */
  readonly mode?: "append" | "overwrite"
  /** The schema of the written records: needed for Avro (its writer schema) and Parquet (its columns). */
  readonly schema?: RecordSchema<unknown>
  /** A new part file is started after this many records (default 1,000,000). */
  readonly maxRecordsPerFile?: number
}

interface Part {
  readonly file: string
  readonly offer: (records: ReadonlyArray<unknown>) => Effect.Effect<void, FileError | FormatError>
  readonly finish: Effect.Effect<number, FileError | FormatError>
}

/** Streams batches into one part file through the format's encoder; the writer runs in its own fiber. */
const startPart = (
  store: FileStoreShape,
  file: string,
  format: Format.FormatSpec,
  schema: RecordSchema<unknown> | undefined
): Effect.Effect<Part, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.bounded<ReadonlyArray<unknown>, Cause.Done>(4)
    const bytes = Stream.fromQueue(queue).pipe(
      Format.encoder(format, { source: file, ...(schema?.avro === undefined ? {} : { avro: schema.avro }) })
    )
    const fiber = yield* Effect.forkScoped(store.write(file, bytes).pipe(Effect.onExit(() => Queue.shutdown(queue))))
    const failed = Effect.flatMap(Fiber.await(fiber), (exit) =>
      Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.void
    )
    return {
      file,
      offer: (records) => Effect.flatMap(Queue.offer(queue, records), (accepted) => (accepted ? Effect.void : failed)),
      finish: Effect.andThen(Queue.end(queue), Fiber.join(fiber))
    }
  })

const SUCCESS = "_SUCCESS"

/**
 * A sink writing part files under a directory.
 *
 * @example
 * File.sink({ path: "out/settled", format: { type: "avro" }, mode: "overwrite", schema })
 */
export const sink = <A>(options: SinkOptions): Sink.Sink<A, FileError | FormatError, FileStore> => {
  const mode = options.mode ?? "append"
  const name = options.name ?? "file"
  const dir = options.path.replace(/\/+$/, "")
  const maxRecords = options.maxRecordsPerFile ?? 1_000_000
  const extension = Format.extension(options.format)
  return Sink.make<A, FileError | FormatError, FileStore>({
    name,
    type: "file",
    description: `files under ${dir}/ (${Format.describe(options.format)})`,
    mode,
    ...fileLineage(dir, Datasets.fieldsOf(options.schema)),
    durability: "on-commit",
    // An append stores the source positions of each segment in a manifest, its commit point (see `Checkpoints.ts`).
    ...(mode === "append"
      ? {
          positions: {
            where: `${dir}/${Checkpoints.DIRECTORY}`,
            load: (pipeline: string) => FileStore.use((store) => Checkpoints.load(store, dir, pipeline))
          }
        }
      : {}),
    open: openWriter(undefined),
    threadStaging: {
      description: `part files next to ${dir}/`,
      part: (run, part) =>
        Effect.gen(function* () {
          const store = yield* FileStore
          const scope = yield* Effect.scope
          const target = nodePath.join(partsDirectory(store, run), partKey(part))
          const temporary = `${target}.tmp-${Generations.newTag()}`
          let committed = false
          yield* Effect.addFinalizer(() => (committed ? Effect.void : Effect.ignore(store.remove(temporary))))
          yield* store.makeDirectory(temporary)
          const files = partFiles(store, temporary, (n) => `part-${String(n).padStart(5, "0")}${extension}`, scope)
          return {
            write: files.write,
            commit: Effect.gen(function* () {
              const { written } = yield* files.finish
              // Only the last complete read of a part counts.
              yield* store.remove(target)
              yield* store.rename(temporary, target)
              committed = true
              return { written, location: target }
            })
          }
        }),
      finish: (run, parts) => openWriter({ run, parts }),
      clear: (run) => FileStore.use((store) => store.remove(partsDirectory(store, run)))
    }
  })

  /** The files each part of a split run wrote (see `staging`): in a directory next to the sink's, per run. */
  function partsDirectory(store: FileStoreShape, run: string): string {
    return Generations.sibling(store, dir, "staging", runTag(run))
  }

  /** Streams records into part files under a directory, a new file every `maxRecords` records. */
  function partFiles(store: FileStoreShape, under: string, name: (n: number) => string, scope: Scope.Scope) {
    const finished: Array<string> = []
    let part: Part | undefined
    let inPart = 0
    let written = 0
    let bytes = 0
    const finishPart = Effect.suspend(() => {
      if (part === undefined) return Effect.void
      const current = part
      part = undefined
      inPart = 0
      return Effect.map(current.finish, (size) => {
        bytes += size
        finished.push(nodePath.basename(current.file))
      })
    })
    return {
      write: (records: ReadonlyArray<unknown>) =>
        Effect.gen(function* () {
          let offset = 0
          while (offset < records.length) {
            if (part === undefined)
              part = yield* startPart(
                store,
                nodePath.join(under, name(finished.length)),
                options.format,
                options.schema
              ).pipe(Scope.provide(scope))
            const take = Math.min(records.length - offset, maxRecords - inPart)
            yield* part.offer(offset === 0 && take === records.length ? records : records.slice(offset, offset + take))
            inPart += take
            written += take
            offset += take
            if (inPart >= maxRecords) yield* finishPart
          }
        }),
      finish: Effect.map(finishPart, () => ({ files: finished, written, bytes }))
    }
  }

  function openWriter(taking: { readonly run: string; readonly parts: ReadonlyArray<Sink.StagedPart> } | undefined) {
    return Effect.gen(function* () {
      const store = yield* FileStore
      // Part writers live as long as the sink is open, not just for one `write` call.
      const scope = yield* Effect.scope
      const tag = Generations.newTag()
      yield* Generations.recover(store, dir)
      const kind = yield* store.kind(dir)
      if (kind === "file")
        return yield* new FileError({
          reason: reasons.NotADirectory,
          operation: "write",
          path: dir,
          message: `Cannot write to ${dir}: it is a file; a file sink writes part files into a directory (nothing was changed)`
        })
      const link = yield* store.readLink(dir)
      if (kind === "missing" && link !== undefined)
        return yield* new FileError({
          reason: reasons.NotFound,
          operation: "write",
          path: dir,
          message: `Cannot write to ${dir}: it is a symbolic link to ${link}, which does not exist (nothing was changed)`
        })
      // Segments a killed run committed are finished before its staging directory is swept.
      if (kind === "directory" && mode === "append") yield* Checkpoints.rollForward(store, dir)
      yield* Generations.sweep(store, dir)
      // A new directory appears whole, as a generation; an append to an existing one moves its parts into it.
      const publishes = mode === "overwrite" || kind === "missing"
      const staging = publishes
        ? Generations.sibling(store, dir, "staging", tag)
        : nodePath.join(dir, `.staging-${tag}.${store.writerId}`)
      let committed = false
      // Set once the segment's manifest is written: the segment is committed, and its files must get in.
      let manifested = false
      const finished: Array<string> = []
      const moveIn = Effect.gen(function* () {
        for (const file of finished) {
          const target = nodePath.join(dir, file)
          if (manifested && (yield* store.kind(target)) === "file") continue
          yield* store.rename(nodePath.join(staging, file), target)
        }
        yield* store.remove(staging)
      })
      yield* Effect.addFinalizer(() =>
        committed ? Effect.void : Effect.ignore(manifested ? moveIn : store.remove(staging))
      )
      yield* store.makeDirectory(staging)
      let checkpoint: Checkpoint.Checkpoint | undefined

      const partName = (n: number) => `part-${tag}-${String(n).padStart(5, "0")}${extension}`
      const files = partFiles(store, staging, partName, scope)
      /** The files the parts of a split run wrote, moved into the staging directory after the finish's own. */
      const takeIn = Effect.gen(function* () {
        let records = 0
        let size = 0
        if (taking === undefined) return { records, size }
        for (const part of taking.parts) {
          const from = nodePath.join(partsDirectory(store, taking.run), partKey(part.id))
          if ((yield* store.kind(from)) !== "directory")
            return yield* new FileError({
              reason: reasons.NotFound,
              operation: "commit",
              path: from,
              message: `The files of part ${part.id} of run ${taking.run} are missing from ${from}: nothing was committed`
            })
          for (const file of yield* store.list(from)) {
            yield* store.rename(file.path, nodePath.join(staging, partName(finished.length)))
            finished.push(partName(finished.length))
            size += file.size
          }
          records += part.records
        }
        return { records, size }
      })

      return {
        write: files.write,
        ...(mode === "append"
          ? {
              checkpoint: (c: Checkpoint.Checkpoint) =>
                Effect.sync(() => {
                  checkpoint = c
                })
            }
          : {}),
        commit: Effect.gen(function* () {
          const own = yield* files.finish
          finished.push(...own.files)
          const taken = yield* takeIn
          const written = own.written + taken.records
          const bytes = own.bytes + taken.size
          const appendInto = !publishes || (mode === "append" && (yield* store.kind(dir)) === "directory")
          const manifest = (stagingName: string): Checkpoints.Manifest | undefined =>
            checkpoint === undefined
              ? undefined
              : {
                  pipeline: checkpoint.pipeline,
                  positions: checkpoint.positions,
                  staging: stagingName,
                  files: finished
                }
          if (appendInto) {
            const m = manifest(nodePath.basename(staging))
            // Fenced: a segment whose partition another process committed further meanwhile is not committed (checked
            // just before the manifest's rename: a process committing the same partition in that instant is not seen).
            if (m !== undefined && checkpoint?.fenced === true) {
              const moved = Checkpoint.moved(m.positions, yield* Checkpoints.load(store, dir, m.pipeline))
              if (moved !== undefined)
                return yield* new FileError({
                  reason: reasons.PositionsMoved,
                  operation: "commit",
                  path: dir,
                  message: `The segment for ${dir} covers ${moved.row.part} from position ${moved.row.from}, but another process of pipeline "${m.pipeline}" already committed it up to ${moved.stored} (a consumer-group rebalance moved the partition): the segment was not committed, and a new attempt reads from the stored positions`
                })
            }
            if (m !== undefined) {
              yield* Checkpoints.write(store, dir, m, tag)
              manifested = true
            }
            yield* moveIn
            yield* store.write(nodePath.join(dir, SUCCESS), Stream.empty)
          } else {
            // A new directory: the manifest is in the generation, published with its files in one rename.
            const m = manifest("")
            if (m !== undefined) yield* Checkpoints.write(store, staging, m, tag)
            yield* store.write(nodePath.join(staging, SUCCESS), Stream.empty)
            yield* Generations.publish(store, dir, staging, tag)
          }
          committed = true
          return { written, location: dir, details: { files: finished, bytes } }
        })
      }
    })
  }
}

/** A file-name-safe key of a run's part. */
const partKey = (part: string): string => Buffer.from(part).toString("base64url")

/** An 8-hex-digit tag of a run id (FNV-1a), for the name of the directory its parts write to. */
const runTag = (run: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < run.length; i++) hash = Math.imul(hash ^ run.charCodeAt(i), 0x01000193) >>> 0
  return hash.toString(16).padStart(8, "0")
}

/**
 * Cursor state in a small JSON file (for incremental reads), written whole (a temporary file, then a rename) so that a
 * crash leaves the old mark; an unreadable file counts as no mark.
 *
 * @example
 * Postgres.table("orders", Order, { incremental: { column: "updated_at", lag: "5 minutes", state: File.cursorState(".etl-state/orders.json") } })
 */
export const cursorState = (path: string): Cursor.CursorState<FileError, FileStore> => ({
  description: `state file ${path}`,
  load: Effect.gen(function* () {
    const store = yield* FileStore
    if ((yield* store.kind(path)) !== "file") return undefined
    const text = yield* Stream.mkString(Stream.decodeText(store.read(path)))
    const parsed = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => undefined }).pipe(
      Effect.orElseSucceed(() => undefined)
    )
    return Cursor.isMark(parsed) ? parsed : undefined
  }),
  save: (mark) =>
    Effect.gen(function* () {
      const store = yield* FileStore
      const tmp = `${path}.tmp`
      yield* store.write(tmp, Stream.make(new TextEncoder().encode(`${JSON.stringify(mark)}\n`)))
      yield* store.rename(tmp, path)
    })
})
