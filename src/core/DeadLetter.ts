/**
 * Dead letters: records that a stage rejected, with the reason, kept instead of being dropped silently.
 *
 * A rejected record travels with its batch to the end of the pipeline, where the runtime writes it to the dead-letter
 * sink (when the pipeline has one) before the batch is acknowledged, so a dead letter is never lost on a crash either.
 * Whatever a record holds, its dead letter can be written: {@link encodable} turns a record that no encoder could
 * write (nested without end, or referring to itself) into its JSON text first.
 */
import * as JsonValue from "../formats/JsonValue.ts"

/** A record a stage rejected, with why. */
export interface DeadLetter {
  /** The stage that rejected the record, e.g. `source:transactions`, `validate`, `filter`. */
  readonly stage: string
  /** A short, machine-friendly reason: `invalid-record`, `rule:amount-positive`, `decode-error`, `late`, ... */
  readonly reason: string
  /** What was wrong, for a person: names the field and what was expected. */
  readonly message: string
  /**
   * The record (or the raw line / payload) as it was when rejected: a `Uint8Array` for input that was not valid text,
   * a JSON string for a record that could not be kept as it was (see {@link encodable}).
   */
  readonly record: unknown
  /** Where the record came from, when the source knows (file and line, topic/partition/offset, ...). */
  readonly origin?: string
}

/** Builds a dead letter. */
export const make = (fields: DeadLetter): DeadLetter => fields

/**
 * How deeply objects and arrays may nest in a dead letter's record for it to be passed to the dead-letter sink as it
 * is (the decoders' default limit: records read from files and Kafka never come deeper).
 */
export const maxRecordDepth = JsonValue.defaultMaxDepth

/**
 * The dead letter as every sink can encode it. A record nested deeper than {@link maxRecordDepth} levels, one that
 * refers to itself or one whose fields cannot be read would make an encoder fail (a stack overflow in
 * `JSON.stringify`), failing the run over one bad record: it is replaced by its JSON text, written without recursion
 * (a self-reference as `"[Circular]"`), and the message says so. Any other dead letter is returned as it is.
 *
 * @example
 * ```ts
 * const deep = JSON.parse("[".repeat(5000) + "]".repeat(5000))
 * DeadLetter.encodable({ stage: "validate", reason: "invalid-record", message: "...", record: deep }).record
 * // "[[[[...]]]]" (a string)
 * ```
 */
export const encodable = (deadLetter: DeadLetter): DeadLetter => {
  let unsafe: boolean
  try {
    unsafe = JsonValue.valueExceedsDepth(deadLetter.record, maxRecordDepth)
  } catch {
    unsafe = true
  }
  if (!unsafe) return deadLetter
  return {
    ...deadLetter,
    message: `${deadLetter.message} (the record nests deeper than ${maxRecordDepth} levels, refers to itself or cannot be read as it is: kept as JSON text)`,
    record: JsonValue.stringifySafe(deadLetter.record)
  }
}

/** {@link encodable} over a batch of dead letters, returning the same array when none changed. */
export const encodableAll = (deadLetters: ReadonlyArray<DeadLetter>): ReadonlyArray<DeadLetter> => {
  let copy: Array<DeadLetter> | undefined
  for (let i = 0; i < deadLetters.length; i++) {
    const original = deadLetters[i]!
    const safe = encodable(original)
    if (safe !== original) {
      copy ??= deadLetters.slice()
      copy[i] = safe
    }
  }
  return copy ?? deadLetters
}
