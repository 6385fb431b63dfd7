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
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Batch from "../core/Batch.ts"
import type * as Checkpoint from "../core/Checkpoint.ts"
import {
  ExtractError,
  LoadError,
  messageOf,
  type PipelineError,
  QualityError,
  TransformError,
  wrap
} from "../core/Errors.ts"
import type * as PassThrough from "../core/PassThrough.ts"
import type { Pipeline } from "../core/Plan.ts"
import * as Retry from "../core/Retry.ts"
import { type RunReport, reconcile, stageReports, totals } from "../core/RunReport.ts"
import * as Spans from "../core/Spans.ts"
import {
  MAX_LOGGED_WARNINGS,
  makeRunContext,
  type PartitionStates,
  type RunContext,
  type Split,
  type StageCounts
} from "../core/Stage.ts"
import * as State from "../core/State.ts"
import { StopSignal } from "../core/Stop.ts"
import * as Outputs from "./internal/Outputs.ts"
import * as Quality from "./internal/Quality.ts"
import { StreamingStats } from "./internal/StreamingStats.ts"
import * as Metrics from "./Metrics.ts"
import { RunObservers, type RunStarted } from "./Observers.ts"
import { Progress } from "./Progress.ts"

/** What an attempt committed, and how many rejected records it dropped on purpose. */
interface AttemptResult extends Outputs.Committed {
  readonly dropped: number
}

/**
 * A retryable failure made final: a per-write sink already committed records of a bounded source, which a new attempt
 * would read again from its start and write twice (an upsert is exempt: writing a key again changes nothing).
 */
const final = (error: PipelineError, committed: number, sink: string): PipelineError => {
  if (!error.retryable) return error
  const fields = {
    stage: error.stage,
    message: `${error.message} (not retried: ${committed} records were already committed to ${sink} batch by batch, and a new attempt would read the source from its start and write them again)`,
    retryable: false,
    cause: error.cause
  }
  return error._tag === "ExtractError"
    ? new ExtractError(fields)
    : error._tag === "TransformError"
      ? new TransformError(fields)
      : new LoadError(fields)
}

/**
 * Asks the source and the sink whether the records may pass through as bytes (see `PassThrough`): in a bounded run
 * that reads its input, whole or a part of a split run (whose sink then stages the part itself); never in the finish
 * of a split run, which reads what the parts staged.
 */
const agreeOnRaw = <E, R>(
  p: Pipeline<E, R>,
  ctx: RunContext
): Effect.Effect<PassThrough.Agreement | undefined, PipelineError, R> =>
  Effect.gen(function* () {
    const sides = p.passThrough
    if (sides === undefined || !p.bounded || (ctx.split !== undefined && ctx.split.phase !== "read")) return undefined
    const offer = yield* sides.source.offer
    if (offer === undefined) return undefined
    const agreed = yield* Effect.mapError(sides.sink.accept(offer), wrap(LoadError, p.sink.info.name))
    return agreed === undefined || agreed.format !== offer.format ? undefined : agreed
  })

/**
 * One attempt: reads the pipeline's batches and, for each, lets the quality gate take its rejects, writes it to the
 * outputs and settles its acknowledgement; at the end (or per segment) the gate checks the thresholds and the outputs
 * commit.
 */
