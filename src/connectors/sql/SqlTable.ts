/**
 * SQL sources and sinks, written once over the `SqlClient` contract and used by both PostgreSQL and MySQL.
 *
 * Sources stream a table or a query in batches (bounded memory), optionally split into partitions read concurrently
 * (a column's range cut into `partitions` slices, like Spark's JDBC source, or an explicit list of predicates), and
 * optionally incremental (a cursor column and a saved high-water mark, see `Incremental.ts`). A read of a whole table
 * tells the server's row estimate as its input size, for progress.
 *
 * Sinks check everything they can before the first row (see `SqlTarget.ts`: the table exists or is created, every
 * record field is a column, every NOT NULL column without a default is filled, upsert keys are a unique key of the
 * table), then hand batches to the client's loader, which writes exactly the records' fields and makes them visible
 * only at commit (or per batch with `transaction: "batch"`). When nothing tells the record fields ahead (a config
 * without schemas), the first batch does. `check` runs the same checks without writing.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as SchemaModule from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Batch from "../../core/Batch.ts"
import type * as Checkpoint from "../../core/Checkpoint.ts"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import { ExtractError, wrap } from "../../core/Errors.ts"
import * as PassThrough from "../../core/PassThrough.ts"
import { formatIssue, type Validation } from "../../core/RecordSchema.ts"
import type * as Sink from "../../core/Sink.ts"
import * as Source from "../../core/Source.ts"
import type { Attributes, Dataset, InputSize } from "../../core/Stage.ts"
import * as AvroBridge from "../../schema/AvroBridge.ts"
import * as Datasets from "../internal/Datasets.ts"
import * as Identifier from "./Identifier.ts"
import type { CursorState, Mark } from "./Incremental.ts"
import * as ColumnGuarantees from "./internal/ColumnGuarantees.ts"
import {
  type Bounds,
  type Loader,
  type LoadResult,
  offsetsKey,
  type RangeCondition,
  type RawChunk,
  type Relation,
  type Row,
  type SqlClient,
  type TableInfo
} from "./SqlClient.ts"
import { reasons, type SqlErrorReason } from "./SqlError.ts"
import * as SqlLineage from "./SqlLineage.ts"
import { compareValues } from "./SqlMemory.ts"
import * as SqlTarget from "./SqlTarget.ts"
import { type Column, type ColumnDef, type ColumnKind, columnsOfAvro } from "./SqlTypes.ts"

/** How a system builds its errors and names itself; given by `Postgres.ts` and `Mysql.ts`. */
export interface System<E> {
  readonly type: "postgres" | "mysql"
  readonly dialect: Identifier.Dialect
  /** The raw format its tables pass records through in (see `SqlClient.rawFormat`), when its clients have one. */
  readonly rawFormat?: string | undefined
  readonly makeError: (reason: SqlErrorReason, operation: string, message: string) => E
}

/** A bound of a partitioned read: a number, a timestamp, or a `YYYY-MM-DD` date. */
export type BoundValue = number | Date | string

/** A partitioned read: the column's range is cut into `partitions` slices read concurrently. */
export interface PartitionSpec {
  readonly column: string
  readonly partitions: number
  /** With `upperBound`, sets the slices' width only: rows outside the bounds are still read (by the first/last slice). */
  readonly lowerBound?: BoundValue | undefined
  readonly upperBound?: BoundValue | undefined
}

/** Incremental reads: see `Incremental.ts`. */
export interface IncrementalSpec<E, R> {
  readonly column: string
  /** Held back from the newest value: a number for numeric cursors, a duration (or millis) for timestamps. */
  readonly lag?: number | Duration.Input | undefined
  readonly state: CursorState<E, R>
}

/** Everything a SQL source needs. */
export interface SourceSpec<A, ES, RS> {
  readonly name: string
  readonly relation: Relation
  readonly columns?: ReadonlyArray<string> | undefined
  /** A SQL condition written by the pipeline's author (trusted SQL, not a value). */
  readonly where?: string | undefined
  readonly batchSize: number
  readonly partitionBy?: PartitionSpec | undefined
  /** One partition per predicate (trusted SQL), an alternative to `partitionBy`. */
  readonly predicates?: ReadonlyArray<string> | undefined
  /** Partitions read at once (default: all of them). */
  readonly concurrency?: number | undefined
  readonly incremental?: IncrementalSpec<ES, RS> | undefined
  /** Validates and converts each row; rows that fail become dead letters. */
  readonly validate?: ((row: Row) => Validation<A>) | undefined
  /**
   * The record schema `validate` checks: given it, a read of a table whose column types guarantee some of its fields
   * (decided once per read from the catalog) calls `validate` only for rows that fail a check of the other fields.
   */
  readonly schema?: SchemaModule.Top | undefined
  /** The dataset read, for lineage (see `SqlLineage.ts`). */
  readonly dataset?: Dataset | undefined
  /** Span and metric attributes. */
  readonly attributes?: Attributes | undefined
}

const isNumericKind = (kind: ColumnKind) =>
  kind === "int" || kind === "bigint" || kind === "float" || kind === "decimal"

const toNumber = (v: unknown): number => (typeof v === "number" ? v : Number(Identifier.literal("postgres", v)))

const dayMs = 86_400_000

/**
 * The range conditions of a partitioned read: `partitions` slices that together select every row exactly once, NULLs
 * included (the first slice takes them). The bounds only set the slices' width, as in Spark's JDBC source.
 */
export const planPartitions = (
  column: string,
  kind: ColumnKind,
  lower: unknown,
  upper: unknown,
  partitions: number
): ReadonlyArray<RangeCondition> => {
  const all: ReadonlyArray<RangeCondition> = [{ column, orNull: true }]
  if (partitions <= 1 || lower === null || upper === null || lower === undefined || upper === undefined) return all
  let cuts: Array<unknown> = []
  if (isNumericKind(kind) || typeof lower === "number") {
    const lo = toNumber(lower)
    const hi = toNumber(upper)
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return all
    const integral = kind === "int" || kind === "bigint"
    for (let i = 1; i < partitions; i++) {
      const cut = lo + ((hi - lo) * i) / partitions
      cuts.push(integral ? Math.floor(cut) : cut)
    }
  } else if (lower instanceof Date || upper instanceof Date || kind === "timestamp" || kind === "timestamptz") {
    const lo = lower instanceof Date ? lower.getTime() : Date.parse(String(lower))
    const hi = upper instanceof Date ? upper.getTime() : Date.parse(String(upper))
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return all
    for (let i = 1; i < partitions; i++) cuts.push(new Date(Math.floor(lo + ((hi - lo) * i) / partitions)))
  } else if (kind === "date") {
    const lo = Date.parse(`${String(lower)}T00:00:00Z`)
    const hi = Date.parse(`${String(upper)}T00:00:00Z`)
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return all
    for (let i = 1; i < partitions; i++)
      cuts.push(new Date(Math.floor((lo + ((hi - lo) * i) / partitions) / dayMs) * dayMs).toISOString().slice(0, 10))
  } else return all
  // Equal cuts (a narrow range cut many times) would make empty slices: keep each cut once, in order.
  cuts = cuts.filter((c, i) => i === 0 || compareValues(c, cuts[i - 1]) > 0)
  if (cuts.length === 0) return all
  const out: Array<RangeCondition> = [{ column, upper: cuts[0], orNull: true }]
  for (let i = 1; i < cuts.length; i++) out.push({ column, lower: cuts[i - 1], upper: cuts[i] })
  out.push({ column, lower: cuts[cuts.length - 1] })
  return out
}

