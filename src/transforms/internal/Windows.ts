/**
 * Event-time windows: which windows a record falls into, the watermark, and which windows are complete.
 *
 * The watermark is the largest event time seen so far minus the allowed lateness — per input part, when the source
 * reads its input in parts, and then the smallest over the parts still open (see `Watermark.ts`). A record whose event
 * time is behind the watermark is late. A window `[start, end)` is complete once the watermark reaches its end: every
 * record that could still fall into it would be late. Tumbling and sliding windows are aligned to the Unix epoch, like
 * PostgreSQL's `date_bin(size, t, 'epoch')`. A session window holds the records of one session key whose event times
 * are less than `gap` apart; it spans `[first event, last event + gap)` and merges with a neighbour when a record
 * bridges the two.
 *
 * With processing-time watermarks a record's time is the time it is processed (the clock, per batch), the watermark
 * is the clock, and a window closes when the clock reaches its end, on a timer even when no batch arrives.
 *
 * What a window holds (records, or the accumulators of its groups) is up to the caller; this module only needs to
 * create it and to merge two of them (sessions). Each window also remembers the oldest source timestamp of the input
 * batches whose records it holds, so that its output carries it (the runtime's end-to-end latency).
 */
import * as Duration from "effect/Duration"
import * as Batch from "../../core/Batch.ts"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import { AckTracker } from "./Acks.ts"
import { decode, encode, type Json } from "./StateCodec.ts"
import { show, showTime } from "./Values.ts"
import { Watermark, type WatermarkState } from "./Watermark.ts"

/** A window specification with durations in milliseconds. */
export interface WindowConfig {
  readonly kind: "tumbling" | "sliding" | "session"
  /** Window length (tumbling, sliding). */
  readonly sizeMs: number
  /** Distance between window starts (sliding; equals `sizeMs` for tumbling). */
  readonly slideMs: number
  /** Largest distance between two events of one session, exclusive (session). */
  readonly gapMs: number
  /** How far behind the largest event time seen a record may be and still count. */
  readonly latenessMs: number
  /** What happens to late records: `reject` to the dead letters (reason `late`), or `drop` and count as filtered. */
  readonly onLate: "reject" | "drop"
  /** The record field holding the event time (a `Date`, or epoch milliseconds). */
  readonly time: string
  /** Session windows are kept per value of these fields (none: one session stream for all records). */
  readonly by: ReadonlyArray<string>
  /**
   * Where records' times and the watermark come from: `event-time` (default), the `time` field and the slowest input
   * part; `processing-time`, the clock when a batch is processed (`time` is not read, nothing is ever late).
   */
  readonly watermark?: WatermarkKind | undefined
  /**
   * How long a part of an open-ended input (an unbounded source's partition) may send no records before it stops
   * holding the watermark back (default {@link DEFAULT_IDLE_MS}; `Infinity`: never). Bounded sources announce their
   * parts, which never go idle.
   */
  readonly idleMs?: number | undefined
}

/** Where a window stage takes records' times and its watermark from. */
export type WatermarkKind = "event-time" | "processing-time"

/** The default idle timeout of the parts of an unbounded source: 30 seconds. */
export const DEFAULT_IDLE_MS = 30_000

/** How often (at most) a processing-time window stage looks at the clock to close windows when no batch arrives. */
export const PROCESSING_TICK_MS = 1000

/** The interval of the timer that closes processing-time windows: a second, or less for shorter windows. */
export const tickMillis = (config: WindowConfig): number => {
  const grain = config.kind === "session" ? config.gapMs : config.kind === "sliding" ? config.slideMs : config.sizeMs
  return Math.max(1, Math.min(PROCESSING_TICK_MS, grain))
}

