/**
 * Sources: where records come from.
 *
 * A source is a value: a name, a description, whether it ends, and a stream of batches. Connectors build sources from
 * their services (so the stream's `R` names exactly the services it needs); tests build them from arrays.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Batch from "./Batch.ts"
import type * as PassThrough from "./PassThrough.ts"
import type { Attributes, Dataset, InputSize, RunContext, SplitPart } from "./Stage.ts"

export type { SplitPart } from "./Stage.ts"

/** How a source splits its input (see {@link Source.split}). */
export interface SplitOptions {
  /** Files and objects are grouped into parts of about this many bytes (a file larger than it is a part alone). */
  readonly targetBytes: number
  /**
   * A file or object bigger than `targetBytes` may be cut into ranges of whole records, each a part (JSON Lines, CSV,
   * Parquet row groups): for runs whose stages keep no state across records, so that reading it in pieces changes
   * nothing.
   */
  readonly withinFiles?: boolean | undefined
}

/** The default target size of a part of files or objects: 64 MiB. */
export const defaultSplit: SplitOptions = { targetBytes: 64 * 1024 * 1024 }

/** A source of records of type `A`, failing with `E`, needing the services `R`. */
export interface Source<out A, out E = never, out R = never> {
  readonly name: string
  /** The connector type, e.g. `file`, `postgres`, `memory`. */
  readonly type: string
  /** One line for a person, shown by `validate` and in logs. */
  readonly description: string
  /** `true` when the stream ends by itself (batch mode); `false` for streaming sources. */
  readonly bounded: boolean
  /** The batches. Called once per run attempt; a restarted attempt resumes from the last acknowledged position. */
  readonly batches: (ctx: RunContext) => Stream.Stream<Batch.Batch<A>, E, R>
  /**
   * `true` when its batches carry `positions` and it starts each part named in `ctx.resume` there (see `Checkpoint`):
   * with a sink that stores positions, a pipeline then delivers exactly once.
   */
  readonly resumable?: boolean | undefined
  /** The dataset it reads (for lineage events), when it names one. */
  readonly dataset?: Dataset | undefined
  /** Span and metric attributes (OpenTelemetry semantic conventions: `db.system.name`, `messaging.system`, ...). */
  readonly attributes?: Attributes | undefined
  /**
   * The size of the input, for a progress percentage and an ETA; run beside the read, never before it, and its
   * failure only means that the size is unknown.
   */
  readonly size?: Effect.Effect<InputSize, E, R> | undefined
  /**
   * Lists the parts of a bounded input that can be read apart (table slices, predicates, groups of files or objects),
   * each as JSON that another process can read it by: `batches` reads only the parts in `ctx.parts` when it is set.
   * Absent: the input is one part (a query, a stream). Read together, the parts give every record exactly once.
   */
  readonly split?: ((options: SplitOptions) => Effect.Effect<ReadonlyArray<SplitPart>, E, R>) | undefined
  /**
   * With `split`: what the source does once a split run's sink committed everything its parts read (a Kafka source
   * commits its group's offsets to the parts' ends). It may run again for the same parts (a finish run again after a
   * crash): it must be idempotent. Absent: nothing to do.
   */
  readonly commitParts?: ((parts: ReadonlyArray<SplitPart>) => Effect.Effect<void, E, R>) | undefined
  /**
   * How the source reads its records as bytes a sink of its kind writes as they are (see `PassThrough`), when the
   * pipeline has no transform; the runtime asks it through `ctx.passThrough`.
   */
  readonly readsRaw?: PassThrough.SourceSide<E, R> | undefined
}

/** Builds a source. */
export const make = <A, E = never, R = never>(source: Source<A, E, R>): Source<A, E, R> => source

/**
 * A bounded source over records in memory, in batches of `batchSize` (default 1000). With `parts`, its records are
 * cut into that many slices, read one after another as the parts of the input (`Batch.part`), as a table read in
 * slices is, and apart in a split run (see {@link Source.split}). For tests and examples.
 *
 * @example
 * const users = Source.fromIterable("users", [{ id: 1 }, { id: 2 }])
 */
