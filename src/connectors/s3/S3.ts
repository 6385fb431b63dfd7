/**
 * The S3 connector: a source reading objects under a prefix (or a glob) and a sink writing part objects.
 *
 * - `source` lists with ListObjectsV2 (page by page), reads several objects at once (`concurrency`, default 4) as
 *   streams through the file formats (Avro container, JSON Lines, CSV, gzip or not), or, for Parquet, with ranged GETs
 *   (the footer first, then one GET per row group), keeping each object's batches in order; each batch names its object (`Batch.part`), so that event-time stages keep a watermark per object. Lines
 *   that do not parse and records that do not match the schema become dead letters naming `s3://bucket/key:line`.
 *   When the prefix holds a `_SUCCESS` manifest written by the sink, only the objects it lists are read, so a reader
 *   never sees a half-replaced set. Its input size is the sum of the objects' sizes from the listing, and each batch
 *   carries the bytes it was read from. Its `split` groups objects into parts of about the target size; with
 *   `withinFiles`, a bigger object alone in its group is cut too: JSON Lines (not compressed) into byte ranges that
 *   are not read first (each part reads the lines that start in its range, with ranged GETs, and their dead letters
 *   name lines from the range's first, under `s3://bucket/key@start`), CSV (not compressed) into ranges of whole
 *   records found by one read of the object in the split (a quoted field may hold line breaks, so a range cannot find
 *   its first record alone; a range after the first reads with the header's names, and its dead letters name the
 *   lines a whole read names), Parquet into ranges of row groups (from its footer only). Avro container files and
 *   compressed objects stay whole: they can only be read from their start.
 * - `sink` writes part objects (`part-<run>-<n>.<ext>`) under a prefix, optionally under Hive-style partition paths
 *   (`date=2026-11-26/`), rolled by record count and bytes, each uploaded in parts (multipart) once it outgrows one
 *   part, so at most one part per open object is held in memory. `append` adds uniquely named objects; `overwrite`
 *   writes the new set, then the `_SUCCESS` manifest naming it, and only then deletes the old set. Without a commit
 *   (failure, interruption) the new objects are removed and open uploads aborted. S3 objects have no keys: there is no
 *   `upsert`.
 */
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Batch from "../../core/Batch.ts"
import * as Checkpoint from "../../core/Checkpoint.ts"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import * as Sink from "../../core/Sink.ts"
import * as Source from "../../core/Source.ts"
import type { InputSize, SplitPart } from "../../core/Stage.ts"
import * as Format from "../../formats/Format.ts"
import type { FormatError } from "../../formats/FormatError.ts"
import type * as Parquet from "../../formats/Parquet.ts"
import { keyText } from "../../formats/Payload.ts"
import * as Datasets from "../internal/Datasets.ts"
import * as LineRanges from "../internal/LineRanges.ts"
import * as Objects from "../internal/Objects.ts"
import { type ObjectInfo, S3Client, type S3ClientShape } from "./S3Client.ts"
import { reasons, S3Error } from "./S3Error.ts"

/** The name of a part object this sink writes: `part-<time>-<random>-<sequence>.<ext>`. */
const OWN_PART = /^part-[0-9a-z]+-[0-9a-f]{8}-\d{5}\./

/** The name of the manifest object the sink writes last. */
export const MANIFEST = "_SUCCESS"

/** The content of a `_SUCCESS` manifest. */
export interface Manifest {
  readonly version: 1
  /** Object keys relative to the prefix, the complete current set. */
  readonly files: ReadonlyArray<string>
  readonly records: number
  readonly committedAt: string
  /**
   * Where each pipeline appending here resumes: pipeline → source part → next position (see `core/Checkpoint.ts`).
   * Written in the same PUT as `files`, so the objects a commit adds and the positions they cover appear together.
   */
  readonly positions?: Readonly<Record<string, Readonly<Record<string, string>>>>
}

/** True for keys that are not data (`_SUCCESS`, `.staging/...`), relative to the prefix, as Spark treats them. */
export const isHidden = Objects.isHidden