/** A problem with a window configuration, for a person; `undefined` when it is fine. */
export const checkConfig = (config: WindowConfig): string | undefined => {
  const positive = (name: string, ms: number) =>
    Number.isFinite(ms) && ms > 0 ? undefined : `the window's ${name} must be a positive duration, got ${ms} ms`
  if (config.watermark === "processing-time") {
    if (config.latenessMs !== 0)
      return "allowed lateness does not apply to processing-time windows: no record is ever behind the clock"
  } else if (config.time === "") return "a window needs the field that holds each record's event time"
  if (!(Number.isFinite(config.latenessMs) && config.latenessMs >= 0))
    return `the allowed lateness must be zero or positive, got ${config.latenessMs} ms`
  if (config.idleMs !== undefined && !(config.idleMs > 0))
    return `the idle timeout must be a positive duration, got ${config.idleMs} ms`
  switch (config.kind) {
    case "tumbling":
      return positive("size", config.sizeMs)
    case "sliding":
      return positive("size", config.sizeMs) ?? positive("slide", config.slideMs)
    case "session":
      return positive("gap", config.gapMs)
  }
}

/** One open (or just closed) window and what it holds. */
export interface Pane<C> {
  /** Creation order; a merged session keeps the older id. */
  readonly id: number
  start: number
  end: number
  /** The largest event time in the window (sessions). */
  maxTime: number
  /** The first input batch that put a record here. */
  minSeq: number
  /** The oldest source timestamp of the input batches that put records here (`Infinity`: none known). */
  oldest: number
  content: C
  open: boolean
  /** The session key (sessions). */
  readonly key: unknown
}

const mod = (a: number, b: number): number => ((a % b) + b) % b

const byEnd = <C>(a: Pane<C>, b: Pane<C>): number => a.end - b.end || a.start - b.start || a.id - b.id

/** A binary min-heap of (end, pane): the session that may close first on top. */
class EndHeap<C> {
  private readonly ends: Array<number> = []
  private readonly panes: Array<Pane<C>> = []

  get size(): number {
    return this.ends.length
  }

  peek(): number {
    return this.ends[0]!
  }

  push(end: number, pane: Pane<C>): void {
    let i = this.ends.length
    this.ends.push(end)
    this.panes.push(pane)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.ends[parent]! <= end) break
      this.ends[i] = this.ends[parent]!
      this.panes[i] = this.panes[parent]!
      i = parent
    }
    this.ends[i] = end
    this.panes[i] = pane
  }

  pop(): Pane<C> {
    const top = this.panes[0]!
    const end = this.ends.pop()!
    const pane = this.panes.pop()!
    const n = this.ends.length
    if (n > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && this.ends[r]! < this.ends[l]! ? r : l
        if (this.ends[c]! >= end) break
        this.ends[i] = this.ends[c]!
        this.panes[i] = this.panes[c]!
        i = c
      }
      this.ends[i] = end
      this.panes[i] = pane
    }
    return top
  }
}

/**
 * The open windows of one stage, the watermark, and the acks waiting for windows to close.
 *
 * Per batch: `begin(batch, now)` first. Per record: `isLate(t)`, then `assign(t, key, seq)` which fills `hits` with
 * the windows the record falls into and advances the watermark. Per batch again: `end(batch)`, then `closeReady()`
 * returns the windows the watermark has passed, in order of end. Processing-time windows also close on a timer:
 * `tick(now)`, then `closeReady()`.
 */
export class Windows<C> {
  readonly config: WindowConfig
  readonly watermark: Watermark
  readonly acks = new AckTracker()
  /** The windows the last assigned record fell into (the first `assign()` entries). */
  readonly hits: Array<Pane<C>> = []
  /** True when records' times and the watermark come from the clock. */
  readonly processingTime: boolean
  private nextId = 0
  /** The source timestamp of the current batch (`Infinity`: none). */
  private batchOldest = Number.POSITIVE_INFINITY
  /** Windows open now. */
  openCount = 0
  private readonly fixed = new Map<number, Pane<C>>()
  private last: Pane<C> | undefined
  private readonly sessions = new Map<unknown, Array<Pane<C>>>()
  private readonly heap = new EndHeap<C>()
  private readonly create: () => C
  private readonly merge: (into: C, from: C) => void

  constructor(config: WindowConfig, create: () => C, merge: (into: C, from: C) => void) {
    this.config = config
    this.create = create
    this.merge = merge
    this.processingTime = config.watermark === "processing-time"
    this.watermark = new Watermark(config.latenessMs, config.idleMs ?? DEFAULT_IDLE_MS)
  }

