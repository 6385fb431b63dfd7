/**
 * The runtime: runs a pipeline's attempts, writes batches and dead letters, acknowledges source positions after the
 * data is durable, applies the retry policy to retryable failures, checks quality thresholds before committing, and
 * reconciles row counts into the RunReport.
 *
 * Streaming runs (an unbounded source) end on the {@link StopSignal}: the batches read so far are written, committed and
 * acknowledged. With an `on-commit` sink they commit in segments: every `commitInterval` or `commitRecords` records the
 * writer is committed, the acknowledgements of the batches it covered run, and a new writer takes the next segment; a
 * failed segment fails the attempt, and the retried attempt resumes from the last acknowledged position. End-to-end
 * latency (commit time minus a batch's oldest source timestamp) is logged per segment and summarised in the RunReport.
 */
import { DDSketch } from "@datadog/sketches-js"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Batch from "../core/Batch.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { LoadError, messageOf, type PipelineError, QualityError, wrap } from "../core/Errors.ts"
import { type Pipeline, type SinkPlan, unboundedProblem } from "../core/Plan.ts"
import * as Retry from "../core/Retry.ts"
import { type RunReport, reconcile, type StreamingReport, stageReports } from "../core/RunReport.ts"
import type { SinkResult, SinkWriter } from "../core/Sink.ts"
import { MAX_LOGGED_WARNINGS, makeRunContext, type RunContext } from "../core/Stage.ts"
import { StopSignal } from "../core/Stop.ts"
import { Progress } from "./Progress.ts"

/** At most this many rejected records are logged one by one when the pipeline has no dead-letter sink. */
const MAX_LOGGED_REJECTS = 20

interface AttemptResult {
  readonly sink: SinkResult
  readonly deadLetters: SinkResult | undefined
}

/** Latency and segment counts of a streaming run, kept across its attempts. */
class StreamingStats {
  segments = 0
  batches = 0
  max = 0
  readonly sketch = new DDSketch({ relativeAccuracy: 0.01 })
  /** Records the end-to-end latency of a batch made visible at `now`. */
  observe(sourceTimestamp: number | undefined, now: number): number | undefined {
    if (sourceTimestamp === undefined) return undefined
    const latency = Math.max(0, now - sourceTimestamp)
    this.batches++
    if (latency > this.max) this.max = latency
    this.sketch.accept(latency)
    return latency
  }
  report(): StreamingReport {
    const round = (q: number) => Math.round(Math.min(this.max, this.sketch.getValueAtQuantile(q)))
    return {
      segments: this.segments,
      ...(this.batches === 0
        ? {}
        : { latencyMs: { batches: this.batches, p50: round(0.5), p95: round(0.95), max: Math.round(this.max) } })
    }
  }
}

/** Adds up the results of a streaming run's segment commits. */
const addResults = (a: SinkResult | undefined, b: SinkResult): SinkResult => {
  if (a === undefined) return b
  const details: Record<string, unknown> = { ...a.details }
  for (const [key, value] of Object.entries(b.details ?? {})) {
    const before = details[key]
    details[key] =
      typeof before === "number" && typeof value === "number"
        ? before + value
        : Array.isArray(before) && Array.isArray(value)
          ? before.concat(value)
          : value
  }
  const updated = a.updated === undefined && b.updated === undefined ? undefined : (a.updated ?? 0) + (b.updated ?? 0)
  const location = b.location ?? a.location
  return {
    written: a.written + b.written,
    ...(updated === undefined ? {} : { updated }),
    ...(location === undefined ? {} : { location }),
    ...(Object.keys(details).length === 0 ? {} : { details })
  }
}

const openWriter = <R>(plan: SinkPlan<R>) =>
  Effect.mapError(plan.open, wrap(LoadError, plan.info.name)) as Effect.Effect<
    SinkWriter<unknown, unknown>,
    LoadError,
    R | Scope.Scope
  >

