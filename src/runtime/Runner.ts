/**
 * The runtime: runs a pipeline's attempts, writes batches and dead letters, acknowledges source positions after the
 * data is durable, applies the retry policy to retryable failures, checks quality thresholds before committing, and
 * reconciles row counts into the RunReport.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Batch from "../core/Batch.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { LoadError, messageOf, type PipelineError, QualityError, wrap } from "../core/Errors.ts"
import type { Pipeline, SinkPlan } from "../core/Pipeline.ts"
import { type RunReport, reconcile, stageReports } from "../core/RunReport.ts"
import type { SinkResult, SinkWriter } from "../core/Sink.ts"
import { MAX_LOGGED_WARNINGS, makeRunContext, type RunContext } from "../core/Stage.ts"
import { Progress } from "./Progress.ts"
import * as Retry from "./Retry.ts"

/** At most this many rejected records are logged one by one when the pipeline has no dead-letter sink. */
const MAX_LOGGED_REJECTS = 20

interface AttemptResult {
  readonly sink: SinkResult
  readonly deadLetters: SinkResult | undefined
}

const openWriter = <R>(plan: SinkPlan<R>) =>
  Effect.mapError(plan.open, wrap(LoadError, plan.info.name)) as Effect.Effect<
    SinkWriter<unknown, unknown>,
    LoadError,
    R | Scope.Scope
  >

const runAttempt = <E, R>(p: Pipeline<E, R>, ctx: RunContext): Effect.Effect<AttemptResult, PipelineError, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      // Counters are reported in the order they are created: create them in pipeline order.
      for (const stage of p.stages) ctx.stage(stage)
      const sinkCounter = ctx.stage(p.sink.info)
      const dlCounter = p.deadLetters === undefined ? undefined : ctx.stage(p.deadLetters.info)
      const writer = yield* openWriter(p.sink)
      const dlWriter = p.deadLetters === undefined ? undefined : yield* openWriter(p.deadLetters)
      const ackEachBatch =
        p.sink.durability === "per-write" && (p.deadLetters?.durability ?? "per-write") === "per-write"
      const pendingAcks: Array<Effect.Effect<void, PipelineError>> = []
      let rejected = 0
      let read = 0
      let loggedRejects = 0
      const sinkName = p.sink.info.name

      const writeDeadLetters = (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) =>
        Effect.gen(function* () {
          if (dlWriter !== undefined && dlCounter !== undefined && p.deadLetters !== undefined) {
            const started = performance.now()
            yield* Effect.mapError(dlWriter.write(deadLetters), wrap(LoadError, p.deadLetters.info.name))
            dlCounter.busyMs += performance.now() - started
            dlCounter.batches++
            dlCounter.recordsIn += deadLetters.length
            dlCounter.recordsOut += deadLetters.length
            return
          }
          for (const dl of deadLetters) {
            if (loggedRejects >= MAX_LOGGED_REJECTS) break
            loggedRejects++
            yield* Effect.logWarning("record rejected").pipe(
              Effect.annotateLogs({
                stage: dl.stage,
                reason: dl.reason,
                detail: dl.message,
                ...(dl.origin === undefined ? {} : { origin: dl.origin })
              })
            )
          }
        })

      const checkMaxRejected = (): Effect.Effect<void, QualityError> =>
        p.quality.maxRejected !== undefined && rejected > p.quality.maxRejected
          ? Effect.fail(
              new QualityError({
                stage: "quality",
                message: `${rejected} records rejected, more than the allowed ${p.quality.maxRejected}; nothing was committed to ${sinkName}`,
                retryable: false
              })
            )
          : Effect.void

      const batches = p.sink.batching === undefined ? p.build(ctx) : p.build(ctx).pipe(Batch.gather(p.sink.batching))
      yield* Stream.runForEach(batches, (batch) =>
        Effect.gen(function* () {
          const n = batch.records.length
          if (n > 0) {
            const started = performance.now()
            yield* Effect.mapError(writer.write(batch.records), wrap(LoadError, sinkName))
            sinkCounter.busyMs += performance.now() - started
            sinkCounter.recordsIn += n
            sinkCounter.recordsOut += n
          }
          sinkCounter.batches++
          if (batch.deadLetters.length > 0) {
            rejected += batch.deadLetters.length
            yield* writeDeadLetters(batch.deadLetters)
            yield* checkMaxRejected()
          }
          for (const stage of ctx.stages()) {
            if (stage.pendingWarnings.length === 0) continue
            for (const warning of stage.drainWarnings())
              yield* Effect.logWarning(warning).pipe(Effect.annotateLogs({ stage: stage.info.name }))
          }
          progress.update(ctx)
          if (ackEachBatch) yield* batch.ack
          else pendingAcks.push(batch.ack)
        })
      )

      for (const stage of ctx.stages()) if (stage.info.kind === "source") read += stage.recordsIn
      const ratio = p.quality.maxRejectedRatio
      if (ratio !== undefined && read > 0 && rejected / read > ratio)
        return yield* new QualityError({
          stage: "quality",
          message: `${rejected} of ${read} records rejected (${((rejected / read) * 100).toFixed(2)}%), more than the allowed ${(ratio * 100).toFixed(2)}%; nothing was committed to ${sinkName}`,
          retryable: false
        })
      for (const stage of ctx.stages())
        if (stage.warned > MAX_LOGGED_WARNINGS)
          yield* Effect.logWarning(
            `${stage.warned} warnings in all; only the first ${MAX_LOGGED_WARNINGS} were logged`
          ).pipe(Effect.annotateLogs({ stage: stage.info.name }))
      if (rejected > 0 && dlWriter === undefined)
        yield* Effect.logWarning(
          `${rejected} records rejected; no dead-letter sink is configured, so only the first ${Math.min(rejected, MAX_LOGGED_REJECTS)} were logged`
        )

      // Dead letters first: if the sink's commit then fails, the retried attempt rewrites them (at-least-once), but a
      // committed sink never hides rejected records that were not kept.
      const dlResult =
        dlWriter === undefined || p.deadLetters === undefined
          ? undefined
          : yield* Effect.mapError(dlWriter.commit, wrap(LoadError, p.deadLetters.info.name))
      const started = performance.now()
      const sinkResult = yield* Effect.mapError(writer.commit, wrap(LoadError, sinkName))
      sinkCounter.busyMs += performance.now() - started
      for (const ack of pendingAcks) yield* ack
      return { sink: sinkResult, deadLetters: dlResult }
    })
  )

