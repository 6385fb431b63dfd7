/**
 * Aggregations: `aggregate({ groupBy, fields })` and the aggregate functions (`count`, `countDistinct`, `sum`, `avg`,
 * `min`, `max`, `first`, `last`, and approximate percentiles).
 *
 * The output record type is inferred from the spec: grouping `{ userId: string; amount: number }` by `userId` with
 * `{ total: Agg.sum("amount"), count: Agg.count() }` gives `{ userId: string; total: number; count: number }`; grouping
 * by a field the records do not have, or summing a string, does not compile.
 *
 * Semantics are SQL's: rows with equal keys form a group (all NULL keys form one group); `count()` counts rows,
 * `count(field)` non-NULL values; `sum`, `avg`, `min`, `max`, `first`, `last` and percentiles ignore NULLs and give
 * `null` when a group has no value (so their output type includes `null` exactly when the input field's does). Sums of
 * `BigDecimal` fields are exact. A value a function cannot use (a string in a sum) rejects its record to the dead
 * letters (reason `invalid-value`). There is one output row per group and no row at all for an empty input.
 *
 * Without a window, `aggregate` emits its groups when a bounded input ends, with the acks of every input batch on the
 * last output batch. Right after `window` and grouped by `windowStart`/`windowEnd`, it emits each window's groups as
 * the watermark closes the window, and keeps state only for open windows (see `Window`: idle timeout, processing-time
 * watermarks). Output batches carry the oldest source timestamp of the input batches whose records they aggregate.
 *
 * ```ts
 * Pipeline.aggregate({
 *   groupBy: ["userId"],
 *   fields: { total: Agg.sum("amount"), count: Agg.count(), p95: Agg.p95("latencyMs") }
 * })
 * ```
 */
import type * as BigDecimal from "effect/BigDecimal"
import * as Stream from "effect/Stream"
import type { UnionToIntersection } from "effect/Types"
import type * as Batch from "../core/Batch.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { BuildError, type PipelineError } from "../core/Errors.ts"
import { addFusedStage, addStage, type Flow } from "../core/Flow.ts"
import type { RunContext, StageCounter } from "../core/Stage.ts"
import {
  type Accumulator,
  type AggKind,
  type AggSpec,
  acceptsAnything,
  checkSpec,
  describeSpec,
  expected,
  factory
} from "./internal/Accumulators.ts"
import { emit, type Held, heldOf } from "./internal/Acks.ts"
import { decode, encode, type Json } from "./internal/StateCodec.ts"
import { type Checkpointing, type Loop, partitioned, restoredState, stepped } from "./internal/Steps.ts"
import { compositeKey, keyOf, show, timeOf } from "./internal/Values.ts"
import {
  describeConfig,
  lateLetter,
  oldestOf,
  type Pane,
  stamped,
  tickMillis,
  timeLetter,
  type WindowConfig,
  Windows,
  type WindowsState
} from "./internal/Windows.ts"
import { type WindowSpec, windowingOf } from "./Window.ts"

export type { AggKind, AggSpec } from "./internal/Accumulators.ts"
export { DEFAULT_RELATIVE_ACCURACY } from "./internal/Accumulators.ts"

type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** An aggregate function `Kind` over the field `K` (`undefined` for `count()`). Build one with `count`, `sum`, ... */
export interface Aggregation<out Kind extends AggKind = AggKind, out K extends string | undefined = string | undefined>
  extends AggSpec {
  readonly _tag: "Aggregation"
  readonly kind: Kind
  readonly field: K
}

/** Values `sum` and `avg` accept: doubles and exact decimals. */
export type Numeric = number | BigDecimal.BigDecimal

/** Values `min` and `max` accept. */
export type Orderable = number | bigint | string | boolean | Date | BigDecimal.BigDecimal

const make = <Kind extends AggKind, K extends string | undefined>(
  kind: Kind,
  field: K,
  extra?: { readonly quantile?: number; readonly relativeAccuracy?: number | undefined }
): Aggregation<Kind, K> => ({ _tag: "Aggregation", kind, field, ...extra })

/**
 * `count()` counts the rows of a group; `count(field)` counts its non-NULL values of `field`.
 *
 * @example
 * Agg.count()
 */
export function count(): Aggregation<"count", undefined>
/** Counts the non-NULL values of `field`. */
export function count<const K extends string>(field: K): Aggregation<"count", K>
export function count(field?: string): Aggregation<"count", string | undefined> {
  return make("count", field)
}

