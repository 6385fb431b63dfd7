/**
 * Lookup joins: each record of the flow is joined with the rows of another source (a table, a file, a topic read to
 * its end) that is loaded once into a hash table — a broadcast join, for the common case of a large flow and a small
 * dimension.
 *
 * ```ts
 * Pipeline.from(transactions).pipe(
 *   Pipeline.join(users, { on: { userId: "id" }, type: "left", rename: { name: "userName" } })
 * ) // Flow<Transaction & { userName: string | null; country: string | null }>
 * ```
 *
 * Semantics are SQL's `JOIN ... USING`: a NULL key matches nothing; the key fields appear once, under the flow's
 * names (for rows only the joined side has, with the joined side's values); `left`/`right`/`full` fill the missing
 * side with `null`. Other fields present on both sides do not compile: take them out with `select` or rename them
 * with `rename` (records typed only at run time fail the run with the same advice). The joined side may hold at most
 * `maxRows` rows (default 1,000,000): loading stops with a clear error past that instead of running out of memory.
 *
 * The joined source's services join the pipeline's. Its acknowledgements are not run (a lookup table is read again
 * on every run and refresh), and the rows it rejects are passed on as dead letters with the first batch after a load.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Batch from "../core/Batch.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { BuildError, ExtractError, type PipelineError, TransformError, wrap } from "../core/Errors.ts"
import { addStage, type Flow } from "../core/Flow.ts"
import type { Source } from "../core/Source.ts"
import * as Spans from "../core/Spans.ts"
import type { RunContext, StageCounter } from "../core/Stage.ts"
import { emit, type Held, heldOf } from "./internal/Acks.ts"
import { anyNullish, compositeKey, isNullish, keyOf } from "./internal/Values.ts"

type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** The kinds of join: like SQL's `INNER`, `LEFT OUTER`, `RIGHT OUTER` and `FULL OUTER`. */
export type JoinType = "inner" | "left" | "right" | "full"

/** Join keys: one field with the same name on both sides, several, or a map from the flow's fields to the joined side's. */
export type JoinOn = string | ReadonlyArray<string> | Readonly<Record<string, string>>

/** The flow's key fields of a join. */
export type LeftKeys<On> = On extends string
  ? On
  : On extends ReadonlyArray<infer K extends string>
    ? K
    : keyof On & string

/** The joined side's key fields of a join. */
export type RightKeys<On> = On extends string
  ? On
  : On extends ReadonlyArray<infer K extends string>
    ? K
    : On[keyof On] & string

type RightKeyOf<On, L> = On extends string | ReadonlyArray<string> ? L : L extends keyof On ? On[L] : never

/** The fields the joined side contributes: the selected ones except its keys, renamed. */
export type RightPart<B, On, S extends keyof B, Rn> = {
  readonly [k in Exclude<S, RightKeys<On>> as k extends keyof Rn ? Rn[k] & string : k]: B[k]
}

type Nullable<T> = { [k in keyof T]: T[k] | null }

type KeyPart<A, B, On> = { readonly [k in LeftKeys<On> & keyof A]: A[k] | B[RightKeyOf<On, k> & keyof B] }

/** The record a join emits. */
export type Joined<A, B, On, T extends JoinType, S extends keyof B, Rn> = Simplify<
  T extends "inner"
    ? A & RightPart<B, On, S, Rn>
    : T extends "left"
      ? A & Nullable<RightPart<B, On, S, Rn>>
      : T extends "right"
        ? Nullable<Omit<A, LeftKeys<On>>> & KeyPart<A, B, On> & RightPart<B, On, S, Rn>
        : Nullable<Omit<A, LeftKeys<On>>> & KeyPart<A, B, On> & Nullable<RightPart<B, On, S, Rn>>
>

/** Options of a join. */
export interface JoinOptions<
  On extends JoinOn,
  T extends JoinType,
  S extends string,
  Rn extends Readonly<Record<string, string>>
