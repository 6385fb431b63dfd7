/**
 * Pass-through: records that travel from source to sink in the bytes both sides speak, never parsed into records.
 *
 * When a pipeline has no transform (nothing needs a field's value), a source and a sink of the same kind can agree on
 * an encoding they both read and write as is — PostgreSQL's COPY text, for a table copied to a table. The source offers
 * the fields its records would have with their column types ({@link Offer}); the sink accepts when it would write
 * exactly those fields to columns of exactly those types, and says in which order ({@link Agreement}). The run then
 * reads batches that carry their records as {@link Raw} bytes, and the sink writes those bytes. Nothing else changes:
 * the source still rejects what it would have rejected (it parses the few rows whose text may not be a valid value),
 * and every count of the RunReport is the same as when the records are parsed.
 *
 * The runtime asks at the start of each attempt of a bounded run, or of a split run's part whose sink stages the part
 * itself (see `runtime/Runner.ts`); anything else (a transform, a split run's finish, a part staged by the run, a sink
 * or source that declines) reads records as usual.
 */
import type * as Effect from "effect/Effect"

/** The fields a source's records would hold, in its order, with each field's column type. */
export interface Offer {
  readonly format: string
  readonly fields: ReadonlyArray<{ readonly name: string; readonly type: string }>
}

/** What the sink takes: the offered fields, read in this order. */
export interface Agreement {
  readonly format: string
  readonly fields: ReadonlyArray<string>
}

/** Records as the bytes of an agreed encoding: whole records (for COPY text, whole lines) in `chunks`, in order. */
export interface Raw {
  readonly format: string
  readonly fields: ReadonlyArray<string>
  readonly chunks: ReadonlyArray<Uint8Array>
}

/** A source's side: what it would read, asked once per run attempt; `undefined` when it cannot read raw this time. */
export interface SourceSide<out E = never, out R = never> {
  readonly format: string
  readonly offer: Effect.Effect<Offer | undefined, E, R>
}

/** A sink's side: whether it takes an offer, asked once per run attempt; `undefined` when it does not. */
export interface SinkSide<out E = never, out R = never> {
  readonly format: string
  readonly accept: (offer: Offer) => Effect.Effect<Agreement | undefined, E, R>
}

/** The raw records of several batches as one, when they all carry raw records of the same fields; else `undefined`. */
export const concat = (raws: ReadonlyArray<Raw>): Raw | undefined => {
  const first = raws[0]
  if (first === undefined) return undefined
  const chunks: Array<Uint8Array> = []
  for (const raw of raws) {
    if (raw.format !== first.format || raw.fields.length !== first.fields.length) return undefined
    for (let i = 0; i < raw.fields.length; i++) if (raw.fields[i] !== first.fields[i]) return undefined
    for (const chunk of raw.chunks) chunks.push(chunk)
  }
  return { format: first.format, fields: first.fields, chunks }
}

/**
 * The records of a raw batch: `count` holes, never read (a raw batch reaches only its sink, which writes its bytes);
 * they let every count that goes by `records.length` stay as it is.
 */
export const placeholders = <A>(count: number): ReadonlyArray<A> => new Array<A>(count)