/**
 * The number of distinct non-NULL values of `field` (exact; the group keeps a set of its values).
 *
 * @example
 * Agg.countDistinct("merchant")
 */
export const countDistinct = <const K extends string>(field: K): Aggregation<"countDistinct", K> =>
  make("countDistinct", field)

/**
 * The sum of the non-NULL values of `field`: a `number`, or an exact `BigDecimal` for decimal fields.
 *
 * @example
 * Agg.sum("amount")
 */
export const sum = <const K extends string>(field: K): Aggregation<"sum", K> => make("sum", field)

/**
 * The mean of the non-NULL values of `field`, as a `number` (decimals are summed exactly, then divided).
 *
 * @example
 * Agg.avg("amount")
 */
export const avg = <const K extends string>(field: K): Aggregation<"avg", K> => make("avg", field)

/**
 * The smallest non-NULL value of `field` (numbers, decimals, strings by code unit, timestamps, booleans).
 *
 * @example
 * Agg.min("eventTime")
 */
export const min = <const K extends string>(field: K): Aggregation<"min", K> => make("min", field)

/**
 * The largest non-NULL value of `field`.
 *
 * @example
 * Agg.max("amount")
 */
export const max = <const K extends string>(field: K): Aggregation<"max", K> => make("max", field)

/**
 * The first non-NULL value of `field`, in arrival order.
 *
 * @example
 * Agg.first("merchant")
 */
export const first = <const K extends string>(field: K): Aggregation<"first", K> => make("first", field)

/**
 * The last non-NULL value of `field`, in arrival order.
 *
 * @example
 * Agg.last("status")
 */
export const last = <const K extends string>(field: K): Aggregation<"last", K> => make("last", field)

/** Options of the approximate percentiles. */
export interface PercentileOptions {
  /** The sketch's relative accuracy α in (0, 1), default 0.01: every estimate is within ±α·|exact value|. */
  readonly relativeAccuracy?: number
}

/**
 * An approximate percentile of the non-NULL (finite number) values of `field`, from a mergeable DDSketch.
 *
 * With the group's `n` values sorted ascending, the exact answer is the value `x` at 0-based rank `⌊q·(n−1)⌋`; the
 * estimate `e` satisfies `|e − x| ≤ α·|x|` (α = `relativeAccuracy`, default 0.01), and lies within the exact minimum
 * and maximum. Memory per group is logarithmic in the range of the values, independent of their number.
 *
 * @example
 * Agg.percentile("latencyMs", 0.999, { relativeAccuracy: 0.005 })
 */
export const percentile = <const K extends string>(
  field: K,
  quantile: number,
  options?: PercentileOptions
): Aggregation<"percentile", K> => make("percentile", field, { quantile, relativeAccuracy: options?.relativeAccuracy })

/**
 * The approximate median (see `percentile`).
 *
 * @example
 * Agg.p50("latencyMs")
 */
export const p50 = <const K extends string>(field: K, options?: PercentileOptions): Aggregation<"percentile", K> =>
  percentile(field, 0.5, options)

/**
 * The approximate 95th percentile (see `percentile`).
 *
 * @example
 * Agg.p95("latencyMs")
 */
export const p95 = <const K extends string>(field: K, options?: PercentileOptions): Aggregation<"percentile", K> =>
  percentile(field, 0.95, options)

/**
 * The approximate 99th percentile (see `percentile`).
 *
 * @example
 * Agg.p99("latencyMs")
 */
export const p99 = <const K extends string>(field: K, options?: PercentileOptions): Aggregation<"percentile", K> =>
  percentile(field, 0.99, options)

interface NeedByKind {
  readonly count: unknown
  readonly countDistinct: unknown
  readonly first: unknown
  readonly last: unknown
  readonly sum: Numeric | null | undefined
  readonly avg: Numeric | null | undefined
  readonly min: Orderable | null | undefined
  readonly max: Orderable | null | undefined
  readonly percentile: number | null | undefined
}

type NeedOf<G> =
  G extends Aggregation<infer Kind, infer K>
    ? [K] extends [string]
      ? { readonly [k in K]: NeedByKind[Kind] }
      : {}
    : never

/** What the aggregate functions `F` need from a record: each field they read, with a type they accept. */
export type AggregateNeeds<F> = UnionToIntersection<NeedOf<F[keyof F]>>

type NullIf<V> = null extends V ? null : undefined extends V ? null : never

