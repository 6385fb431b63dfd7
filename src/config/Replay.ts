/**
 * Replaying dead letters: the records of a dead-letter set fed back through the pipeline of a config (its transforms
 * and sink, as the user fixed them), the ones that now pass written, the ones that still fail kept in a new
 * dead-letter set with their new reason and their original origin.
 *
 * A dead letter holds the record as it was when its stage rejected it, so a replayed record re-enters the pipeline at
 * that stage, never earlier (no transform applies twice): a record the source rejected (`decode-error`,
 * `invalid-record`) is decoded or checked again by the source's format and schema, a record a transform rejected
 * enters at that transform, and each goes on through the rest of the pipeline to the same sink. The stages before its
 * entry pass it on untouched, and count it as passed, so that the RunReport reconciles as any run's does.
 *
 * A replay is refused where it would do harm: a sink that appends without keys (replaying twice would write a record
 * twice) or overwrites (the target would hold only the replayed records), unless forced; a pipeline with a stage that
 * combines records (aggregates, windows, joins of two inputs), which would combine the replayed records alone.
 */
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Batch from "../core/Batch.ts"
import * as ConfigError from "../core/ConfigError.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import * as Flow from "../core/Flow.ts"
import * as RecordSchema from "../core/RecordSchema.ts"
import * as Source from "../core/Source.ts"
import type { RunContext, StageInfo } from "../core/Stage.ts"
import * as JsonValue from "../formats/JsonValue.ts"
import * as Build from "./Build.ts"
import * as Connectors from "./Connectors.ts"
import type { PipelineConfig } from "./PipelineConfig.ts"
import type { AnyRecord } from "./Records.ts"
import * as Records from "./Records.ts"

/** Where a dead-letter set is: read back with a source, written with a sink. */
export interface Location {
  /** The location as the user gave it (`out/dead`, `pg:public.dead_letters`, `events:orders-dead`). */
  readonly text: string
  /** `file`, `postgres`, `mysql`, `kafka` or `s3`, and what names the set there (a path, a table, a topic). */
  readonly type: string
  readonly target: string
  readonly source: Connectors.SourceConfig
  readonly sink: Connectors.SinkConfig
}

/** What a replay is asked to do. */
export interface ReplayOptions {
  /** The config file (named in errors). */
  readonly file: string
  readonly schema: Build.SchemaLookup
  /** The dead-letter set to replay. */
  readonly from: string
  /** Where the records that still fail go (default: the config's `dead_letters`). */
  readonly deadLetters?: string | undefined
  /** Replay into a sink that appends without keys or overwrites. */
  readonly force?: boolean | undefined
}

/** The stage name of dead letters a replay itself writes (a row that is no dead letter, a stage the config lacks). */
export const replayStage = "replay"

const decodeSource = Schema.decodeUnknownExit(Connectors.SourceConfig)
const decodeSink = Schema.decodeUnknownExit(Connectors.SinkConfig)

const problem = (file: string, path: string, message: string) => Effect.fail(ConfigError.single(file, path, message))

const templateFormat = (config: PipelineConfig): unknown => {
  const dl = config.dead_letters
  return dl !== undefined && (dl.type === "file" || dl.type === "s3") ? dl.format : { type: "jsonl" }
}

/**
 * Reads a dead-letter location in the forms the config's connectors use: `CONNECTION:TABLE` (a postgres or mysql
 * connection of the config; `schema.table` names its schema too), `CONNECTION:TOPIC` (a kafka connection),
 * `CONNECTION:BUCKET/PREFIX` (an s3 connection), else a local path (a directory of part files, a file or a glob). Files and
 * objects are read and written in the format of the config's file or S3 `dead_letters` (JSON Lines otherwise), Kafka
 * messages as JSON.
 */