  /**
   * A batch starts, at processing time `now` (milliseconds): its records come from its part of the input. With
   * processing-time watermarks the watermark moves to `now`, every record's time.
   */
  begin(batch: Batch.Batch<unknown>, now = 0): void {
    this.batchOldest = batch.sourceTimestamp ?? Number.POSITIVE_INFINITY
    if (this.processingTime) this.watermark.advance(now)
    else this.watermark.begin(batch.part, batch.records.length > 0, now)
  }

  /** The batch's records were assigned; an input part it ends stops holding the watermark back. */
  end(batch: Batch.Batch<unknown>): void {
    if (!this.processingTime) this.watermark.end(batch.part)
  }

  /** The clock reads `now` with no batch in between: a processing-time watermark moves to it. */
  tick(now: number): void {
    if (this.processingTime) this.watermark.advance(now)
  }

  /** True when a record at event time `t` is late (see `Watermark.isLate`). */
  isLate(t: number): boolean {
    return this.watermark.isLate(t)
  }

  /** The number of windows open now. */
  get openWindows(): number {
    let n = this.fixed.size
    for (const list of this.sessions.values()) n += list.length
    return n
  }

  private open(start: number, end: number, seq: number, key: unknown): Pane<C> {
    const pane: Pane<C> = {
      id: this.nextId++,
      start,
      end,
      maxTime: start,
      minSeq: seq,
      oldest: this.batchOldest,
      content: this.create(),
      open: true,
      key
    }
    this.openCount++
    this.acks.opened(seq)
    return pane
  }

  /**
   * Puts a (not late) record at event time `t` into its windows and advances the watermark. Returns how many windows
   * it fell into (0 for a sliding window with gaps between windows); they are the first entries of `hits`.
   */
  assign(t: number, key: unknown, seq: number): number {
    this.watermark.observe(t)
    const c = this.config
    const oldest = this.batchOldest
    if (c.kind === "tumbling") {
      const start = t - mod(t, c.sizeMs)
      let pane = this.last
      if (pane === undefined || pane.start !== start || !pane.open) {
        pane = this.fixed.get(start)
        if (pane === undefined) {
          pane = this.open(start, start + c.sizeMs, seq, undefined)
          this.fixed.set(start, pane)
        }
        this.last = pane
      }
      if (oldest < pane.oldest) pane.oldest = oldest
      this.hits[0] = pane
      return 1
    }
    if (c.kind === "sliding") {
      let n = 0
      for (let start = t - mod(t, c.slideMs); start > t - c.sizeMs; start -= c.slideMs) {
        let pane = this.fixed.get(start)
        if (pane === undefined) {
          pane = this.open(start, start + c.sizeMs, seq, undefined)
          this.fixed.set(start, pane)
        }
        if (oldest < pane.oldest) pane.oldest = oldest
        this.hits[n++] = pane
      }
      return n
    }
    const pane = this.assignSession(t, key, seq)
    if (oldest < pane.oldest) pane.oldest = oldest
    this.hits[0] = pane
    return 1
  }

