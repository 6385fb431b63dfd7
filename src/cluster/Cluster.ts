/**
 * Runs on a cluster: a bounded pipeline's parts read on many runners, as durable workflows of Effect Cluster.
 *
 * A run is a workflow (`EtlRun`, its execution id from the run id) whose steps are activities, their results kept in
 * the cluster's storage (PostgreSQL):
 *
 * 1. `plan` lists the parts of the pipeline's input (`Source.split`).
 * 2. Each part is a workflow of its own (`EtlPart`, id `<run>/<part>`), so that the cluster places the parts on its
 *    runners by their shards; its one activity, `read`, reads the part through the stages before the cut into the
 *    run's staging area (`Split.readPart`).
 * 3. Once every part is read, `finish` takes the staged parts through the rest of the pipeline to the sink, which
 *    commits once (`Split.finish`); then `clear` removes the staging.
 *
 * A runner that dies takes the workflows of its shards with it; the cluster moves the shards to the runners left, and
 * they run again what had not finished: a part from its start, into a fresh staging area. What finished is not done
 * again, and a second submission of the same run id waits for the run, or returns its result. A pipeline whose source
 * cannot be split runs whole, as one activity (`whole`).
 *
 * Runners and submitters load the pipeline from the config text the run carries (`Pipelines`); the `$env` and
 * `$secret` references in it resolve on each runner.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Activity from "effect/workflow/Activity"
import * as Workflow from "effect/workflow/Workflow"
import { messageOf, type PipelineError } from "../core/Errors.ts"
import type { Pipeline } from "../core/Plan.ts"
import * as Retry from "../core/Retry.ts"
import type { RunReport } from "../core/RunReport.ts"
import type { SplitPart } from "../core/Stage.ts"
import * as Runner from "../runtime/Runner.ts"
import * as Split from "../runtime/Split.ts"
import { LookupCache, makeLookupCache } from "../transforms/Join.ts"

/** What a submission sends: the run id and the config, as text, with the settings the runners build it with. */
export const RunRequest = Schema.Struct({
  runId: Schema.String,
  /** The config's path on the submitting machine (names it in errors). */
  file: Schema.String,
  /** The config's text. */
  text: Schema.String,
  /** The `--schemas` directory ("" for the default). */
  schemas: Schema.String,
  /** The target size of a part of files or objects. */
  partBytes: Schema.Number
})
export type RunRequest = typeof RunRequest.Type

/** A pipeline loaded on a runner, with the layer of the services it needs (its connections, files, schemas). */
export interface LoadedPipeline {
  readonly pipeline: Pipeline<unknown, unknown>
  readonly layer: Layer.Layer<unknown>
}

/** Why a run failed: a stage's error, or a config the runner could not load. */
export class RunFailure extends Schema.TaggedError<RunFailure>()("RunFailure", {
  /** The PipelineError's tag (`ExtractError`, `QualityError`, ...), or `ConfigError`. */
  tag: Schema.String,
  stage: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean
}) {}

/** Loads the pipeline of a run request: given to runners (and submitters) by the command line. */
export class Pipelines extends Context.Service<
  Pipelines,
  { readonly load: (request: RunRequest) => Effect.Effect<LoadedPipeline, RunFailure> }
>()("effect-etl/cluster/Pipelines") {}

/** How a run ended: its report (JSON text) when it got one, its error when it failed. */
export const RunOutcome = Schema.Struct({
  report: Schema.NullOr(Schema.String),
  error: Schema.NullOr(RunFailure)
})
export type RunOutcome = typeof RunOutcome.Type

/** The workflow of a run. */
export const EtlRun = Workflow.make("EtlRun", {
  payload: RunRequest,
  success: RunOutcome,
  idempotencyKey: (request) => request.runId
})

