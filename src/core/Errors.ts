/**
 * The errors a pipeline run can fail with, one tagged class per stage.
 *
 * Connectors fail with their own tagged errors (each knows whether it is retryable); when a pipeline runs, the runtime
 * wraps them into the stage error below, keeping the original as `cause` and its retryability as `retryable`. The
 * runtime's retry Schedule looks only at `retryable`.
 */
import * as Data from "effect/Data"

/** Anything that can tell whether retrying the operation that produced it may succeed. */
export interface Retryable {
  readonly retryable: boolean
}

/** Reads the retryability of any failure: a `retryable` field, or a `reason` that carries one. */
export const isRetryable = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const direct = (error as { readonly retryable?: unknown }).retryable
  if (typeof direct === "boolean") return direct
  const reason = (error as { readonly reason?: unknown }).reason
  if (typeof reason === "object" && reason !== null) {
    const nested = (reason as { readonly retryable?: unknown }).retryable
    if (typeof nested === "boolean") return nested
  }
  return false
}

/** The human-readable text of any failure, without a stack trace. */
export const messageOf = (error: unknown): string => {
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null) {
    const message = (error as { readonly message?: unknown }).message
    if (typeof message === "string" && message.length > 0) return message
    const tag = (error as { readonly _tag?: unknown })._tag
    if (typeof tag === "string") return tag
  }
  return String(error)
}

interface StageErrorFields {
  /** The stage that failed, e.g. `source:transactions` or `transform:validate`. */
  readonly stage: string
  readonly message: string
  readonly retryable: boolean
  readonly cause?: unknown
}

/** Reading from the source failed. */
export class ExtractError extends Data.TaggedError("ExtractError")<StageErrorFields> {}

/** A transform failed on its own (not a record-level rejection, which becomes a dead letter). */
export class TransformError extends Data.TaggedError("TransformError")<StageErrorFields> {}

/** Writing to the sink (or the dead-letter sink) failed. */
export class LoadError extends Data.TaggedError("LoadError")<StageErrorFields> {}

/**
 * A data-quality rule stopped the run: a validation rule in `fail` mode, a dead-letter threshold that was crossed, or a
 * row-count reconciliation that did not add up. Never retryable: the same data would fail the same way.
 */
export class QualityError extends Data.TaggedError("QualityError")<{
  readonly stage: string
  readonly message: string
  readonly retryable: false
}> {}

/** The pipeline cannot be built as described (an unsupported write mode, a missing field, ...). Never retryable. */
export class BuildError extends Data.TaggedError("BuildError")<{
  readonly stage: string
  readonly message: string
  readonly retryable: false
}> {}

/** Every way a pipeline run can fail. */
export type PipelineError = ExtractError | TransformError | LoadError | QualityError | BuildError

/** Wraps a connector's failure into the error of the stage it happened in. */
export const wrap =
  <C extends typeof ExtractError | typeof TransformError | typeof LoadError>(Ctor: C, stage: string) =>
  (cause: unknown): InstanceType<C> => {
    if (cause instanceof Ctor) return cause as InstanceType<C>
    if (isPipelineError(cause)) return cause as InstanceType<C>
    return new Ctor({
      stage,
      message: `${stage}: ${messageOf(cause)}`,
      retryable: isRetryable(cause),
      cause
    }) as InstanceType<C>
  }

/**
 * The stage error of `tag` with these fields (the cause is kept where the kind has one; quality and build errors are
 * never retryable): how an error is rebuilt after its message changed or it crossed a thread.
 */
export const ofTag = (
  tag: PipelineError["_tag"],
  fields: { readonly stage: string; readonly message: string; readonly retryable: boolean; readonly cause?: unknown }
): PipelineError => {
  switch (tag) {
    case "ExtractError":
      return new ExtractError(fields)
    case "TransformError":
      return new TransformError(fields)
    case "LoadError":
      return new LoadError(fields)
    case "QualityError":
      return new QualityError({ stage: fields.stage, message: fields.message, retryable: false })
    case "BuildError":
      return new BuildError({ stage: fields.stage, message: fields.message, retryable: false })
  }
}

const pipelineTags: ReadonlySet<string> = new Set([
  "ExtractError",
  "TransformError",
  "LoadError",
  "QualityError",
  "BuildError"
])

/** True for the stage errors above. */
export const isPipelineError = (u: unknown): u is PipelineError =>
  typeof u === "object" && u !== null && pipelineTags.has((u as { readonly _tag?: unknown })._tag as string)