type SumOf<V> = V extends BigDecimal.BigDecimal ? BigDecimal.BigDecimal : number

/** The output type of aggregate function `G` over records of type `A`. */
export type AggregateOutput<G, A> =
  G extends Aggregation<infer Kind, infer K>
    ? Kind extends "count" | "countDistinct"
      ? number
      : K extends keyof A
        ? Kind extends "sum"
          ? SumOf<NonNullable<A[K]>> | NullIf<A[K]>
          : Kind extends "avg" | "percentile"
            ? number | NullIf<A[K]>
            : NonNullable<A[K]> | NullIf<A[K]>
        : never
    : never

/** The record `aggregate` emits: the grouping fields of `A`, then one field per aggregate function. */
export type Aggregated<A, K extends string, F> = Simplify<
  Pick<A, K & keyof A> & { readonly [f in keyof F]: AggregateOutput<F[f], A> }
>

/** An aggregate spec whose types are only known at run time (config-built pipelines). */
export interface AggregateSpec {
  readonly groupBy?: ReadonlyArray<string>
  readonly fields: Readonly<Record<string, AggSpec>>
}

/** Options of the aggregate stage. */
export interface AggregateOptions {
  /** The stage name (default `aggregate`). */
  readonly name?: string
}

/**
 * One group: the grouping values of its first record (in the order of `Aggregator.keys`) and one accumulator per
 * function. The records folded into it are not kept.
 */
interface Group {
  readonly values: Array<unknown>
  readonly accs: Array<Accumulator>
}

type Groups = Map<unknown, Group>

type Row = Record<string, unknown>

const WINDOW_FIELDS: ReadonlySet<string> = new Set(["windowStart", "windowEnd"])

/** The per-group machinery of one aggregate spec, shared by the plain and the windowed stage. */
class Aggregator {
  readonly groupBy: ReadonlyArray<string>
  readonly keys: ReadonlyArray<string>
  /** For each `groupBy` field, its place in `keys` (-1: a window bound, taken from the window). */
  readonly slots: ReadonlyArray<number>
  readonly names: ReadonlyArray<string>
  readonly specs: ReadonlyArray<AggSpec>
  readonly fields: ReadonlyArray<string | undefined>
  readonly factories: ReadonlyArray<() => Accumulator>
  readonly checked: ReadonlyArray<number>

  constructor(spec: AggregateSpec, keys: ReadonlyArray<string>) {
    this.groupBy = spec.groupBy ?? []
    this.keys = keys
    this.slots = this.groupBy.map((k) => keys.indexOf(k))
    const entries = Object.entries(spec.fields)
    this.names = entries.map(([name]) => name)
    this.specs = entries.map(([, s]) => s)
    this.fields = this.specs.map((s) => s.field)
    this.factories = this.specs.map(factory)
    this.checked = this.specs.flatMap((s, i) => (acceptsAnything(s.kind) ? [] : [i]))
  }

  invalid(record: Readonly<Record<string, unknown>>): string | undefined {
    for (let i = 0; i < this.checked.length; i++) {
      const spec = this.specs[this.checked[i]!]!
      const value = record[spec.field!]
      const want = expected(spec.kind, value)
      if (want !== undefined) return `${describeSpec(spec)}: ${spec.field}: expected ${want}, got ${show(value)}`
    }
    return undefined
  }

  /** The group key of a record: `compositeKey` of the grouping fields, read here rather than in a shared helper. */
  key(record: Readonly<Record<string, unknown>>): unknown {
    const keys = this.keys
    if (keys.length === 1) {
      const value = record[keys[0]!]
      return typeof value === "string" ? value : keyOf(value)
    }
    return keys.length === 0 ? "" : compositeKey(record, keys)
  }

  add(groups: Groups, key: unknown, record: Readonly<Record<string, unknown>>, seq: number): void {
    let group = groups.get(key)
    if (group === undefined) {
      const accs = new Array<Accumulator>(this.factories.length)
      for (let i = 0; i < accs.length; i++) accs[i] = this.factories[i]!()
      const values = new Array<unknown>(this.keys.length)
      for (let i = 0; i < values.length; i++) values[i] = record[this.keys[i]!]
      group = { values, accs }
      groups.set(key, group)
    }
    const accs = group.accs
    for (let i = 0; i < accs.length; i++) {
      const field = this.fields[i]
      accs[i]!.add(field === undefined ? undefined : record[field], seq)
    }
  }

