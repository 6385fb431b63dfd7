/**
 * Graceful stop of streaming runs.
 *
 * `StopSignal` is an Effect that completes when a streaming run should stop: the runtime then stops reading, lets the
 * batches already read reach the sink, commits the current segment, acknowledges it and ends the run as succeeded.
 * Unbounded sources that can wait for data indefinitely (Kafka) end their stream on the signal themselves; the runtime
 * also halts the pipeline's stream after the pull in progress. Batch-mode runs ignore it: interrupting one aborts it.
 * The default never completes; the CLI provides one completed by the first SIGINT/SIGTERM.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/**
 * Completes when a streaming run should stop gracefully.
 *
 * @example
 * const stop = yield* Deferred.make<void>()
 * const fiber = yield* Pipeline.run(streaming).pipe(Effect.provideService(Stop.StopSignal, Deferred.await(stop)), Effect.forkChild)
 * yield* Deferred.succeed(stop, undefined) // the run commits what it read and succeeds
 */
export const StopSignal: Context.Reference<Effect.Effect<void>> = Context.Reference<Effect.Effect<void>>(
  "effect-etl/runtime/StopSignal",
  { defaultValue: () => Effect.never }
)
