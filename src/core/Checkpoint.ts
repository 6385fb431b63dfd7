/**
 * Source positions, for exactly-once delivery into sinks that store them with their data.
 *
 * A source that can resume from given positions (a Kafka source: topic/partition → offset) says which positions each
 * batch covers ({@link Range}: the part, the first position read and the next one to read). The runtime gathers the
 * ranges of the batches a segment commits and hands them to a sink that keeps positions ({@link Store}): the sink writes
 * them in the same transaction as the segment's records (an offsets table, a checkpoint file beside a part file). A new
 * run — after a crash, a kill, a failed attempt — asks the sink for the stored positions and the source resumes there,
 * so a committed segment is never read (nor written) again, and an uncommitted one is read again in full.
 *
 * Positions are decimal strings (Kafka offsets are int64) compared as integers.
 */
import type * as Effect from "effect/Effect"

/** The positions one batch (or several, merged) covers in one part of a source. */
export interface Range {
  /** The part: `topic/partition` for Kafka. */
  readonly part: string
  /** The first position read (inclusive). */
  readonly from: string
  /** The next position to read (exclusive end): where a new run resumes. */
  readonly to: string
}

/** Ranges, at most one per part. */
export type Positions = ReadonlyArray<Range>

/** Where a new run resumes: part → the next position to read. */
export type Resume = ReadonlyMap<string, string>

/** What a sink records with a segment's data, atomically. */
export interface Checkpoint {
  /** The pipeline the positions belong to (its name). */
  readonly pipeline: string
  readonly positions: Positions
  /**
   * True: the positions continue those the sink stores, and a commit whose part another process stored further is
   * refused (a consumer-group rebalance moved it). False: a checkpoint of states decides where a run resumes, and its
   * positions may trail the sink's after a kill between the sink's commit and the checkpoint (an upsert writes the same
   * rows again).
   */
  readonly fenced: boolean
}

/** The stored positions of a sink that keeps them: where a new run of `pipeline` resumes. */
export interface Store<E, R> {
  /** The positions stored for a pipeline (nothing stored: an empty map). */
  readonly load: (pipeline: string) => Effect.Effect<Resume, E, R>
  /** Where they are kept, for a person (`table etl_offsets`, `directory out/_checkpoints`). */
  readonly where: string
}

const compare = (a: string, b: string): number => {
  if (a.length !== b.length && !a.startsWith("-") && !b.startsWith("-")) return a.length - b.length
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** The smaller of two positions. */
export const min = (a: string, b: string): string => (compare(a, b) <= 0 ? a : b)

/** The larger of two positions. */
export const max = (a: string, b: string): string => (compare(a, b) >= 0 ? a : b)

/** True when position `a` comes before `b`. */
export const isBefore = (a: string, b: string): boolean => compare(a, b) < 0

/**
 * Adds ranges into `into` (part → range), widening each part's range: the smallest `from`, the largest `to`.
 * Returns `into`.
 */
export const gather = (into: Map<string, Range>, positions: Positions | undefined): Map<string, Range> => {
  if (positions === undefined) return into
  for (const range of positions) {
    const held = into.get(range.part)
    into.set(
      range.part,
      held === undefined ? range : { part: range.part, from: min(held.from, range.from), to: max(held.to, range.to) }
    )
  }
  return into
}

/** Ranges merged per part, in part order. */
export const merge = (...all: ReadonlyArray<Positions | undefined>): Positions => {
  const into = new Map<string, Range>()
  for (const positions of all) gather(into, positions)
  return sorted(into)
}

/**
 * The first range (or row) whose part another process stored further than where the range starts — a commit of it
 * would write again what is already there (a consumer-group rebalance moved the part) — with the stored position;
 * `undefined` when every range continues (or starts after) what is stored. Ranges without `from` are not checked.
 */
export const moved = <T extends { readonly part: string; readonly from?: string | undefined }>(
  ranges: ReadonlyArray<T>,
  stored: Resume
): { readonly row: T; readonly stored: string } | undefined => {
  for (const row of ranges) {
    const at = stored.get(row.part)
    if (at !== undefined && row.from !== undefined && isBefore(row.from, at)) return { row, stored: at }
  }
  return undefined
}

/** The ranges of a gathered map, in part order. */
export const sorted = (ranges: ReadonlyMap<string, Range>): Positions =>
  Array.from(ranges.values()).sort((a, b) => (a.part < b.part ? -1 : a.part > b.part ? 1 : 0))