const dirOf = (path: string): string => path.replace(/^\/+/, "").replace(/\/+$/, "")

/** The dataset of a key, prefix or glob in a bucket (namespace `s3://bucket`, name the key) and its span attributes. */
const s3Lineage = (bucket: string, key: string, fields: Datasets.Fields | undefined) => ({
  dataset: Datasets.make(`s3://${bucket}`, key, fields),
  attributes: { "rpc.system": "aws-api", "rpc.service": "S3", "aws.s3.bucket": bucket }
})

/** Every object under `prefix`, following continuation tokens (directory markers left out). */
export const listAll = (
  client: S3ClientShape,
  bucket: string,
  prefix: string
): Effect.Effect<ReadonlyArray<ObjectInfo>, S3Error> =>
  Effect.gen(function* () {
    const out: Array<ObjectInfo> = []
    let token: string | undefined
    do {
      const page = yield* client.list(bucket, prefix, { continuationToken: token })
      // Some servers list "directory" marker objects (keys ending in `/`): they hold no data.
      for (const o of page.objects) if (!o.key.endsWith("/")) out.push(o)
      token = page.continuationToken
    } while (token !== undefined)
    return out
  })

const readSmall = (client: S3ClientShape, bucket: string, key: string): Effect.Effect<Uint8Array, S3Error> =>
  Effect.map(Stream.runCollect(client.get(bucket, key)), (chunks) => Buffer.concat(chunks as Array<Uint8Array>))

const parseManifest = (bytes: Uint8Array): Manifest | undefined => {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Manifest>
    return json.version === 1 && Array.isArray(json.files) ? (json as Manifest) : undefined
  } catch {
    return undefined
  }
}

/** Reads the `_SUCCESS` manifest of a prefix; `undefined` when there is none (or it is an empty Spark-style marker). */
export const readManifest = (
  client: S3ClientShape,
  bucket: string,
  dir: string
): Effect.Effect<Manifest | undefined, S3Error> =>
  readSmall(client, bucket, dir === "" ? MANIFEST : `${dir}/${MANIFEST}`).pipe(
    Effect.map(parseManifest),
    Effect.catchIf(
      (e) => e.reason._tag === "NoSuchKey",
      () => Effect.succeed(undefined)
    )
  )

/** Options of an S3 source. */
export interface SourceOptions<A> {
  readonly bucket: string
  /** A key, a prefix ("directory": every object under it) or a glob (`events/2026-*.jsonl.gz`). */
  readonly path: string
  readonly name?: string
  /** The format; by default it follows each object's extension. */
  readonly format?: Format.FormatSpec
  readonly schema?: RecordSchema<A>
  /** Records per batch (default 4096). */
  readonly batchSize?: number
  /** Objects read at once (default 4). Batches of one object stay in order. */
  readonly concurrency?: number
  /** Read only the objects a `_SUCCESS` manifest lists, when there is one (default true). */
  readonly useManifest?: boolean
}

/** An object to read: its key, and its size when the listing told it (a manifest names keys only). */
interface Listed {
  readonly key: string
  readonly size?: number | undefined
}

/** An object a source reads, or a piece of one (a part of a split run that reads a big object in pieces). */
interface ObjectRead extends Listed {
  /** JSON Lines: the lines that start in these bytes (see `LineRanges.linesOf`). */
  readonly bytes?: LineRanges.ByteRange | undefined
  /** Parquet: the row groups to read. */
  readonly rowGroups?: Objects.RowGroups | undefined
  /** CSV: a range of whole records, cut by a read of the object (see `LineRanges.rangesOf`). */
  readonly lines?: LineRanges.LineRange | undefined
  /** CSV: the names in the object's header, for a range that starts after it. */
  readonly header?: ReadonlyArray<string> | undefined
}