  merge(into: Groups, from: Groups): void {
    for (const [key, group] of from) {
      const target = into.get(key)
      if (target === undefined) into.set(key, group)
      else for (let i = 0; i < target.accs.length; i++) target.accs[i]!.merge(group.accs[i]!)
    }
  }

  /** The groups as JSON: key, the group-by values, each accumulator's state. */
  save(groups: Groups): Json {
    const out: Array<Json> = []
    for (const [key, group] of groups) {
      const first: Record<string, unknown> = {}
      for (let i = 0; i < this.groupBy.length; i++) {
        const k = this.groupBy[i]!
        if (!WINDOW_FIELDS.has(k)) first[k] = this.slots[i]! < 0 ? undefined : group.values[this.slots[i]!]
      }
      out.push([encode(key), encode(first), group.accs.map((a) => a.save())])
    }
    return out
  }

  /** The groups `save` gave. */
  load(state: Json): Groups {
    const groups: Groups = new Map()
    for (const entry of state as ReadonlyArray<readonly [Json, Json, ReadonlyArray<Json>]>) {
      const [key, saved, accStates] = entry
      const accs = this.factories.map((make, i) => {
        const acc = make()
        acc.load(accStates[i]!)
        return acc
      })
      const first = decode(saved) as Readonly<Record<string, unknown>>
      groups.set(decode(key), { values: this.keys.map((k) => first[k]), accs })
    }
    return groups
  }

  rows(groups: Groups, out: Array<Row>, windowStart?: Date, windowEnd?: Date): void {
    for (const group of groups.values()) {
      const row: Row = {}
      for (let i = 0; i < this.groupBy.length; i++) {
        const k = this.groupBy[i]!
        const slot = this.slots[i]!
        row[k] =
          windowStart !== undefined && k === "windowStart"
            ? windowStart
            : windowEnd !== undefined && k === "windowEnd"
              ? windowEnd
              : slot < 0
                ? undefined
                : group.values[slot]
      }
      for (let i = 0; i < this.names.length; i++) row[this.names[i]!] = group.accs[i]!.result()
      out.push(row)
    }
  }
}

const describeAggregate = (spec: AggregateSpec): string => {
  const fields = Object.entries(spec.fields)
    .map(([name, s]) => `${describeSpec(s)} as ${name}`)
    .join(", ")
  const by = spec.groupBy ?? []
  return `aggregate ${fields}${by.length > 0 ? ` by ${by.join(", ")}` : ""}`
}

const problemOf = (spec: AggregateSpec): string | undefined => {
  const by = new Set(spec.groupBy ?? [])
  for (const [name, s] of Object.entries(spec.fields)) {
    if (by.has(name)) return `the output field ${JSON.stringify(name)} is also a grouping field; name it differently`
    const problem = checkSpec(s)
    if (problem !== undefined) return `${name}: ${problem}`
  }
  return undefined
}

const buildError = (counter: StageCounter, message: string) =>
  Stream.fail(
    new BuildError({ stage: counter.info.name, message: `${counter.info.name}: ${message}`, retryable: false })
  )

const invalidLetter = (stage: string, message: string, record: unknown): DeadLetter.DeadLetter => ({
  stage,
  reason: "invalid-value",
  message,
  record
})

/**
 * Where arrival numbers start: 0, or in a split run's part, after every arrival number the parts before it could use,
 * so that `first` and `last` merge in the order of the parts (not the order runners read them in).
 */
const partArrival = (ctx: RunContext): number =>
  ctx.combine === "partial" && ctx.split?.index !== undefined ? ctx.split.index * PART_ARRIVALS : 0

/** How many arrival numbers a split run's part may use: 2^32 records (4 billion), for up to 2^21 parts. */
const PART_ARRIVALS = 2 ** 32

