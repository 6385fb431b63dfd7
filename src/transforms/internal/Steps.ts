/**
 * The loop of a stateful stage (window, aggregate): a synchronous step per batch, then a final flush when the input
 * ends. Each step is told the processing time (the `Clock`, so `TestClock` controls it). A stage that must act on
 * time alone (processing-time windows close when the clock passes their end, batches or not) also gets a timer that
 * ticks while the input lasts. A batch the stage samples for tracing runs its step in a `stage.batch` span.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Batch from "../../core/Batch.ts"
import { BuildError } from "../../core/Errors.ts"
import * as Spans from "../../core/Spans.ts"
import type { RunContext, StageCounter } from "../../core/Stage.ts"
import type * as State from "../../core/State.ts"
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
  /** Drops the state of source parts that a rebalance takes away (saved just before; see {@link partitioned}). */
  readonly revoke?: ((parts: ReadonlyArray<string>) => void) | undefined
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
  if (barrier.revoked !== undefined) checkpointing.revoke?.(barrier.revoked)
  return [
    {
      records: [],
      deadLetters: [],
      ack,
      ...(positions === undefined ? {} : { positions }),
      barrier: { ...barrier, states: [...barrier.states, { stage: counter.info.name, state }] }
    }
  ]
}

/** What a stateful stage does with batches, time and checkpoints (what {@link stepped} runs). */
export interface Loop<A, B> {
  readonly step: (batch: Batch.Batch<A>, now: number) => ReadonlyArray<Batch.Batch<B>>
  readonly finish: () => ReadonlyArray<Batch.Batch<B>>
  readonly tick?: ((now: number) => ReadonlyArray<Batch.Batch<B>>) | undefined
  readonly checkpointing?: Checkpointing | undefined
  /** Why the stage cannot go on (a part's saved state it cannot use), checked after every step. */
  readonly failure?: (() => string | undefined) | undefined
}

/** The part of a batch, as partitioned state names it ("" for a batch without one). */
const partOf = (batch: Batch.Batch<unknown>): string => (batch.part === undefined ? "" : String(batch.part.id))

/**
 * The loop of a stage, one per source part when the run keeps state per part (`ctx.partitionStates`, see
 * `StreamingPolicy.stateScope`), else `make(ctx)` itself. Each part's loop is made on its first batch, from the state
 * its part's checkpoint holds, and sees that part only (its watermark is the part's own); its outputs name the part,
 * so a stateful stage after it keeps them apart too. Checkpoints save every part's state; a barrier of a rebalance
 * drops the parts it revokes once they are saved. A part's state saved by another spec of the stage fails the stage
 * (`failure`), with a message that names the stage, the part and the fix.
 */
export const partitioned = <A, B>(
  ctx: RunContext,
  make: (ctx: RunContext) => Loop<A, B> | string
): Loop<A, B> | string => {
  const states = ctx.partitionStates
  if (states === undefined) return make(ctx)
  const loops = new Map<string, Loop<A, B>>()
  let failure: string | undefined
  const loopOf = (part: string): Loop<A, B> | undefined => {
    let loop = loops.get(part)
    if (loop === undefined) {
      const made = make({ ...ctx, restored: states.restored(part) })
      if (typeof made === "string") {
        failure = `${made} (the state of ${part})`
        return undefined
      }
      loop = made
      loops.set(part, loop)
    }
    return loop
  }
  const named = (part: string, out: ReadonlyArray<Batch.Batch<B>>): ReadonlyArray<Batch.Batch<B>> =>
    out.map((b) => (b.part !== undefined || part === "" ? b : { ...b, part: { id: part, known: 1 } }))
  const all = (f: (loop: Loop<A, B>) => ReadonlyArray<Batch.Batch<B>>): ReadonlyArray<Batch.Batch<B>> => {
    const out: Array<Batch.Batch<B>> = []
    for (const [part, loop] of loops) out.push(...named(part, f(loop)))
    return out
  }
  const probe = make({ ...ctx, restored: undefined })
  if (typeof probe === "string") return probe
  return {
    step: (batch, now) => {
      const part = partOf(batch)
      // The part's loop waits for no other part: it is the only one it sees.
      const own = batch.part === undefined ? batch : { ...batch, part: { id: batch.part.id, known: 1 } }
      const loop = loopOf(part)
      return loop === undefined ? [] : named(part, loop.step(own, now))
    },
    failure: () => failure,
    finish: () => all((loop) => loop.finish()),
    ...(probe.tick === undefined ? {} : { tick: (now: number) => all((loop) => loop.tick?.(now) ?? []) }),
    ...(probe.checkpointing === undefined
      ? {}
      : {
          checkpointing: {
            snapshot: (): State.PartitionedState => {
              const parts: Record<string, unknown> = {}
              for (const [part, loop] of loops) parts[part] = loop.checkpointing!.snapshot()
              return { partitioned: true, parts }
            },
            release: () => [...loops.values()].flatMap((loop) => loop.checkpointing!.release()),
            revoke: (parts) => {
              for (const part of parts) loops.delete(part)
            }
          }
        })
  }
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
  tick?: Tick<B>,
  failure?: () => string | undefined
): Stream.Stream<Batch.Batch<B>, E | BuildError, R> =>
  Stream.unwrap(
    Effect.clockWith((clock) => {
      const failed = (out: ReadonlyArray<Batch.Batch<B>>) => {
        const message = failure?.()
        return message === undefined
          ? Effect.succeed(out)
          : Effect.fail(new BuildError({ stage: counter.info.name, message, retryable: false }))
      }
      const steps = (input: Batch.Batch<A>) =>
        input.barrier !== undefined
          ? Effect.succeed(onBarrier<A, B>(input, counter, checkpointing))
          : Spans.sampled(
              counter,
              Effect.flatMap(
                Effect.sync(() => step(input, clock.currentTimeMillisUnsafe())),
                failed
              ),
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