/** What a part of an S3 source reads: a group of objects, or a piece of one (with the object's size). */
interface PartSpec {
  readonly keys: ReadonlyArray<string>
  readonly size?: number | undefined
  readonly bytes?: LineRanges.ByteRange | undefined
  readonly rowGroups?: Objects.RowGroups | undefined
  readonly lines?: LineRanges.LineRange | undefined
  readonly header?: ReadonlyArray<string> | undefined
}

const listObjects = (
  client: S3ClientShape,
  options: SourceOptions<unknown>
): Effect.Effect<ReadonlyArray<Listed>, S3Error> =>
  Effect.gen(function* () {
    const path = options.path.replace(/^\/+/, "")
    if (Objects.isGlob(path)) {
      const first = path.search(/[*?[\]{}]/)
      const re = Objects.globToRegExp(path)
      const all = yield* listAll(client, options.bucket, path.slice(0, first))
      return all.filter((o) => re.test(o.key) && !isHidden(o.key.slice(o.key.lastIndexOf("/") + 1)))
    }
    const dir = dirOf(path)
    const exact = dir === "" ? [] : (yield* client.list(options.bucket, dir, { maxKeys: 1 })).objects
    if (exact[0]?.key === dir) return [exact[0]]
    if (options.useManifest ?? true) {
      const manifest = yield* readManifest(client, options.bucket, dir)
      if (manifest !== undefined) return manifest.files.map((f) => ({ key: dir === "" ? f : `${dir}/${f}` }))
    }
    const prefix = dir === "" ? "" : `${dir}/`
    const all = yield* listAll(client, options.bucket, prefix)
    return all.filter((o) => !isHidden(o.key.slice(prefix.length)))
  })

/** The bytes of the objects a source reads: their sizes from the listing (a manifest's objects are listed for it). */
const inputSize = (client: S3ClientShape, options: SourceOptions<unknown>): Effect.Effect<InputSize, S3Error> =>
  Effect.gen(function* () {
    const objects = yield* listObjects(client, options)
    let bytes = 0
    const unknown = new Set<string>()
    for (const o of objects) {
      if (o.size === undefined) unknown.add(o.key)
      else bytes += o.size
    }
    if (unknown.size > 0) {
      const dir = dirOf(options.path)
      for (const o of yield* listAll(client, options.bucket, dir === "" ? "" : `${dir}/`))
        if (unknown.has(o.key)) bytes += o.size
    }
    return { bytes }
  })

const readObject = <A>(
  client: S3ClientShape,
  stage: string,
  bucket: string,
  object: ObjectRead,
  options: SourceOptions<A>
): Stream.Stream<Batch.Batch<A>, S3Error | FormatError> => {
  const key = object.key
  const url = `s3://${bucket}/${key}`
  const format = options.format ?? Format.fromPath(key)
  if (format === undefined)
    return Stream.fail(
      new S3Error({
        reason: reasons.InvalidArgument,
        operation: "read",
        bucket,
        key,
        message: `Cannot tell the format of ${url} from its extension (.jsonl, .ndjson, .json, .csv, .avro, optionally .gz, or .parquet); set "format"`
      })
    )
  if (format.type === "parquet") return readParquet(client, stage, bucket, object, options)
  if (object.bytes !== undefined) {
    const bytes = object.bytes
    // The lines before a piece are not counted (it is not read): its dead letters name lines and records from its
    // first line, under `url@start`.
    return Stream.unwrap(
      Effect.map(object.size === undefined ? sizeOf(client, bucket, key) : Effect.succeed(object.size), (size) =>
        Objects.decode(LineRanges.linesOf(readRange(client, bucket, key), size, bytes), {
          stage,
          location: bytes.start === 0 ? url : `${url}@${bytes.start}`,
          format,
          schema: options.schema,
          batchSize: options.batchSize
        })
      )
    )
  }
  if (object.lines !== undefined)
    return Objects.decode(readRange(client, bucket, key)(object.lines.start, object.lines.end), {
      stage,
      location: url,
      // A range of a CSV object after its header reads with the header's names.
      format: format.type === "csv" && object.header !== undefined ? { ...format, header: object.header } : format,
      schema: options.schema,
      batchSize: options.batchSize,
      before: object.lines
    })
  return Objects.decode(client.get(bucket, key), {
    stage,
    location: url,
    format,
    schema: options.schema,
    batchSize: options.batchSize
  })
}