const plain = <A, E, R>(spec: AggregateSpec, self: Flow<A, E, R>, options?: AggregateOptions): Flow<Row, E, R> =>
  addStage<A, Row>(
    {
      name: options?.name ?? "aggregate",
      description: describeAggregate(spec),
      cardinality: "many-to-one",
      mergeable: true
    },
    (counter, ctx) => (batches) => {
      const problem = problemOf(spec)
      if (problem !== undefined) return buildError(counter, problem)
      if (!self.bounded)
        return buildError(
          counter,
          `${self.name} never ends, so an aggregate over it would never emit: put Pipeline.window(...) right before it and group by windowStart/windowEnd${windowingOf(self)?.spec.config.kind === "session" ? " and by every session key of the window" : ""}`
        )
      return Stream.suspend(() => {
        const agg = new Aggregator(spec, spec.groupBy ?? [])
        const groups: Groups = new Map()
        const acks: Array<Held> = []
        const stage = counter.info.name
        let arrival = partArrival(ctx)
        let oldest = Number.POSITIVE_INFINITY
        // A split run's finish: the batches hold the parts' partial states (see `finish` below), merged here.
        const merging = ctx.combine === "merge"
        const step = (batch: Batch.Batch<A>): Array<Batch.Batch<Row>> => {
          const started = performance.now()
          if (merging) {
            agg.merge(groups, agg.load(batch.records as unknown as Json))
            acks.push(heldOf(batch))
            counter.stateEntries = groups.size
            counter.busy(performance.now() - started)
            return emit([], batch.deadLetters, [])
          }
          const records = batch.records
          if (records.length > 0 && batch.sourceTimestamp !== undefined && batch.sourceTimestamp < oldest)
            oldest = batch.sourceTimestamp
          const dead: Array<DeadLetter.DeadLetter> = []
          for (let i = 0; i < records.length; i++) {
            const r = records[i] as Readonly<Record<string, unknown>>
            const invalid = agg.checked.length === 0 ? undefined : agg.invalid(r)
            if (invalid !== undefined) {
              dead.push(invalidLetter(stage, invalid, r))
              continue
            }
            agg.add(groups, agg.key(r), r, arrival++)
          }
          acks.push(heldOf(batch))
          counter.stateEntries = groups.size
          counter.batches++
          counter.recordsIn += records.length
          counter.rejected += dead.length
          counter.consumed += records.length - dead.length
          counter.busy(performance.now() - started)
          return emit([], dead.length === 0 ? batch.deadLetters : batch.deadLetters.concat(dead), [])
        }
        const finish = (): Array<Batch.Batch<Row>> => {
          const started = performance.now()
          const out: Array<Row> = []
          // A split run's part: its partial state (one JSON entry per group), for the finish to merge.
          if (ctx.combine === "partial") for (const entry of agg.save(groups) as ReadonlyArray<Row>) out.push(entry)
          else agg.rows(groups, out)
          counter.stateEntries = 0
          counter.recordsOut += out.length
          counter.busy(performance.now() - started)
          return stamped(emit(out, [], acks), oldest)
        }
        return stepped(batches, counter, step, finish)
      })
    }
  )(self)

/**
 * An aggregate right after a window, run as one operator with it (each window keeps one accumulator per group instead
 * of its records). Both stages keep their own counts: the window counts the records it assigned, filtered as late or
 * rejected (time and lateness problems are the window's dead letters); the aggregate counts what it combined.
 */
