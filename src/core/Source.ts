/**
 * Sources: where records come from.
 *
 * A source is a value: a name, a description, whether it ends, and a stream of batches. Connectors build sources from
 * their services (so the stream's `R` names exactly the services it needs); tests build them from arrays.
 */
import type * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Batch from "./Batch.ts"
import type { RunContext } from "./Stage.ts"

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
}

/** Builds a source. */
export const make = <A, E = never, R = never>(source: Source<A, E, R>): Source<A, E, R> => source

/**
 * A bounded source over records in memory, in batches of `batchSize` (default 1000). For tests and examples.
 *
 * @example
 * const users = Source.fromIterable("users", [{ id: 1 }, { id: 2 }])
 */
export const fromIterable = <A>(
  name: string,
  records: Iterable<A>,
  options?: { readonly batchSize?: number }
): Source<A> => {
  const batchSize = options?.batchSize ?? 1000
  return make({
    name,
    type: "memory",
    description: `in-memory records (${name})`,
    bounded: true,
    batches: () =>
      Stream.suspend(() => {
        const all = Array.from(records)
        const batches: Array<Batch.Batch<A>> = []
        for (let i = 0; i < all.length; i += batchSize) batches.push(Batch.make(all.slice(i, i + batchSize)))
        return Stream.fromIterable(batches)
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
