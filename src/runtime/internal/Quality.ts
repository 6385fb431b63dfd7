/**
 * The quality gate of one attempt: counts rejected records, decides what happens to rejects when the pipeline has no
 * dead-letter sink, and checks the pipeline's thresholds and the empty-overwrite rule before the sink commits. Every
 * failure here is a QualityError raised before anything is committed.
 */
import * as Effect from "effect/Effect"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import { QualityError } from "../../core/Errors.ts"
import type { Pipeline } from "../../core/Plan.ts"
import type { RunContext } from "../../core/Stage.ts"

/** At most this many dropped records are logged one by one. */
export const MAX_LOGGED_DROPS = 20

/** Records read by the run's sources so far. */
export const readSoFar = (ctx: RunContext): number => {
  let read = 0
  for (const stage of ctx.stages()) if (stage.info.kind === "source") read += stage.recordsIn
  return read
}

const describeReject = (dl: DeadLetter.DeadLetter): string => `${dl.stage}: ${dl.reason}: ${dl.message}`

/** The quality gate of an attempt. */
export interface QualityGate {
  /** Records rejected so far in this attempt. */
  readonly rejected: () => number
  /** Records rejected and dropped on purpose (the pipeline allows dropping them and has no dead-letter sink). */
  readonly dropped: () => number
  /**
   * Takes the rejects of a batch, before its records are written: counts them, checks `maxRejected`, and — without a
   * dead-letter sink — drops (and logs) those the pipeline allows to drop, failing on any other.
   */
  readonly admit: (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) => Effect.Effect<void, QualityError>
  /** Checks what can only be judged on what was read so far: `maxRejectedRatio`. */
  readonly checkRatio: Effect.Effect<void, QualityError>
  /**
   * Checks a bounded run before its sink commits: the ratio, and that an overwrite does not replace the target's data
   * with nothing (unless the pipeline allows it).
   */
  readonly beforeFinalCommit: (received: number) => Effect.Effect<void, QualityError>
}

/** Whether the pipeline allows dropping the rejects of this stage when it has no dead-letter sink. */
const mayDrop = (p: Pipeline<unknown, unknown>, stage: string): boolean => {
  const allowed = p.quality.dropRejected
  return allowed === true || (Array.isArray(allowed) && allowed.includes(stage))
}

/** A fresh quality gate for one attempt of `p`. */
export const make = (p: Pipeline<unknown, unknown>, ctx: RunContext): QualityGate => {
  const sinkName = p.sink.info.name
  const hasDeadLetterSink = p.deadLetters !== undefined
  // A split run's finish judges the whole run: the rejects its parts dropped count too (see `Split.dropped`).
  let rejected = ctx.split?.phase === "finish" ? (ctx.split.dropped ?? 0) : 0
  let dropped = 0

  const checkRatio = Effect.suspend(() => {
    const read = readSoFar(ctx)
    const ratio = p.quality.maxRejectedRatio
    return ratio !== undefined && read > 0 && rejected / read > ratio
      ? Effect.fail(
          new QualityError({
            stage: "quality",
            message: `${rejected} of ${read} records rejected (${((rejected / read) * 100).toFixed(2)}%), more than the allowed ${(ratio * 100).toFixed(2)}%; nothing was committed to ${sinkName}`,
            retryable: false
          })
        )
      : Effect.void
  })

  return {
    rejected: () => rejected,
    dropped: () => dropped,
    admit: (deadLetters) =>
      Effect.gen(function* () {
        if (deadLetters.length === 0) return
        rejected += deadLetters.length
        if (p.quality.maxRejected !== undefined && rejected > p.quality.maxRejected)
          return yield* new QualityError({
            stage: "quality",
            message: `${rejected} records rejected, more than the allowed ${p.quality.maxRejected}; nothing was committed to ${sinkName}`,
            retryable: false
          })
        if (hasDeadLetterSink) return
        const kept = deadLetters.find((dl) => !mayDrop(p, dl.stage))
        if (kept !== undefined)
          return yield* new QualityError({
            stage: kept.stage,
            message: `${kept.stage} rejected a record and the pipeline has no dead-letter sink to keep it (${describeReject(kept)}); nothing was committed to ${sinkName}. Add a dead-letter sink ("dead_letters" in a config, Pipeline.withDeadLetters), or drop rejects on purpose ("quality": { "drop_rejected": ["${kept.stage}"] }, Pipeline.withQuality({ dropRejected: ["${kept.stage}"] }))`,
            retryable: false
          })
        for (const dl of deadLetters) {
          dropped++
          if (dropped > MAX_LOGGED_DROPS) continue
          yield* Effect.logWarning("rejected record dropped").pipe(
            Effect.annotateLogs({
              stage: dl.stage,
              reason: dl.reason,
              detail: dl.message,
              ...(dl.origin === undefined ? {} : { origin: dl.origin })
            })
          )
        }
      }),
    checkRatio,
    beforeFinalCommit: (received) =>
      Effect.gen(function* () {
        yield* checkRatio
        if (p.quality.maxRejected !== undefined && rejected > p.quality.maxRejected)
          return yield* new QualityError({
            stage: "quality",
            message: `${rejected} records rejected, more than the allowed ${p.quality.maxRejected}; nothing was committed to ${sinkName}`,
            retryable: false
          })
        if (p.sink.mode === "overwrite" && received === 0 && p.quality.allowEmptyOverwrite !== true) {
          const read = readSoFar(ctx)
          return yield* new QualityError({
            stage: sinkName,
            message: `${sinkName}: the run produced no records to write (read ${read}, rejected ${rejected}), and an overwrite would replace the existing data with nothing; nothing was committed. Allow it with "quality": { "allow_empty_overwrite": true } (Pipeline.withQuality({ allowEmptyOverwrite: true }))`,
            retryable: false
          })
        }
      })
  }
}
