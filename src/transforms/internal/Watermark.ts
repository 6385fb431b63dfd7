/**
 * The watermark of an event-time stage, kept per input part.
 *
 * A source that reads its input in parts (table slices, Kafka partitions, files, objects) interleaves their batches;
 * each part is in its own event-time order, but one part may be hours ahead of another. One watermark for all of them
 * would let the part read first make every other part's records late. So each part has its own latest event time, and
 * the stage's watermark is the smallest of them over the parts still open, minus the allowed lateness: a part that is
 * `done` no longer holds it back, and as long as some announced part has not sent anything yet, nothing is known of
 * it and the watermark stays where it is. The watermark never goes back.
 *
 * The parts of an unbounded source are open-ended (`Batch.Part` without `of`): they are not announced, so the parts
 * that have sent records count, and a part that has sent no records for the idle timeout (processing time, as the
 * caller's clock says) stops holding the watermark back until it sends again, like Flink's `withIdleness`: the next
 * batch of any part moves the watermark on. Parts not heard of yet are treated like Flink's partitions assigned but
 * not read yet: for the first idle timeout after the first batch the watermark waits for them (unless as many parts as
 * the source said it knew, `Batch.Part.known`, have sent records), so that partitions whose first batches come a
 * little later do not find their records late. A restored watermark starts a new run: the parts it knows count as
 * active from its first batch (their processing times belong to another run). The idle part's records are then measured against a watermark that may
 * have passed them: they are late by the usual rules. When every part is idle, nothing moves the watermark (it moves
 * with batches only).
 *
 * A record is late when its event time is behind the watermark. The parts of a bounded input (announced: `Batch.Part`
 * with `of`) are also each judged on their own: a record is late, too, when it is behind its own part's latest event
 * time minus the allowed lateness. So what is late does not depend on how the parts' batches interleave (which part
 * was read first, how many at a time): a one-process run and a split run (each part read apart, `Split.ts`) reject
 * the same records. The open-ended parts of an unbounded source are judged on the watermark alone.
 *
 * An input that is not split is one part, and then this is the familiar "largest event time seen minus the allowed
 * lateness", advancing record by record. The work per record is one comparison (two when the time advances); the
 * parts are looked at once per batch.
 */
import type * as Batch from "../../core/Batch.ts"

/** The key of the one part of an input that is not split. */
const UNSPLIT: unique symbol = Symbol("unsplit")

interface PartState {
  /** The largest event time seen in the part. */
  latest: number
  /** When (processing time, milliseconds) the part last sent records. */
  active: number
  /** True for a part of an open-ended input (no `of`): only such a part can go idle. */
  readonly openEnded: boolean
}

/** The watermark over the parts of an input, advanced batch by batch ({@link begin}, {@link observe}, {@link end}). */
export class Watermark {
  /** Event times before this are late. Starts at minus infinity and never goes back. */
  value = Number.NEGATIVE_INFINITY
  /** The event time the watermark comes from: `value` plus the allowed lateness. */
  basis = Number.NEGATIVE_INFINITY
  /** How many parts the basis was the smallest latest event time of (1 for an input that is not split). */
  basisParts = 1
  /** The largest event time of the part the current batch comes from. */
  private latest = Number.NEGATIVE_INFINITY
  /** The smallest latest time of the other open parts (minus infinity while some part has not been read yet). */
  private others = Number.POSITIVE_INFINITY
  /** How many parts `others` was taken over, the current one included. */
  private counted = 1
  private current: PartState | undefined
  /** The current batch's part is one of a bounded input's announced parts: its records are also judged on its own. */
  private ownPart = false
  /** The id of the current batch's part (for messages). */
  private currentId: string | number | undefined
  private now = 0
  /** When the first batch of this run came (processing time; `NaN` until then). */
  private startedAt = Number.NaN
  private readonly latenessMs: number
  private readonly idleMs: number
  private readonly parts = new Map<string | number | typeof UNSPLIT, PartState>()
  private readonly open = new Set<PartState>()
  /** How many open-ended parts the source said it knew of at its start (0: it did not say). */
  private known = 0
  /** How many parts the input announced, and how many of them have been seen. */
  private announced = 0
  private seen = 0

  /**
   * @param latenessMs the allowed lateness: the watermark is this far behind the slowest part
   * @param idleMs how long a part of an open-ended input may send no records before it stops holding the watermark
   *   back (default: never)
   */
  constructor(latenessMs: number, idleMs: number = Number.POSITIVE_INFINITY) {
    this.latenessMs = latenessMs
    this.idleMs = idleMs
  }

  /** True when the input is read in several parts. */
  get split(): boolean {
    return this.announced > 1 || this.parts.size > 1
  }

  /** How many parts the input announced, or (open-ended parts) how many have sent records so far. */
  get partCount(): number {
    return Math.max(this.announced, this.parts.size)
  }

  /** True when the parts are open-ended (an unbounded source): the basis is over the parts not idle. */
  get openEnded(): boolean {
    return this.announced === 0 && this.parts.size > 1
  }

  private idle(state: PartState, now: number): boolean {
    return state.openEnded && now - state.active >= this.idleMs
  }

