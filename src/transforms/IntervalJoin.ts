/**
 * Interval joins: two streams joined on a key and on event time, Flink's interval join. A record of the flow (the
 * left side) joins every record of another flow (the right side) with the same key whose event time lies within
 * `[left.time + lower, left.time + upper]`: an order and the payments made for it in the 5 minutes before it.
 *
 * ```ts
 * Pipeline.from(orders).pipe(
 *   Pipeline.intervalJoin(Pipeline.from(payments), {
 *     leftKey: "orderId", rightKey: "orderId",
 *     leftTime: "orderedAt", rightTime: "paidAt",
 *     between: ["-5 minutes", "0 minutes"]
 *   })
 * ) // Flow<Order & Omit<Payment, "orderId">>
 * ```
 *
 * Both sides are read at once, each may be unbounded, and the join keeps only what can still match: each side has a
 * watermark (its largest event time minus the allowed lateness, per input part, the slowest part still open), and a
 * left record is let go once the right side's watermark passes `left.time + upper` (a right record once the left
 * watermark passes `right.time - lower`), so memory is bounded by the interval and the watermarks, not by the length of
 * the streams. A record behind its own side's watermark is late: a dead letter with reason `late` (default) or
 * filtered (`onLate: "drop"`), as windows treat late data. A record without a usable event time is a dead letter
 * (`invalid-event-time`); a NULL key matches nothing.
 *
 * **Output.** Without `as`, an output record is the left record with the right record's fields added (the key fields
 * both sides name alike appear once); any other field both sides have does not compile (rename it on one side, or use
 * `as`). With `as: "payment"`, the right record is nested under that field instead, whatever its fields.
 *
 * **Inner and left joins.** An inner join (default) emits the pairs. A left join (`type: "left"`, which needs `as`)
 * emits as well each left record that met nothing, with `null` under `as`, once the right watermark passes
 * `left.time + upper` (at the end of a bounded input at the latest).
 *
 * **Acknowledgements.** An input batch's ack runs once all its records are let go from the state, after the outputs
 * they took part in: each side's acks run in that side's order. Row counts: a record that took part in an output (or
 * was emitted by a left join) is consumed, one that met nothing is filtered, so the RunReport's counts add up. When a
 * streaming run stops, the records still held are not acknowledged: the next run reads them again (at-least-once), or
 * restores them from its last checkpoint when the pipeline has a state store. Checkpoint barriers enter through the
 * left side (see `Flow.addBinaryStage`).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Batch from "../core/Batch.ts"
import { BuildError, type PipelineError, TransformError } from "../core/Errors.ts"
import { addBinaryStage, type Flow } from "../core/Flow.ts"
import * as Spans from "../core/Spans.ts"
import type { StageCounter } from "../core/Stage.ts"
import type * as State from "../core/State.ts"
import { combine } from "./internal/Acks.ts"
import {
  checkConfig,
  describeConfig,
  type IntervalJoinConfig,
  IntervalJoinState,
  LEFT,
  RIGHT,
  type Side
} from "./internal/IntervalJoinState.ts"
import type { Json } from "./internal/StateCodec.ts"
import { restoredState } from "./internal/Steps.ts"
import type { NameClash } from "./Join.ts"

export type { IntervalJoinConfig } from "./internal/IntervalJoinState.ts"

type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** `inner` emits the pairs; `left` also emits each left record that met nothing, with `null` for its match. */
export type IntervalJoinType = "inner" | "left"

/** What happens to a late record: `reject` sends it to the dead letters (reason `late`), `drop` counts it as filtered. */
export type OnLate = "reject" | "drop"

/**
 * A bound of the interval, relative to the left record's time: a duration, negative for "before" (`"-5 minutes"`,
 * `"0 seconds"`, `"1 hour"`, or milliseconds).
 */
export type Offset = Duration.Input