const markOf = (column: string, value: unknown): Mark | undefined => {
  if (value instanceof Date) return { column, kind: "timestamp", value: value.toISOString() }
  if (typeof value === "number") return { column, kind: "number", value }
  if (typeof value === "string") return { column, kind: "string", value }
  if (value !== null && value !== undefined) {
    const n = toNumber(value)
    return Number.isFinite(n) ? { column, kind: "number", value: n } : undefined
  }
  return undefined
}

const markValue = (mark: Mark): unknown => (mark.kind === "timestamp" ? new Date(mark.value) : mark.value)

/** `max - lag`, in the cursor's unit; `undefined` when the lag does not apply to the column's values. */
const applyLag = (max: unknown, lag: number | Duration.Input | undefined): unknown => {
  if (lag === undefined || lag === 0) return max
  if (max instanceof Date) {
    const ms = typeof lag === "number" ? lag : Duration.toMillis(Duration.fromInputUnsafe(lag))
    return new Date(max.getTime() - ms)
  }
  if (typeof max === "number" && typeof lag === "number") return max - lag
  return undefined
}

/** The SQL condition list of a read: the author's `where`, then a partition predicate. */
const conditionsOf = (where: string | undefined, predicate?: string) => [
  ...(where === undefined ? [] : [where]),
  ...(predicate === undefined ? [] : [predicate])
]

/**
 * What the column types of a table read guarantee of the record schema, asked of the catalog once per read;
 * `undefined` when every row must be validated (a query, a client whose reads are not typed, no schema).
 */
const rowCheck = <A, E, ES, RS>(
  client: SqlClient<E>,
  spec: SourceSpec<A, ES, RS>
): Effect.Effect<ColumnGuarantees.RowCheck | undefined, E> =>
  Effect.gen(function* () {
    const typed = client.typedReads
    if (spec.validate === undefined || spec.schema === undefined || typed === undefined || typed === false)
      return undefined
    if (spec.relation._tag !== "Table") return undefined
    const info = yield* client.table(spec.relation.ref)
    if (info === undefined) return undefined
    const read = spec.columns === undefined ? info.columns : info.columns.filter((c) => spec.columns!.includes(c.name))
    return ColumnGuarantees.plan(spec.schema, read, typed === true ? undefined : typed)
  })

/**
 * Whether a read's records would come out of the server's text and go back into it unchanged: the parsers of these
 * column kinds keep every value as it is (timestamps: to the millisecond, so only columns of precision 3 or less).
 * JSON and arrays are re-serialized by a record's round trip (key order, number precision), so they never pass raw.
 */
const keepsText = (column: Column): boolean => {
  switch (column.kind) {
    case "json":
    case "array":
      return false
    case "timestamp":
    case "timestamptz": {
      const precision = /\((\d)\)/.exec(column.dbType)
      return precision !== null && Number(precision[1]) <= 3
    }
    default:
      return true
  }
}

/**
 * The source's side of a pass-through (see `PassThrough`): a plain table read (no query, no incremental mark) whose
 * columns keep their text, and whose column types guarantee every field of its record schema (only odd values, which
 * the raw read parses, are checked).
 */
const rawOffer = <A, E, Id, ES, RS>(
  format: string,
  tag: Context.Key<Id, SqlClient<E>>,
  spec: SourceSpec<A, ES, RS>
): PassThrough.SourceSide<E, Id> => ({
  format,
  offer: Effect.gen(function* () {
    const client = yield* tag
    if (client.readRaw === undefined || client.rawFormat !== format) return undefined
    if (spec.relation._tag !== "Table" || spec.incremental !== undefined) return undefined
    const info = yield* client.table(spec.relation.ref)
    if (info === undefined) return undefined
    const byName = new Map(info.columns.map((c) => [c.name, c]))
    const read = spec.columns === undefined ? info.columns : spec.columns.map((name) => byName.get(name))
    const columns: Array<Column> = []
    for (const column of read) {
      if (column === undefined || !keepsText(column)) return undefined
      columns.push(column)
    }
    if (spec.validate !== undefined) {
      const check = yield* rowCheck(client, spec)
      if (check === undefined || check.validated.length > 0) return undefined
    }
    return { format, fields: columns.map((c) => ({ name: c.name, type: c.dbType })) }
  })
})

/**
 * A source reading a table or query through the client behind `tag`.
 */