const windowed = <X, A, E, R>(
  spec: AggregateSpec,
  window: WindowSpec,
  self: Flow<X, E, R>,
  input: Flow<A, E, R>,
  options?: AggregateOptions
): Flow<Row, E, R> => {
  const config: WindowConfig = window.config
  const groupBy = spec.groupBy ?? []
  return addFusedStage<A, Row>(
    {
      name: options?.name ?? "aggregate",
      description: `${describeAggregate(spec)} per window`,
      cardinality: "many-to-one",
      stateful: true,
      mergeable: true
    },
    ({ previous: windowCounter, own: counter }, ctx) =>
      (batches) => {
        const problem = problemOf(spec)
        if (problem !== undefined) return buildError(counter, problem)
        const processing = config.watermark === "processing-time"
        // One loop per source part when the run keeps state per part (see `Steps.partitioned`).
        const makeLoop = (loopCtx: RunContext): Loop<A, Row> | string => {
          const agg = new Aggregator(
            spec,
            groupBy.filter((k) => !WINDOW_FIELDS.has(k))
          )
          const windows = new Windows<Groups>(
            config,
            () => new Map(),
            (into, from) => {
              const before = into.size + from.size
              agg.merge(into, from)
              counter.stateEntries -= before - into.size
            }
          )
          const stage = counter.info.name
          const windowStage = windowCounter.info.name
          // A split run's part: closed windows give their partial states (see `partialEntries`), not their rows.
          const partial = ctx.combine === "partial"
          let seq = 0
          let arrival = partArrival(ctx)
          // With checkpoints, acks wait for the next one (the windows' state then covers their records).
          const checkpointed = loopCtx.barriers !== undefined
          const fingerprint = `${describeConfig(config)}; ${describeAggregate(spec)}`
          const restored = restoredState(loopCtx, stage, fingerprint)
          if (typeof restored === "string") return restored
          if (restored !== undefined) {
            const state = restored as { readonly windows: WindowsState; readonly arrival: number }
            windows.load(state.windows, (json) => agg.load(json))
            arrival = state.arrival
            windows.forEachOpen((pane) => {
              counter.stateEntries += pane.content.size
            })
            windowCounter.openWindows = windows.openCount
          }
          const checkpointing: Checkpointing = {
            snapshot: () => ({
              fingerprint,
              arrival,
              windows: windows.save((groups) => agg.save(groups))
            }),
            release: () => windows.acks.releaseAll()
          }
          const flush = (panes: ReturnType<typeof windows.closeReady>): Array<Row> => {
            const out: Array<Row> = []
            for (const pane of panes) {
              counter.stateEntries -= pane.content.size
              if (partial) partialEntries(agg, pane, out)
              else agg.rows(pane.content, out, new Date(pane.start), new Date(pane.end))
            }
            return out
          }
          const env: WindowedEnv = { agg, windows, config, processing, stage, windowStage }
          const tally = new Tally()
          const step = (batch: Batch.Batch<A>, now: number): Array<Batch.Batch<Row>> => {
            const started = performance.now()
            const records = batch.records
            const dead: Array<DeadLetter.DeadLetter> = []
            seq++
            windows.begin(batch, now)
            tally.reset()
            arrival = foldWindowed(records, now, seq, arrival, env, dead, tally)
            const { windowRejected, windowFiltered, assigned, invalid: invalidCount } = tally
            counter.stateEntries += tally.entries
            windows.end(batch)
            windows.acks.hold(seq, batch)
            const panes = windows.closeReady()
            const out = flush(panes)
            const passed = records.length - windowRejected - windowFiltered
            windowCounter.openWindows = windows.openCount
            windowCounter.batches++
            windowCounter.recordsIn += records.length
            windowCounter.rejected += windowRejected
            windowCounter.filtered += windowFiltered
            windowCounter.consumed += passed
            // An invalid record reaches the aggregate once; an assigned one once per window it fell into.
            windowCounter.recordsOut += assigned + invalidCount
            counter.batches++
            counter.recordsIn += assigned + invalidCount
            counter.consumed += assigned
            counter.recordsOut += out.length
            counter.rejected += invalidCount
            counter.busy(performance.now() - started)
            return stamped(
              emit(
                out,
                dead.length === 0 ? batch.deadLetters : batch.deadLetters.concat(dead),
                checkpointed ? [] : windows.acks.release()
              ),
              oldestOf(panes)
            )
          }
          const tick = (now: number): Array<Batch.Batch<Row>> => {
            windows.tick(now)
            const panes = windows.closeReady()
            if (panes.length === 0) return []
            const out = flush(panes)
            windowCounter.openWindows = windows.openCount
            counter.recordsOut += out.length
            return stamped(emit(out, [], checkpointed ? [] : windows.acks.release()), oldestOf(panes))
          }
          const finish = (): Array<Batch.Batch<Row>> => {
            // A checkpointed stream that stops keeps its open windows in the state it saved, for the next run.
            if (checkpointed) return []
            const panes = windows.closeAll()
            const out = flush(panes)
            windowCounter.openWindows = windows.openCount
            counter.recordsOut += out.length
            return stamped(emit(out, [], windows.acks.releaseAll()), oldestOf(panes))
          }
          return { step, tick, finish, ...(checkpointed ? { checkpointing } : {}) }
        }
        // A split run's finish: the batches hold the parts' partial windows, merged here.
        if (ctx.combine === "merge") return Stream.suspend(() => mergePartials(spec, config, counter, batches))
        return Stream.suspend(() => {
          const loop = partitioned(ctx, makeLoop)
          if (typeof loop === "string") return buildError(counter, loop)
          const tick = loop.tick
          return stepped(
            batches,
            counter,
            loop.step,
            loop.finish,
            loop.checkpointing,
            processing && tick !== undefined ? { everyMs: tickMillis(config), run: tick } : undefined,
            loop.failure
          )
        })
      }
  )(self, input)
}

/** What a windowed aggregate's per-record loop needs. */
interface WindowedEnv {
  readonly agg: Aggregator
  readonly windows: Windows<Groups>
  readonly config: WindowConfig
  readonly processing: boolean
  readonly stage: string
  readonly windowStage: string
}

