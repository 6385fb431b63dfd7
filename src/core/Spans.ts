/**
 * Spans of stages: their attributes, and the sampled spans of single batches.
 *
 * A run, its attempts, its source's read and its sinks' commits always get a span; a stage's batch (a transform's
 * step, a sink's write) gets one only when sampled, so that tracing costs little however many batches a run has: the
 * first batch of each stage and then one in `1 / rate` (the {@link BatchSpanRate}, 0.01 by default; 0 turns batch
 * spans off, 1 traces every batch).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { StageCounter, StageInfo } from "./Stage.ts"

/** The fraction of batches that get a span of their own, per stage (0..1, default 0.01). */
export const BatchSpanRate: Context.Reference<number> = Context.Reference<number>("effect-etl/core/BatchSpanRate", {
  defaultValue: () => 0.01
})

/** How many batches apart the sampled ones are, for a rate: 0 for none. */
export const spacing = (rate: number): number =>
  rate > 0 && Number.isFinite(rate) ? Math.max(1, Math.round(1 / rate)) : 0

/**
 * A stage's span attributes: its name and kind, its connector, and the connector's own attributes (OpenTelemetry
 * semantic conventions: `db.system.name`, `messaging.system`, ...).
 */
export const stageAttributes = (info: StageInfo): Record<string, unknown> => ({
  "etl.stage": info.name,
  "etl.stage.kind": info.kind,
  ...(info.connector === undefined ? {} : { "etl.connector": info.connector }),
  ...info.attributes
})

/** Runs `effect` in a span named `name` when the stage samples this batch; as it is otherwise. */
export const sampled = <A, E, R>(
  counter: StageCounter,
  effect: Effect.Effect<A, E, R>,
  name: string,
  records: number
): Effect.Effect<A, E, R> =>
  counter.sampleSpan()
    ? Effect.withSpan(effect, name, { attributes: { ...stageAttributes(counter.info), "etl.batch.records": records } })
    : effect