/** The size of an object from a listing of its key (a manifest names keys only). */
const sizeOf = (client: S3ClientShape, bucket: string, key: string): Effect.Effect<number, S3Error> =>
  Effect.flatMap(client.list(bucket, key, { maxKeys: 1 }), (page) => {
    const found = page.objects[0]
    return found !== undefined && found.key === key
      ? Effect.succeed(found.size)
      : Effect.fail(
          new S3Error({
            reason: reasons.NoSuchKey,
            operation: "read",
            bucket,
            key,
            message: `s3://${bucket}/${key} does not exist`
          })
        )
  })

/** Ranged GETs of an object: the bytes from `start` to `end` (exclusive). */
const readRange =
  (client: S3ClientShape, bucket: string, key: string) =>
  (start: number, end: number): Stream.Stream<Uint8Array, S3Error> =>
    end <= start ? Stream.empty : client.get(bucket, key, { start, end: end - 1 })

/** An object of `size` bytes read with ranged GETs, as Parquet reads it. */
const rangedObject = (
  client: S3ClientShape,
  bucket: string,
  key: string,
  size: number
): Parquet.RangedFile<S3Error, never> => ({
  size,
  read: (offset, length) =>
    length === 0
      ? Effect.succeed(new Uint8Array(0))
      : Objects.collectBytes(client.get(bucket, key, { start: offset, end: offset + length - 1 }))
})

/**
 * A Parquet object, read with ranged GETs: the footer first (from the end, its size from the listing), then one GET
 * per row group (of those of its part, in a split run).
 */
const readParquet = <A>(
  client: S3ClientShape,
  stage: string,
  bucket: string,
  object: ObjectRead,
  options: SourceOptions<A>
): Stream.Stream<Batch.Batch<A>, S3Error | FormatError> =>
  Stream.unwrap(
    Effect.map(object.size === undefined ? sizeOf(client, bucket, object.key) : Effect.succeed(object.size), (size) =>
      Objects.decodeParquet(rangedObject(client, bucket, object.key, size), {
        stage,
        location: `s3://${bucket}/${object.key}`,
        schema: options.schema,
        batchSize: options.batchSize,
        rowGroups: object.rowGroups
      })
    )
  )

/**
 * A source over S3 objects.
 *
 * @example
 * S3.source({ bucket: "lake", path: "transactions/", format: { type: "avro" } })
 */