> {
  /** The key fields: `"userId"`, `["tenant", "userId"]`, or `{ userId: "id" }` (flow field → joined field). */
  readonly on: On
  /** `inner` (default), `left`, `right` or `full`. */
  readonly type?: T
  /** The joined side's fields to take (default: all of them); its key fields are never repeated. */
  readonly select?: ReadonlyArray<S>
  /** New names for fields of the joined side, to resolve name clashes: `{ name: "userName" }`. */
  readonly rename?: Rn
  /** The most rows the joined side may have (default 1,000,000); loading more fails the run. */
  readonly maxRows?: number
  /**
   * Reloads the joined side when this much time has passed since the last load, before the next batch (inner and
   * left joins only: right and full joins emit the unmatched rows of one table at the end of the input).
   */
  readonly refresh?: T extends "inner" | "left" ? Duration.Input : never
  /** The stage name (default `join`). */
  readonly name?: string
}

/** A join spec whose types are only known at run time (config-built pipelines). */
export interface JoinSpec {
  readonly on: JoinOn
  readonly type?: JoinType
  readonly select?: ReadonlyArray<string>
  readonly rename?: Readonly<Record<string, string>>
  readonly maxRows?: number
  readonly refresh?: Duration.Input
  readonly name?: string
}

/** The default limit on the rows of the joined side. */
export const DEFAULT_MAX_ROWS = 1_000_000

type Row = Record<string, unknown>

/** The flow's key fields and the joined side's, in the same order. */
export const keysOf = (on: JoinOn): { readonly left: ReadonlyArray<string>; readonly right: ReadonlyArray<string> } => {
  if (typeof on === "string") return { left: [on], right: [on] }
  if (Array.isArray(on)) return { left: on as ReadonlyArray<string>, right: on as ReadonlyArray<string> }
  const entries = Object.entries(on as Readonly<Record<string, string>>)
  return { left: entries.map(([l]) => l), right: entries.map(([, r]) => r) }
}

/** The joined side, loaded. */
interface Table {
  /**
   * Key → the row with that key (its index, ≥ 0), or the rows with that key (`-1 - i`: they are `multi[i]`); rows with a
   * NULL key are not indexed. Keys with one row, the common case, cost no array.
   */
  readonly index: Map<unknown, number>
  /** The rows of the keys that several rows have (see `index`). */
  readonly multi: Array<Array<number>>
  /** The joined side's records, as read: right and full joins only (the others need only `parts`). */
  readonly rows: Array<Readonly<Record<string, unknown>>>
  /** What each row contributes to an output record: its selected, renamed fields. */
  readonly parts: Array<Row>
  /** Which rows matched at least one record (right and full joins). */
  readonly matched: Uint8Array | undefined
  /** Every output field the joined side contributes, each set to null (for records without a match). */
  readonly nullPart: Row
  readonly deadLetters: ReadonlyArray<DeadLetter.DeadLetter>
}

const plural = (n: number, what: string) => `${n.toLocaleString("en-US")} ${what}${n === 1 ? "" : "s"}`

/**
 * The join stage on records whose types are only known at run time (config-built pipelines). `join` is the typed
 * form of the same stage.
 */
