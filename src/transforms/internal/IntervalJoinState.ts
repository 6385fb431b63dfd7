/**
 * The state of an interval join: per input, the records that may still meet a record of the other input, their
 * watermark, and the acknowledgements of the batches they came in.
 *
 * A left record `l` and a right record `r` with equal keys join when `l.t + lower ≤ r.t ≤ l.t + upper`. Each input has
 * its own watermark (per input part, the slowest part still open, minus the allowed lateness: `Watermark.ts`), and a
 * record behind its own input's watermark is late (a dead letter, or filtered). Every record of the other input still
 * to come is at or after that input's watermark `W`, so a left record can be let go once `l.t + upper < W_right` and a
 * right record once `r.t - lower < W_left`: nothing that can still arrive can join them. A pair is found by whichever
 * of its two records arrives second, probing the other input's records of the same key in a time range, so each pair
 * is emitted exactly once. In a left join, a left record that met nothing is emitted with `null` for its match when it
 * is let go. An input that ends (a bounded one) has a watermark of +∞ from then on.
 *
 * Records are held per key in time order (a binary search finds the range to probe) and in a heap by time (what to let
 * go first). The records of an input batch are counted as held until the last of them is let go; then the batch's ack
 * may run (through `AckTracker`, in input order per input), after the outputs they took part in.
 *
 * Row counts: a record taken into the state counts as consumed at once; a record let go without having met anything
 * (and not emitted by a left join) moves from consumed to filtered then, so `in = consumed + filtered + rejected`
 * holds at every moment.
 */
import type * as Batch from "../../core/Batch.ts"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import { TransformError } from "../../core/Errors.ts"
import type { StageCounter } from "../../core/Stage.ts"
import { AckTracker, emit, type Held } from "./Acks.ts"
import { decode, encode, type Json } from "./StateCodec.ts"
import { anyNullish, compositeKey, show, showTime, timeOf } from "./Values.ts"
import { Watermark, type WatermarkState } from "./Watermark.ts"
import { DEFAULT_IDLE_MS, human } from "./Windows.ts"

type Row = Readonly<Record<string, unknown>>

/** The left input (the flow the join is applied to). */
export const LEFT = 0
/** The right input (the flow given to the join). */
export const RIGHT = 1
/** One of the two inputs. */
export type Side = typeof LEFT | typeof RIGHT

/** An interval join with its bounds in milliseconds. */
export interface IntervalJoinConfig {
  readonly leftKey: ReadonlyArray<string>
  readonly rightKey: ReadonlyArray<string>
  readonly leftTime: string
  readonly rightTime: string
  /** A right record joins a left one when `left.time + lowerMs ≤ right.time ≤ left.time + upperMs`. */
  readonly lowerMs: number
  readonly upperMs: number
  readonly type: "inner" | "left"
  /** The field that holds the matched right record; `undefined`: the right record's fields are merged in. */
  readonly as: string | undefined
  readonly latenessMs: number
  readonly onLate: "reject" | "drop"
  /**
   * How long a part of an open-ended input (a streaming Kafka partition) may send no records before it stops holding
   * its side's watermark back (default `DEFAULT_IDLE_MS` of the windows, 30 seconds; `Infinity`: never).
   */
  readonly idleMs?: number | undefined
}

/** A problem with an interval join's configuration, for a person; `undefined` when it is fine. */
export const checkConfig = (c: IntervalJoinConfig): string | undefined => {
  if (c.leftKey.length === 0 || c.rightKey.length === 0) return "an interval join needs key fields on both sides"
  if (c.leftKey.length !== c.rightKey.length)
    return `leftKey has ${c.leftKey.length} fields and rightKey ${c.rightKey.length}; they are compared in pairs`
  if (c.leftTime === "" || c.rightTime === "") return "an interval join needs the event-time field of both sides"
  if (!Number.isFinite(c.lowerMs) || !Number.isFinite(c.upperMs))
    return `the bounds of the interval must be durations, got ${c.lowerMs} ms and ${c.upperMs} ms`
  if (c.lowerMs > c.upperMs)
    return `the interval is empty: its lower bound (${signed(c.lowerMs)}) is after its upper bound (${signed(c.upperMs)})`
  if (!(Number.isFinite(c.latenessMs) && c.latenessMs >= 0))
    return `the allowed lateness must be zero or positive, got ${c.latenessMs} ms`
  if (c.idleMs !== undefined && !(c.idleMs > 0))
    return `the idle timeout must be a positive duration, got ${c.idleMs} ms`
  if (c.as === "") return "as: the field for the matched right record needs a name"
  if (c.type === "left" && c.as === undefined)
    return 'a left interval join puts the matched right record in a field of its own (null when none matched): set "as"'
  return undefined
}