export const source = <A = Readonly<Record<string, unknown>>>(
  options: SourceOptions<A>
): Source.Source<A, S3Error | FormatError, S3Client> => {
  const name = options.name ?? "s3"
  return Source.make({
    name,
    type: "s3",
    description: `s3://${options.bucket}/${options.path}${options.format === undefined ? "" : ` (${Format.describe(options.format)})`}${options.schema === undefined ? "" : `, schema ${options.schema.name}`}`,
    bounded: true,
    ...s3Lineage(options.bucket, options.path.replace(/^\/+/, ""), Datasets.fieldsOf(options.schema)),
    batches: (ctx) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const client = yield* S3Client
          // A split run reads the objects of its parts (see `split`), else every object that matches.
          const objects: ReadonlyArray<ObjectRead> =
            ctx.parts === undefined
              ? yield* listedObjects(client, options as SourceOptions<unknown>)
              : ctx.parts.flatMap((part) => {
                  const spec = part.spec as PartSpec
                  return spec.keys.map((key) => ({
                    key,
                    size: spec.size,
                    bytes: spec.bytes,
                    rowGroups: spec.rowGroups,
                    lines: spec.lines,
                    header: spec.header
                  }))
                })
          return Source.readParts(objects, (object) => readObject(client, name, options.bucket, object, options), {
            concurrency: options.concurrency ?? 4,
            id: (object) =>
              object.bytes !== undefined || object.lines !== undefined
                ? `${object.key}@${(object.bytes ?? object.lines)!.start}`
                : object.rowGroups !== undefined
                  ? `${object.key}#${object.rowGroups.start}`
                  : object.key
          })
        })
      ),
    size: Effect.flatMap(S3Client, (client) => inputSize(client, options as SourceOptions<unknown>)),
    split: (split) =>
      Effect.gen(function* () {
        const client = yield* S3Client
        const objects = yield* sized(client, options as SourceOptions<unknown>)
        const parts: Array<SplitPart> = []
        for (const group of Source.groupBySize(objects, split.targetBytes)) {
          const first = group[0]!
          const url = `s3://${options.bucket}/${first.key}`
          const format = options.format ?? Format.fromPath(first.key)
          const alone = group.length === 1 && split.withinFiles === true
          // A big Parquet object alone in its group is cut into ranges of its row groups (its footer read first).
          if (alone && first.size > split.targetBytes && format?.type === "parquet") {
            const ranges = yield* Objects.rowGroupRanges(
              rangedObject(client, options.bucket, first.key, first.size),
              url,
              split.targetBytes
            )
            if (ranges.length > 1) {
              for (const range of ranges)
                parts.push({
                  id: `${first.key}#${range.start}`,
                  description: `${url} row groups ${range.start + 1} to ${range.end}`,
                  size: { bytes: range.bytes },
                  spec: {
                    keys: [first.key],
                    size: first.size,
                    rowGroups: { start: range.start, end: range.end }
                  } satisfies PartSpec
                })
              continue
            }
          }
          // A big JSON Lines object alone in its group is cut into ranges of bytes, unread: each part finds the
          // starts of its lines itself.
          const target = Math.max(split.targetBytes, LineRanges.MIN_RANGE)
          if (alone && first.size > target && format?.type === "jsonl" && (format.compression ?? "none") === "none") {
            for (const range of LineRanges.byteRanges(first.size, target))
              parts.push({
                id: `${first.key}@${range.start}`,
                description: `${url} lines starting in bytes ${range.start} to ${range.end}`,
                size: { bytes: range.end - range.start },
                spec: { keys: [first.key], size: first.size, bytes: range } satisfies PartSpec
              })
            continue
          }
          // A big CSV object alone in its group is read once to find where its records start (a quoted field may
          // hold line breaks, so a range cannot find its first record alone), then cut into ranges of them.
          if (alone && first.size > target && format?.type === "csv" && (format.compression ?? "none") === "none") {
            const read = readRange(client, options.bucket, first.key)
            const { ranges, header } = yield* LineRanges.rangesOf(
              (range) => (range === undefined ? client.get(options.bucket, first.key) : read(range.start, range.end)),
              url,
              first.size,
              target,
              format
            )
            if (ranges.length > 1) {
              for (const range of ranges)
                parts.push({
                  id: `${first.key}@${range.start}`,
                  description: `${url} bytes ${range.start} to ${range.end} (from line ${range.lines + 1})`,
                  size: { bytes: range.end - range.start },
                  spec: {
                    keys: [first.key],
                    size: first.size,
                    lines: range,
                    ...(range.start > 0 && header !== undefined ? { header } : {})
                  } satisfies PartSpec
                })
              continue
            }
          }
          parts.push({
            id: first.key,
            description: group.length === 1 ? url : `${group.length} objects from ${url} to ${group.at(-1)!.key}`,
            size: { bytes: group.reduce((sum, o) => sum + o.size, 0) },
            spec: { keys: group.map((o) => o.key) } satisfies PartSpec
          })
        }
        return parts
      })
  })
}

/**
 * The objects that match the source's path with their sizes (those a manifest names are looked up in a listing of the
 * prefix), for a split that groups them by size.
 */