const runAttempt = <E, R>(
  p: Pipeline<E, R>,
  ctx: RunContext,
  stats: StreamingStats,
  metrics: Metrics.RunMetrics,
  stateStore: State.StateStoreShape | undefined
): Effect.Effect<AttemptResult, PipelineError, R> => {
  const guarded = p.bounded && p.sink.durability === "per-write" && p.sink.mode !== "upsert"
  let durable = () => 0
  return Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      // Counters are reported in the order they are created: create them in pipeline order.
      for (const stage of p.stages) ctx.stage(stage)
      const gate = Quality.make(p as Pipeline<unknown, unknown>, ctx)
      metrics.dropped(gate.dropped)
      const outputs = yield* Outputs.make(p, ctx, stats, metrics, gate.checkRatio, stateStore)
      // A per-write sink has made durable every record it received.
      if (guarded) durable = outputs.received

      const stop = yield* StopSignal
      const agreed = yield* agreeOnRaw(p, ctx)
      if (agreed !== undefined)
        yield* Effect.logDebug(`records pass through as ${agreed.format} (${agreed.fields.join(", ")})`)
      const runCtx = agreed === undefined ? ctx : { ...ctx, passThrough: agreed }
      const built = p.bounded ? p.build(runCtx) : Stream.haltWhen(p.build(runCtx), stop)
      const batches = p.sink.batching === undefined ? built : built.pipe(Batch.gather(p.sink.batching))
      const tick: unique symbol = Symbol("tick")
      // With checkpoint barriers, they time the commits.
      const events: Stream.Stream<Batch.Batch<unknown> | typeof tick, PipelineError, R> =
        outputs.segmented && ctx.barriers === undefined
          ? Stream.merge(
              batches,
              Stream.map(Stream.tick(p.streaming.commitInterval), () => tick),
              { haltStrategy: "left" }
            )
          : batches
      // A segment that fails to commit in the background ends the attempt at once.
      const watched = outputs.segmented ? Stream.interruptWhen(events, outputs.commitFailed) : events
      yield* Stream.runForEach(watched, (event) =>
        event === tick
          ? outputs.tick
          : Effect.gen(function* () {
              if (event.deadLetters.length > 0) metrics.rejections(event.deadLetters)
              yield* gate.admit(event.deadLetters)
              yield* outputs.write(event)
              yield* logWarnings(ctx)
              progress.update(ctx)
              yield* outputs.settle(event)
            })
      )

      for (const stage of ctx.stages())
        if (stage.warned > MAX_LOGGED_WARNINGS)
          yield* Effect.logWarning(
            `${stage.warned} warnings in all; only the first ${MAX_LOGGED_WARNINGS} were logged`
          ).pipe(Effect.annotateLogs({ stage: stage.info.name }))
      if (gate.dropped() > Quality.MAX_LOGGED_DROPS)
        yield* Effect.logWarning(
          `${gate.dropped()} rejected records dropped in all, as the pipeline allows; only the first ${Quality.MAX_LOGGED_DROPS} were logged`
        )
      const committed = yield* outputs.finish(
        outputs.segmented ? gate.checkRatio : gate.beforeFinalCommit(outputs.received())
      )
      return { ...committed, dropped: gate.dropped() }
    })
  ).pipe(
    Effect.mapError((error) => (durable() > 0 ? final(error, durable(), p.sink.info.name) : error)),
    Effect.withSpan("Pipeline.attempt", { attributes: { "etl.attempt": ctx.attempt } })
  )
}