/** A signed duration for a person: `-5m`, `+1h`, `0`. */
export const signed = (ms: number): string => (ms < 0 ? `-${human(-ms)}` : ms > 0 ? `+${human(ms)}` : "0")

const plus = (field: string, ms: number): string =>
  ms < 0 ? `${field} - ${human(-ms)}` : ms > 0 ? `${field} + ${human(ms)}` : field

/** One line for a person: `inner interval join with payments on orderId, payments.paidAt in [orderedAt - 5m, orderedAt]`. */
export const describeConfig = (c: IntervalJoinConfig, right: string): string => {
  const on = c.leftKey.map((k, i) => (k === c.rightKey[i] ? k : `${k} = ${right}.${c.rightKey[i]}`)).join(", ")
  const window = `${right}.${c.rightTime} in [${plus(c.leftTime, c.lowerMs)}, ${plus(c.leftTime, c.upperMs)}]`
  const late = `${c.latenessMs > 0 ? `lateness ${human(c.latenessMs)}, ` : ""}late records ${c.onLate === "drop" ? "dropped" : "rejected"}`
  const idle =
    c.idleMs === undefined || c.idleMs === DEFAULT_IDLE_MS
      ? ""
      : Number.isFinite(c.idleMs)
        ? `, idle timeout ${human(c.idleMs)}`
        : ", parts never idle"
  return `${c.type} interval join with ${right} on ${on}, ${window}${c.as === undefined ? "" : ` as ${c.as}`} (${late}${idle})`
}

/** A record held in the state. */
interface Entry {
  readonly record: Row
  readonly time: number
  readonly key: unknown
  /** The input batch it came in (per side), or -1 when restored from a checkpoint (its ack ran then). */
  readonly seq: number
  matched: boolean
}

/** The records of one key, in time order (equal times in arrival order); those before `head` are gone. */
interface Bucket {
  entries: Array<Entry>
  head: number
}

/** A binary min-heap of entries by time: the first to let go on top. */
class TimeHeap {
  private readonly items: Array<Entry> = []

  get size(): number {
    return this.items.length
  }

  peek(): Entry {
    return this.items[0]!
  }

  push(entry: Entry): void {
    const items = this.items
    let i = items.length
    items.push(entry)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]!.time <= entry.time) break
      items[i] = items[parent]!
      i = parent
    }
    items[i] = entry
  }

  pop(): Entry {
    const items = this.items
    const top = items[0]!
    const last = items.pop()!
    const n = items.length
    if (n > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && items[r]!.time < items[l]!.time ? r : l
        if (items[c]!.time >= last.time) break
        items[i] = items[c]!
        i = c
      }
      items[i] = last
    }
    return top
  }
}