export const source = <A, E, Id, ES = never, RS = never>(
  system: System<E>,
  tag: Context.Key<Id, SqlClient<E>>,
  spec: SourceSpec<A, ES, RS>,
  description: string
): Source.Source<A, E | ES, Id | RS> => ({
  name: spec.name,
  type: system.type,
  description,
  bounded: true,
  ...(spec.dataset === undefined ? {} : { dataset: spec.dataset }),
  ...(spec.attributes === undefined ? {} : { attributes: spec.attributes }),
  batches: (ctx) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const client = yield* tag
        const where = conditionsOf(spec.where)
        const incremental = spec.incremental
        let cursorRange: RangeCondition | undefined
        let nextMark: Mark | undefined
        if (incremental !== undefined) {
          const saved = yield* incremental.state.load
          const bounds: Bounds = yield* client.bounds(spec.relation, incremental.column, where)
          if (bounds.max === null) return Stream.empty
          const upper = applyLag(bounds.max, incremental.lag)
          if (upper === undefined)
            return yield* Effect.fail(
              system.makeError(
                reasons.InvalidRequest,
                `read ${spec.name}`,
                `The lag of the incremental column ${incremental.column} must be a number for numeric columns or a duration for timestamps`
              )
            )
          const previous = saved !== undefined && saved.column === incremental.column ? markValue(saved) : undefined
          if (previous !== undefined && compareValues(upper, previous) <= 0) return Stream.empty
          cursorRange = {
            column: incremental.column,
            ...(previous === undefined ? {} : { lower: previous, lowerInclusive: false }),
            upper,
            upperInclusive: true
          }
          nextMark = markOf(incremental.column, upper)
        }
        const base = cursorRange === undefined ? [] : [cursorRange]
        // A split run reads the parts it was given (see `split` below), else every part.
        const parts: ReadonlyArray<Part> =
          ctx.parts !== undefined ? ctx.parts.map((part) => partOf(part.spec)) : yield* planParts(client, spec, base)
        const validate = spec.validate
        const check = yield* rowCheck(client, spec)
        const origin = Identifier.show(
          spec.relation._tag === "Table" ? spec.relation.ref : { name: `query of ${spec.name}` }
        )
        const toBatch = (chunk: {
          readonly rows: ReadonlyArray<Row>
          readonly rejected: ReadonlyArray<{ row: unknown; message: string }>
        }) => {
          const deadLetters: Array<DeadLetter.DeadLetter> = []
          for (const r of chunk.rejected)
            deadLetters.push({
              stage: spec.name,
              reason: "conversion-error",
              message: r.message,
              record: r.row,
              origin
            })
          if (validate === undefined)
            return Batch.make(chunk.rows as ReadonlyArray<A>, deadLetters.length === 0 ? undefined : { deadLetters })
          const records: Array<A> = []
          for (const row of chunk.rows) {
            if (check !== undefined && (check.check === undefined || check.check(row))) {
              records.push(row as A)
              continue
            }
            const result = validate(row)
            if (result.ok) records.push(result.value)
            else
              deadLetters.push({
                stage: spec.name,
                reason: "invalid-record",
                message: result.message,
                record: row,
                origin
              })
          }
          return Batch.make(records, { deadLetters })
        }
        // Read two chunks ahead, so the next batches are parsed while the sink waits on its writes. The batches of a
        // partitioned read name their slice, so that event-time stages keep a watermark per slice.
        const readEach = <C>(
          parts: ReadonlyArray<Part>,
          toBatch: (chunk: C) => Batch.Batch<A>,
          read: (part: Part) => Stream.Stream<C, E>
        ): Stream.Stream<Batch.Batch<A>, E> =>
          parts.length === 1
            ? Stream.map(Stream.buffer(read(parts[0]!), { capacity: 2 }), toBatch)
            : Stream.buffer(
                Source.readParts(parts, (part) => Stream.map(read(part), toBatch), {
                  concurrency: spec.concurrency ?? defaultConcurrency(parts.length, client.poolSize)
                }),
                { capacity: 2 }
              )
        const readRaw = client.readRaw
        const agreed = ctx.passThrough
        // Records pass through as the server's text (see `PassThrough`) only while the column types still guarantee
        // every field of the schema, as they did when the run agreed on it; else they are read as records.
        if (
          agreed !== undefined &&
          readRaw !== undefined &&
          (validate === undefined || (check !== undefined && check.validated.length === 0))
        ) {
          const empty = new Uint8Array(0)
          const rawBatch = (chunk: RawChunk): Batch.Batch<A> => {
            const deadLetters: Array<DeadLetter.DeadLetter> = []
            let chunks = chunk.segments
            let rows = chunk.rows
            if (chunk.parsed.length > 0) {
              const kept = chunks.slice()
              for (const one of chunk.parsed) {
                let rejected: DeadLetter.DeadLetter | undefined
                if (one.rejected !== undefined)
                  rejected = {
                    stage: spec.name,
                    reason: "conversion-error",
                    message: one.rejected.message,
                    record: one.rejected.row,
                    origin
                  }
                else if (
                  validate !== undefined &&
                  one.row !== undefined &&
                  !(check !== undefined && (check.check === undefined || check.check(one.row)))
                ) {
                  const result = validate(one.row)
                  if (!result.ok)
                    rejected = {
                      stage: spec.name,
                      reason: "invalid-record",
                      message: result.message,
                      record: one.row,
                      origin
                    }
                }
                if (rejected !== undefined) {
                  kept[one.segment] = empty
                  rows--
                  deadLetters.push(rejected)
                }
              }
              chunks = kept
            }
            return Batch.make(PassThrough.placeholders<A>(rows), {
              deadLetters,
              raw: { format: agreed.format, fields: agreed.fields, chunks }
            })
          }
          return readEach(parts, rawBatch, (part) =>
            readRaw({
              relation: spec.relation,
              columns: agreed.fields,
              conditions: part.conditions,
              ranges: part.ranges,
              batchSize: spec.batchSize
            })
          )
        }
        const batches: Stream.Stream<Batch.Batch<A>, E | ES, RS> = readEach(parts, toBatch, (part) =>
          client.read({
            relation: spec.relation,
            columns: spec.columns,
            conditions: part.conditions,
            ranges: part.ranges,
            batchSize: spec.batchSize
          })
        )
        if (incremental === undefined || nextMark === undefined) return batches
        const mark = nextMark
        const services = yield* Effect.context<RS>()
        // The mark is saved by the acknowledgement of a last, empty batch: the runtime runs it only after every
        // batch before it is durably written.
        const ack = incremental.state
          .save(mark)
          .pipe(Effect.provideContext(services), Effect.mapError(wrap(ExtractError, spec.name)))
        return Stream.concat(batches, Stream.succeed(Batch.make<A>([], { ack })))
      })
    ),
  size: estimable(spec) ? estimateSize(tag, spec.relation.ref) : undefined,
  ...(system.rawFormat === undefined ? {} : { readsRaw: rawOffer(system.rawFormat, tag, spec) }),
  // An incremental read saves its mark when it ends: its parts cannot be read apart.
  split:
    spec.incremental === undefined
      ? () =>
          Effect.gen(function* () {
            const client = yield* tag
            const parts = yield* planParts(client, spec, [])
            return parts.map((part, i) => ({
              id: parts.length === 1 ? "all" : `${i + 1}/${parts.length}`,
              description: describePart(part),
              spec: specOf(part)
            }))
          })
      : undefined
})

/**
 * How many slices of a partitioned read go at once by default: all of them, but never more than the pool's connections
 * less two, which stay free for the writes that share the pool (a sink on the same connection would wait for a
 * connection until the reads ended, which they never do while it waits).
 */
const defaultConcurrency = (parts: number, poolSize: number | undefined): number =>
  poolSize === undefined ? parts : Math.max(1, Math.min(parts, poolSize - 2))