const errorSummary = (error: PipelineError): NonNullable<RunReport["error"]> => ({
  tag: error._tag,
  stage: error.stage,
  message: messageOf(error),
  retryable: error.retryable
})

/**
 * Runs a pipeline to completion and always returns its report; a failed run has `status: "failed"` and `error`, and
 * the PipelineError itself is returned beside the report.
 */
export const execute = <E, R>(
  p: Pipeline<E, R>,
  options?: { readonly runId?: string }
): Effect.Effect<{ readonly report: RunReport; readonly error: PipelineError | undefined }, never, R> => {
  const runId = options?.runId ?? crypto.randomUUID()
  return Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const progress = yield* Progress
    const startedAt = clock.currentTimeMillisUnsafe()
    let attempts = 0
    let ctx: RunContext = makeRunContext({ runId, pipeline: p.name, now: () => clock.currentTimeMillisUnsafe() })
    yield* Effect.logInfo(`run started: ${p.name}`)

    const attempt = Effect.suspend(() => {
      attempts++
      ctx = makeRunContext({ runId, pipeline: p.name, now: () => clock.currentTimeMillisUnsafe() })
      return runAttempt(p, ctx)
    }).pipe(
      Effect.tapError((error) =>
        error.retryable && attempts < p.retry.attempts
          ? Effect.logWarning(`attempt ${attempts} failed, retrying: ${messageOf(error)}`).pipe(
              Effect.annotateLogs({ stage: error.stage, attempt: attempts })
            )
          : Effect.void
      )
    )
    const outcome = yield* attempt.pipe(
      Effect.retry({ schedule: Retry.schedule(p.retry), while: (error: PipelineError) => error.retryable }),
      Effect.result
    )
    progress.done(ctx)

    const finishedAt = clock.currentTimeMillisUnsafe()
    const stages = stageReports(ctx)
    const succeeded = outcome._tag === "Success" ? outcome.success : undefined
    const checks = succeeded === undefined ? [] : reconcile(stages, succeeded.sink.written)
    const reconciled = checks.every((c) => c.ok)
    let error: PipelineError | undefined = outcome._tag === "Failure" ? outcome.failure : undefined
    if (error === undefined && !reconciled) {
      const bad = checks.filter((c) => !c.ok)
      error = new QualityError({
        stage: bad[0]!.stage,
        message: `Row counts do not reconcile: ${bad.map((c) => `${c.stage} (${c.rule}): expected ${c.expected}, got ${c.actual}`).join("; ")}`,
        retryable: false
      })
    }
    const sum = (f: (s: (typeof stages)[number]) => number, kinds: ReadonlyArray<string>) =>
      stages.filter((s) => kinds.includes(s.kind)).reduce((acc, s) => acc + f(s), 0)
    const read = sum((s) => s.recordsIn, ["source"])
    const durationMs = finishedAt - startedAt
    const report: RunReport = {
      runId,
      pipeline: p.name,
      status: error === undefined ? "succeeded" : "failed",
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date(finishedAt).toISOString(),
      durationMs,
      attempts,
      records: {
        read,
        written: succeeded?.sink.written ?? 0,
        filtered: sum((s) => s.filtered, ["source", "transform"]),
        rejected: sum((s) => s.rejected, ["source", "transform"]),
        warned: sum((s) => s.warned, ["source", "transform"]),
        deadLettered: succeeded?.deadLetters?.written ?? 0
      },
      recordsPerSecond: durationMs > 0 ? Math.round((read / durationMs) * 1000) : read,
      stages,
      ...(succeeded === undefined ? {} : { sink: { name: p.sink.info.name, mode: p.sink.mode, ...succeeded.sink } }),
      ...(succeeded?.deadLetters === undefined || p.deadLetters === undefined
        ? {}
        : { deadLetters: { name: p.deadLetters.info.name, ...succeeded.deadLetters } }),
      reconciliation: { ok: reconciled, checks },
      ...(error === undefined ? {} : { error: errorSummary(error) })
    }
    if (error === undefined)
      yield* Effect.logInfo(`run succeeded: ${read} read, ${report.records.written} written`).pipe(
        Effect.annotateLogs({ records: report.records, durationMs })
      )
    else
      yield* Effect.logError(`run failed: ${messageOf(error)}`).pipe(
        Effect.annotateLogs({ stage: error.stage, attempts, retryable: error.retryable })
      )
    return { report, error }
  }).pipe(
    Effect.withSpan("Pipeline.run", { attributes: { pipeline: p.name, runId } }),
    Effect.annotateLogs({ pipeline: p.name, runId })
  )
}

/** Runs a pipeline; fails with the PipelineError of a failed run. */
export const run = <E, R>(
  p: Pipeline<E, R>,
  options?: { readonly runId?: string }
): Effect.Effect<RunReport, PipelineError, R> =>
  Effect.flatMap(execute(p, options), ({ error, report }) =>
    error === undefined ? Effect.succeed(report) : Effect.fail(error)
  )
