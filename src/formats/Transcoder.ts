/**
 * The streaming machinery shared by the codecs: a {@link Transcoder} is a synchronous, stateful converter fed one
 * upstream element at a time (a byte chunk, a record batch) that appends whatever outputs are complete to an array,
 * and {@link transform} runs one between two streams with one pull per upstream chunk and no Effect per element.
 *
 * {@link Batcher} cuts decoded records into fixed-size batches, so the batches a decoder emits do not depend on how
 * the bytes were chunked.
 *
 * @since 0.1.0
 */

import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Pull from "effect/Pull"
import * as Stream from "effect/Stream"
import type * as FormatError from "./FormatError.ts"

/**
 * A synchronous, stateful stream converter. `push` and `flush` append complete outputs to `out` and return a
 * {@link FormatError.FormatError} to end the stream with a failure (outputs appended before it are still emitted).
 * `flush` is called once when the input ends.
 *
 * @since 0.1.0
 */
export interface Transcoder<in I, in out O> {
  readonly push: (input: I, out: Array<O>) => FormatError.FormatError | undefined
  readonly flush: (out: Array<O>) => FormatError.FormatError | undefined
}

const End: unique symbol = Symbol.for("effect-etl/formats/Transcoder/End")

/**
 * Runs a fresh transcoder (one per stream run) over a stream.
 *
 * @example
 * ```ts
 * const upper = Transcoder.transform(() => ({
 *   push: (s: string, out: Array<string>) => { out.push(s.toUpperCase()); return undefined },
 *   flush: () => undefined
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const transform =
  <I, O>(make: () => Transcoder<I, O>) =>
  <E, R>(self: Stream.Stream<I, E, R>): Stream.Stream<O, E | FormatError.FormatError, R> =>
    Stream.transformPull(self, (upstream) =>
      Effect.sync(() => {
        const transcoder = make()
        let ended = false
        let failure: FormatError.FormatError | undefined
        // The upstream chunk being fed, and the next element to feed: outputs are emitted as soon as one element
        // produces some, so a large upstream chunk does not pile up all of its outputs.
        let chunk: Arr.NonEmptyReadonlyArray<I> | undefined
        let index = 0
        const emit = (out: Array<O>): Pull.Pull<Arr.NonEmptyReadonlyArray<O>, E | FormatError.FormatError> =>
          // Outputs completed before a failure are still emitted, so what a consumer sees before the error does not
          // depend on how the input was chunked.
          out.length > 0 ? Effect.succeed(out as unknown as Arr.NonEmptyReadonlyArray<O>) : pull
        const onChunk = (
          next: Arr.NonEmptyReadonlyArray<I> | typeof End
        ): Pull.Pull<Arr.NonEmptyReadonlyArray<O>, E | FormatError.FormatError> => {
          if (next !== End) {
            chunk = next
            index = 0
            return pull
          }
          ended = true
          const out: Array<O> = []
          failure = transcoder.flush(out)
          return emit(out)
        }
        const pullUpstream = upstream.pipe(
          Pull.catchDone(() => Effect.succeed(End)),
          Effect.flatMap(onChunk)
        )
        const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<O>, E | FormatError.FormatError> = Effect.suspend(() => {
          if (failure !== undefined) return Effect.fail(failure)
          if (ended) return Cause.done()
          if (chunk === undefined) return pullUpstream
          const current = chunk
          const out: Array<O> = []
          while (index < current.length && out.length === 0) {
            failure = transcoder.push(current[index++]!, out)
            if (failure !== undefined) {
              ended = true
              break
            }
          }
          if (index >= current.length) chunk = undefined
          return emit(out)
        })
        return pull
      })
    )

/**
 * Cuts records (and, in lenient mode, rejected records) into batches of `size` entries, appending each full batch to
 * an output array: a plain `ReadonlyArray<A>` in strict mode, a {@link FormatError.LenientBatch} in lenient mode.
 *
 * @since 0.1.0
 */
export class Batcher<A> {
  readonly size: number
  readonly lenient: boolean
  records: Array<A> = []
  errors: Array<FormatError.Rejected> = []

  constructor(size: number, lenient: boolean) {
    this.size = size > 0 ? Math.floor(size) : 1
    this.lenient = lenient
  }

  /** Adds a record, emitting the batch into `out` when it is full. */
  add(record: A, out: Array<ReadonlyArray<A> | FormatError.LenientBatch<A>>): void {
    this.records.push(record)
    if (this.records.length + this.errors.length >= this.size) this.cut(out)
  }

  /** Adds a rejected record (lenient mode), emitting the batch into `out` when it is full. */
  reject(rejected: FormatError.Rejected, out: Array<ReadonlyArray<A> | FormatError.LenientBatch<A>>): void {
    this.errors.push(rejected.at === undefined ? { ...rejected, at: this.records.length } : rejected)
    if (this.records.length + this.errors.length >= this.size) this.cut(out)
  }

  /** Emits the current batch, if not empty. */
  cut(out: Array<ReadonlyArray<A> | FormatError.LenientBatch<A>>): void {
    if (this.records.length === 0 && this.errors.length === 0) return
    if (this.lenient) {
      out.push({ records: this.records, errors: this.errors })
      this.errors = []
    } else {
      out.push(this.records)
    }
    this.records = []
  }
}

/**
 * The default number of records per decoded batch.
 *
 * @since 0.1.0
 */
export const defaultBatchSize = 4096