/** A part of a read: its conditions (the author's `where`, a predicate) and its ranges (cursor, partition slice). */
interface Part {
  readonly conditions: ReadonlyArray<string>
  readonly ranges: ReadonlyArray<RangeCondition>
}

/** The parts of a read: one per predicate, one per slice of a partitioned read, else the whole of it. */
const planParts = <A, E, ES, RS>(
  client: SqlClient<E>,
  spec: SourceSpec<A, ES, RS>,
  base: ReadonlyArray<RangeCondition>
): Effect.Effect<ReadonlyArray<Part>, E> =>
  Effect.gen(function* () {
    const where = conditionsOf(spec.where)
    if (spec.predicates !== undefined && spec.predicates.length > 0)
      return spec.predicates.map((p) => ({ conditions: conditionsOf(spec.where, p), ranges: base }))
    if (spec.partitionBy === undefined || spec.partitionBy.partitions <= 1) return [{ conditions: where, ranges: base }]
    const p = spec.partitionBy
    let lower: unknown = p.lowerBound
    let upper: unknown = p.upperBound
    let kind: ColumnKind = "unknown"
    if (lower === undefined || upper === undefined) {
      const bounds = yield* client.bounds(spec.relation, p.column, where)
      lower ??= bounds.min
      upper ??= bounds.max
      kind = bounds.kind
    } else {
      const columns = yield* client.describe(spec.relation)
      kind = columns.find((c) => c.name === p.column)?.kind ?? "unknown"
    }
    return planPartitions(p.column, kind, lower, upper, p.partitions).map((range) => ({
      conditions: where,
      ranges: [...base, range]
    }))
  })

/** A bound as JSON: dates and bigints tagged, numbers and strings as they are. */
const boundJson = (v: unknown): unknown =>
  v instanceof Date ? { date: v.toISOString() } : typeof v === "bigint" ? { bigint: v.toString() } : v

const boundOf = (j: unknown): unknown => {
  if (typeof j === "object" && j !== null) {
    const o = j as { readonly date?: string; readonly bigint?: string }
    if (o.date !== undefined) return new Date(o.date)
    if (o.bigint !== undefined) return BigInt(o.bigint)
  }
  return j
}

/** A part as JSON (see `Source.split`). */
const specOf = (part: Part): unknown => ({
  conditions: part.conditions,
  ranges: part.ranges.map((r) => ({
    ...r,
    ...(r.lower === undefined ? {} : { lower: boundJson(r.lower) }),
    ...(r.upper === undefined ? {} : { upper: boundJson(r.upper) })
  }))
})

/** The part `specOf` gave. */
const partOf = (json: unknown): Part => {
  const o = json as { readonly conditions: ReadonlyArray<string>; readonly ranges: ReadonlyArray<RangeCondition> }
  return {
    conditions: o.conditions,
    ranges: o.ranges.map((r) => ({
      ...r,
      ...(r.lower === undefined ? {} : { lower: boundOf(r.lower) }),
      ...(r.upper === undefined ? {} : { upper: boundOf(r.upper) })
    }))
  }
}

const showBound = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v))

/** A part for a person: its predicate and its slice of the partition column. */
const describePart = (part: Part): string => {
  const pieces = [...part.conditions]
  for (const r of part.ranges) {
    const bounds = [
      r.lower === undefined ? "" : `${r.column} ${r.lowerInclusive === false ? ">" : ">="} ${showBound(r.lower)}`,
      r.upper === undefined ? "" : `${r.column} ${r.upperInclusive === true ? "<=" : "<"} ${showBound(r.upper)}`
    ].filter((b) => b !== "")
    const range = bounds.length === 0 ? "" : bounds.join(" AND ")
    pieces.push(r.orNull === true ? (range === "" ? `any ${r.column}` : `(${range} OR ${r.column} IS NULL)`) : range)
  }
  const shown = pieces.filter((p) => p !== "")
  return shown.length === 0 ? "every row" : shown.join(" AND ")
}

/** A read of a whole table (no `where`, predicates nor cursor): the table's row estimate is its size. */
const estimable = <A, ES, RS>(
  spec: SourceSpec<A, ES, RS>
): spec is SourceSpec<A, ES, RS> & {
  readonly relation: { readonly _tag: "Table"; readonly ref: Identifier.TableRef }
} =>
  spec.relation._tag === "Table" &&
  spec.where === undefined &&
  (spec.predicates === undefined || spec.predicates.length === 0) &&
  spec.incremental === undefined

const estimateSize = <E, Id>(
  tag: Context.Key<Id, SqlClient<E>>,
  ref: Identifier.TableRef
): Effect.Effect<InputSize, E, Id> =>
  Effect.gen(function* () {
    const client = yield* tag
    const records = client.estimateRows === undefined ? undefined : yield* client.estimateRows(ref)
    return records === undefined ? {} : { records, estimated: true }
  })

/** Everything a SQL sink needs. */
export interface SinkSpec {
  readonly name: string
  readonly table: Identifier.TableRef
  readonly mode: Sink.WriteMode
  readonly keys: ReadonlyArray<string>
  /**
   * The record fields, when known before the first batch (a record schema, the fields a config's transforms give):
   * exactly these columns are written. Unknown: the fields of the first batch are written, and a later record with
   * another field fails the load.
   */
  readonly fields?: ReadonlyArray<string> | undefined
  /** Creates the table with these columns when it does not exist. */
  readonly createIfMissing?: ReadonlyArray<ColumnDef> | undefined
  readonly transaction: "end" | "batch"
  /**
   * Where an append or upsert with `transaction: "end"` stores the source positions of each commit, in the same
   * transaction (see `Checkpoint`): default `etl_offsets` in the target's schema, created on the first commit that has
   * positions to store (only a resumable source, Kafka, gives them). `false`: nothing is stored, and a restarted
   * streaming run resumes from the source's own committed positions (at-least-once).
   */
  readonly offsets?: Identifier.TableRef | false | undefined
  /** The dataset written, for lineage (see `SqlLineage.ts`). */
  readonly dataset?: Dataset | undefined
  /** Span and metric attributes. */
  readonly attributes?: Attributes | undefined
}

/** The columns of an offsets table (see `SqlClient.OffsetRow`), keyed by {@link offsetsKey}. */
export const offsetsColumns = (dialect: Identifier.Dialect): ReadonlyArray<ColumnDef> => [
  { name: "pipeline", type: "varchar(255)", nullable: false },
  { name: "target", type: "varchar(255)", nullable: false },
  { name: "part", type: "varchar(255)", nullable: false },
  { name: "position", type: "varchar(40)", nullable: false },
  { name: "updated_at", type: dialect === "postgres" ? "timestamptz" : "datetime(3)", nullable: false }
]