/** What one batch's records did in a windowed aggregate (see {@link foldWindowed}). */
class Tally {
  windowRejected = 0
  windowFiltered = 0
  assigned = 0
  invalid = 0
  /** Groups created. */
  entries = 0
  reset(): void {
    this.windowRejected = 0
    this.windowFiltered = 0
    this.assigned = 0
    this.invalid = 0
    this.entries = 0
  }
}

/**
 * Folds one batch's records into the groups of their windows (late, timeless and invalid ones to `dead`), counting in
 * `tally`; returns the next arrival number. A function of its own, with nothing after its loop, so that it is
 * optimized once for every batch (in the stage's closure, code after the loop optimized mid-loop on the first batch
 * lacked type feedback and fell back to the interpreter on every batch).
 */
const foldWindowed = (
  records: ReadonlyArray<unknown>,
  now: number,
  seq: number,
  arrival: number,
  env: WindowedEnv,
  dead: Array<DeadLetter.DeadLetter>,
  tally: Tally
): number => {
  const { agg, windows, config, processing } = env
  const time = config.time
  const by = config.by
  const checked = agg.checked.length > 0
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as Readonly<Record<string, unknown>>
    const value = processing ? now : r[time]
    const t = timeOf(value)
    if (t === undefined) {
      dead.push(timeLetter(env.windowStage, config, value, r))
      tally.windowRejected++
      continue
    }
    if (windows.isLate(t)) {
      if (config.onLate === "drop") tally.windowFiltered++
      else {
        dead.push(lateLetter(env.windowStage, config, windows, t, r))
        tally.windowRejected++
      }
      continue
    }
    const invalid = checked ? agg.invalid(r) : undefined
    if (invalid !== undefined) {
      // The window passed it on (it is on time); the aggregate rejects it.
      dead.push(invalidLetter(env.stage, invalid, r))
      tally.invalid++
      continue
    }
    const n = windows.assign(t, by.length === 0 ? "" : compositeKey(r, by), seq)
    if (n === 0) {
      tally.windowFiltered++
      continue
    }
    tally.assigned += n
    const key = agg.key(r)
    const a = arrival++
    for (let j = 0; j < n; j++) {
      const content = windows.hits[j]!.content
      const before = content.size
      agg.add(content, key, r, a)
      tally.entries += content.size - before
    }
  }
  return arrival
}

/**
 * A split run's partial state of one closed window: one entry per group, `[start, end, largest event time, session
 * key, group]` (the group as `Aggregator.save` gives it).
 */
type PartialEntry = readonly [number, number, number, Json, Json]

const partialEntries = (agg: Aggregator, pane: Pane<Groups>, out: Array<Row>): void => {
  const key = encode(pane.key)
  for (const group of agg.save(pane.content) as ReadonlyArray<Json>)
    out.push([pane.start, pane.end, pane.maxTime, key, group] as unknown as Row)
}

/** A window of a split run's finish: the parts' partial states of it, merged. */
interface Merged {
  start: number
  end: number
  maxTime: number
  readonly key: unknown
  readonly groups: Groups
}

/**
 * A split run's finish of a windowed aggregate: merges the parts' partial windows and emits each window's groups at the
 * end. Tumbling and sliding windows merge by start. A session is made of every part's sessions of its key that
 * overlap, as one process makes it of their records: the parts judged lateness on their own, as one process does (see
 * `Watermark.isLate`), so the records they kept are the ones one process keeps, and sessions that share no record
 * closer than the gap stay apart.
 */