export const location = (
  config: PipelineConfig,
  text: string,
  options: { readonly file: string; readonly flag: string; readonly pipeline: string }
): Effect.Effect<Location, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const at = `${options.flag} ${text}`
    if (text.trim() === "") return yield* problem(options.file, options.flag, `${options.flag} is empty`)
    const colon = text.indexOf(":")
    const name = colon > 0 ? text.slice(0, colon) : undefined
    const connection = name === undefined ? undefined : config.connections?.[name]
    const rest = colon > 0 ? text.slice(colon + 1) : text
    let source: unknown
    let sink: unknown
    let type: string
    if (connection === undefined) {
      type = "file"
      source = { type: "file", path: text, format: templateFormat(config) }
      sink = { type: "file", path: text, format: templateFormat(config), mode: "append" }
    } else if (connection.type === "postgres" || connection.type === "mysql") {
      type = connection.type
      const dot = rest.lastIndexOf(".")
      const table = dot > 0 ? { table: rest.slice(dot + 1), table_schema: rest.slice(0, dot) } : { table: rest }
      source = { type: connection.type, connection: name, ...table }
      sink = { type: connection.type, connection: name, ...table, mode: "append" }
    } else if (connection.type === "kafka") {
      type = "kafka"
      source = {
        type: "kafka",
        connection: name,
        topics: [rest],
        group_id: `${options.pipeline}-replay`,
        start: "earliest",
        bounded: true,
        value: { type: "json" }
      }
      sink = { type: "kafka", connection: name, topic: rest, value: { type: "json" } }
    } else {
      type = "s3"
      const slash = rest.indexOf("/")
      const where =
        slash > 0 ? { bucket: rest.slice(0, slash), path: rest.slice(slash + 1) } : { bucket: rest, path: "" }
      source = { type: "s3", connection: name, ...where, format: templateFormat(config) }
      sink = { type: "s3", connection: name, ...where, format: templateFormat(config), mode: "append" }
    }
    const decodedSource = decodeSource(source, { onExcessProperty: "error" })
    const decodedSink = decodeSink(sink, { onExcessProperty: "error" })
    if (decodedSource._tag === "Failure" || decodedSink._tag === "Failure")
      return yield* problem(
        options.file,
        options.flag,
        `${at}: not a dead-letter location (a path, or CONNECTION:TABLE, CONNECTION:TOPIC, CONNECTION:BUCKET/PREFIX with a connection of the config)`
      )
    return { text, type, target: type === "file" ? text : rest, source: decodedSource.value, sink: decodedSink.value }
  })

/** Where the records of a batch the replay source sends enter the pipeline. */
interface Entry {
  /** The index in `$.transforms` of the transform the record enters at. */
  readonly transform: number
}

/** The entry and origin of each batch the replay source sends, keyed by its `ack` (unique per batch). */
interface Tags {
  readonly entries: WeakMap<object, Entry>
  readonly origins: WeakMap<object, string>
}

const isRecord = (u: unknown): u is AnyRecord => typeof u === "object" && u !== null && !Array.isArray(u)

/** A dead letter read back: a row of the dead-letter set, its record parsed back when a store kept it as JSON text. */
const readLetter = (row: unknown): DeadLetter.DeadLetter | undefined => {
  if (!isRecord(row)) return undefined
  // A Kafka dead letter read as an envelope holds the dead letter as its value.
  const value = isRecord(row.value) && typeof row.value.stage === "string" ? row.value : row
  const { stage, reason, message, record, origin } = value
  if (typeof stage !== "string" || typeof reason !== "string") return undefined
  return {
    stage,
    reason,
    message: typeof message === "string" ? message : "",
    record,
    ...(typeof origin === "string" && origin !== "" ? { origin } : {})
  }
}