/** A SQL sink: a sink whose `check` runs the target checks of `open` without writing. */
export interface SqlSink<A, E, R> extends Sink.Sink<A, E, R> {
  readonly check: Effect.Effect<void, E, R>
}

/** A sink writing to a table through the client behind `tag`. */
export const sink = <A, E, Id>(
  system: System<E>,
  tag: Context.Key<Id, SqlClient<E>>,
  spec: SinkSpec,
  description: string
): SqlSink<A, E, Id> => {
  const where = Identifier.show(spec.table)
  const problem = (p: SqlTarget.Problem) => Effect.fail(system.makeError(p.reason, `open ${where}`, p.message))
  const fail = (reason: SqlErrorReason, message: string) => problem({ reason, message })
  const primaryKey = spec.mode === "upsert" ? spec.keys : []
  /** What can be checked without the server. */
  const checkSpec = Effect.gen(function* () {
    const bad = Identifier.check(system.dialect, spec.table, [...spec.keys, ...(spec.fields ?? [])])
    if (bad !== undefined) return yield* fail(reasons.InvalidRequest, `Invalid identifier: ${bad}`)
    if (spec.mode === "upsert" && spec.keys.length === 0)
      return yield* fail(reasons.InvalidKeys, `An upsert into ${where} needs key columns ("keys")`)
    if (spec.transaction === "batch" && spec.mode !== "append")
      return yield* fail(
        reasons.InvalidRequest,
        `transaction "batch" is for append only: ${spec.mode} must stage everything and swap it in at commit`
      )
    if (spec.createIfMissing !== undefined) {
      const badColumn = Identifier.check(
        system.dialect,
        undefined,
        spec.createIfMissing.map((c) => c.name)
      )
      if (badColumn !== undefined) return yield* fail(reasons.InvalidRequest, `Invalid identifier: ${badColumn}`)
    }
  })
  /** The target table; when it is missing and may be created, `create` creates it (otherwise: as it would be). */
  const target = (client: SqlClient<E>, create: boolean) =>
    Effect.gen(function* () {
      const info = yield* client.table(spec.table)
      if (info !== undefined) return info
      if (spec.createIfMissing === undefined)
        return yield* fail(
          reasons.UndefinedTable,
          `Table ${where} does not exist; create it, or set create_if_missing with a record schema`
        )
      if (!create) return SqlTarget.toBeCreated(spec.table, spec.createIfMissing, primaryKey)
      yield* client.createTable(spec.table, spec.createIfMissing, primaryKey)
      const created = yield* client.table(spec.table)
      if (created === undefined) return yield* fail(reasons.UndefinedTable, `Table ${where} could not be created`)
      return created
    })
  const planFor = (info: TableInfo, fields: ReadonlyArray<string>) => {
    const planned = SqlTarget.plan(info, fields, spec.mode, spec.keys)
    return SqlTarget.isProblem(planned) ? problem(planned) : Effect.succeed(planned.columns)
  }
  const checkTable = (info: TableInfo) => {
    const keys = SqlTarget.keysProblem(info, spec.mode, spec.keys)
    return keys === undefined ? Effect.void : problem(keys)
  }
  const resultOf = (client: SqlClient<E>, result: LoadResult): Sink.SinkResult => ({
    written: result.written,
    ...(result.updated === undefined ? {} : { updated: result.updated }),
    location: `${system.type}:${client.connection}/${where}`,
    details: {
      ...(result.inserted === undefined ? {} : { inserted: result.inserted }),
      ...(result.duplicates === undefined ? {} : { duplicates: result.duplicates })
    }
  })
  const offsets =
    spec.offsets === false || spec.mode === "overwrite" || spec.transaction === "batch"
      ? undefined
      : (spec.offsets ?? {
          ...(spec.table.schema === undefined ? {} : { schema: spec.table.schema }),
          name: "etl_offsets"
        })
  const loadRequest = (columns: ReadonlyArray<Column>) => ({
    table: spec.table,
    mode: spec.mode,
    columns,
    keys: spec.keys,
    transaction: spec.transaction,
    ...(offsets === undefined ? {} : { offsets })
  })
  /** The offsets table, created when missing (by the first commit that stores positions). */
  let offsetsReady = false
  const ensureOffsets = (client: SqlClient<E>, ref: Identifier.TableRef) =>
    offsetsReady
      ? Effect.void
      : Effect.gen(function* () {
          const bad = Identifier.check(system.dialect, ref, [])
          if (bad !== undefined) return yield* fail(reasons.InvalidRequest, `Invalid offsets table: ${bad}`)
          if ((yield* client.table(ref)) === undefined)
            yield* client.createTable(ref, offsetsColumns(system.dialect), offsetsKey).pipe(
              // Another process of the pipeline may have created it at the same moment.
              Effect.catch((error) =>
                Effect.flatMap(client.table(ref), (info) => (info === undefined ? Effect.fail(error) : Effect.void))
              )
            )
          offsetsReady = true
        })
  /** Records the checkpoint's positions in the commit of `loader`. */
  const checkpointer = (client: SqlClient<E>, loader: () => Effect.Effect<Loader<E>, E>) =>
    offsets === undefined
      ? undefined
      : (checkpoint: Checkpoint.Checkpoint) =>
          Effect.gen(function* () {
            yield* ensureOffsets(client, offsets)
            const current = yield* loader()
            current.positions?.(
              checkpoint.positions.map((r) => ({
                pipeline: checkpoint.pipeline,
                target: where,
                part: r.part,
                position: r.to,
                ...(checkpoint.fenced ? { from: r.from } : {})
              }))
            )
          })
  const positions: Checkpoint.Store<E, Id> | undefined =
    offsets === undefined
      ? undefined
      : {
          where: `table ${Identifier.show(offsets)}`,
          load: (pipeline) =>
            Effect.gen(function* () {
              const client = yield* tag
              const stored = new Map<string, string>()
              if ((yield* client.table(offsets)) === undefined) return stored
              yield* Stream.runForEach(
                client.read({
                  relation: { _tag: "Table", ref: offsets },
                  columns: ["pipeline", "target", "part", "position"],
                  batchSize: 10_000
                }),
                (chunk) =>
                  Effect.sync(() => {
                    for (const row of chunk.rows)
                      if (row.pipeline === pipeline && row.target === where)
                        stored.set(String(row.part), String(row.position))
                  })
              )
              return stored
            })
        }
  /**
   * A writer over a load opened with the columns the records fill: at once when the record fields are known ahead,
   * else on the first batch (and then a record with another field fails). With nothing written, `empty` decides:
   * `every-column` opens the load with every column of the table and commits it (an overwrite with no records empties
   * the table), `nothing` commits nothing.
   */
  const writerOf = (
    info: TableInfo,
    load: (columns: ReadonlyArray<Column>) => Effect.Effect<Loader<E>, E, Scope.Scope>,
    empty: "every-column" | "nothing"
  ) =>
    Effect.gen(function* () {
      if (spec.fields !== undefined) {
        const columns = yield* planFor(info, spec.fields)
        const loader = yield* load(columns)
        return {
          loader: () => Effect.succeed(loader),
          write: loader.write,
          writeRaw: (raw: PassThrough.Raw) => writeRawWith(loader, columns, raw),
          commit: Effect.map(loader.commit, Option.some)
        }
      }
      // The record fields are known only from the first batch: the load opens then, in this writer's scope.
      const scope = yield* Effect.scope
      let loader: Loader<E> | undefined
      let loaded: ReadonlyArray<Column> = []
      let written: ReadonlySet<string> = new Set()
      const start = (fields: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const columns = yield* planFor(info, fields)
          written = new Set(fields)
          const opened = yield* Scope.provide(load(columns), scope)
          loader = opened
          loaded = columns
          return opened
        })
      const everyColumn = () => start(info.columns.map((c) => c.name))
      return {
        loader: () => (loader === undefined ? everyColumn() : Effect.succeed(loader)),
        write: (rows: ReadonlyArray<Row>) =>
          Effect.gen(function* () {
            if (rows.length === 0) return
            let current = loader
            if (current === undefined) current = yield* start(SqlTarget.fieldsOf(rows))
            else {
              const stray = SqlTarget.strayField(rows, written)
              if (stray !== undefined)
                return yield* fail(
                  info.columns.some((c) => c.name === stray) ? reasons.InvalidRequest : reasons.UndefinedColumn,
                  info.columns.some((c) => c.name === stray)
                    ? `The record field ${JSON.stringify(stray)} first appeared after the first batch, whose fields (${Array.from(written).join(", ")}) are the columns this load of ${where} writes; give the sink (or the source) a record schema so the fields are known before the first write`
                    : `The record field ${JSON.stringify(stray)} has no column in ${where}; its columns are ${info.columns.map((c) => c.name).join(", ")}`
                )
            }
            yield* current.write(rows)
          }),
        writeRaw: (raw: PassThrough.Raw) =>
          Effect.gen(function* () {
            const current = loader ?? (yield* start(raw.fields))
            yield* writeRawWith(current, loaded, raw)
          }),
        commit: Effect.gen(function* () {
          if (loader === undefined && empty === "nothing") return Option.none<LoadResult>()
          const current = loader ?? (yield* everyColumn())
          return Option.some(yield* current.commit)
        })
      }
    })
  /** Writes raw rows into a load of `columns`: the rows' fields must be those columns, in that order. */
  const writeRawWith = (loader: Loader<E>, columns: ReadonlyArray<Column>, raw: PassThrough.Raw) =>
    loader.writeRaw === undefined ||
    raw.format !== system.rawFormat ||
    raw.fields.length !== columns.length ||
    columns.some((c, i) => c.name !== raw.fields[i])
      ? fail(
          reasons.InvalidRequest,
          `Rows of ${raw.fields.join(", ")} in ${raw.format} cannot be written as they are into the columns ${columns.map((c) => c.name).join(", ")} of ${where}`
        )
      : loader.writeRaw(raw.chunks)
  /**
   * The sink's side of a pass-through (see `PassThrough`): the target exists, and the offered fields are the ones the
   * records would fill, each into a column of exactly its type (so the text needs no conversion).
   */
  const writesRaw: PassThrough.SinkSide<E, Id> | undefined =
    system.rawFormat === undefined
      ? undefined
      : {
          format: system.rawFormat,
          accept: (offer) =>
            Effect.gen(function* () {
              const client = yield* tag
              if (client.rawFormat !== offer.format || client.readRaw === undefined) return undefined
              const info = yield* client.table(spec.table)
              if (info === undefined) return undefined
              const offered = new Map(offer.fields.map((f) => [f.name, f.type]))
              const fields = spec.fields ?? offer.fields.map((f) => f.name)
              if (fields.length !== offered.size || fields.some((f) => !offered.has(f))) return undefined
              const planned = SqlTarget.plan(info, fields, spec.mode, spec.keys)
              if (SqlTarget.isProblem(planned)) return undefined
              if (planned.columns.some((c) => offered.get(c.name) !== c.dbType)) return undefined
              return { format: offer.format, fields: planned.columns.map((c) => c.name) }
            })
        }
  /** The target, checked (and created when it is missing and may be). */
  const opened = (client: SqlClient<E>) =>
    Effect.gen(function* () {
      yield* checkSpec
      const info = yield* target(client, true)
      yield* checkTable(info)
      return info
    })
  const stagingOf = (client: SqlClient<E>) =>
    client.stage === undefined || client.dropTables === undefined
      ? fail(reasons.InvalidRequest, `The ${system.type} client of ${where} cannot stage a split run's parts`)
      : Effect.succeed({ stage: client.stage, dropTables: client.dropTables })
  /** The record fields a part's staging table holds (its columns, less MySQL's `etl_seq`). */
  const stagedFields = (client: SqlClient<E>, ref: Identifier.TableRef) =>
    Effect.gen(function* () {
      const staged = yield* client.table(ref)
      if (staged === undefined)
        return yield* fail(
          reasons.UndefinedTable,
          `The staging table ${Identifier.show(ref)} of a part of this run is missing (was the run cleared?)`
        )
      return staged.columns.map((c) => c.name).filter((name) => name !== "etl_seq")
    })
  /**
   * A split run's parts stage their rows in tables next to the target (`SqlClient.stage`), and the finish loads them
   * all with one load, on the server. A part that read no records stages nothing. Loads that commit per batch do not
   * stage (a split run then stages in the cluster's database).
   */
  const staging: Sink.PartStaging<E, Id> | undefined =
    spec.transaction !== "end"
      ? undefined
      : {
          description: `staging tables next to ${where}`,
          part: (run, part) =>
            Effect.gen(function* () {
              const client = yield* tag
              const { stage, dropTables } = yield* stagingOf(client)
              const info = yield* opened(client)
              const ref = partTable(spec.table, run, part)
              // An earlier read of the part staged what this one replaces (or nothing, if this one reads nothing).
              yield* dropTables([ref])
              const writer = yield* writerOf(
                info,
                (columns) => stage({ ...loadRequest(columns), offsets: undefined }, ref),
                "nothing"
              )
              return {
                write: (records: ReadonlyArray<unknown>) => writer.write(records as ReadonlyArray<Row>),
                writeRaw: writer.writeRaw,
                commit: Effect.map(writer.commit, (result) => ({
                  ...resultOf(
                    client,
                    Option.getOrElse(result, () => ({ written: 0 }))
                  ),
                  location: `${system.type}:${client.connection}/${Identifier.show(ref)}`
                }))
              }
            }),
          finish: (run, parts) =>
            Effect.gen(function* () {
              const client = yield* tag
              yield* stagingOf(client)
              const info = yield* opened(client)
              const staged = parts.filter((part) => part.records > 0).map((part) => partTable(spec.table, run, part.id))
              // Every part staged the columns its records fill: the same ones, or the finish cannot load them as one.
              let fields = spec.fields
              for (const ref of staged) {
                const got = yield* stagedFields(client, ref)
                if (fields === undefined) fields = got
                else if (got.length !== fields.length || got.some((f) => !fields!.includes(f)))
                  return yield* fail(
                    reasons.InvalidRequest,
                    `The parts of this run staged different record fields for ${where} (${fields.join(", ")} / ${got.join(", ")}); give the sink (or the source) a record schema so every part writes the same columns`
                  )
              }
              const loader = yield* client.load({
                ...loadRequest(yield* planFor(info, fields ?? info.columns.map((c) => c.name))),
                staged
              })
              return {
                write: (records: ReadonlyArray<unknown>) =>
                  records.length === 0
                    ? Effect.void
                    : fail(
                        reasons.InvalidRequest,
                        `The finish of a split run into ${where} takes what its parts staged, not records`
                      ),
                checkpoint: checkpointer(client, () => Effect.succeed(loader)),
                commit: Effect.map(loader.commit, (result) => resultOf(client, result))
              }
            }),
          clear: (run, parts) =>
            Effect.gen(function* () {
              const client = yield* tag
              const { dropTables } = yield* stagingOf(client)
              yield* dropTables(parts.map((part) => partTable(spec.table, run, part)))
            })
        }
  return {
    name: spec.name,
    type: system.type,
    description,
    mode: spec.mode,
    durability: spec.transaction === "batch" ? "per-write" : "on-commit",
    ...(positions === undefined ? {} : { positions }),
    ...(staging === undefined ? {} : { staging }),
    ...(spec.dataset === undefined ? {} : { dataset: spec.dataset }),
    ...(spec.attributes === undefined ? {} : { attributes: spec.attributes }),
    ...(writesRaw === undefined ? {} : { writesRaw }),
    check: Effect.gen(function* () {
      const client = yield* tag
      yield* checkSpec
      const info = yield* target(client, false)
      yield* checkTable(info)
      if (spec.fields !== undefined) yield* planFor(info, spec.fields)
    }),
    open: Effect.gen(function* () {
      const client = yield* tag
      const info = yield* opened(client)
      // Nothing written: the load still runs (an overwrite with no records empties the table), writing every column.
      const writer = yield* writerOf(info, (columns) => client.load(loadRequest(columns)), "every-column")
      return {
        write: (records: ReadonlyArray<A>) => writer.write(records as unknown as ReadonlyArray<Row>),
        writeRaw: writer.writeRaw,
        checkpoint: checkpointer(client, writer.loader),
        commit: Effect.map(writer.commit, (result) =>
          resultOf(
            client,
            Option.getOrElse(result, () => ({ written: 0 }))
          )
        )
      }
    })
  }
}

