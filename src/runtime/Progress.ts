/**
 * Progress reporting: the runtime tells a `ProgressReporter` after every batch; the CLI's reporter draws a progress
 * line on a terminal. The default reporter does nothing.
 */
import * as Context from "effect/Context"
import type { InputSize, RunContext } from "../core/Stage.ts"

/** Receives the live counters of a run. Called once per batch, so it must be cheap (throttle drawing yourself). */
export interface ProgressReporter {
  /** The size of the input, once the source has told it (never, when it cannot). */
  readonly size?: ((size: InputSize) => void) | undefined
  readonly update: (ctx: RunContext) => void
  readonly done: (ctx: RunContext) => void
}

/** The reporter the runtime uses; provide another with `Effect.provideService(Progress, reporter)`. */
export const Progress: Context.Reference<ProgressReporter> = Context.Reference<ProgressReporter>(
  "effect-etl/runtime/Progress",
  { defaultValue: () => ({ update: () => {}, done: () => {} }) }
)
