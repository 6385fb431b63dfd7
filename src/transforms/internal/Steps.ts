/**
 * The loop of a stateful stage (window, aggregate): a synchronous step per batch, then a final flush when the input
 * ends. Each step is told the processing time (the `Clock`, so `TestClock` controls it). A stage that must act on
 * time alone (processing-time windows close when the clock passes their end, batches or not) also gets a timer that
 * ticks while the input lasts. A batch the stage samples for tracing runs its step in a `stage.batch` span.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Batch from "../../core/Batch.ts"
import * as Spans from "../../core/Spans.ts"
import type { RunContext, StageCounter } from "../../core/Stage.ts"
import { combine, type Held } from "./Acks.ts"

/**
 * The state a stage saved at the checkpoint a run resumes from: `undefined` when there is none, an error message for a
 * person when it was saved by a stage with another spec (the pipeline changed: its state cannot be reused).
 */
export const restoredState = (ctx: RunContext, stage: string, fingerprint: string): unknown => {
  const saved = ctx.restored?.[stage] as { readonly fingerprint?: unknown } | undefined
  if (saved === undefined) return undefined
  if (saved.fingerprint !== fingerprint)
    return `${stage}: the checkpoint to resume from holds the state of a stage "${stage}" that was ${JSON.stringify(saved.fingerprint)}, not ${JSON.stringify(fingerprint)}; the pipeline changed since it was saved: remove the pipeline's state from the state store to start over, or restore the old spec`
  return saved
}

/** How a stateful stage takes part in checkpoints (see `core/State.ts`). */
export interface Checkpointing {
  /** The stage's state now, JSON-able. */
  readonly snapshot: () => unknown
  /** Every ack (and its positions) the stage holds: once its state is saved, they can go. */
  readonly release: () => ReadonlyArray<Held>
}

/**
 * A barrier reaches the stage: with `checkpointing`, it leaves carrying the stage's state and the acks it held;
 * without, it passes on as it came (the stage keeps its acks, and a restart reads again what they cover).
 */
const onBarrier = <A, B>(
  batch: Batch.Batch<A>,
  counter: StageCounter,
  checkpointing: Checkpointing | undefined
): ReadonlyArray<Batch.Batch<B>> => {
  const barrier = batch.barrier!
  if (checkpointing === undefined) return [batch as unknown as Batch.Batch<B>]
  const state = checkpointing.snapshot()
  const { ack, positions } = combine([...checkpointing.release(), batch])
  return [
    {
      records: [],
      deadLetters: [],
      ack,
      ...(positions === undefined ? {} : { positions }),
      barrier: { id: barrier.id, states: [...barrier.states, { stage: counter.info.name, state }] }
    }
  ]
}

/** A timer for a stage: every `everyMs` milliseconds, `run` with the time. */
export interface Tick<B> {
  readonly everyMs: number
  readonly run: (now: number) => ReadonlyArray<Batch.Batch<B>>
}

const TICK: unique symbol = Symbol("tick")

/**
 * Runs `step` on every batch of `batches`, in order, with the processing time in milliseconds, then emits what
 * `finish` returns. With `tick`, `tick.run` also runs every `tick.everyMs` until the input ends.
 */
export const stepped = <A, B, E, R>(
  batches: Stream.Stream<Batch.Batch<A>, E, R>,
  counter: StageCounter,
  step: (batch: Batch.Batch<A>, now: number) => ReadonlyArray<Batch.Batch<B>>,
  finish: () => ReadonlyArray<Batch.Batch<B>>,
  checkpointing?: Checkpointing,
  tick?: Tick<B>
): Stream.Stream<Batch.Batch<B>, E, R> =>
  Stream.unwrap(
    Effect.clockWith((clock) => {
      const steps = (input: Batch.Batch<A>) =>
        input.barrier !== undefined
          ? Effect.succeed(onBarrier<A, B>(input, counter, checkpointing))
          : Spans.sampled(
              counter,
              Effect.sync(() => step(input, clock.currentTimeMillisUnsafe())),
              "stage.batch",
              input.records.length
            )
      const outputs =
        tick === undefined
          ? Stream.mapEffect(batches, steps)
          : Stream.merge(
              batches,
              Stream.map(Stream.tick(tick.everyMs), (): typeof TICK => TICK),
              { haltStrategy: "left" }
            ).pipe(
              Stream.mapEffect((event) =>
                event === TICK ? Effect.sync(() => tick.run(clock.currentTimeMillisUnsafe())) : steps(event)
              )
            )
      return Effect.succeed(
        outputs.pipe(Stream.flattenIterable, Stream.concat(Stream.suspend(() => Stream.fromIterable(finish()))))
      )
    })
  )
