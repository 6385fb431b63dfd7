/**
 * Event-time windows: tumbling, sliding (hopping) and session windows over a timestamp field of the records.
 *
 * The watermark is the largest event time seen so far minus the allowed lateness; when the source reads its input in
 * parts (table slices, Kafka partitions, files, objects: `Batch.part`), each part has its own and the stage goes by the
 * slowest part still open, so a part read ahead never makes another part's records late. A record behind the watermark
 * is late, and so is (bounded sources) a record behind its own part's latest event time minus the allowed lateness, so
 * that what is late does not depend on how the parts interleave (a split run rejects what one process rejects). A late
 * record goes to the dead letters with reason `late` (default) or is dropped and counted as filtered
 * (`onLate: "drop"`); it is never dropped silently. A window is emitted once the watermark reaches its end, and at the
 * end of a bounded input every open window is emitted. Output records carry `windowStart` and `windowEnd`.
 *
 * The parts of an unbounded source (a streaming Kafka read's partitions) are open-ended: a part that sends no records
 * for `idleTimeout` (default 30 seconds, processing time) stops holding the watermark back until it sends again, so
 * one quiet partition does not hold every window open; its records that come after the watermark passed them are late
 * as above. At the start, the watermark waits at most one idle timeout for parts not heard of yet (a streaming Kafka
 * read says how many partitions it knew of, and the wait ends once that many have sent). Bounded sources announce their parts, which never go idle, so the idle timeout never changes their
 * results. With `watermark: "processing-time"` a record's time is the time it is processed and windows close by the
 * clock (within a second of their end, on a timer, batches or not); `time` is then not needed and nothing is late.
 * Every output batch carries the oldest source timestamp of the records of the windows it emits (`sourceTimestamp`),
 * so the runtime's end-to-end latency covers windowed pipelines.
 *
 * On its own, `window` emits every record of a window (once per window it falls into) when that window closes. Put
 * `aggregate` right after it and group by `windowStart`/`windowEnd` to get per-window aggregates: the two stages then
 * run as one, keeping per open window only one accumulator per group, not the records.
 *
 * ```ts
 * Pipeline.from(transactions).pipe(
 *   Pipeline.window(Window.tumbling("1 hour", { time: "eventTime", allowedLateness: "5 minutes" })),
 *   Pipeline.aggregate({ groupBy: ["userId", "windowStart", "windowEnd"], fields: { total: Agg.sum("amount") } })
 * ) // Flow<{ userId: string; windowStart: Date; windowEnd: Date; total: BigDecimal }>
 * ```
 */
import * as Duration from "effect/Duration"
import * as Stream from "effect/Stream"
import type * as Batch from "../core/Batch.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { BuildError } from "../core/Errors.ts"
import { addStage, type Flow } from "../core/Flow.ts"
import type { RunContext, StageCounter } from "../core/Stage.ts"
import { emit } from "./internal/Acks.ts"
import { decode, encode, type Json } from "./internal/StateCodec.ts"
import { type Checkpointing, partitioned, restoredState, stepped } from "./internal/Steps.ts"
import { compositeKey, timeOf } from "./internal/Values.ts"
import {
  checkConfig,
  DEFAULT_IDLE_MS,
  describeConfig,
  lateLetter,
  oldestOf,
  type Pane,
  stamped,
  tickMillis,
  timeLetter,
  type WindowConfig,
  Windows,
  type WindowsState
} from "./internal/Windows.ts"

export type { WatermarkKind, WindowConfig } from "./internal/Windows.ts"

/** The default idle timeout of the parts of an unbounded source (30 seconds); see {@link WindowOptions}. */
export const DEFAULT_IDLE_TIMEOUT: Duration.Duration = Duration.millis(DEFAULT_IDLE_MS)

type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** The bounds every windowed record carries: `[windowStart, windowEnd)`. */
export interface WindowBounds {
  readonly windowStart: Date
  readonly windowEnd: Date
}

/** A record with the bounds of its window added. */
export type Windowed<A> = Simplify<Omit<A, "windowStart" | "windowEnd"> & WindowBounds>

/** What happens to a late record: `reject` sends it to the dead letters (reason `late`), `drop` counts it as filtered. */
export type OnLate = "reject" | "drop"