/**
 * The staging table of part `part` of split run `run` for `table`: in the table's schema, named after it with a hash
 * of the run and the part, within the 63 bytes both servers allow (`orders__etlp_3f2a...`).
 */
export const partTable = (table: Identifier.TableRef, run: string, part: string): Identifier.TableRef => {
  const suffix = `__etlp_${fnv1a64(`${run}\u0000${part}`)}`
  const chars = Array.from(table.name)
  while (chars.length > 0 && utf8Length(chars.join("") + suffix) > 63) chars.pop()
  return { ...(table.schema === undefined ? {} : { schema: table.schema }), name: chars.join("") + suffix }
}

const utf8Length = (text: string): number => new TextEncoder().encode(text).length

/** The 64-bit FNV-1a hash of a string's UTF-8 bytes, as 16 hex digits. */
const fnv1a64 = (text: string): string => {
  let hash = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(text))
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return hash.toString(16).padStart(16, "0")
}

/** The client service tag of a system and connection name; the same name always gives the same key. */
export const clientTag = <Id, E>(prefix: string, name: string): Context.Service<Id, SqlClient<E>> =>
  Context.Service<Id, SqlClient<E>>(`${prefix}/${name}`)

// -----------------------------------------------------------------------------
// The typed API: one value that is both a source and a sink
// -----------------------------------------------------------------------------