export const dynamic =
  <B, E2, R2>(other: Source<B, E2, R2>, spec: JoinSpec) =>
  <A, E, R>(self: Flow<A, E, R>): Flow<Readonly<Record<string, unknown>>, E | E2, R | R2> => {
    const type = spec.type ?? "inner"
    const keys = keysOf(spec.on)
    const maxRows = spec.maxRows ?? DEFAULT_MAX_ROWS
    const refreshMs =
      spec.refresh === undefined
        ? undefined
        : (() => {
            const d = Duration.fromInput(spec.refresh)
            return d._tag === "Some" ? Duration.toMillis(d.value) : Number.NaN
          })()
    const on =
      typeof spec.on === "string" || Array.isArray(spec.on)
        ? keys.left.join(", ")
        : keys.left.map((l, i) => `${l} = ${other.name}.${keys.right[i]}`).join(", ")
    const description = `${type} join with ${other.name} on ${on}${refreshMs === undefined ? "" : `, refreshed every ${Duration.format(Duration.millis(Number.isFinite(refreshMs) ? refreshMs : 0))}`}`
    return addStage<A, Row, R2>(
      {
        name: spec.name ?? "join",
        description,
        cardinality: "one-to-many",
        // The unmatched rows of the joined side are known only once the whole input was joined.
        ...(type === "right" || type === "full" ? { needsWholeInput: true } : {})
      },
      (counter, ctx) => (batches) => {
        const problem = checkSpec(spec, type, keys, maxRows, refreshMs)
        if (problem !== undefined)
          return Stream.fail(
            new BuildError({ stage: counter.info.name, message: `${counter.info.name}: ${problem}`, retryable: false })
          )
        if (!other.bounded)
          return Stream.fail(
            new BuildError({
              stage: counter.info.name,
              message: `${counter.info.name}: ${other.name} never ends, so it cannot be loaded into a lookup table; join with a bounded source (a table, a file, a topic read to its end)`,
              retryable: false
            })
          )
        if (!self.bounded && (type === "right" || type === "full"))
          return Stream.fail(
            new BuildError({
              stage: counter.info.name,
              message: `${counter.info.name}: a ${type} join emits the unmatched rows of ${other.name} when the input ends, but ${self.name} never ends; use an inner or left join`,
              retryable: false
            })
          )
        const loaded = load(other, spec, keys, type, maxRows, counter, ctx)
        return Stream.unwrap(
          Effect.gen(function* () {
            // The parts of a split run that one process reads share one load of the joined side.
            const cache = ctx.split?.run === undefined ? undefined : yield* LookupCache
            const initial =
              cache === undefined ? yield* loaded : yield* cache.get(`${ctx.split!.run}/${counter.info.name}`, loaded)
            return joinStream(batches, initial, { other, spec, keys, type, maxRows, refreshMs, counter, ctx })
          })
        )
      }
    )(self)
  }