  private assignSession(t: number, key: unknown, seq: number): Pane<C> {
    const gap = this.config.gapMs
    let list = this.sessions.get(key)
    if (list === undefined) {
      list = []
      this.sessions.set(key, list)
    }
    let target: Pane<C> | undefined
    let merged = false
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!
      if (!(t < p.end && p.start < t + gap)) continue
      if (target === undefined) {
        target = p
        continue
      }
      const keep = target.id < p.id ? target : p
      const drop = keep === target ? p : target
      this.merge(keep.content, drop.content)
      keep.start = Math.min(keep.start, drop.start)
      keep.maxTime = Math.max(keep.maxTime, drop.maxTime)
      keep.oldest = Math.min(keep.oldest, drop.oldest)
      keep.end = keep.maxTime + gap
      if (drop.minSeq < keep.minSeq) {
        this.acks.closed(keep.minSeq)
        keep.minSeq = drop.minSeq
      } else this.acks.closed(drop.minSeq)
      drop.open = false
      this.openCount--
      target = keep
      merged = true
    }
    if (target === undefined) {
      target = this.open(t, t + gap, seq, key)
      target.maxTime = t
      list.push(target)
      this.heap.push(target.end, target)
      return target
    }
    if (merged) {
      let j = 0
      for (let i = 0; i < list.length; i++) if (list[i]!.open) list[j++] = list[i]!
      list.length = j
    }
    if (t < target.start) target.start = t
    if (t > target.maxTime) {
      target.maxTime = t
      target.end = t + gap
    }
    return target
  }

  /** Closes and returns the windows the watermark has passed, ordered by end, then start, then creation. */
  closeReady(): Array<Pane<C>> {
    const out: Array<Pane<C>> = []
    const w = this.watermark.value
    if (this.fixed.size > 0) {
      for (const pane of this.fixed.values()) if (pane.end <= w) out.push(pane)
      for (const pane of out) this.fixed.delete(pane.start)
    }
    while (this.heap.size > 0 && this.heap.peek() <= w) {
      const pane = this.heap.pop()
      if (!pane.open) continue
      if (pane.end > w) this.heap.push(pane.end, pane)
      else out.push(pane)
    }
    return this.finish(out)
  }

  /** Closes and returns every open window (at the end of a bounded input). */
  closeAll(): Array<Pane<C>> {
    const out: Array<Pane<C>> = Array.from(this.fixed.values())
    this.fixed.clear()
    for (const list of this.sessions.values()) for (const pane of list) if (pane.open) out.push(pane)
    return this.finish(out)
  }

  /** Calls `f` with every open window. */
  forEachOpen(f: (pane: Pane<C>) => void): void {
    for (const pane of this.fixed.values()) f(pane)
    for (const list of this.sessions.values()) for (const pane of list) if (pane.open) f(pane)
  }

  /** The open windows (their contents through `content`) and the watermark, as JSON (for checkpoints). */
  save(content: (c: C) => Json): WindowsState {
    const panes: Array<PaneState> = []
    for (const pane of this.fixed.values())
      panes.push([pane.id, pane.start, pane.end, pane.maxTime, null, content(pane.content), finiteOrNull(pane.oldest)])
    for (const list of this.sessions.values())
      for (const pane of list)
        if (pane.open)
          panes.push([
            pane.id,
            pane.start,
            pane.end,
            pane.maxTime,
            encode(pane.key),
            content(pane.content),
            finiteOrNull(pane.oldest)
          ])
    return { nextId: this.nextId, watermark: this.watermark.save(), panes }
  }

  /**
   * Takes back what `save` gave, into fresh windows. The restored windows hold no acks: a checkpoint released them.
   */
  load(state: WindowsState, content: (json: Json) => C): void {
    this.nextId = state.nextId
    this.watermark.load(state.watermark)
    for (const [id, start, end, maxTime, key, saved, oldest] of state.panes) {
      const session = this.config.kind === "session"
      const pane: Pane<C> = {
        id,
        start,
        end,
        maxTime,
        minSeq: -1,
        oldest: oldest ?? Number.POSITIVE_INFINITY,
        content: content(saved),
        open: true,
        key: session ? decode(key) : undefined
      }
      this.openCount++
      if (!session) {
        this.fixed.set(start, pane)
        continue
      }
      let list = this.sessions.get(pane.key)
      if (list === undefined) {
        list = []
        this.sessions.set(pane.key, list)
      }
      list.push(pane)
      this.heap.push(pane.end, pane)
    }
  }

  private finish(out: Array<Pane<C>>): Array<Pane<C>> {
    for (const pane of out) {
      pane.open = false
      this.openCount--
      this.acks.closed(pane.minSeq)
      if (this.config.kind === "session") {
        const list = this.sessions.get(pane.key)
        if (list !== undefined) {
          const i = list.indexOf(pane)
          if (i >= 0) list.splice(i, 1)
          if (list.length === 0) this.sessions.delete(pane.key)
        }
      }
    }
    if (out.length > 1) out.sort(byEnd)
    if (this.last !== undefined && !this.last.open) this.last = undefined
    return out
  }
}

/**
 * One open window as JSON: id, start, end, largest event time, session key, content, and the oldest source timestamp
 * of its records (`null`: none known; absent in states saved before it was kept).
 */