  /**
   * A batch from `part` (none: the input is not split) starts; `hasRecords` tells whether it brings any, and `now`
   * is the processing time in milliseconds (for the idle timeout).
   */
  begin(part: Batch.Part | undefined, hasRecords: boolean, now = 0): void {
    this.now = now
    if (Number.isNaN(this.startedAt)) {
      this.startedAt = now
      for (const restored of this.parts.values()) restored.active = now
    }
    const key = part === undefined ? UNSPLIT : part.id
    this.ownPart = part?.of !== undefined
    this.currentId = part?.id
    let state = this.parts.get(key)
    if (state === undefined) {
      // An empty batch of a part not seen yet tells nothing, unless it ends the part.
      if (!hasRecords && part?.done !== true) {
        this.current = undefined
        return
      }
      state = { latest: Number.NEGATIVE_INFINITY, active: now, openEnded: part !== undefined && part.of === undefined }
      this.parts.set(key, state)
      this.open.add(state)
      if (part?.of !== undefined) this.seen++
    }
    if (hasRecords) state.active = now
    if (part?.of !== undefined && part.of > this.announced) this.announced = part.of
    if (part?.known !== undefined && part.known > this.known) this.known = part.known
    this.current = state
    this.latest = state.latest
    const waiting =
      this.seen < this.announced ||
      (state.openEnded && now - this.startedAt < this.idleMs && (this.known === 0 || this.parts.size < this.known))
    let others = waiting ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY
    let counted = 1
    if (others !== Number.NEGATIVE_INFINITY)
      for (const other of this.open) {
        if (other === state || this.idle(other, now)) continue
        counted++
        if (other.latest < others) others = other.latest
      }
    this.others = others
    this.counted = counted
    // Parts that went idle since the last batch no longer hold the watermark back, even when this batch brings no
    // newer event time of its own.
    if (others !== Number.NEGATIVE_INFINITY) this.advance(Math.min(this.latest, others), counted)
  }

  /**
   * True when a record of the current batch at event time `t` is late: behind the watermark, or (a part of a bounded
   * input) behind its own part's latest event time minus the allowed lateness.
   */
  isLate(t: number): boolean {
    return t < this.value || (this.ownPart && t < this.latest - this.latenessMs)
  }

  /**
   * Why a record at `t` is late when the watermark alone would not make it so: the part it comes from, and that
   * part's latest event time (else `undefined`).
   */
  ownLateness(t: number): { readonly part: string | number | undefined; readonly latest: number } | undefined {
    return t >= this.value && this.ownPart && t < this.latest - this.latenessMs
      ? { part: this.currentId, latest: this.latest }
      : undefined
  }

  /** A record of the current batch at event time `t` (not late) was taken. */
  observe(t: number): void {
    if (t > this.latest) {
      this.latest = t
      const basis = Math.min(t, this.others)
      if (basis - this.latenessMs > this.value) {
        this.value = basis - this.latenessMs
        this.basis = basis
        this.basisParts = this.counted
      }
    }
  }

  /** The current batch (from `part`) was taken; a `done` part stops holding the watermark back. */
  end(part: Batch.Part | undefined): void {
    const state = this.current
    if (state === undefined) return
    this.current = undefined
    state.latest = this.latest
    if (part?.done !== true || !this.open.delete(state) || this.seen < this.announced || this.open.size === 0) return
    let basis = Number.POSITIVE_INFINITY
    let counted = 0
    for (const other of this.open) {
      if (this.idle(other, this.now)) continue
      counted++
      if (other.latest < basis) basis = other.latest
    }
    this.advance(basis, counted)
  }

  /**
   * Moves the watermark to `basis` minus the allowed lateness, if that is ahead of it (processing-time watermarks:
   * `basis` is the clock).
   */
  advance(basis: number, parts = 1): void {
    if (basis !== Number.POSITIVE_INFINITY && basis - this.latenessMs > this.value) {
      this.value = basis - this.latenessMs
      this.basis = basis
      this.basisParts = parts
    }
  }

  /** The watermark and every part's latest event time, as JSON (for checkpoints). */
  save(): WatermarkState {
    const parts: Array<[string | number | null, number | null, boolean, boolean]> = []
    for (const [key, state] of this.parts)
      parts.push([key === UNSPLIT ? null : key, finite(state.latest), this.open.has(state), state.openEnded])
    return { value: finite(this.value), basis: finite(this.basis), announced: this.announced, seen: this.seen, parts }
  }

  /** Takes back what `save` gave, into a fresh watermark. */
  load(state: WatermarkState): void {
    this.value = state.value ?? Number.NEGATIVE_INFINITY
    this.basis = state.basis ?? Number.NEGATIVE_INFINITY
    this.announced = state.announced
    this.seen = state.seen
    for (const [key, latest, open, openEnded] of state.parts) {
      const part: PartState = { latest: latest ?? Number.NEGATIVE_INFINITY, active: 0, openEnded: openEnded === true }
      this.parts.set(key === null ? UNSPLIT : key, part)
      if (open) this.open.add(part)
    }
  }
}

/** A watermark as JSON: minus infinity is `null`. */
export interface WatermarkState {
  readonly value: number | null
  readonly basis: number | null
  readonly announced: number
  readonly seen: number
  /**
   * Part id (`null`: the input is not split), its latest event time, whether it is still open, and whether it is a part
   * of an open-ended input (absent in states saved before open-ended parts existed: no).
   */
  readonly parts: ReadonlyArray<readonly [string | number | null, number | null, boolean, boolean?]>
}

const finite = (n: number): number | null => (Number.isFinite(n) ? n : null)