/** Options every event-time window takes. */
export interface WindowOptions<T extends string> {
  /** The field holding each record's event time: a `Date` (or epoch milliseconds). */
  readonly time: T
  /** How far behind the largest event time seen a record may be and still count (default 0). */
  readonly allowedLateness?: Duration.Input
  /** What happens to records behind the watermark (default `reject`). */
  readonly onLate?: OnLate
  /**
   * How long a part of an unbounded source (a streaming Kafka partition) may send no records before it stops holding
   * the watermark back, until it sends again (default 30 seconds, processing time; `Infinity`: never). Bounded sources
   * announce their parts, which never go idle.
   */
  readonly idleTimeout?: Duration.Input
  /** Event time (the default): records' times come from `time`, the watermark from the slowest input part. */
  readonly watermark?: "event-time"
}

/**
 * Options of a processing-time window: a record's time is the time it is processed (the clock), and windows close
 * when the clock passes their end, on a timer even when no batch arrives. Nothing is late.
 */
export interface ProcessingTimeOptions {
  readonly watermark: "processing-time"
  readonly time?: undefined
}

/**
 * A window specification over records with an event-time field `T` (and, for sessions, session key fields `By`).
 * Build one with `tumbling`, `sliding` or `session`.
 */
export interface WindowSpec<out T extends string = string, out By extends string = string> {
  readonly _tag: "WindowSpec"
  readonly config: WindowConfig
  /** One line for a person: `tumbling 1h windows on eventTime`. */
  readonly description: string
  /** Phantom: the time and key fields, for typing. */
  readonly "~fields"?: (_: never) => readonly [T, By]
}

const millis = (input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  const d = Duration.fromInput(input)
  return d._tag === "Some" ? Duration.toMillis(d.value) : Number.NaN
}

/** Builds a window spec from a resolved configuration (durations in milliseconds). */
export const fromConfig = <T extends string = string, By extends string = string>(
  config: WindowConfig
): WindowSpec<T, By> => ({ _tag: "WindowSpec", config, description: describeConfig(config) })

const base = <T extends string>(
  options: WindowOptions<T> | ProcessingTimeOptions
): Pick<WindowConfig, "time" | "latenessMs" | "onLate" | "watermark" | "idleMs"> =>
  options.watermark === "processing-time"
    ? { time: "", latenessMs: 0, onLate: "reject", watermark: "processing-time" }
    : {
        time: options.time,
        latenessMs: millis(options.allowedLateness, 0),
        onLate: options.onLate ?? "reject",
        ...(options.idleTimeout === undefined ? {} : { idleMs: millis(options.idleTimeout, DEFAULT_IDLE_MS) })
      }

/**
 * Fixed-size, non-overlapping windows aligned to the Unix epoch: `[k·size, (k+1)·size)`.
 *
 * @example
 * Window.tumbling("1 hour", { time: "eventTime" })
 * Window.tumbling("1 minute", { watermark: "processing-time" })
 */
export const tumbling = <const T extends string = never>(
  size: Duration.Input,
  options: WindowOptions<T> | ProcessingTimeOptions
): WindowSpec<T, never> => {
  const sizeMs = millis(size, Number.NaN)
  return fromConfig({ kind: "tumbling", sizeMs, slideMs: sizeMs, gapMs: 0, by: [], ...base(options) })
}

/**
 * Windows of `size` starting every `slide` (hopping windows), aligned to the Unix epoch; a record falls into every
 * window that covers its event time (`size / slide` of them when `slide` divides `size`).
 *
 * @example
 * Window.sliding("1 hour", "10 minutes", { time: "eventTime", allowedLateness: "2 minutes" })
 */
export const sliding = <const T extends string = never>(
  size: Duration.Input,
  slide: Duration.Input,
  options: WindowOptions<T> | ProcessingTimeOptions
): WindowSpec<T, never> =>
  fromConfig({
    kind: "sliding",
    sizeMs: millis(size, Number.NaN),
    slideMs: millis(slide, Number.NaN),
    gapMs: 0,
    by: [],
    ...base(options)
  })

/**
 * Session windows: the records of one session key (`by`) whose event times are less than `gap` apart form a session
 * `[first event, last event + gap)`. Without `by`, all records share one sequence of sessions.
 *
 * @example
 * Window.session("30 minutes", { time: "eventTime", by: ["userId"] })
 */
export const session = <const T extends string = never, const By extends string = never>(
  gap: Duration.Input,
  options: (WindowOptions<T> | ProcessingTimeOptions) & { readonly by?: ReadonlyArray<By> }
): WindowSpec<T, By> =>
  fromConfig({
    kind: "session",
    sizeMs: 0,
    slideMs: 0,
    gapMs: millis(gap, Number.NaN),
    by: options.by ?? [],
    ...base(options)
  })