/** Logs the warnings the stages gathered since the last batch. */
const logWarnings = (ctx: RunContext) =>
  Effect.gen(function* () {
    for (const stage of ctx.stages()) {
      if (stage.pendingWarnings.length === 0) continue
      for (const warning of stage.drainWarnings())
        yield* Effect.logWarning(warning).pipe(Effect.annotateLogs({ stage: stage.info.name }))
    }
  })

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
  options?: {
    readonly runId?: string
    /** Runs one phase of a split pipeline (see `Split`; the cluster runs them). */
    readonly split?: Split | undefined
    /** The counts the stages start from (the finish phase of a split run: what its parts counted). */
    readonly counts?: ReadonlyMap<string, StageCounts> | undefined
    /** Rejected records the run's parts already dropped on purpose (the finish phase of a split run). */
    readonly dropped?: number | undefined
    /** When the run started, in milliseconds since the epoch, when it started before this call (a split run's plan). */
    readonly startedAt?: number | undefined
  }
): Effect.Effect<{ readonly report: RunReport; readonly error: PipelineError | undefined }, never, R> => {
  const runId = options?.runId ?? crypto.randomUUID()
  const run = Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const progress = yield* Progress
    const startedAt = options?.startedAt ?? clock.currentTimeMillisUnsafe()
    let attempts = 0
    const metrics = Metrics.make({ pipeline: p.name, run_id: runId }, yield* Effect.context<never>())
    const spanEvery = Spans.spacing(yield* Spans.BatchSpanRate)
    const newContext = (
      attempt: number,
      resume?: Checkpoint.Resume,
      restored?: Readonly<Record<string, unknown>>,
      barriers?: Stream.Stream<number>,
      reloadPositions?: (parts: ReadonlyArray<string>) => Effect.Effect<Checkpoint.Resume, PipelineError>,
      partitionStates?: PartitionStates
    ) =>
      makeRunContext({
        runId,
        pipeline: p.name,
        attempt,
        resume,
        reloadPositions,
        partitionStates,
        restored,
        barriers,
        split: options?.split,
        counts: options?.counts,
        now: () => clock.currentTimeMillisUnsafe(),
        onStage: (counter) => {
          counter.spanEvery = spanEvery
          metrics.stage(counter)
        }
      })
    let ctx: RunContext = newContext(1)
    const stats = new StreamingStats(metrics)
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
    // A split run's part is not a run of its own (it stages what it read, the finish writes it), and its finish is
    // not a new start: what planned the split run said that it started.
    const part = options?.split?.phase === "read"
    if (options?.split === undefined) yield* Effect.logInfo(`run started: ${p.name}`)
    else yield* Effect.logDebug(`${part ? "part" : "finish"} started: ${p.name}`)
    const observers = yield* RunObservers
    const started: RunStarted = {
      runId,
      pipeline: p.name,
      startedAt: new Date(startedAt).toISOString(),
      stages: [...p.stages, p.sink.info, ...(p.deadLetters === undefined ? [] : [p.deadLetters.info])],
      streaming: !p.bounded
    }
    for (const observer of observers) yield* observer.started(started)
    // The size is asked for beside the read, never before it; not knowing it only means no percentage.
    if (p.inputSize !== undefined && progress.size !== undefined) {
      const tell = progress.size
      yield* Effect.forkScoped(
        p.inputSize.pipe(
          Effect.flatMap((size) => Effect.sync(() => tell(size))),
          Effect.catchCause((cause) => Effect.logDebug("input size unknown", cause))
        )
      )
    }

    // A streaming run with stateful stages and a state store checkpoints their states (see `core/State.ts`).
    const stateStore = Option.getOrUndefined(yield* Effect.serviceOption(State.StateStore))
    const checkpointed = !p.bounded && stateStore !== undefined && p.stages.some((s) => s.stateful === true)
    // State per source part: each part's checkpoint is loaded when the part is assigned (see `StreamingPolicy`).
    const byPart = checkpointed && p.streaming.stateScope === "partition"
    const scopeProblem =
      byPart && p.resumable !== true
        ? new ExtractError({
            stage: p.stages[0]!.name,
            message: `state per partition needs a source whose parts resume from positions (Kafka); ${p.stages[0]!.name} has none: set the state scope to "pipeline"`,
            retryable: false
          })
        : undefined
    const stateError = (e: State.StateError) =>
      new ExtractError({ stage: p.stages[0]!.name, message: e.message, retryable: e.retryable, cause: e })
    const partStates = new Map<string, State.Snapshot>()
    const partitionStates = byPart
      ? {
          restored: (part: string) => partStates.get(part)?.stages,
          resumed: (part: string) => partStates.get(part)?.resume[part],
          key: (part: string) => `${p.name}@${part}`
        }
      : undefined
    const snapshot: Effect.Effect<State.Snapshot | undefined, PipelineError> =
      checkpointed && stateStore !== undefined && !byPart
        ? stateStore.load(p.name).pipe(
            Effect.mapError(stateError),
            Effect.tap((snap) =>
              snap === undefined
                ? Effect.void
                : Effect.logInfo(
                    `resuming from the checkpoint saved at ${snap.savedAt} in ${stateStore.description}`
                  ).pipe(Effect.annotateLogs({ positions: snap.resume, stages: Object.keys(snap.stages) }))
            )
          )
        : Effect.void.pipe(Effect.as(undefined))
    let barrierId = 0
    const barriers = checkpointed ? Stream.map(Stream.tick(p.streaming.commitInterval), () => ++barrierId) : undefined
    // A sink that stores source positions with its data tells each attempt where a resumable source starts.
    const store = p.resumable === true ? p.sink.positions : undefined
    const resume: Effect.Effect<Checkpoint.Resume | undefined, PipelineError, R> =
      store === undefined
        ? Effect.void.pipe(Effect.as(undefined))
        : store.load(p.name).pipe(
            Effect.mapError(wrap(LoadError, p.sink.info.name)),
            Effect.tap((stored) =>
              stored.size === 0
                ? Effect.void
                : Effect.logInfo(`resuming from the positions stored in ${store.where}`).pipe(
                    Effect.annotateLogs({ positions: Object.fromEntries(stored) })
                  )
            )
          )
    // Without a checkpoint of states, a part that moves to this process mid-run (a Kafka rebalance) starts where the
    // sink's data of it ends: the stored positions are loaded again then.
    const services = yield* Effect.context<R>()
    const reload =
      partitionStates !== undefined && stateStore !== undefined
        ? (parts: ReadonlyArray<string>) =>
            Effect.gen(function* () {
              const resume = new Map<string, string>()
              for (const part of parts) {
                const snap = yield* Effect.mapError(stateStore.load(partitionStates.key(part)), stateError)
                if (snap === undefined) {
                  partStates.delete(part)
                  continue
                }
                partStates.set(part, snap)
                const at = snap.resume[part]
                if (at !== undefined) resume.set(part, at)
                yield* Effect.logInfo(
                  `restoring the state of ${part} from the checkpoint saved at ${snap.savedAt} in ${stateStore.description}`
                ).pipe(Effect.annotateLogs({ part, position: at }))
              }
              return resume
            })
        : store === undefined || checkpointed
          ? undefined
          : () => Effect.provide(Effect.mapError(store.load(p.name), wrap(LoadError, p.sink.info.name)), services)
    const attempt = Effect.suspend(() => {
      attempts++
      ctx = newContext(attempts)
      return Effect.gen(function* () {
        if (scopeProblem !== undefined) return yield* Effect.fail(scopeProblem)
        // The checkpoint's positions go with its states; without one, the sink's stored positions. With state per
        // part, each part's checkpoint says where it starts, when the part is assigned.
        const snap = yield* snapshot
        const from = byPart ? undefined : snap === undefined ? yield* resume : new Map(Object.entries(snap.resume))
        partStates.clear()
        ctx = newContext(attempts, from, snap?.stages, barriers, reload, partitionStates)
        return yield* runAttempt(p, ctx, stats, metrics, checkpointed ? stateStore : undefined)
      })
    }).pipe(
      Effect.tapError((error) =>
        error.retryable && attempts < p.retry.attempts && !stopRequested
          ? Effect.gen(function* () {
              metrics.retry(error)
              const span = yield* Effect.currentSpan.pipe(Effect.option)
              if (span._tag === "Some")
                span.value.event("retry", clock.currentTimeNanosUnsafe(), {
                  "etl.attempt": attempts,
                  "error.type": error._tag,
                  "etl.stage": error.stage
                })
              yield* Effect.logWarning(`attempt ${attempts} failed, retrying: ${messageOf(error)}`).pipe(
                Effect.annotateLogs({ stage: error.stage, attempt: attempts })
              )
            })
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
    const t = totals(stages)
    const read = t.read
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
        filtered: t.filtered,
        rejected: t.rejected,
        warned: t.warned,
        deadLettered: succeeded?.deadLetters?.written ?? 0,
        dropped: (succeeded?.dropped ?? 0) + (options?.dropped ?? 0),
        combined: { in: t.combinedIn, out: t.combinedOut }
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
    if (error === undefined && !part && read > 0 && report.records.written === 0)
      yield* Effect.logWarning(
        `wrote nothing: all ${read} records read were filtered (${report.records.filtered}), rejected (${report.records.rejected}) or combined into nothing`
      )
    if (error === undefined && part)
      yield* Effect.logDebug(`part read: ${read} read, staged for the finish`).pipe(
        Effect.annotateLogs({ records: report.records, durationMs })
      )
    else if (error === undefined)
      yield* Effect.logInfo(`run succeeded: ${read} read, ${report.records.written} written`).pipe(
        Effect.annotateLogs({ records: report.records, durationMs })
      )
    else
      yield* Effect.logError(`run failed: ${messageOf(error)}`).pipe(
        Effect.annotateLogs({ stage: error.stage, attempts, retryable: error.retryable })
      )
    for (const observer of observers) yield* observer.finished({ ...started, report, error })
    metrics.finish()
    return { report, error }
  }).pipe(
    Effect.scoped,
    Effect.withSpan("Pipeline.run", { attributes: { pipeline: p.name, runId, "etl.streaming": !p.bounded } }),
    Effect.annotateLogs({ pipeline: p.name, runId })
  )
  // Metrics updated anywhere in the run (a connector's own gauges too) carry the pipeline and the run id.
  return Effect.gen(function* () {
    const attributes = yield* Metric.CurrentMetricAttributes
    return yield* Effect.provideService(run, Metric.CurrentMetricAttributes, {
      ...attributes,
      pipeline: p.name,
      run_id: runId
    })
  })
}

/** Runs a pipeline; fails with the PipelineError of a failed run. */
export const run = <E, R>(
  p: Pipeline<E, R>,
  options?: { readonly runId?: string }
): Effect.Effect<RunReport, PipelineError, R> =>
  Effect.flatMap(execute(p, options), ({ error, report }) =>
    error === undefined ? Effect.succeed(report) : Effect.fail(error)
  )