/** Options of an interval join whose field types are only known at run time (config-built pipelines). */
export interface IntervalJoinSpec {
  /** The left side's key field(s). */
  readonly leftKey: string | ReadonlyArray<string>
  /** The right side's key field(s), compared with `leftKey` in order. */
  readonly rightKey: string | ReadonlyArray<string>
  /** The left side's event-time field (a `Date` or epoch milliseconds). */
  readonly leftTime: string
  /** The right side's event-time field. */
  readonly rightTime: string
  /** `[lower, upper]`: a right record joins when `left.time + lower ≤ right.time ≤ left.time + upper`. */
  readonly between: readonly [Offset, Offset]
  /** The field that holds the matched right record (default: the right record's fields are merged in). */
  readonly as?: string | undefined
  /** `inner` (default) or `left` (which needs `as`). */
  readonly type?: IntervalJoinType | undefined
  /** How far behind its side's largest event time a record may be and still count (default 0). */
  readonly allowedLateness?: Duration.Input | undefined
  /** What happens to records behind their side's watermark (default `reject`). */
  readonly onLate?: OnLate | undefined
  /**
   * How long a part of an unbounded side (a streaming Kafka partition) may send no records before it stops holding
   * that side's watermark back (default 30 seconds; see `Window`).
   */
  readonly idleTimeout?: Duration.Input | undefined
  /** The stage name (default `interval_join`). */
  readonly name?: string | undefined
}

const millis = (input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  const d = Duration.fromInput(input)
  return d._tag === "Some" ? Duration.toMillis(d.value) : Number.NaN
}

const fields = (f: string | ReadonlyArray<string>): ReadonlyArray<string> => (typeof f === "string" ? [f] : f)

/** The configuration (bounds in milliseconds) of a spec. */
export const toConfig = (spec: IntervalJoinSpec): IntervalJoinConfig => ({
  leftKey: fields(spec.leftKey),
  rightKey: fields(spec.rightKey),
  leftTime: spec.leftTime,
  rightTime: spec.rightTime,
  lowerMs: millis(spec.between[0], Number.NaN),
  upperMs: millis(spec.between[1], Number.NaN),
  type: spec.type ?? "inner",
  as: spec.as,
  latenessMs: millis(spec.allowedLateness, 0),
  onLate: spec.onLate ?? "reject",
  ...(spec.idleTimeout === undefined ? {} : { idleMs: millis(spec.idleTimeout, Number.NaN) })
})

type Row = Readonly<Record<string, unknown>>

const END: unique symbol = Symbol("end")

/** What the two inputs send, merged: a batch of one side, or the end of one side. */
type Event =
  | { readonly side: Side; readonly batch: Batch.Batch<unknown> }
  | { readonly side: Side; readonly batch: typeof END }

const fail = (counter: StageCounter, message: string) =>
  Stream.fail(
    new BuildError({ stage: counter.info.name, message: `${counter.info.name}: ${message}`, retryable: false })
  )

/**
 * The interval join stage on records whose types are only known at run time (config-built pipelines).
 * `intervalJoin` is the typed form of the same stage.
 */