/** A table as a typed value: read it with `Pipeline.from(table)`, write it with `Pipeline.to(table)`. */
export interface Table<A, E, R> extends Source.Source<A, E, R>, Sink.Sink<A, E, R> {
  /** Checks the table as a sink's target without writing (see {@link SqlSink}). */
  readonly check: Effect.Effect<void, E, R>
}

/** Options of a typed table (reading options and writing options; each side ignores the other's). */
export interface TableOptions<A, ES, RS> {
  /** The stage name (default: the table's name). */
  readonly name?: string
  /** The PostgreSQL schema / MySQL database of the table (default: the connection's). */
  readonly tableSchema?: string
  // reading
  /** The columns to read (default: the record schema's fields). */
  readonly columns?: ReadonlyArray<keyof A & string>
  /** A SQL condition on the rows to read (trusted SQL, written by you). */
  readonly where?: string
  /** Rows per batch (default 10,000). */
  readonly batchSize?: number
  /** Read the column's range in slices, concurrently. */
  readonly partitionBy?: PartitionSpec
  /** One slice per SQL condition, read concurrently. */
  readonly predicates?: ReadonlyArray<string>
  /** Partitions read at once (default: all). */
  readonly concurrency?: number
  /** Read only rows added since the last successful run. */
  readonly incremental?: IncrementalSpec<ES, RS>
  /**
   * Check each row against the record schema (default true); rows that fail become dead letters. Fields the table's
   * column types already guarantee (a `bigint NOT NULL` column for a `long`, ...) are not checked again per row.
   */
  readonly validate?: boolean
  // writing
  /** append (default), overwrite (atomic) or upsert (by `keys`). */
  readonly mode?: Sink.WriteMode
  /** Upsert keys: the primary key or a unique index of the table. */
  readonly keys?: ReadonlyArray<keyof A & string>
  /** Create the table from the record schema when it does not exist. */
  readonly createIfMissing?: boolean
  /** `end` (default): one transaction per run; `batch` (append only): each batch commits. */
  readonly transaction?: "end" | "batch"
  /**
   * The table (in the same schema) where an append or upsert stores the source positions of each commit, in the same
   * transaction, for exactly-once streaming from Kafka (default `etl_offsets`); `false`: none (at-least-once).
   */
  readonly offsetsTable?: string | false
  // lineage
  /**
   * Where the connection's server is (its connection options fit), naming the table's dataset for lineage
   * (`postgres://host:port`, `database.schema.table`): the client layer connects, but a table names its dataset before
   * it runs. Without it only span attributes are set.
   */
  readonly server?: SqlLineage.Server
}