/** A flow straight out of `window`: `aggregate` applied to it runs per window, as one stage with the window. */
export interface WindowedFlow<A, out E = never, out R = never> extends Flow<Windowed<A>, E, R> {
  readonly windowing: {
    readonly spec: WindowSpec
    /** The flow before the window stage. */
    readonly input: Flow<A, E, R>
  }
}

/** The window stage a flow ends with, and the flow before it; `undefined` when its last stage is not `window`. */
export const windowingOf = <A, E, R>(
  flow: Flow<A, E, R>
): { readonly spec: WindowSpec; readonly input: Flow<unknown, E, R> } | undefined => {
  const windowing = (flow as { readonly windowing?: WindowedFlow<unknown, E, R>["windowing"] }).windowing
  return typeof windowing === "object" ? windowing : undefined
}

/** The records of one window, with their arrival numbers (to merge sessions in arrival order). */
interface Buffer<A> {
  records: Array<A>
  seqs: Array<number>
}

const mergeBuffers = <A>(into: Buffer<A>, from: Buffer<A>): void => {
  const records: Array<A> = []
  const seqs: Array<number> = []
  let i = 0
  let j = 0
  while (i < into.seqs.length || j < from.seqs.length) {
    if (j >= from.seqs.length || (i < into.seqs.length && into.seqs[i]! < from.seqs[j]!)) {
      records.push(into.records[i]!)
      seqs.push(into.seqs[i++]!)
    } else {
      records.push(from.records[j]!)
      seqs.push(from.seqs[j++]!)
    }
  }
  into.records = records
  into.seqs = seqs
}

/**
 * The window stage on records whose type is only known at run time (config-built pipelines). `window` is the typed
 * form of the same stage.
 */
export const dynamic =
  (spec: WindowSpec, options?: { readonly name?: string }) =>
  <A, E, R>(self: Flow<A, E, R>): WindowedFlow<A, E, R> => {
    const config = spec.config
    const flow = addStage<A, Windowed<A>>(
      {
        name: options?.name ?? "window",
        description: `window: ${spec.description}`,
        cardinality: "one-to-many",
        stateful: true
      },
      (counter, ctx) => (batches) => {
        const problem = checkConfig(config)
        if (problem !== undefined)
          return Stream.fail(
            new BuildError({ stage: counter.info.name, message: `${counter.info.name}: ${problem}`, retryable: false })
          )
        return Stream.suspend(() => {
          const state = partitioned(ctx, (c) => makeWindowState<A>(config, counter, c))
          if (typeof state === "string")
            return Stream.fail(new BuildError({ stage: counter.info.name, message: state, retryable: false }))
          const tick = state.tick
          return stepped(
            batches,
            counter,
            state.step,
            state.finish,
            state.checkpointing,
            config.watermark === "processing-time" && tick !== undefined
              ? { everyMs: tickMillis(config), run: tick }
              : undefined,
            state.failure
          )
        })
      }
    )(self)
    return Object.assign(flow, { windowing: { spec: spec as WindowSpec, input: self } })
  }

/**
 * Puts one batch's records into the buffers of their windows (late and timeless ones to `dead`), counting in
 * `counter`; returns the next arrival number. A function of its own, so that it is optimized once for every batch (in
 * the stage's closure, code after the loop optimized mid-loop on the first batch fell back to the interpreter on every
 * batch).
 */
const assignRecords = <A>(
  records: ReadonlyArray<A>,
  now: number,
  seq: number,
  arrival: number,
  windows: Windows<Buffer<A>>,
  stage: string,
  counter: StageCounter,
  dead: Array<DeadLetter.DeadLetter>
): number => {
  const config = windows.config
  const processing = windows.processingTime
  const time = config.time
  const by = config.by
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as Readonly<Record<string, unknown>>
    const value = processing ? now : r[time]
    const t = timeOf(value)
    if (t === undefined) {
      dead.push(timeLetter(stage, config, value, r))
      continue
    }
    if (windows.isLate(t)) {
      if (config.onLate === "drop") counter.filtered++
      else dead.push(lateLetter(stage, config, windows, t, r))
      continue
    }
    const n = windows.assign(t, by.length === 0 ? "" : compositeKey(r, by), seq)
    if (n === 0) counter.filtered++
    else counter.consumed++
    counter.stateEntries += n
    for (let j = 0; j < n; j++) {
      const content = windows.hits[j]!.content
      content.records.push(records[i]!)
      content.seqs.push(arrival)
    }
    arrival++
  }
  return arrival
}