export const dynamic =
  <B, E2, R2>(right: Flow<B, E2, R2>, spec: IntervalJoinSpec) =>
  <A, E, R>(left: Flow<A, E, R>): Flow<Row, E | E2, R | R2> => {
    const config = toConfig(spec)
    const description = describeConfig(config, right.name)
    const bounded: readonly [boolean, boolean] = [left.bounded, right.bounded]
    return addBinaryStage<A, B, Row, E2, R2>(
      { name: spec.name ?? "interval_join", description, cardinality: "one-to-many", stateful: true },
      right,
      (counter, ctx) => (lefts, rights) => {
        const problem = checkConfig(config)
        if (problem !== undefined) return fail(counter, problem)
        // Its two inputs' partitions do not pair up: its state is the pipeline's, never per partition.
        if (ctx.partitionStates !== undefined)
          return fail(
            counter,
            `an interval join keeps one state for the whole pipeline, not one per partition: set the streaming state scope to "pipeline" (and run one process)`
          )
        return Stream.suspend(() => {
          const stage = counter.info.name
          const checkpointed = ctx.barriers !== undefined
          const state = new IntervalJoinState(config, counter, { right: right.name, checkpointed })
          const fingerprint = description
          const restored = restoredState(ctx, stage, fingerprint)
          if (typeof restored === "string") return fail(counter, restored.slice(stage.length + 2))
          if (restored !== undefined) state.load((restored as { readonly state: Json }).state)
          const ended: [boolean, boolean] = [false, false]
          // The last barrier (a graceful stop) waits for the right side to end too, so its state covers all of it.
          let finalBarrier: Batch.Batch<unknown> | undefined
          const onBarrier = (batch: Batch.Batch<unknown>): ReadonlyArray<Batch.Batch<Row>> => {
            const barrier = batch.barrier!
            const { ack, positions } = combine([...state.releaseAll(), batch])
            const states: ReadonlyArray<State.StageState> = [
              ...barrier.states,
              { stage, state: { fingerprint, state: state.save() } }
            ]
            return [
              {
                records: [],
                deadLetters: [],
                ack,
                ...(positions === undefined ? {} : { positions }),
                barrier: { ...barrier, states }
              }
            ]
          }
          const orFail = (
            result: ReadonlyArray<Batch.Batch<Row>> | TransformError
          ): Effect.Effect<ReadonlyArray<Batch.Batch<Row>>, PipelineError> =>
            result instanceof TransformError ? Effect.fail(result) : Effect.succeed(result)
          const handle = (event: Event): Effect.Effect<ReadonlyArray<Batch.Batch<Row>>, PipelineError> => {
            const { side, batch } = event
            if (batch === END) {
              ended[side] = true
              // An unbounded side ends only when the run stops: that says nothing about the records still to come.
              const out = bounded[side] ? state.end(side) : []
              if (out instanceof TransformError) return Effect.fail(out)
              if (side === RIGHT && finalBarrier !== undefined) {
                const barrier = finalBarrier
                finalBarrier = undefined
                return Effect.succeed([...out, ...onBarrier(barrier)])
              }
              return Effect.succeed(out)
            }
            if (batch.barrier !== undefined) {
              // Checkpoints enter through the left input; a barrier of the right source (a rebalance's drain) goes on
              // as its acknowledgement alone, committed with the next segment (the records it covers are held in
              // the state, unacknowledged, so a new owner of those partitions reads them again).
              if (side === RIGHT) return Effect.succeed([{ records: [], deadLetters: [], ack: batch.ack }])
              // Without checkpoints the state is not saved: a barrier passes on, and the acks of its records stay held.
              if (!checkpointed) return Effect.succeed([batch as Batch.Batch<Row>])
              if (batch.barrier.id === 0 && !ended[RIGHT]) {
                finalBarrier = batch
                return Effect.succeed([])
              }
              return Effect.succeed(onBarrier(batch))
            }
            return Spans.sampled(
              counter,
              Effect.clockWith((clock) => orFail(state.step(side, batch, clock.currentTimeMillisUnsafe()))),
              "stage.batch",
              batch.records.length
            )
          }
          const tagged = <X, R0>(side: Side, batches: Stream.Stream<Batch.Batch<X>, PipelineError, R0>) =>
            Stream.concat(
              Stream.map(batches, (batch): Event => ({ side, batch: batch as Batch.Batch<unknown> })),
              Stream.succeed<Event>({ side, batch: END })
            )
          return Stream.merge(tagged(LEFT, lefts), tagged(RIGHT, rights)).pipe(
            Stream.mapEffect(handle),
            Stream.flattenIterable,
            Stream.concat(
              Stream.unwrap(
                Effect.map(
                  Effect.suspend(() => orFail(state.finish(bounded[LEFT] && bounded[RIGHT]))),
                  (out) => Stream.fromIterable(out)
                )
              )
            )
          )
        })
      }
    )(left)
  }

/** A field list: one name, or several. */
type Fields<K extends string> = K | ReadonlyArray<K>