type PaneState = readonly [number, number, number, number, Json, Json, (number | null)?]

/** Open windows as JSON (see `Windows.save`). */
export interface WindowsState {
  readonly nextId: number
  readonly watermark: WatermarkState
  readonly panes: ReadonlyArray<PaneState>
}

const finiteOrNull = (n: number): number | null => (Number.isFinite(n) ? n : null)

/** The oldest source timestamp of the records of `panes` (`Infinity`: none known). */
export const oldestOf = (panes: ReadonlyArray<Pane<unknown>>): number => {
  let oldest = Number.POSITIVE_INFINITY
  for (const pane of panes) if (pane.oldest < oldest) oldest = pane.oldest
  return oldest
}

/** The output batches with records, stamped with the oldest source timestamp of the windows they emit. */
export const stamped = <B>(batches: Array<Batch.Batch<B>>, oldest: number): Array<Batch.Batch<B>> => {
  if (oldest === Number.POSITIVE_INFINITY) return batches
  for (let i = 0; i < batches.length; i++) {
    const batch = batches[i]!
    if (batch.records.length > 0)
      batches[i] = { ...batch, sourceTimestamp: Batch.oldest(batch.sourceTimestamp, oldest) }
  }
  return batches
}

/** A duration in milliseconds, for a person: `1h 30m`. */
export const human = (ms: number): string =>
  Number.isFinite(ms) && ms >= 0 ? Duration.format(Duration.millis(ms)) : `${ms} ms`

/** One line for a person: `tumbling 1h windows on eventTime (late records rejected)`. */
export const describeConfig = (c: WindowConfig): string => {
  const what =
    c.kind === "tumbling"
      ? `tumbling ${human(c.sizeMs)} windows`
      : c.kind === "sliding"
        ? `sliding ${human(c.sizeMs)} windows every ${human(c.slideMs)}`
        : `session windows (gap ${human(c.gapMs)}${c.by.length > 0 ? `, by ${c.by.join(", ")}` : ""})`
  if (c.watermark === "processing-time") return `${what} on processing time`
  const late = `${c.latenessMs > 0 ? `lateness ${human(c.latenessMs)}, ` : ""}late records ${c.onLate === "drop" ? "dropped" : "rejected"}`
  const idle =
    c.idleMs === undefined || c.idleMs === DEFAULT_IDLE_MS
      ? ""
      : Number.isFinite(c.idleMs)
        ? `, idle timeout ${human(c.idleMs)}`
        : ", parts never idle"
  return `${what} on ${c.time} (${late}${idle})`
}

/** The dead letter of a record behind the watermark. */
export const lateLetter = (
  stage: string,
  config: WindowConfig,
  windows: { readonly watermark: Watermark },
  t: number,
  record: unknown
): DeadLetter.DeadLetter => {
  const w = windows.watermark
  const own = w.ownLateness(t)
  if (own !== undefined)
    return {
      stage,
      reason: "late",
      message: `${config.time} ${showTime(t)} is behind its input part's watermark ${showTime(own.latest - config.latenessMs)} (the latest event time of part ${own.part} minus allowed lateness ${human(config.latenessMs)})`,
      record
    }
  const basis = !w.split
    ? `latest event time ${showTime(w.basis)}`
    : w.openEnded && w.basisParts < w.partCount
      ? `${showTime(w.basis)}, the latest event time ${w.basisParts} of ${w.partCount} input parts have reached (the others were idle or not read yet),`
      : `${showTime(w.basis)}, the latest event time all ${w.partCount} input parts have reached,`
  return {
    stage,
    reason: "late",
    message: `${config.time} ${showTime(t)} is behind the watermark ${showTime(w.value)} (${basis} minus allowed lateness ${human(config.latenessMs)})`,
    record
  }
}

/** The dead letter of a record without a usable event time. */
export const timeLetter = (
  stage: string,
  config: WindowConfig,
  value: unknown,
  record: unknown
): DeadLetter.DeadLetter => ({
  stage,
  reason: "invalid-event-time",
  message: `${config.time}: expected a timestamp (a Date or epoch milliseconds), got ${show(value)}`,
  record
})