const mergePartials = <A, R>(
  spec: AggregateSpec,
  config: WindowConfig,
  counter: StageCounter,
  batches: Stream.Stream<Batch.Batch<A>, PipelineError, R>
): Stream.Stream<Batch.Batch<Row>, PipelineError, R> => {
  const groupBy = spec.groupBy ?? []
  const agg = new Aggregator(
    spec,
    groupBy.filter((k) => !WINDOW_FIELDS.has(k))
  )
  const session = config.kind === "session"
  const windows = new Map<string, Merged>()
  const acks: Array<Held> = []
  const step = (batch: Batch.Batch<A>): Array<Batch.Batch<Row>> => {
    const started = performance.now()
    for (const record of batch.records) {
      const [start, end, maxTime, key, group] = record as unknown as PartialEntry
      const id = session ? JSON.stringify([key, start, end]) : String(start)
      let window = windows.get(id)
      if (window === undefined) {
        window = { start, end, maxTime, key: decode(key), groups: new Map() }
        windows.set(id, window)
      }
      const before = window.groups.size
      agg.merge(window.groups, agg.load([group]))
      counter.stateEntries += window.groups.size - before
    }
    acks.push(heldOf(batch))
    counter.busy(performance.now() - started)
    return emit([], batch.deadLetters, [])
  }
  const finish = (): Array<Batch.Batch<Row>> => {
    const started = performance.now()
    const merged = session ? mergeSessions(agg, windows.values(), config.gapMs) : Array.from(windows.values())
    merged.sort((a, b) => a.end - b.end || a.start - b.start)
    const out: Array<Row> = []
    for (const window of merged) agg.rows(window.groups, out, new Date(window.start), new Date(window.end))
    counter.stateEntries = 0
    counter.recordsOut += out.length
    counter.busy(performance.now() - started)
    return emit(out, [], acks)
  }
  return stepped(batches, counter, step, finish)
}

/**
 * The sessions of every key, each made of the parts' sessions that overlap: sorted by start, a session joins the one
 * before it when it starts before that one ends (their records are then less than the gap apart).
 */
const mergeSessions = (agg: Aggregator, partials: Iterable<Merged>, gapMs: number): Array<Merged> => {
  const byKey = new Map<string, Array<Merged>>()
  for (const window of partials) {
    const key = JSON.stringify(encode(window.key))
    const list = byKey.get(key)
    if (list === undefined) byKey.set(key, [window])
    else list.push(window)
  }
  const out: Array<Merged> = []
  for (const list of byKey.values()) {
    list.sort((a, b) => a.start - b.start || a.end - b.end)
    let current = list[0]!
    for (let i = 1; i < list.length; i++) {
      const next = list[i]!
      if (next.start < current.end) {
        agg.merge(current.groups, next.groups)
        if (next.maxTime > current.maxTime) current.maxTime = next.maxTime
        current.end = current.maxTime + gapMs
      } else {
        out.push(current)
        current = next
      }
    }
    out.push(current)
  }
  return out
}

/**
 * True when an aggregate right after this window can run as one stage with it: it groups by the window, and (for
 * sessions) by every session key, so that no two windows' groups ever share an output row.
 */
const fusable = (config: WindowConfig, groupBy: ReadonlyArray<string>): boolean =>
  groupBy.some((k) => WINDOW_FIELDS.has(k)) &&
  (config.kind !== "session" || config.by.every((k) => groupBy.includes(k)))

/**
 * The aggregate stage on records whose type is only known at run time (config-built pipelines). `aggregate` is the
 * typed form of the same stage.
 */
export const dynamic =
  (spec: AggregateSpec, options?: AggregateOptions) =>
  <A, E, R>(self: Flow<A, E, R>): Flow<Readonly<Record<string, unknown>>, E, R> => {
    const windowing = windowingOf(self)
    if (windowing !== undefined && fusable(windowing.spec.config, spec.groupBy ?? []))
      return windowed(spec, windowing.spec, self, windowing.input, options)
    return plain(spec, self, options)
  }

/**
 * Groups records by the `groupBy` fields and computes the `fields` aggregates per group; the output type is inferred
 * from the spec. An aggregate field may not be named like a grouping field.
 *
 * Over a bounded flow, the groups are emitted when the input ends (in order of first appearance). Right after
 * `window`, with `windowStart`/`windowEnd` among the grouping fields, each window's groups are emitted as soon as the
 * watermark closes the window. Input acknowledgements are held until every output depending on them is emitted.
 *
 * @example
 * Pipeline.aggregate({ groupBy: ["userId"], fields: { total: Agg.sum("amount"), count: Agg.count() } })
 * // Flow<{ userId: string; total: number; count: number }>
 */
export const aggregate =
  <const K extends string = never, const F extends Readonly<Record<string, Aggregation>> = {}>(
    spec: { readonly groupBy?: ReadonlyArray<K>; readonly fields: F & { readonly [k in NoInfer<K>]?: never } },
    options?: AggregateOptions
  ) =>
  <A extends { readonly [k in K]: unknown } & AggregateNeeds<F>, E, R>(
    self: Flow<A, E, R>
  ): Flow<Aggregated<A, K, F>, E, R> =>
    dynamic(spec as AggregateSpec, options)(self) as unknown as Flow<Aggregated<A, K, F>, E, R>
