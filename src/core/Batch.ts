/**
 * A batch: the unit that flows through a pipeline.
 *
 * Records travel as arrays so that the per-record cost of a stage stays a plain function call; Effect's machinery works
 * per batch. A batch carries the dead letters its stages produced and an acknowledgement that commits the source
 * position once the sink has durably written the batch (at-least-once delivery).
 */
import * as Effect from "effect/Effect"
import type * as DeadLetter from "./DeadLetter.ts"
import type { ExtractError } from "./Errors.ts"

/** A batch of records of type `A`. */
export interface Batch<out A> {
  readonly records: ReadonlyArray<A>
  readonly deadLetters: ReadonlyArray<DeadLetter.DeadLetter>
  /** Commits the source position up to and including this batch. Run only after the batch is durably written. */
  readonly ack: Effect.Effect<void, ExtractError>
}

const noAck: Effect.Effect<void, ExtractError> = Effect.void

/** A batch of records with no dead letters. */
export const make = <A>(
  records: ReadonlyArray<A>,
  options?: {
    readonly ack?: Effect.Effect<void, ExtractError>
    readonly deadLetters?: ReadonlyArray<DeadLetter.DeadLetter>
  }
): Batch<A> => ({ records, deadLetters: options?.deadLetters ?? [], ack: options?.ack ?? noAck })

const emptyDeadLetters: ReadonlyArray<DeadLetter.DeadLetter> = []

/** The same batch with other records and, optionally, more dead letters. */
export const withRecords = <A, B>(
  batch: Batch<A>,
  records: ReadonlyArray<B>,
  deadLetters: ReadonlyArray<DeadLetter.DeadLetter> = emptyDeadLetters
): Batch<B> => ({
  records,
  deadLetters: deadLetters.length === 0 ? batch.deadLetters : batch.deadLetters.concat(deadLetters),
  ack: batch.ack
})