const sized = (client: S3ClientShape, options: SourceOptions<unknown>) =>
  Effect.gen(function* () {
    const listed = yield* listedObjects(client, options)
    if (listed.every((o) => o.size !== undefined)) return listed.map((o) => ({ key: o.key, size: o.size ?? 0 }))
    const dir = dirOf(options.path)
    const sizes = new Map<string, number>()
    for (const o of yield* listAll(client, options.bucket, dir === "" ? "" : `${dir}/`)) sizes.set(o.key, o.size)
    return listed.map((o) => ({ key: o.key, size: o.size ?? sizes.get(o.key) ?? 0 }))
  })

/** The objects that match the source's path, in order; none is an error. */
const listedObjects = (client: S3ClientShape, options: SourceOptions<unknown>) =>
  Effect.gen(function* () {
    const objects = yield* listObjects(client, options)
    if (objects.length === 0)
      return yield* new S3Error({
        reason: reasons.NoSuchKey,
        operation: "list",
        bucket: options.bucket,
        key: options.path,
        message: `No objects match s3://${options.bucket}/${options.path}`
      })
    return objects
  })

/** Options of an S3 sink. */
export interface SinkOptions {
  readonly bucket: string
  /** The prefix ("directory") part objects go under. */
  readonly path: string
  readonly name?: string
  readonly format: Format.FormatSpec
  /** `append` (default) adds part objects; `overwrite` replaces the prefix's set at commit. */
  readonly mode?: "append" | "overwrite"
  /** The schema of the written records: needed for Avro (its writer schema). */
  readonly schema?: RecordSchema<unknown>
  /** Hive-style partition paths from these record fields: `date=2026-11-26/`. Dates give `YYYY-MM-DD`. */
  readonly partitionBy?: ReadonlyArray<string>
  /** A new object is started after this many records (default 1,000,000). */
  readonly maxRecordsPerObject?: number
  /** A new object is started once this many bytes were written (default 512 MiB). */
  readonly maxBytesPerObject?: number
  /** Multipart part size (default 8 MiB, at least 5 MiB on AWS). */
  readonly partSize?: number
}

interface ObjectWriter {
  readonly key: string
  records: number
  bytes: number
  readonly offer: (records: ReadonlyArray<unknown>) => Effect.Effect<void, S3Error | FormatError>
  readonly finish: Effect.Effect<number, S3Error | FormatError>
}

/**
 * Streams batches into one object through the format's encoder: the first `partSize` bytes are kept; beyond them a
 * multipart upload starts and each full part is uploaded as it fills. Runs in its own fiber; an unfinished upload is
 * aborted.
 */
const startObject = (
  client: S3ClientShape,
  bucket: string,
  key: string,
  options: SinkOptions
): Effect.Effect<ObjectWriter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const partSize = options.partSize ?? 8 * 1024 * 1024
    const queue = yield* Queue.bounded<ReadonlyArray<unknown>, Cause.Done>(4)
    let pending: Array<Uint8Array> = []
    let pendingSize = 0
    let uploadId: string | undefined
    const parts: Array<{ partNumber: number; etag: string }> = []
    const writer: ObjectWriter = {
      key,
      records: 0,
      bytes: 0,
      offer: () => Effect.void,
      finish: Effect.succeed(0)
    }
    const flushPart = Effect.gen(function* () {
      if (uploadId === undefined) uploadId = yield* client.createMultipartUpload(bucket, key)
      const body = Buffer.concat(pending)
      pending = []
      pendingSize = 0
      const partNumber = parts.length + 1
      const etag = yield* client.uploadPart(bucket, key, uploadId, partNumber, body)
      parts.push({ partNumber, etag })
    })
    const upload = Stream.fromQueue(queue).pipe(
      Format.encoder(options.format, {
        source: `s3://${bucket}/${key}`,
        ...(options.schema?.avro === undefined ? {} : { avro: options.schema.avro })
      }),
      Stream.runForEach((chunk) =>
        Effect.suspend(() => {
          pending.push(chunk)
          pendingSize += chunk.length
          writer.bytes += chunk.length
          return pendingSize >= partSize ? flushPart : Effect.void
        })
      ),
      Effect.andThen(
        Effect.suspend(() => {
          if (uploadId === undefined) return client.put(bucket, key, Buffer.concat(pending))
          const id = uploadId
          return Effect.andThen(pendingSize > 0 || parts.length === 0 ? flushPart : Effect.void, () =>
            client.completeMultipartUpload(bucket, key, id, parts)
          )
        })
      ),
      Effect.onExit((exit) =>
        Effect.andThen(
          Queue.shutdown(queue),
          Exit.isFailure(exit) && uploadId !== undefined
            ? Effect.ignore(client.abortMultipartUpload(bucket, key, uploadId))
            : Effect.void
        )
      )
    )
    const fiber = yield* Effect.forkScoped(upload)
    const failed = Effect.flatMap(Fiber.await(fiber), (exit) =>
      Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.void
    )
    return Object.assign(writer, {
      offer: (records: ReadonlyArray<unknown>) =>
        Effect.flatMap(Queue.offer(queue, records), (accepted) => (accepted ? Effect.void : failed)),
      finish: Effect.andThen(
        Queue.end(queue),
        Effect.map(Fiber.join(fiber), () => writer.bytes)
      )
    })
  })