/** The first index (within `[lo, entries.length)`) whose time is not before `t`. */
const lowerBound = (entries: ReadonlyArray<Entry>, lo: number, t: number): number => {
  let hi = entries.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (entries[mid]!.time < t) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The first index (within `[lo, entries.length)`) whose time is after `t`. */
const upperBound = (entries: ReadonlyArray<Entry>, lo: number, t: number): number => {
  let hi = entries.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (entries[mid]!.time <= t) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** One input of the join: its held records, watermark and held acks. */
class Input {
  readonly name: string
  readonly keys: ReadonlyArray<string>
  readonly time: string
  readonly watermark: Watermark
  readonly acks = new AckTracker()
  private readonly buckets = new Map<unknown, Bucket>()
  private readonly heap = new TimeHeap()
  /** Input batch → how many of its records are still held. */
  private readonly holding = new Map<number, number>()
  seq = 0
  size = 0
  /** Set once the input has ended: nothing more comes from it. */
  ended = false

  constructor(name: string, keys: ReadonlyArray<string>, time: string, latenessMs: number, idleMs: number) {
    this.name = name
    this.keys = keys
    this.time = time
    this.watermark = new Watermark(latenessMs, idleMs)
  }

  /** What the other input may assume of every record still to come from this one: its time is at least this. */
  get horizon(): number {
    return this.ended ? Number.POSITIVE_INFINITY : this.watermark.value
  }

  insert(entry: Entry): void {
    let bucket = this.buckets.get(entry.key)
    if (bucket === undefined) {
      bucket = { entries: [], head: 0 }
      this.buckets.set(entry.key, bucket)
    }
    const entries = bucket.entries
    const last = entries.length > bucket.head ? entries[entries.length - 1]! : undefined
    if (last === undefined || last.time <= entry.time) entries.push(entry)
    else entries.splice(upperBound(entries, bucket.head, entry.time), 0, entry)
    this.heap.push(entry)
    this.size++
  }

  /** Input batch `seq` left `n` of its records in the state: its ack waits for them. */
  holds(seq: number, n: number): void {
    if (n === 0) return
    this.holding.set(seq, n)
    this.acks.opened(seq)
  }

  /** Where `find` found the records: `entries[lo]` up to (not including) `entries[hi]`. */
  lo = 0
  hi = 0

  /** The held records of `key` whose time is in `[from, to]`: the entries from `lo` to `hi`, in time order. */
  find(key: unknown, from: number, to: number): ReadonlyArray<Entry> | undefined {
    const bucket = this.buckets.get(key)
    if (bucket === undefined) return undefined
    const entries = bucket.entries
    this.lo = lowerBound(entries, bucket.head, from)
    this.hi = upperBound(entries, this.lo, to)
    return entries
  }

  /** Lets go of every held record whose time is before `bound`, oldest first, telling `f` of each. */
  evictBefore(bound: number, f: (entry: Entry) => void): void {
    while (this.heap.size > 0 && this.heap.peek().time < bound) {
      const entry = this.heap.pop()
      // Entries leave their bucket in time order too: the ones before `bound` are a prefix of it.
      const bucket = this.buckets.get(entry.key)!
      bucket.head++
      if (bucket.head === bucket.entries.length) this.buckets.delete(entry.key)
      else if (bucket.head > 64 && bucket.head * 2 > bucket.entries.length) {
        bucket.entries.splice(0, bucket.head)
        bucket.head = 0
      }
      this.size--
      if (entry.seq >= 0) {
        const n = this.holding.get(entry.seq)! - 1
        if (n === 0) {
          this.holding.delete(entry.seq)
          this.acks.closed(entry.seq)
        } else this.holding.set(entry.seq, n)
      }
      f(entry)
    }
  }

  /** The held records as JSON: record, time, matched. */
  save(): Json {
    const out: Array<Json> = []
    for (const bucket of this.buckets.values())
      for (let i = bucket.head; i < bucket.entries.length; i++) {
        const e = bucket.entries[i]!
        out.push([encode(e.record), e.time, e.matched])
      }
    return { watermark: this.watermark.save() as unknown as Json, ended: this.ended, records: out }
  }

  /** Takes back what `save` gave, into a fresh input; the restored records hold no acks (the checkpoint ran them). */
  load(state: Json): void {
    const s = state as unknown as {
      readonly watermark: WatermarkState
      readonly ended: boolean
      readonly records: ReadonlyArray<readonly [Json, number, boolean]>
    }
    this.watermark.load(s.watermark)
    this.ended = s.ended
    for (const [json, time, matched] of s.records) {
      const record = decode(json) as Row
      this.insert({ record, time, key: compositeKey(record, this.keys), seq: -1, matched })
    }
  }
}

/** The state of one interval join stage (see the module comment). */
export class IntervalJoinState {
  private readonly config: IntervalJoinConfig
  private readonly counter: StageCounter
  private readonly stage: string
  private readonly inputs: readonly [Input, Input]
  private readonly pair: (left: Row, right: Row) => Row
  private readonly unmatched: ((left: Row) => Row) | undefined
  /** Right fields not repeated in a merged output: the key fields both sides name alike. */
  private readonly shared: ReadonlySet<string>
  /** With checkpoints, acks wait for the next barrier instead of the records' eviction. */
  private readonly checkpointed: boolean
  /**
   * Inputs that had ended in the checkpoint the state was restored from: a bounded input read again from its start
   * after a restart (a file: it has no positions to resume from) is already in the state, so it is passed over.
   */
  private readonly replayed: [boolean, boolean] = [false, false]
  private out: Array<Row> = []
  private checked = false
  private failure: TransformError | undefined

  constructor(
    config: IntervalJoinConfig,
    counter: StageCounter,
    options: { readonly right: string; readonly checkpointed: boolean }
  ) {
    this.config = config
    this.counter = counter
    this.stage = counter.info.name
    this.checkpointed = options.checkpointed
    this.inputs = [
      new Input("left", config.leftKey, config.leftTime, config.latenessMs, config.idleMs ?? DEFAULT_IDLE_MS),
      new Input(options.right, config.rightKey, config.rightTime, config.latenessMs, config.idleMs ?? DEFAULT_IDLE_MS)
    ]
    const as = config.as
    const shared = new Set(config.rightKey.filter((k) => config.leftKey.includes(k)))
    this.shared = shared
    this.pair =
      as === undefined
        ? (left, right) => {
            const row: Record<string, unknown> = { ...left }
            for (const f in right) if (!shared.has(f)) row[f] = right[f]
            return row
          }
        : (left, right) => ({ ...left, [as]: right })
    this.unmatched = config.type === "left" && as !== undefined ? (left) => ({ ...left, [as]: null }) : undefined
  }

  /** Records held now, both inputs together. */
  get size(): number {
    return this.inputs[LEFT].size + this.inputs[RIGHT].size
  }

  /** Records held now by one input. */
  held(side: Side): number {
    return this.inputs[side].size
  }

  /** The watermark of one input (minus infinity before its first record, plus infinity once it ended). */
  horizon(side: Side): number {
    return this.inputs[side].horizon
  }

  /** Fails the step when the first output of a batch would overwrite a left field (see the module comment). */
  private check(left: Row, right: Row | undefined): void {
    if (this.checked) return
    this.checked = true
    const as = this.config.as
    if (as !== undefined) {
      if (as in left)
        this.failure = new TransformError({
          stage: this.stage,
          message: `${this.stage}: the left records already have a field named ${JSON.stringify(as)}; give the matched records another name (as)`,
          retryable: false
        })
      return
    }
    if (right === undefined) return
    for (const f in right)
      if (!this.shared.has(f) && f in left) {
        this.failure = new TransformError({
          stage: this.stage,
          message: `${this.stage}: both sides have a field named ${JSON.stringify(f)}; rename it on one side, leave it out (select), or put the matched records in a field of their own (as)`,
          retryable: false
        })
        return
      }
  }

  private emitPair(left: Row, right: Row): void {
    this.check(left, right)
    this.out.push(this.pair(left, right))
  }

  private emitUnmatched(left: Row): void {
    this.check(left, undefined)
    this.out.push(this.unmatched!(left))
  }

  /** Lets go of what the watermarks no longer allow to match; emits the unmatched left records of a left join. */
  private evict(): void {
    const { lowerMs, upperMs } = this.config
    const [left, right] = this.inputs
    const counter = this.counter
    left.evictBefore(right.horizon - upperMs, (entry) => {
      if (entry.matched) return
      if (this.unmatched !== undefined) this.emitUnmatched(entry.record)
      else if (entry.seq >= 0) {
        counter.consumed--
        counter.filtered++
      }
    })
    right.evictBefore(left.horizon + lowerMs, (entry) => {
      if (entry.matched || entry.seq < 0) return
      counter.consumed--
      counter.filtered++
    })
    counter.stateEntries = this.size
  }

  private late(input: Input, t: number, record: Row): DeadLetter.DeadLetter {
    const w = input.watermark
    const basis = !w.split
      ? `latest event time ${showTime(w.basis)} of the ${input.name} input`
      : w.openEnded && w.basisParts < w.partCount
        ? `${showTime(w.basis)}, the latest event time ${w.basisParts} of ${w.partCount} parts of the ${input.name} input have reached (the others were idle or not read yet),`
        : `${showTime(w.basis)}, the latest event time all ${w.partCount} parts of the ${input.name} input have reached,`
    return {
      stage: this.stage,
      reason: "late",
      message: `${input.time} ${showTime(t)} is behind the watermark ${showTime(w.value)} (${basis} minus allowed lateness ${human(this.config.latenessMs)})`,
      record
    }
  }

  /**
   * Takes a batch of one input at processing time `now` (milliseconds, for the idle timeout of open-ended parts);
   * returns the output batches, or the failure that stops the run.
   */
  step(side: Side, batch: Batch.Batch<unknown>, now = 0): ReadonlyArray<Batch.Batch<Row>> | TransformError {
    const started = performance.now()
    const config = this.config
    const counter = this.counter
    if (this.replayed[side]) {
      counter.batches++
      counter.recordsIn += batch.records.length
      counter.filtered += batch.records.length
      return emit([], batch.deadLetters, [batch])
    }
    const input = this.inputs[side]
    const other = this.inputs[side === LEFT ? RIGHT : LEFT]
    const records = batch.records as ReadonlyArray<Row>
    const dead: Array<DeadLetter.DeadLetter> = []
    const seq = ++input.seq
    this.out = []
    this.checked = false
    this.failure = undefined
    input.watermark.begin(batch.part, records.length > 0, now)
    // A record of this input meets held records of the other one in `[t + from, t + to]`; it can still meet records
    // to come from the other input as long as `t >= keepFrom`.
    const from = side === LEFT ? config.lowerMs : -config.upperMs
    const to = side === LEFT ? config.upperMs : -config.lowerMs
    const keepFrom = side === LEFT ? other.horizon - config.upperMs : other.horizon + config.lowerMs
    const outer = side === LEFT && this.unmatched !== undefined
    let consumed = 0
    let filtered = 0
    let kept = 0
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const value = r[input.time]
      const t = timeOf(value)
      if (t === undefined) {
        dead.push({
          stage: this.stage,
          reason: "invalid-event-time",
          message: `${input.time} (${input.name} input): expected a timestamp (a Date or epoch milliseconds), got ${show(value)}`,
          record: r
        })
        continue
      }
      if (t < input.watermark.value) {
        if (config.onLate === "drop") filtered++
        else dead.push(this.late(input, t, r))
        continue
      }
      input.watermark.observe(t)
      if (anyNullish(r, input.keys)) {
        // A NULL key meets nothing; a left join still emits the left record.
        if (outer) {
          this.emitUnmatched(r)
          consumed++
        } else filtered++
        continue
      }
      const key = compositeKey(r, input.keys)
      let matched = false
      const found = other.find(key, t + from, t + to)
      if (found !== undefined && other.lo < other.hi) {
        matched = true
        for (let j = other.lo; j < other.hi; j++) {
          const entry = found[j]!
          entry.matched = true
          if (side === LEFT) this.emitPair(r, entry.record)
          else this.emitPair(entry.record, r)
        }
      }
      if (t >= keepFrom) {
        input.insert({ record: r, time: t, key, seq, matched })
        kept++
        consumed++
      } else if (matched) consumed++
      else if (outer) {
        this.emitUnmatched(r)
        consumed++
      } else filtered++
    }
    input.watermark.end(batch.part)
    input.holds(seq, kept)
    input.acks.hold(seq, batch)
    counter.batches++
    counter.recordsIn += records.length
    counter.consumed += consumed
    counter.filtered += filtered
    counter.rejected += dead.length
    this.evict()
    counter.recordsOut += this.out.length
    counter.busy(performance.now() - started)
    if (this.failure !== undefined) return this.failure
    return emit(this.out, dead.length === 0 ? batch.deadLetters : batch.deadLetters.concat(dead), this.released())
  }

  /** The acks whose records are all let go (none with checkpoints: those wait for the next barrier). */
  private released(): Array<Held> {
    if (this.checkpointed) return []
    return [...this.inputs[LEFT].acks.release(), ...this.inputs[RIGHT].acks.release()]
  }

  /** A bounded input ended: nothing more comes from it, so the other input's records can only meet what is held. */
  end(side: Side): ReadonlyArray<Batch.Batch<Row>> | TransformError {
    this.inputs[side].ended = true
    this.out = []
    this.checked = false
    this.failure = undefined
    this.evict()
    this.counter.recordsOut += this.out.length
    if (this.failure !== undefined) return this.failure
    return emit(this.out, [], this.released())
  }

  /**
   * Both inputs are over. A bounded run lets go of everything (a left join emits its unmatched records) and releases
   * every ack; a stopped streaming run keeps what it holds unacknowledged, to be read again by the next run (or, with
   * checkpoints, restored from the last one).
   */
  finish(bounded: boolean): ReadonlyArray<Batch.Batch<Row>> | TransformError {
    if (!bounded) return []
    this.inputs[LEFT].ended = true
    this.inputs[RIGHT].ended = true
    const done = this.end(LEFT)
    if (done instanceof TransformError) return done
    const acks = [...this.inputs[LEFT].acks.releaseAll(), ...this.inputs[RIGHT].acks.releaseAll()]
    return acks.length === 0 ? done : [...done, ...emit([], [], acks)]
  }

  /** Every held ack, for a checkpoint barrier: the state it saves covers their records. */
  releaseAll(): ReadonlyArray<Held> {
    return [...this.inputs[LEFT].acks.releaseAll(), ...this.inputs[RIGHT].acks.releaseAll()]
  }

  /** The state as JSON (for checkpoints). */
  save(): Json {
    return [this.inputs[LEFT].save(), this.inputs[RIGHT].save()]
  }

  /** Takes back what `save` gave, into a fresh state. */
  load(state: Json): void {
    const [left, right] = state as readonly [Json, Json]
    this.inputs[LEFT].load(left)
    this.inputs[RIGHT].load(right)
    this.replayed[LEFT] = this.inputs[LEFT].ended
    this.replayed[RIGHT] = this.inputs[RIGHT].ended
    this.counter.stateEntries = this.size
  }
}
