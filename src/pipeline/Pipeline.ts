/**
 * Pipelines: the front door of the typed API. It gathers `from`, every transform, the pipeline combinators and `run`,
 * so a pipeline reads
 *
 * ```ts
 * const quickstart = Pipeline.from(File.source({ path: "data/*.jsonl", schema: Transaction })).pipe(
 *   Pipeline.validate([Rule.range("amount", { min: 0 })]),
 *   Pipeline.filter((t) => t.status === "settled"),
 *   Pipeline.to(File.sink({ path: "out", format: { type: "avro" }, mode: "overwrite" }))
 * )
 * const report = yield* Pipeline.run(quickstart) // Effect<RunReport, PipelineError, FileStore>
 * ```
 *
 * The record type flows from source to sink: a sink that cannot take the flow's records does not compile, and
 * `Pipeline.run` needs exactly the services of the pipeline's connectors.
 */
import type * as Effect from "effect/Effect"
import type { PipelineError } from "../core/Errors.ts"
import type { Pipeline } from "../core/Plan.ts"
import type { RunReport } from "../core/RunReport.ts"
import * as Runner from "../runtime/Runner.ts"

export type { Flow } from "../core/Flow.ts"
export { from } from "../core/Flow.ts"
export * from "../core/Plan.ts"
export * as Agg from "../transforms/Aggregate.ts"
export { aggregate } from "../transforms/Aggregate.ts"
export { compute, where } from "../transforms/Expressions.ts"
export { intervalJoin } from "../transforms/IntervalJoin.ts"
export { join } from "../transforms/Join.ts"
export { cast, decode, derive, filter, map, rename, select } from "../transforms/Stateless.ts"
export { validate } from "../transforms/Validate.ts"
export * as Window from "../transforms/Window.ts"
export { window } from "../transforms/Window.ts"

/**
 * Runs the pipeline: reads the source to its end (streaming sources: until the `Stop.StopSignal` completes, which
 * commits what was read, or until interrupted, which aborts), writes the sink, retries retryable failures per the retry
 * policy, and returns the RunReport.
 */
export const run = <E, R>(self: Pipeline<E, R>): Effect.Effect<RunReport, PipelineError, R> => Runner.run(self)
