/**
 * The one error type of the `formats` codecs, plus the shape of the rejected records that lenient decoding hands back
 * instead of failing.
 *
 * Every message names where the problem is (`transactions.jsonl line 17: ...`, `orders.avro block 3: ...`) and never
 * quotes more than {@link maxSnippet} characters of the offending data, so errors are safe to log.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * The formats and transforms that can fail.
 *
 * @since 0.1.0
 */
export type Format = "jsonl" | "csv" | "avro" | "parquet" | "gzip"

/**
 * A failure to decode or encode bytes of a given format.
 *
 * `reason` is the bare cause, `message` is the reason prefixed with the position (`file`, `line`, `column`, `block`,
 * `record`, byte `offset`, whichever are known).
 *
 * @example
 * ```ts
 * import * as FormatError from "./FormatError.ts"
 *
 * const e = FormatError.make({ format: "jsonl", file: "tx.jsonl", line: 17, reason: "Unexpected token }" })
 * e.message // "tx.jsonl line 17: Unexpected token }"
 * ```
 *
 * @since 0.1.0
 */
export class FormatError extends Data.TaggedError("FormatError")<{
  /** The format being decoded or encoded. */
  readonly format: Format
  /** The reason prefixed with the position. */
  readonly message: string
  /** The bare reason, without the position. */
  readonly reason: string
  /** The file or source name, when the caller gave one. */
  readonly file?: string | undefined
  /** The 1-based line (text formats). */
  readonly line?: number | undefined
  /** The column name (CSV). */
  readonly column?: string | undefined
  /** The 1-based block number (Avro). */
  readonly block?: number | undefined
  /** The 1-based record number within the input or batch being encoded. */
  readonly record?: number | undefined
  /** The byte offset in the input. */
  readonly offset?: number | undefined
  /** The underlying exception, if any. */
  readonly cause?: unknown
}> {}

/**
 * The position and reason fields accepted by {@link make}.
 *
 * @since 0.1.0
 */
export interface Fields {
  readonly format: Format
  readonly reason: string
  readonly file?: string | undefined
  readonly line?: number | undefined
  readonly column?: string | undefined
  readonly block?: number | undefined
  readonly record?: number | undefined
  readonly offset?: number | undefined
  readonly cause?: unknown
}

/**
 * The largest number of characters of input data quoted in a message.
 *
 * @since 0.1.0
 */
export const maxSnippet = 200

/**
 * Shortens text to at most `max` characters (default {@link maxSnippet}), marking the cut with `…`.
 *
 * @since 0.1.0
 */
export const snippet = (text: string, max: number = maxSnippet): string =>
  text.length <= max ? text : `${text.slice(0, max)}…`

/**
 * Renders a position as a message prefix, e.g. `tx.csv line 4, column "amount"`; empty when nothing is known.
 *
 * @since 0.1.0
 */
export const position = (fields: Omit<Fields, "reason" | "format" | "cause">): string => {
  const parts: Array<string> = []
  if (fields.line !== undefined) parts.push(`line ${fields.line}`)
  if (fields.column !== undefined) parts.push(`column ${JSON.stringify(fields.column)}`)
  if (fields.block !== undefined) parts.push(`block ${fields.block}`)
  if (fields.record !== undefined) parts.push(`record ${fields.record}`)
  if (fields.offset !== undefined) parts.push(`byte ${fields.offset}`)
  const where = parts.join(", ")
  if (fields.file === undefined) return where
  return where.length === 0 ? fields.file : `${fields.file} ${where}`
}

/**
 * Builds a {@link FormatError}, deriving `message` from the position and the reason (the reason is shortened to
 * {@link maxSnippet} characters plus a little room for the text around the quoted data).
 *
 * @since 0.1.0
 */
export const make = (fields: Fields): FormatError => {
  const reason = snippet(fields.reason, maxSnippet + 80)
  const where = position(fields)
  return new FormatError({
    ...fields,
    reason,
    message: where.length === 0 ? `${fields.format}: ${reason}` : `${where}: ${reason}`
  })
}

/**
 * A record that lenient decoding (`onError: "collect"`) rejected, to be dead-lettered by the caller.
 *
 * `line` is the 1-based line where the record starts, `raw` its text as read (for CSV: the fields re-joined with the
 * delimiter), `message` the error as it would have failed the stream. A record that is not valid UTF-8 also has its
 * `bytes` as read (for CSV: those of its invalid lines); `raw` then shows the invalid sequences as U+FFFD. An Avro
 * block that does not decode is rejected whole: `line` is 0, `block` its 1-based number and `bytes` its bytes.
 *
 * @since 0.1.0
 */
export interface Rejected {
  readonly line: number
  readonly message: string
  readonly raw: string
  readonly bytes?: Uint8Array | undefined
  readonly block?: number | undefined
  /** How many of its batch's records came before it (set by the batcher), so that records and rejects interleave. */
  readonly at?: number | undefined
}

/**
 * One batch of lenient decoding: the records that decoded and the ones that did not, in input order within each list.
 *
 * @since 0.1.0
 */
export interface LenientBatch<A = unknown> {
  readonly records: ReadonlyArray<A>
  readonly errors: ReadonlyArray<Rejected>
}

/**
 * What a decoder does with a malformed record: fail the stream (`"fail"`, the default) or hand it back in a
 * {@link LenientBatch} (`"collect"`).
 *
 * @since 0.1.0
 */
export type OnError = "fail" | "collect"