/** The workflow of one part of a run. */
export const EtlPart = Workflow.make("EtlPart", {
  payload: Schema.Struct({
    request: RunRequest,
    /** The part, as JSON (`SplitPart`). */
    part: Schema.String,
    id: Schema.String,
    /** Its place in the run's list of parts. */
    index: Schema.Number
  }),
  /** The part's result, as JSON (`Split.PartResult`). */
  success: Schema.String,
  error: RunFailure,
  idempotencyKey: ({ request, id }) => `${request.runId}/${id}`
})

const failureOf = (error: PipelineError): RunFailure =>
  new RunFailure({ tag: error._tag, stage: error.stage, message: messageOf(error), retryable: error.retryable })

/** Runs `use` with the pipeline of the request and its services. */
const withPipeline = <A>(
  request: RunRequest,
  use: (pipeline: Pipeline<unknown, unknown>) => Effect.Effect<A, PipelineError, unknown>
): Effect.Effect<A, RunFailure, Pipelines> =>
  Effect.gen(function* () {
    const loaded = yield* (yield* Pipelines).load(request)
    return yield* use(loaded.pipeline).pipe(
      Effect.provide(loaded.layer as Layer.Layer<never>),
      Effect.mapError(failureOf)
    ) as Effect.Effect<A, RunFailure>
  })

/** The parts of a run's input, or why it runs whole. */
const PlanResult = Schema.Struct({
  parts: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  /** When the run started (milliseconds since the epoch): its report's start. */
  startedAt: Schema.Number
})

const plan = (request: RunRequest) =>
  Activity.make({
    name: "plan",
    success: PlanResult,
    error: RunFailure,
    execute: withPipeline(request, (pipeline): Effect.Effect<typeof PlanResult.Type, PipelineError, unknown> => {
      const startedAt = Date.now()
      const problem = Split.problemOf(pipeline)
      if (problem !== undefined) return Effect.succeed({ parts: null, reason: problem, startedAt })
      // Listing the parts reads the source (a table's bounds, a directory): transient failures are retried as a run's.
      const listed = pipeline.split!({ targetBytes: request.partBytes }).pipe(
        Effect.retry({ schedule: Retry.schedule(pipeline.retry), while: (e: PipelineError) => e.retryable })
      )
      return Effect.map(listed, (parts) => ({
        parts: JSON.stringify(parts),
        reason: null,
        startedAt
      }))
    })
  })

const outcomeOf = (result: { readonly report: RunReport; readonly error: PipelineError | undefined }): RunOutcome => ({
  report: JSON.stringify(result.report),
  error: result.error === undefined ? null : failureOf(result.error)
})

const whole = (request: RunRequest) =>
  Activity.make({
    name: "whole",
    success: RunOutcome,
    error: RunFailure,
    execute: withPipeline(request, (pipeline) =>
      Effect.map(Runner.execute(pipeline, { runId: request.runId }), outcomeOf)
    )
  })

const finish = (
  request: RunRequest,
  parts: ReadonlyArray<SplitPart>,
  results: ReadonlyArray<Split.PartResult>,
  startedAt: number
) =>
  Activity.make({
    name: "finish",
    success: RunOutcome,
    error: RunFailure,
    execute: withPipeline(request, (pipeline) =>
      Effect.map(Split.finish(pipeline, { runId: request.runId, parts, results, startedAt }), outcomeOf)
    )
  })

/** The report of a run that failed in a part: what the parts read before it failed, and the error. */
const failed = (
  request: RunRequest,
  results: ReadonlyArray<Split.PartResult>,
  failure: RunFailure,
  startedAt: number
) =>
  Activity.make({
    name: "failed",
    success: RunOutcome,
    error: RunFailure,
    execute: withPipeline(request, (pipeline) =>
      Effect.map(Clock.currentTimeMillis, (finishedAt) => ({
        report: JSON.stringify(
          Split.failedReport(pipeline, {
            runId: request.runId,
            results,
            error: { tag: failure.tag, stage: failure.stage, message: failure.message, retryable: failure.retryable },
            startedAt,
            finishedAt
          })
        ),
        error: failure
      }))
    )
  })

