/**
 * Dead letters: records that a stage rejected, with the reason, kept instead of being dropped silently.
 *
 * A rejected record travels with its batch to the end of the pipeline, where the runtime writes it to the dead-letter
 * sink (when the pipeline has one) before the batch is acknowledged, so a dead letter is never lost on a crash either.
 */

/** A record a stage rejected, with why. */
export interface DeadLetter {
  /** The stage that rejected the record, e.g. `source:transactions`, `validate`, `filter`. */
  readonly stage: string
  /** A short, machine-friendly reason: `invalid-record`, `rule:amount-positive`, `decode-error`, `late`, ... */
  readonly reason: string
  /** What was wrong, for a person: names the field and what was expected. */
  readonly message: string
  /** The record (or the raw line / payload) as it was when rejected. */
  readonly record: unknown
  /** Where the record came from, when the source knows (file and line, topic/partition/offset, ...). */
  readonly origin?: string
}

/** Builds a dead letter. */
export const make = (fields: DeadLetter): DeadLetter => fields
