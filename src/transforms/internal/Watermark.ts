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
}

/** The watermark over the parts of an input, advanced batch by batch ({@link begin}, {@link observe}, {@link end}). */
export class Watermark {
  /** Event times before this are late. Starts at minus infinity and never goes back. */
  value = Number.NEGATIVE_INFINITY
  /** The event time the watermark comes from: `value` plus the allowed lateness. */
  basis = Number.NEGATIVE_INFINITY
  /** The largest event time of the part the current batch comes from. */
  private latest = Number.NEGATIVE_INFINITY
  /** The smallest latest time of the other open parts (minus infinity while some part has not been read yet). */
  private others = Number.POSITIVE_INFINITY
  private current: PartState | undefined
  private readonly latenessMs: number
  private readonly parts = new Map<string | number | typeof UNSPLIT, PartState>()
  private readonly open = new Set<PartState>()
  /** How many parts the input announced, and how many of them have been seen. */
  private announced = 0
  private seen = 0

  constructor(latenessMs: number) {
    this.latenessMs = latenessMs
  }

  /** True when the input is read in several parts. */
  get split(): boolean {
    return this.announced > 1
  }

  /** How many parts the input announced (0 when it is not split). */
  get partCount(): number {
    return this.announced
  }

  /** A batch from `part` (none: the input is not split) starts; `hasRecords` tells whether it brings any. */
  begin(part: Batch.Part | undefined, hasRecords: boolean): void {
    const key = part === undefined ? UNSPLIT : part.id
    let state = this.parts.get(key)
    if (state === undefined) {
      // An empty batch of a part not seen yet tells nothing, unless it ends the part.
      if (!hasRecords && part?.done !== true) {
        this.current = undefined
        return
      }
      state = { latest: Number.NEGATIVE_INFINITY }
      this.parts.set(key, state)
      this.open.add(state)
      if (part !== undefined) this.seen++
    }
    if (part !== undefined && part.of > this.announced) this.announced = part.of
    this.current = state
    this.latest = state.latest
    let others = this.seen < this.announced ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY
    if (others !== Number.NEGATIVE_INFINITY)
      for (const other of this.open) if (other !== state && other.latest < others) others = other.latest
    this.others = others
  }

  /** A record of the current batch at event time `t` (not late) was taken. */
  observe(t: number): void {
    if (t > this.latest) {
      this.latest = t
      const basis = Math.min(t, this.others)
      if (basis - this.latenessMs > this.value) {
        this.value = basis - this.latenessMs
        this.basis = basis
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
    for (const other of this.open) if (other.latest < basis) basis = other.latest
    if (basis - this.latenessMs > this.value) {
      this.value = basis - this.latenessMs
      this.basis = basis
    }
  }

  /** The watermark and every part's latest event time, as JSON (for checkpoints). */
  save(): WatermarkState {
    const parts: Array<[string | number | null, number | null, boolean]> = []
    for (const [key, state] of this.parts)
      parts.push([key === UNSPLIT ? null : key, finite(state.latest), this.open.has(state)])
    return { value: finite(this.value), basis: finite(this.basis), announced: this.announced, seen: this.seen, parts }
  }

  /** Takes back what `save` gave, into a fresh watermark. */
  load(state: WatermarkState): void {
    this.value = state.value ?? Number.NEGATIVE_INFINITY
    this.basis = state.basis ?? Number.NEGATIVE_INFINITY
    this.announced = state.announced
    this.seen = state.seen
    for (const [key, latest, open] of state.parts) {
      const part: PartState = { latest: latest ?? Number.NEGATIVE_INFINITY }
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
  /** Part id (`null`: the input is not split), its latest event time, whether it is still open. */
  readonly parts: ReadonlyArray<readonly [string | number | null, number | null, boolean]>
}

const finite = (n: number): number | null => (Number.isFinite(n) ? n : null)