/** Records the run's number of parts where the submitter reads its progress (an activity: once per run). */
const tellPlan = (runId: string, parts: number) =>
  Activity.make({
    name: "progress",
    execute: Effect.flatMap(Split.Staging, (staging) =>
      staging.planned === undefined ? Effect.void : Effect.ignore(staging.planned(runId, parts))
    )
  })

/** Removes what the run staged: in the cluster's database, and in the sink's own staging when its parts wrote there. */
const clear = (request: RunRequest, parts: ReadonlyArray<SplitPart>) =>
  Activity.make({
    name: "clear",
    execute: withPipeline(request, (pipeline) => Split.clear(pipeline, request.runId, parts)).pipe(
      Effect.catch((e) => Effect.logWarning(`the staging of run ${request.runId} stays: ${e.message}`)),
      Effect.annotateLogs({ runId: request.runId })
    )
  })

/** The joined sides that broadcast joins loaded on this runner: once per run, not once per part. */
const lookups = makeLookupCache(4)

const read = (request: RunRequest, part: SplitPart, index: number) =>
  Activity.make({
    name: "read",
    success: Schema.String,
    error: RunFailure,
    execute: withPipeline(request, (pipeline) =>
      Effect.map(
        Effect.andThen(
          Effect.logInfo(`reading part ${part.id}`),
          Split.readPart(pipeline, { runId: request.runId, part, index })
        ).pipe(
          Effect.provideService(LookupCache, lookups),
          Effect.tap((result) =>
            Effect.logInfo(
              `part ${part.id} read: ${result.staged} records and ${result.deadLetters} dead letters staged`
            )
          ),
          Effect.annotateLogs({ runId: request.runId, part: part.id })
        ),
        (result) => JSON.stringify(result)
      )
    )
  })

const runLayer = EtlRun.toLayer((request) =>
  Effect.gen(function* () {
    const planned = yield* plan(request)
    if (planned.parts === null) {
      yield* Effect.logInfo(`run ${request.runId} reads its input whole on one runner: ${planned.reason}`)
      return yield* whole(request)
    }
    const parts = JSON.parse(planned.parts) as ReadonlyArray<SplitPart>
    yield* Effect.logInfo(`run ${request.runId}: ${parts.length} parts`)
    yield* tellPlan(request.runId, parts.length)
    // Every part ends (read, or failed) before the run does, so that nothing writes to its staging after it.
    const ended = yield* Effect.forEach(
      parts,
      (part, index) => Effect.result(EtlPart.execute({ request, part: JSON.stringify(part), id: part.id, index })),
      { concurrency: "unbounded" }
    )
    const failure = ended.find((r) => r._tag === "Failure")
    if (failure !== undefined && failure._tag === "Failure") {
      const read = ended.flatMap((r) => (r._tag === "Success" ? [JSON.parse(r.success) as Split.PartResult] : []))
      // The report of the parts that were read, with the error (else the error alone).
      const outcome = yield* failed(request, read, failure.failure, planned.startedAt).pipe(
        Effect.catch(() => Effect.succeed({ report: null, error: failure.failure }))
      )
      yield* clear(request, parts)
      return outcome
    }
    const results = ended.map((r) => JSON.parse(r._tag === "Success" ? r.success : "{}") as Split.PartResult)
    const outcome = yield* finish(request, parts, results, planned.startedAt)
    yield* clear(request, parts)
    return outcome
  }).pipe(Effect.catch((error: RunFailure) => Effect.succeed({ report: null, error })))
)

/** The workflows, registered on a runner; needs the pipelines and the staging. */
export const layerWorkflows = Layer.mergeAll(
  runLayer,
  EtlPart.toLayer(({ request, part, index }) => read(request, JSON.parse(part) as SplitPart, index))
)
