/**
 * Run observers: told when a run starts and when it ends, with its report. Lineage events (OpenLineage START, COMPLETE,
 * FAIL) are sent by one; a user can add their own (an alert, a catalog update). The default is none.
 *
 * An observer must not fail the run: its effects cannot fail, and one that needs the network logs what went wrong and
 * carries on.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { PipelineError } from "../core/Errors.ts"
import type { RunReport } from "../core/RunReport.ts"
import type { StageInfo } from "../core/Stage.ts"

/** A run as observers see it when it starts. */
export interface RunStarted {
  readonly runId: string
  readonly pipeline: string
  /** ISO 8601. */
  readonly startedAt: string
  /** Every stage: the source, the transforms, the sink, then the dead-letter sink if there is one. */
  readonly stages: ReadonlyArray<StageInfo>
  /** True for a streaming run (an unbounded source). */
  readonly streaming: boolean
}

/** A run as observers see it when it has ended. */
export interface RunFinished extends RunStarted {
  readonly report: RunReport
  /** The error of a failed run. */
  readonly error: PipelineError | undefined
}

/** Told about every run. */
export interface RunObserver {
  readonly started: (run: RunStarted) => Effect.Effect<void>
  readonly finished: (run: RunFinished) => Effect.Effect<void>
}

/** The observers of the runs in scope; provide more with `Effect.provideService(RunObservers, [...])`. */
export const RunObservers: Context.Reference<ReadonlyArray<RunObserver>> = Context.Reference<
  ReadonlyArray<RunObserver>
>("effect-etl/runtime/RunObservers", { defaultValue: () => [] })