const partitionValue = (value: unknown): string => {
  if (value === null || value === undefined) return "__HIVE_DEFAULT_PARTITION__"
  if (value instanceof Date) return value.toISOString().slice(0, 10)
  return encodeURIComponent(keyText(value))
}

/**
 * A sink writing part objects under a prefix.
 *
 * @example
 * S3.sink({ bucket: "lake", path: "settled", format: { type: "avro" }, mode: "overwrite", schema, partitionBy: ["date"] })
 */
export const sink = <A>(options: SinkOptions): Sink.Sink<A, S3Error | FormatError, S3Client> => {
  const mode = options.mode ?? "append"
  const name = options.name ?? "s3"
  const dir = dirOf(options.path)
  const maxRecords = options.maxRecordsPerObject ?? 1_000_000
  const maxBytes = options.maxBytesPerObject ?? 512 * 1024 * 1024
  const extension = Format.extension(options.format)
  const partitionBy = options.partitionBy ?? []
  const prefix = dir === "" ? "" : `${dir}/`
  return Sink.make<A, S3Error | FormatError, S3Client>({
    name,
    type: "s3",
    description: `s3://${options.bucket}/${prefix} (${Format.describe(options.format)}${partitionBy.length > 0 ? `, partitioned by ${partitionBy.join(", ")}` : ""})`,
    mode,
    ...s3Lineage(options.bucket, dir, Datasets.fieldsOf(options.schema)),
    durability: "on-commit",
    // An append stores the source positions of each commit in the `_SUCCESS` manifest, its commit point.
    ...(mode === "append"
      ? {
          positions: {
            where: `s3://${options.bucket}/${prefix}${MANIFEST}`,
            load: (pipeline: string) =>
              S3Client.use((client) =>
                Effect.map(
                  readManifest(client, options.bucket, dir),
                  (manifest): ReadonlyMap<string, string> =>
                    new Map(Object.entries(manifest?.positions?.[pipeline] ?? {}))
                )
              )
          }
        }
      : {}),
    open: Effect.gen(function* () {
      const client = yield* S3Client
      const scope = yield* Effect.scope
      let checkpoint: Checkpoint.Checkpoint | undefined
      const tag = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
      const open = new Map<string, ObjectWriter>()
      const finished: Array<string> = []
      let committed = false
      let written = 0
      let bytes = 0
      let sequence = 0
      yield* Effect.addFinalizer(() =>
        committed
          ? Effect.void
          : Effect.ignore(client.deleteMany(options.bucket, [...finished, ...[...open.values()].map((w) => w.key)]))
      )
      const finish = (partition: string) =>
        Effect.suspend(() => {
          const writer = open.get(partition)
          if (writer === undefined) return Effect.void
          open.delete(partition)
          return Effect.map(writer.finish, (size) => {
            bytes += size
            finished.push(writer.key)
          })
        })
      const writeTo = (partition: string, records: ReadonlyArray<unknown>) =>
        Effect.gen(function* () {
          let offset = 0
          while (offset < records.length) {
            let writer = open.get(partition)
            if (writer === undefined) {
              const key = `${prefix}${partition}part-${tag}-${String(sequence++).padStart(5, "0")}${extension}`
              writer = yield* startObject(client, options.bucket, key, options).pipe(Scope.provide(scope))
              open.set(partition, writer)
            }
            const take = Math.min(records.length - offset, maxRecords - writer.records)
            yield* writer.offer(
              offset === 0 && take === records.length ? records : records.slice(offset, offset + take)
            )
            writer.records += take
            written += take
            offset += take
            if (writer.records >= maxRecords || writer.bytes >= maxBytes) yield* finish(partition)
          }
        })
      return {
        write: (records: ReadonlyArray<A>) => {
          if (partitionBy.length === 0) return writeTo("", records)
          const groups = new Map<string, Array<unknown>>()
          for (const record of records) {
            const r = record as Readonly<Record<string, unknown>>
            let path = ""
            for (const field of partitionBy) path += `${field}=${partitionValue(r[field])}/`
            let group = groups.get(path)
            if (group === undefined) {
              group = []
              groups.set(path, group)
            }
            group.push(record)
          }
          return Effect.forEach(groups, ([path, group]) => writeTo(path, group), { discard: true })
        },
        ...(mode === "append"
          ? {
              checkpoint: (c: Checkpoint.Checkpoint) =>
                Effect.sync(() => {
                  checkpoint = c
                })
            }
          : {}),
        commit: Effect.gen(function* () {
          yield* Effect.forEach([...open.keys()], finish, { discard: true })
          const fresh = new Set(finished)
          const previous = mode === "append" ? yield* readManifest(client, options.bucket, dir) : undefined
          // An append that stores positions adds to the set its last manifest names: objects of a run killed before
          // its manifest are not data (their records are read again after the positions of that manifest).
          // Without a manifest yet, objects named as this sink names them are such leftovers too.
          const existing =
            checkpoint !== undefined && previous !== undefined
              ? previous.files.map((f) => `${prefix}${f}`).filter((k) => !fresh.has(k))
              : (yield* listAll(client, options.bucket, prefix))
                  .map((o) => o.key)
                  .filter(
                    (k) =>
                      !fresh.has(k) &&
                      !isHidden(k.slice(prefix.length)) &&
                      !(checkpoint !== undefined && OWN_PART.test(k.slice(k.lastIndexOf("/") + 1)))
                  )
          const files = mode === "overwrite" ? [...finished] : [...existing, ...finished]
          const now = yield* Clock.currentTimeMillis
          const positions: Record<string, Record<string, string>> = { ...previous?.positions }
          if (checkpoint !== undefined) {
            const stored: Record<string, string> = { ...positions[checkpoint.pipeline] }
            for (const range of checkpoint.positions)
              stored[range.part] =
                stored[range.part] === undefined ? range.to : Checkpoint.max(stored[range.part]!, range.to)
            positions[checkpoint.pipeline] = stored
          }
          const manifest: Manifest = {
            version: 1,
            files: files.map((k) => k.slice(prefix.length)).sort(),
            records: written,
            committedAt: new Date(now).toISOString(),
            ...(Object.keys(positions).length === 0 ? {} : { positions })
          }
          // The manifest switches readers to the new set in one PUT; only then is the old set removed.
          yield* client.put(options.bucket, `${prefix}${MANIFEST}`, new TextEncoder().encode(JSON.stringify(manifest)))
          committed = true
          if (mode === "overwrite" && existing.length > 0) yield* client.deleteMany(options.bucket, existing)
          return {
            written,
            location: `s3://${options.bucket}/${prefix}`,
            details: { objects: finished.map((k) => k.slice(prefix.length)), bytes }
          }
        })
      }
    })
  })
}