export const fromIterable = <A>(
  name: string,
  records: Iterable<A>,
  options?: { readonly batchSize?: number; readonly parts?: number }
): Source<A> => {
  const batchSize = options?.batchSize ?? 1000
  const slices = (all: ReadonlyArray<A>) => {
    const n = Math.max(1, Math.min(options?.parts ?? 1, all.length))
    return Array.from({ length: n }, (_, i) => ({
      from: Math.floor((all.length * i) / n),
      to: Math.floor((all.length * (i + 1)) / n)
    }))
  }
  const batchesOf = (all: ReadonlyArray<A>, from: number, to: number) => {
    const batches: Array<Batch.Batch<A>> = []
    for (let i = from; i < to; i += batchSize) batches.push(Batch.make(all.slice(i, Math.min(i + batchSize, to))))
    return batches
  }
  return make({
    name,
    type: "memory",
    description: `in-memory records (${name})`,
    bounded: true,
    batches: (ctx) =>
      Stream.suspend(() => {
        const all = Array.from(records)
        if (ctx.parts === undefined && options?.parts === undefined)
          return Stream.fromIterable(batchesOf(all, 0, all.length))
        const parts =
          ctx.parts === undefined
            ? slices(all)
            : ctx.parts.map((part) => part.spec as { readonly from: number; readonly to: number })
        return readParts(parts, (part) => Stream.fromIterable(batchesOf(all, part.from, part.to)), {
          concurrency: 1,
          id: (part) => `${part.from}-${part.to}`
        })
      }),
    ...(options?.parts === undefined
      ? {}
      : {
          split: () =>
            Effect.sync(() =>
              slices(Array.from(records)).map((slice) => ({
                id: `${slice.from}-${slice.to}`,
                description: `records ${slice.from} to ${slice.to - 1}`,
                size: { records: slice.to - slice.from },
                spec: slice
              }))
            )
        })
  })
}

/** A source whose batches come from an Effect-built stream of record arrays (each array becomes one batch). */
export const fromArrays = <A, E, R>(
  name: string,
  arrays: Stream.Stream<ReadonlyArray<A>, E, R>,
  options?: { readonly type?: string; readonly description?: string; readonly bounded?: boolean }
): Source<A, E, R> =>
  make({
    name,
    type: options?.type ?? "custom",
    description: options?.description ?? name,
    bounded: options?.bounded ?? true,
    batches: () => Stream.map(arrays, (records) => Batch.make(records))
  })

/**
 * The batches of an input read in parts (table slices, files, objects), `concurrency` parts at a time, each part's
 * batches in their order. Every batch carries its part (`Batch.part`) and the last batch of each part is marked `done`
 * (a part without batches sends one empty batch), so that event-time stages keep a watermark per part instead of
 * letting the part read first make the others late. A single part is read as it is, untagged.
 *
 * @example
 * Source.readParts(files, (file) => readFile(file), { concurrency: 4, id: (file) => file.path })
 */
export const readParts = <P, A, E, R>(
  parts: ReadonlyArray<P>,
  read: (part: P, index: number) => Stream.Stream<Batch.Batch<A>, E, R>,
  options: { readonly concurrency: number; readonly id?: (part: P, index: number) => string | number }
): Stream.Stream<Batch.Batch<A>, E, R> => {
  if (parts.length === 1) return read(parts[0]!, 0)
  const of = parts.length
  return Stream.flatMap(
    Stream.fromIterable(parts.map((part, index) => ({ part, index }))),
    ({ part, index }) => {
      const tag: Batch.Part = { id: options.id === undefined ? index : options.id(part, index), of }
      const last: Batch.Part = { ...tag, done: true }
      // Each batch waits for the next one, so that the part's last batch can say that it is the last.
      return read(part, index).pipe(
        Stream.mapAccum(
          (): Batch.Batch<A> | undefined => undefined,
          (held, batch: Batch.Batch<A>) => [batch, held === undefined ? [] : [Batch.inPart(held, tag)]] as const,
          { onHalt: (held) => [held === undefined ? Batch.make<A>([], { part: last }) : Batch.inPart(held, last)] }
        )
      )
    },
    { concurrency: options.concurrency }
  )
}

/**
 * Groups files or objects, in their order, into parts of about `targetBytes` each (a larger one makes a part alone),
 * for a source's `split`.
 */
export const groupBySize = <F extends { readonly size: number }>(
  files: ReadonlyArray<F>,
  targetBytes: number
): ReadonlyArray<ReadonlyArray<F>> => {
  const groups: Array<Array<F>> = []
  let current: Array<F> = []
  let bytes = 0
  for (const file of files) {
    if (current.length > 0 && bytes + file.size > targetBytes) {
      groups.push(current)
      current = []
      bytes = 0
    }
    current.push(file)
    bytes += file.size
  }
  if (current.length > 0) groups.push(current)
  return groups
}

/** A source that fails with `error` as soon as it is read. */
export const fail = <E>(name: string, error: E): Source<never, E> =>
  make({
    name,
    type: "memory",
    description: `failing source (${name})`,
    bounded: true,
    batches: () => Stream.fail(error)
  })

/** A source built by an Effect that runs when the pipeline starts (e.g. to discover partitions). */
export const unwrap = <A, E, R, E2, R2>(
  name: string,
  info: { readonly type: string; readonly description: string; readonly bounded: boolean },
  make: (ctx: RunContext) => Effect.Effect<Stream.Stream<Batch.Batch<A>, E, R>, E2, R2>
): Source<A, E | E2, R | R2> => ({
  name,
  ...info,
  batches: (ctx) => Stream.unwrap(make(ctx))
})