const makeWindowState = <A>(config: WindowConfig, counter: StageCounter, ctx: RunContext) => {
  const windows = new Windows<Buffer<A>>(config, () => ({ records: [], seqs: [] }), mergeBuffers)
  const stage = counter.info.name
  let seq = 0
  let arrival = 0
  // With checkpoints, acks wait for the next one (the windows' state then covers their records).
  const checkpointed = ctx.barriers !== undefined
  const fingerprint = describeConfig(config)
  const restored = restoredState(ctx, stage, fingerprint)
  if (typeof restored === "string") return restored
  if (restored !== undefined) {
    const saved = restored as { readonly windows: WindowsState; readonly arrival: number }
    windows.load(saved.windows, (json) => {
      const [records, seqs] = json as readonly [ReadonlyArray<Json>, Array<number>]
      return { records: records.map((r) => decode(r) as A), seqs }
    })
    arrival = saved.arrival
    windows.forEachOpen((pane) => {
      counter.stateEntries += pane.content.records.length
    })
    counter.openWindows = windows.openCount
  }
  const checkpointing: Checkpointing | undefined = checkpointed
    ? {
        snapshot: () => ({
          fingerprint,
          arrival,
          windows: windows.save((buffer) => [buffer.records.map(encode), buffer.seqs])
        }),
        release: () => windows.acks.releaseAll()
      }
    : undefined
  const flush = (panes: ReadonlyArray<Pane<Buffer<A>>>): Array<Windowed<A>> => {
    const out: Array<Windowed<A>> = []
    for (const pane of panes) {
      const windowStart = new Date(pane.start)
      const windowEnd = new Date(pane.end)
      const records = pane.content.records
      counter.stateEntries -= records.length
      for (let i = 0; i < records.length; i++)
        out.push({ ...(records[i] as object), windowStart, windowEnd } as unknown as Windowed<A>)
    }
    return out
  }
  return {
    step: (batch: Batch.Batch<A>, now: number): Array<Batch.Batch<Windowed<A>>> => {
      const started = performance.now()
      const records = batch.records
      const dead: Array<DeadLetter.DeadLetter> = []
      seq++
      windows.begin(batch, now)
      arrival = assignRecords(records, now, seq, arrival, windows, stage, counter, dead)
      windows.end(batch)
      windows.acks.hold(seq, batch)
      const panes = windows.closeReady()
      const out = flush(panes)
      counter.openWindows = windows.openCount
      counter.batches++
      counter.recordsIn += records.length
      counter.recordsOut += out.length
      counter.rejected += dead.length
      counter.busy(performance.now() - started)
      return stamped(
        emit(
          out,
          dead.length === 0 ? batch.deadLetters : batch.deadLetters.concat(dead),
          checkpointed ? [] : windows.acks.release()
        ),
        oldestOf(panes)
      )
    },
    tick: (now: number): Array<Batch.Batch<Windowed<A>>> => {
      windows.tick(now)
      const panes = windows.closeReady()
      if (panes.length === 0) return []
      const out = flush(panes)
      counter.openWindows = windows.openCount
      counter.recordsOut += out.length
      return stamped(emit(out, [], checkpointed ? [] : windows.acks.release()), oldestOf(panes))
    },
    finish: (): Array<Batch.Batch<Windowed<A>>> => {
      // A checkpointed stream that stops keeps its open windows in the state it saved, for the next run.
      if (checkpointed) return []
      const panes = windows.closeAll()
      const out = flush(panes)
      counter.openWindows = windows.openCount
      counter.recordsOut += out.length
      return stamped(emit(out, [], windows.acks.releaseAll()), oldestOf(panes))
    },
    checkpointing
  }
}

/**
 * Assigns records to event-time (or processing-time) windows and emits each window's records, with `windowStart` and
 * `windowEnd`, once the watermark passes the window's end (and every open window at the end of a bounded input). Late
 * records go to the dead letters (reason `late`) or are counted as filtered, as the spec says. Input acknowledgements
 * are held until every window their records fell into has been emitted; output batches carry the oldest source
 * timestamp of the windows they emit.
 *
 * Follow it with `aggregate` grouped by `windowStart`/`windowEnd` for per-window aggregates in bounded memory.
 *
 * @example
 * Pipeline.window(Window.session("30 minutes", { time: "eventTime", by: ["userId"] }))
 */
export const window =
  <T extends string, By extends string>(spec: WindowSpec<T, By>, options?: { readonly name?: string }) =>
  <A extends { readonly [k in T]: Date | number | null | undefined } & { readonly [k in By]: unknown }, E, R>(
    self: Flow<A, E, R>
  ): WindowedFlow<A, E, R> =>
    dynamic(spec as WindowSpec, options)(self)