const runAttempt = <E, R>(
  p: Pipeline<E, R>,
  ctx: RunContext,
  stats: StreamingStats
): Effect.Effect<AttemptResult, PipelineError, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      const clock = yield* Clock.Clock
      // Counters are reported in the order they are created: create them in pipeline order.
      for (const stage of p.stages) ctx.stage(stage)
      const sinkCounter = ctx.stage(p.sink.info)
      const dlCounter = p.deadLetters === undefined ? undefined : ctx.stage(p.deadLetters.info)
      const ackEachBatch =
        p.sink.durability === "per-write" && (p.deadLetters?.durability ?? "per-write") === "per-write"
      const streaming = !p.bounded
      const segmented = streaming && !ackEachBatch
      if (segmented)
        for (const plan of [p.sink, p.deadLetters]) {
          const problem = plan === undefined ? undefined : unboundedProblem(plan.mode)
          if (plan !== undefined && problem !== undefined)
            return yield* new LoadError({
              stage: plan.info.name,
              message: `${plan.info.name}: ${problem}`,
              retryable: false
            })
        }
      // In segments, each segment's writers live in a scope of their own, opened with the segment's first batch.
      const attemptScope = yield* Effect.scope
      let segmentScope: Scope.Closeable | undefined
      let writer: SinkWriter<unknown, unknown> | undefined
      let dlWriter: SinkWriter<unknown, unknown> | undefined
      if (!segmented) {
        writer = yield* openWriter(p.sink)
        dlWriter = p.deadLetters === undefined ? undefined : yield* openWriter(p.deadLetters)
      }
      let segmentBatches = 0
      let segmentRecords = 0
      let segmentOpenedAt = 0
      let segmentTimestamps: Array<number | undefined> = []
      let sinkTotal: SinkResult | undefined
      let dlTotal: SinkResult | undefined
      const openSegment = Effect.gen(function* () {
        const scope = yield* Scope.fork(attemptScope)
        segmentScope = scope
        writer = yield* Scope.provide(openWriter(p.sink), scope)
        dlWriter = p.deadLetters === undefined ? undefined : yield* Scope.provide(openWriter(p.deadLetters), scope)
        segmentOpenedAt = clock.currentTimeMillisUnsafe()
      })
      const pendingAcks: Array<Effect.Effect<void, PipelineError>> = []
      let rejected = 0
      let loggedRejects = 0
      const sinkName = p.sink.info.name

      const writeDeadLetters = (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) =>
        Effect.gen(function* () {
          if (dlWriter !== undefined && dlCounter !== undefined && p.deadLetters !== undefined) {
            const dlWriterNow = dlWriter
            const started = performance.now()
            yield* Effect.mapError(dlWriterNow.write(deadLetters), wrap(LoadError, p.deadLetters.info.name))
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

      const checkMaxRejectedRatio = (): Effect.Effect<void, QualityError> => {
        let read = 0
        for (const stage of ctx.stages()) if (stage.info.kind === "source") read += stage.recordsIn
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
      }

      /** Commits the open segment, acknowledges the batches it holds, and closes its writers. */
      const commitSegment = Effect.gen(function* () {
        const scope = segmentScope
        const sinkWriter = writer
        if (scope === undefined || sinkWriter === undefined) return
        if (segmentBatches > 0) {
          yield* checkMaxRejectedRatio()
          if (dlWriter !== undefined && p.deadLetters !== undefined)
            dlTotal = addResults(
              dlTotal,
              yield* Effect.mapError(dlWriter.commit, wrap(LoadError, p.deadLetters.info.name))
            )
          const started = performance.now()
          const result = yield* Effect.mapError(sinkWriter.commit, wrap(LoadError, sinkName))
          sinkCounter.busyMs += performance.now() - started
          sinkTotal = addResults(sinkTotal, result)
          for (const ack of pendingAcks) yield* ack
          stats.segments++
          const now = clock.currentTimeMillisUnsafe()
          let oldest: number | undefined
          for (const ts of segmentTimestamps) {
            stats.observe(ts, now)
            oldest = Batch.oldest(oldest, ts)
          }
          yield* Effect.logInfo(`segment ${stats.segments} committed: ${result.written} records`).pipe(
            Effect.annotateLogs({
              segment: stats.segments,
              records: result.written,
              batches: segmentBatches,
              durationMs: now - segmentOpenedAt,
              ...(oldest === undefined ? {} : { latencyMs: Math.max(0, now - oldest) })
            })
          )
        }
        pendingAcks.length = 0
        segmentTimestamps = []
        segmentBatches = 0
        segmentRecords = 0
        segmentScope = undefined
        writer = undefined
        dlWriter = undefined
        // An empty segment was never committed: closing its scope discards what its writers prepared.
        yield* Scope.close(scope, Exit.void)
      })

      const stop = yield* StopSignal
      const built = streaming ? Stream.haltWhen(p.build(ctx), stop) : p.build(ctx)
      const batches = p.sink.batching === undefined ? built : built.pipe(Batch.gather(p.sink.batching))
      const tick: unique symbol = Symbol("tick")
      const events: Stream.Stream<Batch.Batch<unknown> | typeof tick, PipelineError, R> = segmented
        ? Stream.merge(
            batches,
            Stream.map(Stream.tick(p.streaming.commitInterval), () => tick),
            { haltStrategy: "left" }
          )
        : batches
      yield* Stream.runForEach(events, (event) =>
        Effect.gen(function* () {
          if (event === tick) {
            if (segmentBatches > 0) yield* commitSegment
            return
          }
          const batch = event
          if (segmented && writer === undefined) yield* openSegment
          const n = batch.records.length
          if (n > 0 && writer !== undefined) {
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
          if (ackEachBatch) {
            yield* batch.ack
            if (streaming) stats.observe(batch.sourceTimestamp, clock.currentTimeMillisUnsafe())
          } else pendingAcks.push(batch.ack)
          if (segmented) {
            segmentBatches++
            segmentRecords += n + batch.deadLetters.length
            segmentTimestamps.push(batch.sourceTimestamp)
            if (segmentRecords >= p.streaming.commitRecords) yield* commitSegment
          }
        })
      )

      yield* checkMaxRejectedRatio()
      for (const stage of ctx.stages())
        if (stage.warned > MAX_LOGGED_WARNINGS)
          yield* Effect.logWarning(
            `${stage.warned} warnings in all; only the first ${MAX_LOGGED_WARNINGS} were logged`
          ).pipe(Effect.annotateLogs({ stage: stage.info.name }))
      if (rejected > 0 && p.deadLetters === undefined)
        yield* Effect.logWarning(
          `${rejected} records rejected; no dead-letter sink is configured, so only the first ${Math.min(rejected, MAX_LOGGED_REJECTS)} were logged`
        )

      if (segmented) {
        yield* commitSegment
        return {
          sink: sinkTotal ?? { written: 0 },
          deadLetters: p.deadLetters === undefined ? undefined : (dlTotal ?? { written: 0 })
        }
      }
      // Dead letters first: if the sink's commit then fails, the retried attempt rewrites them (at-least-once), but a
      // committed sink never hides rejected records that were not kept.
      const dlResult =
        dlWriter === undefined || p.deadLetters === undefined
          ? undefined
          : yield* Effect.mapError(dlWriter.commit, wrap(LoadError, p.deadLetters.info.name))
      const started = performance.now()
      const sinkResult =
        writer === undefined ? { written: 0 } : yield* Effect.mapError(writer.commit, wrap(LoadError, sinkName))
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
    const stats = new StreamingStats()
    // Once a streaming run was asked to stop, a failed attempt is not retried: a retry would read nothing and report
    // success, while what the failed attempt read stays unacknowledged (it is read again by the next run).
    let stopRequested = false
    if (!p.bounded) {
      const stop = yield* StopSignal
      yield* Effect.forkScoped(
        Effect.andThen(
          stop,
          Effect.sync(() => (stopRequested = true))
        )
      )
    }
    yield* Effect.logInfo(`run started: ${p.name}`)

    const attempt = Effect.suspend(() => {
      attempts++
      ctx = makeRunContext({ runId, pipeline: p.name, now: () => clock.currentTimeMillisUnsafe() })
      return runAttempt(p, ctx, stats)
    }).pipe(
      Effect.tapError((error) =>
        error.retryable && attempts < p.retry.attempts && !stopRequested
          ? Effect.logWarning(`attempt ${attempts} failed, retrying: ${messageOf(error)}`).pipe(
              Effect.annotateLogs({ stage: error.stage, attempt: attempts })
            )
          : Effect.void
      )
    )
    const outcome = yield* attempt.pipe(
      Effect.retry({
        schedule: Retry.schedule(p.retry),
        while: (error: PipelineError) => error.retryable && !stopRequested
      }),
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
      ...(p.bounded ? {} : { streaming: stats.report() }),
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
    Effect.scoped,
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