/** A record kept as JSON text by a store (a text column), parsed back; other values as they are. */
const parseText = (record: unknown): unknown => {
  if (typeof record !== "string" || !record.startsWith("{")) return record
  try {
    return JsonValue.parse(record)
  } catch {
    return record
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The text of a Kafka message its source could not decode: its dead letter holds the message (topic, partition,
 * offset, key) with the value's bytes in base64; `undefined` when they are not UTF-8 text.
 */
const kafkaText = (record: unknown): unknown => {
  if (!isRecord(record) || typeof record.value !== "string") return record
  try {
    return utf8.decode(Buffer.from(record.value, "base64"))
  } catch {
    return undefined
  }
}

/** How the replay re-decodes the raw text of a record its source could not decode, or why it cannot. */
const textDecoder = (
  config: PipelineConfig
): ((letter: DeadLetter.DeadLetter) => { readonly value: unknown } | { readonly problem: string }) => {
  const source = config.source
  const formatType =
    source.type === "file" || source.type === "s3"
      ? source.format?.type
      : source.type === "kafka"
        ? source.value.type
        : undefined
  const format = source.type === "file" || source.type === "s3" ? source.format : undefined
  const limit =
    format !== undefined && "max_depth" in format
      ? format.max_depth
      : source.type === "kafka" && "max_depth" in source.value
        ? source.value.max_depth
        : undefined
  const maxDepth = typeof limit === "number" ? limit : JsonValue.defaultMaxDepth
  return (letter) => {
    const raw = source.type === "kafka" ? kafkaText(letter.record) : letter.record
    // A line that was not UTF-8 is kept as its bytes, which a text dead-letter set holds as base64 (its message says so).
    if (typeof raw !== "string" || letter.message.endsWith("the record is kept as its raw bytes"))
      return {
        problem:
          "the record was kept as raw bytes that are not valid UTF-8 text: they cannot decode; fix the input and run it again"
      }
    const path = letter.origin?.replace(/:\d+$/, "") ?? ""
    const type =
      formatType ??
      (/\.(jsonl|ndjson|json)(\.gz)?$/.test(path) ? "jsonl" : /\.csv(\.gz)?$/.test(path) ? "csv" : undefined)
    if (type === "string") return { value: raw }
    if (type !== "jsonl" && type !== "json")
      return {
        problem: `a ${type ?? "record of this"} format is decoded with what its input holds around it (a header, a schema), which the dead letter does not keep: fix the input and run it again`
      }
    // The limits the source's decoder applies: a record this deep is rejected before it is parsed.
    if (JsonValue.exceedsDepth(raw, maxDepth)) return { problem: `the record nests deeper than ${maxDepth} levels` }
    try {
      return { value: JsonValue.parse(raw) }
    } catch (cause) {
      return { problem: cause instanceof Error ? cause.message : String(cause) }
    }
  }
}

/**
 * The source of a replay: reads the dead-letter set and sends its records in batches of those that enter at the same
 * stage with the same origin (see {@link group}). A record its source had rejected is decoded (`decode-error`) and
 * checked against the source's schema again here, and fails again as a dead letter of the source; any other record is
 * tagged with the transform it enters at. A row that is no dead letter, or names a stage the pipeline does not have,
 * becomes a dead letter of stage `replay`.
 */
const replaySource = (
  letters: Source.Source<AnyRecord, unknown, Connectors.Services>,
  original: Connectors.BuiltSource,
  schema: RecordSchema.RecordSchema<AnyRecord> | undefined,
  config: PipelineConfig,
  from: Location,
  entries: ReadonlyMap<string, number>,
  tags: Tags
): Source.Source<AnyRecord, unknown, Connectors.Services> => {
  const sourceName = original.source.name
  const decodeText = textDecoder(config)
  // Records a transform rejected are read back with the source schema's types (decimals, timestamps) where they fit
  // it; one that does not (a transform before it changed its fields) is passed on as it was read.
  const retype = schema === undefined ? undefined : RecordSchema.withUnknownFields(schema, "keep")
  const one = (letter: DeadLetter.DeadLetter): Piece => {
    const origin = letter.origin
    const fail = (stage: string, reason: string, message: string, record: unknown): Piece => ({
      deadLetter: { stage, reason, message, record, ...(origin === undefined ? {} : { origin }) },
      entry: undefined,
      origin
    })
    const pass = (record: AnyRecord, entry?: number): Piece => ({ record, entry, origin })
    if (letter.stage === sourceName) {
      let value: unknown = letter.record
      if (letter.reason === "decode-error" || typeof value === "string" || value instanceof Uint8Array) {
        const decoded = decodeText(letter)
        if ("problem" in decoded)
          return fail(sourceName, "decode-error", `${origin ?? "record"}: ${decoded.problem}`, letter.record)
        value = decoded.value
      }
      if (schema === undefined)
        return isRecord(value)
          ? pass(value)
          : fail(sourceName, "invalid-record", "expected a record (a JSON object)", value)
      const checked = schema.validate(value)
      return checked.ok
        ? pass(checked.value)
        : fail(sourceName, "invalid-record", `${origin === undefined ? "" : `${origin}: `}${checked.message}`, value)
    }
    const transform = entries.get(letter.stage)
    if (transform === undefined)
      return fail(
        replayStage,
        "replay:unknown-stage",
        `the dead letter's stage ${JSON.stringify(letter.stage)} is not a stage of this pipeline (its stages: ${[sourceName, ...entries.keys()].join(", ")}): it cannot re-enter where it was rejected`,
        letter.record
      )
    const record = parseText(letter.record)
    if (!isRecord(record))
      return fail(letter.stage, letter.reason, `${letter.message} (replayed: the record is not a JSON object)`, record)
    const checked = retype?.validate(record)
    return pass(checked?.ok === true ? checked.value : record, transform)
  }
  const notALetter = (row: unknown): Piece => ({
    deadLetter: {
      stage: replayStage,
      reason: "replay:not-a-dead-letter",
      message: `a row of ${from.text} is not a dead letter (it needs "stage" and "reason")`,
      record: row
    },
    entry: undefined,
    origin: undefined
  })
  return Source.make({
    name: sourceName,
    type: "replay",
    description: `the dead letters of ${from.text}, re-entering the pipeline where they were rejected`,
    bounded: true,
    batches: (ctx) =>
      Stream.flatMap(letters.batches(ctx), (batch) => {
        const pieces: Array<Piece> = []
        for (const row of batch.records) {
          const letter = readLetter(row)
          pieces.push(letter === undefined ? notALetter(row) : one(letter))
        }
        // Rows the dead-letter source itself rejected are no dead letters to replay: kept as they are.
        for (const dl of batch.deadLetters)
          pieces.push({
            deadLetter: { ...dl, stage: replayStage, reason: `replay:${dl.reason}` },
            entry: undefined,
            origin: undefined
          })
        return Stream.fromIterable(group(pieces, batch.ack, tags))
      })
  })
}

/** A dead letter read back: the record it passes on (and where it enters), or the dead letter it is again. */
interface Piece {
  readonly record?: AnyRecord
  readonly deadLetter?: DeadLetter.DeadLetter
  /** The transform the record enters at; `undefined`: it went through the source (or failed there). */
  readonly entry: number | undefined
  readonly origin: string | undefined
}

/**
 * Cuts the pieces of one batch of dead letters into batches of consecutive pieces that enter at the same stage and
 * have the same origin (the tags are per batch); the last batch acknowledges what the dead-letter source read.
 */
const group = (
  pieces: ReadonlyArray<Piece>,
  ack: Batch.Batch<unknown>["ack"],
  tags: Tags
): ReadonlyArray<Batch.Batch<AnyRecord>> => {
  const out: Array<Batch.Batch<AnyRecord>> = []
  let i = 0
  while (i < pieces.length) {
    const first = pieces[i]!
    const records: Array<AnyRecord> = []
    const deadLetters: Array<DeadLetter.DeadLetter> = []
    let j = i
    for (; j < pieces.length && pieces[j]!.entry === first.entry && pieces[j]!.origin === first.origin; j++) {
      const piece = pieces[j]!
      if (piece.record !== undefined) records.push(piece.record)
      if (piece.deadLetter !== undefined) deadLetters.push(piece.deadLetter)
    }
    const last = j === pieces.length
    // A unique ack per batch: the tags are keyed by it, and it travels with the batch through every stage.
    const own = Effect.suspend(() => (last ? ack : Effect.void))
    if (first.entry !== undefined) tags.entries.set(own, { transform: first.entry })
    if (first.origin !== undefined) tags.origins.set(own, first.origin)
    out.push({ records, deadLetters, ack: own })
    i = j
  }
  if (out.length === 0) out.push({ records: [], deadLetters: [], ack })
  return out
}

/** Why a pipeline cannot replay dead letters whatever the flags, or `undefined`. */
const stageProblem = (stages: ReadonlyArray<StageInfo>): string | undefined => {
  const combining = stages.find(
    (s) =>
      s.kind === "transform" &&
      (s.stateful === true || s.cardinality === "many-to-one" || s.needsWholeInput === true || s.inputs !== undefined)
  )
  return combining === undefined
    ? undefined
    : `${combining.name} (${combining.description}) combines records: a replay feeds the dead letters alone through the pipeline, so it would combine them without the records that passed before and write wrong results. Replay works on pipelines whose transforms take records one by one`
}

/** Why the sink makes a replay unsafe without `--force`, or `undefined` (an upsert: replaying again writes the same). */
export const sinkProblem = (mode: string, name: string): string | undefined =>
  mode === "append"
    ? `the sink "${name}" appends without keys: a record replayed twice, or one that was already written, would be written twice. Replay into an upsert sink (idempotent by its keys), or pass --force to append anyway`
    : mode === "overwrite"
      ? `the sink "${name}" overwrites: its target would hold only the replayed records, and the data written before would be gone. Pass --force if that is what you want`
      : undefined

/** A replay's pipeline and what it reads and writes. */
export interface Replay {
  readonly pipeline: Build.ConfigPipeline
  readonly from: Location
  readonly deadLetters: Location | Connectors.SinkConfig
}

/** The config a replay builds: batch mode, the new dead-letter set, no thresholds on rejects (they are known bad). */
const replayConfig = (config: PipelineConfig, deadLetters: Connectors.SinkConfig): PipelineConfig => {
  const { streaming: _streaming, threads: _threads, quality, ...rest } = config
  const { max_rejected: _max, max_rejected_ratio: _ratio, ...kept } = quality ?? {}
  return {
    ...rest,
    mode: "batch",
    dead_letters: deadLetters,
    ...(Object.keys(kept).length === 0 ? {} : { quality: kept })
  }
}

/** Whether a dead-letter sink writes where `b` is (conservatively: a table named without its schema matches). */
const sameTarget = (a: Connectors.SinkConfig, b: Location): boolean => {
  const sink = b.sink
  switch (a.type) {
    case "file":
      return sink.type === "file" && nodePath.resolve(a.path) === nodePath.resolve(sink.path)
    case "postgres":
    case "mysql":
      return (
        sink.type === a.type &&
        a.connection === sink.connection &&
        a.table === sink.table &&
        (a.table_schema === undefined || sink.table_schema === undefined || a.table_schema === sink.table_schema)
      )
    case "kafka":
      return sink.type === "kafka" && a.topic === sink.topic
    case "s3":
      return (
        sink.type === "s3" && a.bucket === sink.bucket && a.path.replace(/\/+$/, "") === sink.path.replace(/\/+$/, "")
      )
  }
}

/**
 * Builds the replay of the dead letters at `options.from` through the pipeline `config` describes, checking first
 * what would make it harmful (see the module's description); each refusal is a ConfigError that says why and what to
 * do.
 */
export const build = (config: PipelineConfig, options: ReplayOptions): Effect.Effect<Replay, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const file = options.file
    const from = yield* location(config, options.from, { file, flag: "--from", pipeline: config.name })
    const target =
      options.deadLetters === undefined
        ? undefined
        : yield* location(config, options.deadLetters, { file, flag: "--dead-letters", pipeline: config.name })
    const deadLetters = target?.sink ?? config.dead_letters
    if (deadLetters === undefined)
      return yield* problem(
        file,
        "--dead-letters",
        "The config has no dead_letters: give --dead-letters LOCATION for the records that still fail"
      )
    if (sameTarget(deadLetters, from))
      return yield* problem(
        file,
        "--dead-letters",
        `The records that still fail would go to ${from.text}, the dead-letter set being replayed: give --dead-letters with another location (a new directory, table or topic)`
      )
    const entries = new Map<string, number>()
    const tags: Tags = { entries: new WeakMap(), origins: new WeakMap() }
    const sourceSchema =
      "schema" in config.source && typeof config.source.schema === "string"
        ? yield* options.schema(config.source.schema, "$.source.schema")
        : undefined
    const unknownFields = "unknown_fields" in config.source ? config.source.unknown_fields : undefined
    const schema = yield* Records.withUnknownFields(sourceSchema, unknownFields, file, "$.source")
    const letters = yield* Connectors.buildSource(from.source, {
      file,
      path: "--from",
      defaultName: "dead-letters",
      schema: options.schema,
      pipeline: config.name,
      connections: config.connections ?? {}
    })
    const held = new WeakMap<RunContext, Array<Batch.Batch<AnyRecord>>>()
    const heldOf = (ctx: RunContext) => {
      let queue = held.get(ctx)
      if (queue === undefined) {
        queue = []
        held.set(ctx, queue)
      }
      return queue
    }
    const pipeline = yield* Build.build(replayConfig(config, deadLetters), {
      file,
      schema: options.schema,
      hooks: {
        source: (original) =>
          Effect.succeed({
            source: replaySource(letters.source, original, schema, config, from, entries, tags),
            fields: original.fields
          }),
        transform: (index, flow, apply) => {
          // Batches that enter further on wait beside this transform and are handed on after it, counted as passed.
          const gated = Flow.mapBuild(flow, (batches, ctx) =>
            Stream.filter(batches, (batch) => {
              const entry = tags.entries.get(batch.ack)
              if (entry === undefined || entry.transform <= index) return true
              heldOf(ctx).push(batch)
              return false
            })
          )
          const applied = apply(gated)
          const own = applied.stages.at(-1)!
          for (const stage of applied.stages.slice(flow.stages.length)) entries.set(stage.name, index)
          return Flow.mapBuild(applied, (batches, ctx) => {
            const release = (): ReadonlyArray<Batch.Batch<AnyRecord>> => {
              const queue = heldOf(ctx)
              if (queue.length === 0) return queue.slice()
              const out = queue.splice(0)
              const counter = ctx.stage(own)
              for (const batch of out) {
                counter.recordsIn += batch.records.length
                counter.recordsOut += batch.records.length
                if (own.cardinality !== "one-to-one") counter.consumed += batch.records.length
              }
              return out
            }
            return Stream.concat(
              Stream.flatMap(batches, (batch) => Stream.fromIterable([...release(), batch])),
              Stream.suspend(() => Stream.fromIterable(release()))
            )
          })
        },
        // Dead letters of replayed records keep the origin of the record (a transform's own dead letters have none).
        end: (flow) =>
          Flow.mapBuild(flow, (batches) =>
            Stream.map(batches, (batch) => {
              const origin = tags.origins.get(batch.ack)
              if (origin === undefined || batch.deadLetters.every((dl) => dl.origin !== undefined)) return batch
              return {
                ...batch,
                deadLetters: batch.deadLetters.map((dl) => (dl.origin === undefined ? { ...dl, origin } : dl))
              }
            })
          )
      }
    })
    const combining = stageProblem(pipeline.stages)
    if (combining !== undefined) return yield* problem(file, "$.transforms", `Cannot replay: ${combining}`)
    const unsafe = sinkProblem(pipeline.sink.mode, pipeline.sink.info.name)
    if (unsafe !== undefined && options.force !== true)
      return yield* problem(file, "$.sink.mode", `Replay refused: ${unsafe}`)
    return { pipeline, from, deadLetters: target ?? deadLetters }
  })