/** What an interval join needs from the left records: keys, an event time, and no field the output would overwrite. */
export type IntervalJoinNeeds<B, LK extends string, RK extends string, LT extends string, As extends string> = Simplify<
  { readonly [k in LK]: unknown } & { readonly [k in LT]: Date | number | null | undefined } & ([As] extends [never]
      ? { readonly [k in Exclude<keyof B, LK & RK>]?: NameClash }
      : { readonly [k in As]?: NameClash })
>

/**
 * The record an interval join emits: without `as`, the left record with the right record's fields (the key fields both
 * name alike once); with `as`, the left record with the right one under `as` (`null` in a left join when none met it).
 */
export type IntervalJoined<
  A,
  B,
  LK extends string,
  RK extends string,
  T extends IntervalJoinType,
  As extends string
> = [As] extends [never]
  ? Simplify<A & Omit<B, LK & RK>>
  : Simplify<A & { readonly [k in As]: T extends "left" ? B | null : B }>

/** Options of an interval join. */
export interface IntervalJoinOptions<
  LK extends string,
  RK extends string,
  LT extends string,
  RT extends string,
  T extends IntervalJoinType,
  As extends string
> {
  /** The left side's key field, or fields (`["tenant", "orderId"]`). */
  readonly leftKey: Fields<LK>
  /** The right side's key field(s), compared with `leftKey` in order. */
  readonly rightKey: Fields<RK>
  /** The left side's event-time field: a `Date` or epoch milliseconds. */
  readonly leftTime: LT
  /** The right side's event-time field. */
  readonly rightTime: RT
  /**
   * `[lower, upper]`, relative to the left record's time: a right record joins when
   * `left.time + lower ≤ right.time ≤ left.time + upper`, e.g. `["-5 minutes", "0 minutes"]`.
   */
  readonly between: readonly [Offset, Offset]
  /** `inner` (default) or `left`: also emit each left record that met nothing, with `null` under `as`. */
  readonly type?: T
  /** Nest the matched right record under this field instead of merging its fields (required by a left join). */
  readonly as?: As
  /** How far behind its side's largest event time a record may be and still count (default 0). */
  readonly allowedLateness?: Duration.Input
  /** What happens to records behind their side's watermark (default `reject`: dead letters with reason `late`). */
  readonly onLate?: OnLate
  /**
   * How long a part of an unbounded side (a streaming Kafka partition) may send no records before it stops holding
   * that side's watermark back, until it sends again (default 30 seconds, processing time; see `Window`).
   */
  readonly idleTimeout?: Duration.Input
  /** The stage name (default `interval_join`). */
  readonly name?: string
}

/**
 * Joins each record with the records of `right` (another flow, read at the same time) that have the same key and an
 * event time within `between` of its own (see the module comment for state, lateness, acks and counts).
 *
 * @example
 * Pipeline.intervalJoin(Pipeline.from(payments), {
 *   leftKey: "orderId", rightKey: "orderId", leftTime: "orderedAt", rightTime: "paidAt",
 *   between: ["-5 minutes", "0 minutes"], type: "left", as: "payment"
 * }) // Flow<Order & { payment: Payment | null }>
 */
export const intervalJoin =
  <
    B,
    E2,
    R2,
    const LK extends string,
    const RK extends string,
    const LT extends string,
    const RT extends string,
    const T extends IntervalJoinType = "inner",
    const As extends string = never
  >(
    right: Flow<B, E2, R2> &
      Flow<{ readonly [k in RK]: unknown } & { readonly [k in RT]: Date | number | null | undefined }, E2, R2>,
    options: IntervalJoinOptions<LK, RK, LT, RT, T, As> & ("left" extends T ? { readonly as: As } : unknown)
  ) =>
  <A extends IntervalJoinNeeds<B, LK, RK, LT, As>, E, R>(
    self: Flow<A, E, R>
  ): Flow<IntervalJoined<A, B, LK, RK, T, As>, E | E2, R | R2> =>
    dynamic(right, options as IntervalJoinSpec)(self) as unknown as Flow<
      IntervalJoined<A, B, LK, RK, T, As>,
      E | E2,
      R | R2
    >