/** The top-level field names of a struct schema. */
export const structFields = (schema: SchemaModule.Top): ReadonlyArray<string> | undefined => {
  const ast = schema.ast
  return ast._tag === "Objects" ? ast.propertySignatures.map((p) => String(p.name)) : undefined
}

/** A row validator checking record values (the schema's `Type` side: `Date`, `BigDecimal`, ...). */
export const typeValidator = <S extends SchemaModule.Top>(schema: S): ((row: Row) => Validation<S["Type"]>) => {
  const codec = SchemaModule.toType(schema) as unknown as SchemaModule.Codec<S["Type"], S["Type"]>
  const is = SchemaModule.is(codec)
  const decode = SchemaModule.decodeUnknownExit(codec)
  return (row) => {
    if (is(row)) return { ok: true, value: row as S["Type"] }
    const exit = decode(row, { errors: "all" })
    if (exit._tag === "Success") return { ok: true, value: exit.value }
    const reason = exit.cause.reasons[0]
    const error = reason !== undefined && reason._tag === "Fail" ? reason.error : undefined
    return {
      ok: false,
      message: error instanceof SchemaModule.SchemaError ? formatIssue(error.issue) : "invalid record"
    }
  }
}

/**
 * Builds a typed table over a client tag. Shared by `Postgres.table` and `Mysql.table`.
 */
export const makeTable = <S extends SchemaModule.Top, E, Id, ES = never, RS = never>(
  system: System<E>,
  clientKey: Context.Key<Id, SqlClient<E>>,
  table: string,
  schema: S,
  options: TableOptions<S["Type"], ES, RS> = {}
): Table<S["Type"], E | ES, Id | RS> => {
  type A = S["Type"]
  const ref: Identifier.TableRef = {
    name: table,
    ...(options.tableSchema === undefined ? {} : { schema: options.tableSchema })
  }
  const name = options.name ?? table
  const fields = structFields(schema)
  const label = system.type === "postgres" ? "PostgreSQL" : "MySQL"
  const columns = options.columns ?? fields
  const lineage = SqlLineage.of(system.type, options.server, ref, Datasets.fieldsOfSchema(schema))
  const src = source<A, E, Id, ES, RS>(
    system,
    clientKey,
    {
      name,
      relation: { _tag: "Table", ref },
      columns,
      where: options.where,
      batchSize: options.batchSize ?? 10_000,
      partitionBy: options.partitionBy,
      predicates: options.predicates,
      concurrency: options.concurrency,
      incremental: options.incremental,
      validate: options.validate === false ? undefined : typeValidator(schema),
      schema,
      ...lineage
    },
    `${label} table ${Identifier.show(ref)}${options.partitionBy === undefined ? "" : ` in ${options.partitionBy.partitions} partitions of ${options.partitionBy.column}`}`
  )
  const mode = options.mode ?? "append"
  const keys = (options.keys ?? []) as ReadonlyArray<string>
  const specOf = (createIfMissing: SinkSpec["createIfMissing"]): SinkSpec => ({
    name,
    table: ref,
    mode,
    keys,
    fields,
    transaction: options.transaction ?? "end",
    createIfMissing,
    ...(options.offsetsTable === undefined
      ? {}
      : {
          offsets:
            options.offsetsTable === false
              ? false
              : { name: options.offsetsTable, ...(ref.schema === undefined ? {} : { schema: ref.schema }) }
        }),
    ...lineage
  })
  const description = `${label} table ${Identifier.show(ref)}${mode === "upsert" ? ` by (${keys.join(", ")})` : ""}`
  const snk = sink<A, E, Id>(system, clientKey, specOf(undefined), description)
  // With createIfMissing, the columns to create come from the record schema, converted when the sink is used.
  const writing: Effect.Effect<SqlSink<A, E, Id>, E> = options.createIfMissing === true
    ? Effect.flatMap(
        Effect.mapError(AvroBridge.fromSchema(schema, { name: "Record" }), (e) =>
          system.makeError(
            reasons.InvalidRequest,
            `open ${Identifier.show(ref)}`,
            `Cannot create ${Identifier.show(ref)} from the record schema: ${e.message}`
          )
        ),
        (avro) => {
          const defs = columnsOfAvro(system.dialect, avro)
          return typeof defs === "string"
            ? Effect.fail(
                system.makeError(
                  reasons.InvalidRequest,
                  `open ${Identifier.show(ref)}`,
                  `Cannot create ${Identifier.show(ref)}: ${defs}`
                )
              )
            : Effect.succeed(sink<A, E, Id>(system, clientKey, specOf(defs), description))
        }
      )
    : Effect.succeed(snk)
  return {
    ...src,
    mode: snk.mode,
    durability: snk.durability,
    ...(snk.positions === undefined ? {} : { positions: snk.positions }),
    ...(snk.staging === undefined
      ? {}
      : {
          staging: {
            description: snk.staging.description,
            part: (run: string, part: string) => Effect.flatMap(writing, (s) => s.staging!.part(run, part)),
            finish: (run: string, parts: ReadonlyArray<Sink.StagedPart>) =>
              Effect.flatMap(writing, (s) => s.staging!.finish(run, parts)),
            clear: (run: string, parts: ReadonlyArray<string>) =>
              Effect.flatMap(writing, (s) => s.staging!.clear(run, parts))
          } satisfies Sink.PartStaging<E, Id>
        }),
    ...(snk.writesRaw === undefined
      ? {}
      : {
          writesRaw: {
            format: snk.writesRaw.format,
            accept: (offer: PassThrough.Offer) => Effect.flatMap(writing, (s) => s.writesRaw!.accept(offer))
          } satisfies PassThrough.SinkSide<E, Id>
        }),
    check: Effect.flatMap(writing, (s) => s.check) as Effect.Effect<void, E | ES, Id | RS>,
    open: Effect.flatMap(writing, (s) => s.open) as Sink.Sink<A, E | ES, Id | RS>["open"]
  }
}
