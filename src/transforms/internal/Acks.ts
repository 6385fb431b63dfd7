/**
 * Acknowledgements through stateful stages.
 *
 * An input batch's `ack` commits the source position up to and including that batch, and the runtime runs an output
 * batch's `ack` once the sink has written it. A stateful stage holds the acks of the input batches whose records it
 * still keeps (in open windows, in groups not yet emitted) and attaches them, in input order, to the output batch that
 * emits the last output depending on them.
 *
 * `AckTracker` does this for windows: every open window remembers the sequence number of the first input batch that
 * put a record in it (`minSeq`). Input batch `s` is complete when no open window has `minSeq ≤ s`; since batches are
 * released in order, it is enough to check that no open window has `minSeq = s` when every earlier batch is released.
 */
import * as Effect from "effect/Effect"
import * as Batch from "../../core/Batch.ts"
import * as Checkpoint from "../../core/Checkpoint.ts"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import type { ExtractError } from "../../core/Errors.ts"

/** An acknowledgement of an input batch. */
export type Ack = Effect.Effect<void, ExtractError>

/** An input batch's acknowledgement and the source positions it commits: what a stateful stage holds back. */
export interface Held {
  readonly ack: Ack
  readonly positions?: Checkpoint.Positions | undefined
}

const nothingHeld: Held = { ack: Effect.void }

/** What holding a batch back keeps of it: its ack and positions, never its records. */
export const heldOf = (batch: Held): Held =>
  batch.positions === undefined ? { ack: batch.ack } : { ack: batch.ack, positions: batch.positions }

/** Runs acknowledgements one after the other, in order, and merges their positions. */
export const combine = (held: ReadonlyArray<Held>): Held => {
  if (held.length === 0) return nothingHeld
  if (held.length === 1) return held[0]!
  let positions: Map<string, Checkpoint.Range> | undefined
  const acks: Array<Ack> = []
  for (const h of held) {
    if (h.ack !== Effect.void) acks.push(h.ack)
    if (h.positions !== undefined) positions = Checkpoint.gather(positions ?? new Map(), h.positions)
  }
  const ack =
    acks.length === 0 ? Effect.void : acks.length === 1 ? acks[0]! : Effect.forEach(acks, (a) => a, { discard: true })
  return positions === undefined ? { ack } : { ack, positions: Checkpoint.sorted(positions) }
}

/** True when holding `held` matters: it acknowledges something or carries positions. */
const matters = (held: Held): boolean => held.ack !== Effect.void || held.positions !== undefined

/** Holds the acks of input batches until every open window that holds their records has been emitted. */
export class AckTracker {
  private readonly pending: Array<{ readonly seq: number; readonly held: Held }> = []
  private head = 0
  private readonly open = new Map<number, number>()

  /** A window was opened by input batch `seq`. */
  opened(seq: number): void {
    this.open.set(seq, (this.open.get(seq) ?? 0) + 1)
  }

  /** A window opened by input batch `seq` was emitted (or merged into an older one). */
  closed(seq: number): void {
    const n = (this.open.get(seq) ?? 1) - 1
    if (n <= 0) this.open.delete(seq)
    else this.open.set(seq, n)
  }

  /**
   * Input batch `seq` has been processed; its ack waits here. Even an ack that does nothing is kept in line: a later
   * batch's ack commits this batch's position too, so it must not overtake it.
   */
  hold(seq: number, held: Held): void {
    this.pending.push({ seq, held: heldOf(held) })
  }

  /** The acks (and positions) of the input batches that are complete now, in input order. */
  release(): Array<Held> {
    const out: Array<Held> = []
    while (this.head < this.pending.length && !this.open.has(this.pending[this.head]!.seq)) {
      const { held } = this.pending[this.head++]!
      if (matters(held)) out.push(held)
    }
    this.compact()
    return out
  }

  /** Every held ack (at the end of the input, once everything is emitted). */
  releaseAll(): Array<Held> {
    const out: Array<Held> = []
    while (this.head < this.pending.length) {
      const { held } = this.pending[this.head++]!
      if (matters(held)) out.push(held)
    }
    this.compact()
    return out
  }

  /** How many input batches are waiting for their windows to close. */
  get waiting(): number {
    return this.pending.length - this.head
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head)
      this.head = 0
    }
  }
}

/** At most this many records go into one output batch. */
export const OUTPUT_BATCH_SIZE = 10_000

/**
 * The output batches for one step: records split into batches of at most `OUTPUT_BATCH_SIZE`, dead letters on the
 * first, the combined acks (and positions) on the last. Nothing when there is nothing to say. A stage whose outputs keep to the input
 * part of the batch they come from (a per-batch join) passes that `part` on: every output batch carries it, and only
 * the last one says that the part is done.
 */
export const emit = <B>(
  records: ReadonlyArray<B>,
  deadLetters: ReadonlyArray<DeadLetter.DeadLetter>,
  held: ReadonlyArray<Held>,
  part?: Batch.Part | undefined
): Array<Batch.Batch<B>> => {
  if (records.length === 0 && deadLetters.length === 0 && held.length === 0 && part?.done !== true) return []
  const out: Array<Batch.Batch<B>> = []
  const { ack, positions } = combine(held)
  if (records.length <= OUTPUT_BATCH_SIZE) {
    out.push(Batch.make(records, { ack, deadLetters, part, positions }))
    return out
  }
  const open = part?.done === true ? { id: part.id, of: part.of } : part
  for (let i = 0; i < records.length; i += OUTPUT_BATCH_SIZE) {
    const last = i + OUTPUT_BATCH_SIZE >= records.length
    out.push(
      Batch.make(records.slice(i, i + OUTPUT_BATCH_SIZE), {
        ...(last ? { ack, positions } : {}),
        ...(i === 0 ? { deadLetters } : {}),
        part: last ? part : open
      })
    )
  }
  return out
}