/** Loads of joined sides shared by the parts of a split run read in one process (see {@link makeLookupCache}). */
export interface LookupCacheShape {
  /** The value under `key`, loaded by `load` the first time (a failed load is not kept). */
  readonly get: <A, E, R>(key: string, load: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * The lookup cache of this process (none by default): a cluster runner sets one, so that a broadcast join loads its
 * joined side once per run on each runner, not once per part.
 */
export const LookupCache = Context.Reference<LookupCacheShape | undefined>("effect-etl/transforms/Join/LookupCache", {
  defaultValue: () => undefined
})

/** A lookup cache that keeps the `keep` latest loads (each one a joined side held in memory). */
export const makeLookupCache = (keep: number): LookupCacheShape => {
  const entries = new Map<string, Deferred.Deferred<unknown, unknown>>()
  return {
    get: <A, E, R>(key: string, load: Effect.Effect<A, E, R>) =>
      Effect.suspend((): Effect.Effect<A, E, R> => {
        const found = entries.get(key)
        if (found !== undefined) return Deferred.await(found) as Effect.Effect<A, E>
        const deferred = Deferred.makeUnsafe<unknown, unknown>()
        entries.set(key, deferred)
        for (const old of entries.keys()) {
          if (entries.size <= keep) break
          entries.delete(old)
        }
        return load.pipe(
          Effect.onExit((exit) => {
            if (exit._tag === "Failure" && entries.get(key) === deferred) entries.delete(key)
            return Deferred.done(deferred, exit)
          })
        )
      })
  }
}

const checkSpec = (
  spec: JoinSpec,
  type: JoinType,
  keys: ReturnType<typeof keysOf>,
  maxRows: number,
  refreshMs: number | undefined
): string | undefined => {
  if (keys.left.length === 0) return "a join needs at least one key field (on)"
  if (!(Number.isSafeInteger(maxRows) && maxRows >= 0)) return `maxRows must be a whole number, got ${maxRows}`
  if (refreshMs !== undefined) {
    if (type === "right" || type === "full")
      return `refresh works with inner and left joins only: a ${type} join emits the unmatched rows of one table at the end`
    if (!(refreshMs > 0)) return "refresh must be a positive duration"
  }
  if (spec.rename !== undefined)
    for (const [from, to] of Object.entries(spec.rename))
      if (keys.right.includes(from))
        return `${JSON.stringify(from)} is a key field of the joined side and is not repeated in the output; do not rename it (renamed to ${JSON.stringify(to)})`
  return undefined
}

const load = <B, E2, R2>(
  other: Source<B, E2, R2>,
  spec: JoinSpec,
  keys: ReturnType<typeof keysOf>,
  type: JoinType,
  maxRows: number,
  counter: StageCounter,
  ctx: RunContext
): Effect.Effect<Table, PipelineError, R2> =>
  Effect.suspend(() => {
    const stage = counter.info.name
    const rightKeys = new Set(keys.right)
    const rename = spec.rename ?? {}
    const selected = spec.select?.filter((f) => !rightKeys.has(f))
    const index = new Map<unknown, number>()
    const multi: Array<Array<number>> = []
    const keepRows = type === "right" || type === "full"
    const rows: Array<Readonly<Record<string, unknown>>> = []
    const parts: Array<Row> = []
    const fields = new Set<string>(selected?.map((f) => rename[f] ?? f))
    const deadLetters: Array<DeadLetter.DeadLetter> = []
    const tooMany = new TransformError({
      stage,
      message: `${stage}: ${other.name} has more than ${plural(maxRows, "row")}, the limit of a lookup join (maxRows); raise maxRows if it fits in memory, filter the joined source, or join inside the database`,
      retryable: false
    })
    return other.batches(ctx).pipe(
      Stream.mapError(wrap(ExtractError, other.name)),
      Stream.runForEach((batch) => {
        for (const dl of batch.deadLetters) deadLetters.push(dl)
        const records = batch.records
        if (parts.length + records.length > maxRows) return Effect.fail(tooMany)
        for (let i = 0; i < records.length; i++) {
          const r = records[i] as Readonly<Record<string, unknown>>
          const part: Row = {}
          if (selected !== undefined) for (const f of selected) part[rename[f] ?? f] = r[f]
          else
            for (const f in r) {
              if (rightKeys.has(f)) continue
              const name = rename[f] ?? f
              part[name] = r[f]
              fields.add(name)
            }
          const n = parts.length
          if (keepRows) rows.push(r)
          parts.push(part)
          if (anyNullish(r, keys.right)) continue
          const key = compositeKey(r, keys.right)
          const hit = index.get(key)
          if (hit === undefined) index.set(key, n)
          else if (hit >= 0) {
            index.set(key, -1 - multi.length)
            multi.push([hit, n])
          } else multi[-1 - hit]!.push(n)
        }
        return Effect.void
      }),
      Effect.map((): Table => {
        const nullPart: Row = {}
        for (const f of fields) nullPart[f] = null
        return {
          index,
          multi,
          rows,
          parts,
          matched: keepRows ? new Uint8Array(parts.length) : undefined,
          nullPart,
          deadLetters
        }
      })
    )
  })

/**
 * Joins one batch's records with the table into `out`, and returns how many found no match and were left out (inner
 * and right joins). A function of its own, so that its loop is optimized once for every batch.
 */
const joinRecords = (
  records: ReadonlyArray<Readonly<Record<string, unknown>>>,
  leftKeys: ReadonlyArray<string>,
  table: Table,
  keepUnmatched: boolean,
  out: Array<Row>
): number => {
  const { index, multi, parts, matched, nullPart } = table
  // One key field (the common case): its value read here and used as it is when a string, its own key.
  const single = leftKeys.length === 1 ? leftKeys[0]! : undefined
  let unmatched = 0
  for (let i = 0; i < records.length; i++) {
    const left = records[i]!
    let hit: number | undefined
    if (single !== undefined) {
      const value = left[single]
      hit = isNullish(value) ? undefined : index.get(typeof value === "string" ? value : keyOf(value))
    } else hit = anyNullish(left, leftKeys) ? undefined : index.get(compositeKey(left, leftKeys))
    if (hit === undefined) {
      if (keepUnmatched) out.push({ ...left, ...nullPart })
      else unmatched++
    } else if (hit >= 0) {
      if (matched !== undefined) matched[hit] = 1
      out.push({ ...left, ...parts[hit] })
    } else {
      const hits = multi[-1 - hit]!
      for (let j = 0; j < hits.length; j++) {
        const h = hits[j]!
        if (matched !== undefined) matched[h] = 1
        out.push({ ...left, ...parts[h] })
      }
    }
  }
  return unmatched
}

interface JoinContext<B, E2, R2> {
  readonly other: Source<B, E2, R2>
  readonly spec: JoinSpec
  readonly keys: ReturnType<typeof keysOf>
  readonly type: JoinType
  readonly maxRows: number
  readonly refreshMs: number | undefined
  readonly counter: StageCounter
  readonly ctx: RunContext
}

const joinStream = <A, B, E2, R2, R>(
  batches: Stream.Stream<Batch.Batch<A>, PipelineError, R>,
  initial: Table,
  jc: JoinContext<B, E2, R2>
): Stream.Stream<Batch.Batch<Row>, PipelineError, R | R2> => {
  const { counter, ctx, keys, type } = jc
  const stage = counter.info.name
  const leftKeys = keys.left
  const keepUnmatched = type === "left" || type === "full"
  const holdAcks = type === "right" || type === "full"
  const held: Array<Held> = []
  const leftFields: Array<string> = []
  const seenLeft = new Set<string>()
  let table = initial
  // The lookup side's rows are the join's state.
  counter.stateEntries = table.parts.length
  let loadedAt = ctx.now()
  // The joined side's rejected rows go on once per run: with the first batch, of the first part of a split run.
  let pendingDead: ReadonlyArray<DeadLetter.DeadLetter> = ctx.split?.first === false ? [] : table.deadLetters

  const clash = (sample: Readonly<Record<string, unknown>>): PipelineError | undefined => {
    for (const f in sample) {
      if (!seenLeft.has(f)) {
        seenLeft.add(f)
        leftFields.push(f)
      }
      if (f in table.nullPart)
        return new TransformError({
          stage,
          message: `${stage}: both sides have a field named ${JSON.stringify(f)}; rename it on the joined side (rename: { ${JSON.stringify(f)}: "..." }) or leave it out (select)`,
          retryable: false
        })
    }
    return undefined
  }

  const step = (batch: Batch.Batch<A>): Effect.Effect<Array<Batch.Batch<Row>>, PipelineError> => {
    const started = performance.now()
    const records = batch.records as ReadonlyArray<Readonly<Record<string, unknown>>>
    if (records.length > 0) {
      const problem = clash(records[0]!)
      if (problem !== undefined) return Effect.fail(problem)
    }
    const out: Array<Row> = []
    const unmatched = joinRecords(records, leftKeys, table, keepUnmatched, out)
    counter.batches++
    counter.recordsIn += records.length
    counter.recordsOut += out.length
    counter.filtered += unmatched
    counter.consumed += records.length - unmatched
    counter.busy(performance.now() - started)
    const dead = pendingDead.length === 0 ? batch.deadLetters : batch.deadLetters.concat(pendingDead)
    pendingDead = []
    if (holdAcks) {
      held.push(heldOf(batch))
      return Effect.succeed(emit(out, dead, [], batch.part))
    }
    return Effect.succeed(emit(out, dead, [batch], batch.part))
  }

  const finish = (): Array<Batch.Batch<Row>> => {
    const out: Array<Row> = []
    const { rows, parts, matched } = table
    if (matched !== undefined) {
      const leftKeyOf = new Map(leftKeys.map((k, i) => [k, keys.right[i]!] as const))
      for (let h = 0; h < rows.length; h++) {
        if (matched[h] === 1) continue
        const row: Row = {}
        for (const k of leftKeys) row[k] = rows[h]![leftKeyOf.get(k)!]
        for (const f of leftFields) if (!leftKeyOf.has(f)) row[f] = null
        out.push(Object.assign(row, parts[h]))
      }
    }
    counter.recordsOut += out.length
    return emit(out, pendingDead, held)
  }

  const refreshMs = jc.refreshMs
  const stepOrReload =
    refreshMs === undefined
      ? step
      : (batch: Batch.Batch<A>) =>
          ctx.now() - loadedAt < refreshMs
            ? step(batch)
            : Effect.flatMap(load(jc.other, jc.spec, keys, type, jc.maxRows, counter, ctx), (fresh) => {
                table = fresh
                counter.stateEntries = fresh.parts.length
                loadedAt = ctx.now()
                pendingDead = fresh.deadLetters
                return step(batch)
              })

  return batches.pipe(
    Stream.mapEffect((batch) =>
      // A checkpoint barrier passes on: the lookup side is loaded again by a new run, and a right or full join keeps
      // its held acks (what they cover is read again after a restart).
      batch.barrier !== undefined
        ? Effect.succeed([batch as unknown as Batch.Batch<Row>])
        : Spans.sampled(
            counter,
            Effect.suspend(() => stepOrReload(batch)),
            "stage.batch",
            batch.records.length
          )
    ),
    Stream.flattenIterable,
    Stream.concat(Stream.suspend(() => Stream.fromIterable(finish())))
  )
}

/** The type a clashing field is asked to have, so that the compiler's message says what is wrong. */
export interface NameClash {
  readonly "name clash with the joined side": "leave the field out of the joined side (select) or rename it (rename)"
}

/**
 * What a join needs from the flow's records: its key fields, and no field named like one the joined side contributes.
 * It is one object type, so that TypeScript's weak-type check does not reject records that have none of those names.
 * A clash asks for the `NameClash` object type: `never` or a string literal there would make TypeScript reduce the
 * output type (the records intersected with the joined fields) to `never`.
 */
export type JoinNeeds<On, P> = Simplify<
  { readonly [k in LeftKeys<On>]: k extends keyof P ? NameClash : unknown } & {
    readonly [k in Exclude<keyof P, LeftKeys<On>>]?: NameClash
  }
>

/**
 * Joins each record with the rows of `other` whose key fields equal its own (SQL `JOIN ... USING`). `other` is read
 * to its end into a hash table when the run starts (and again every `refresh`, if set), so it must be bounded and
 * fit in memory (`maxRows`). The output type merges both records; fields both sides have must be left out (`select`)
 * or renamed (`rename`), or the join does not compile.
 *
 * Inner and left joins pass each batch's acknowledgement on with its output. Right and full joins emit the rows of
 * `other` that matched nothing when the input ends, and hold every acknowledgement until then.
 *
 * @example
 * Pipeline.join(users, { on: { userId: "id" }, type: "left", select: ["name", "country"] })
 */
export const join =
  <
    B,
    E2,
    R2,
    const On extends JoinOn,
    const T extends JoinType = "inner",
    const S extends keyof B & string = keyof B & string,
    const Rn extends { readonly [k in keyof B]?: string } = {}
  >(
    other: Source<B, E2, R2> & Source<{ readonly [k in RightKeys<On>]: unknown }, E2, R2>,
    options: JoinOptions<On, T, S, Rn & Readonly<Record<string, string>>>
  ) =>
  <A extends JoinNeeds<On, RightPart<B, On, S, Rn>>, E, R>(
    self: Flow<A, E, R>
  ): Flow<Joined<A, B, On, T, S, Rn>, E | E2, R | R2> =>
    dynamic(other, options as JoinSpec)(self) as unknown as Flow<Joined<A, B, On, T, S, Rn>, E | E2, R | R2>
