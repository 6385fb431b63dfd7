/**
 * A pipeline as data: a flow attached to a sink, with a retry policy, quality thresholds, streaming commits and an
 * optional dead-letter sink. The combinators here build it; the runtime runs it. Users reach all of this through the
 * front door, `Pipeline` (`src/pipeline/Pipeline.ts`), which adds the transforms and `run`.
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Batch from "./Batch.ts"
import type * as Checkpoint from "./Checkpoint.ts"
import type * as DeadLetter from "./DeadLetter.ts"
import type { PipelineError } from "./Errors.ts"
import { type Flow, uniqueName } from "./Flow.ts"
import type * as PassThrough from "./PassThrough.ts"
import * as Retry from "./Retry.ts"
import type { Batching, PartStaging, Sink, SinkWriter, WriteMode } from "./Sink.ts"
import type { SplitOptions } from "./Source.ts"
import type { InputSize, RunContext, SplitPart, StageInfo } from "./Stage.ts"

/** Limits on rejected records; crossing one fails the run before the sink commits. */
export interface QualityPolicy {
  /** Fail when more than this many records are rejected. */
  readonly maxRejected?: number
  /** Fail when more than this fraction (0..1) of the records read are rejected (checked at the end of the input). */
  readonly maxRejectedRatio?: number
  /**
   * Without a dead-letter sink, a rejected record fails the run (before the sink commits) unless its stage is named
   * here (`true`: any stage): its rejects are then counted, logged (the first few) and dropped on purpose.
   */
  readonly dropRejected?: true | ReadonlyArray<string>
  /** Lets an overwrite replace the target's data with an empty result (default: such a run fails before committing). */
  readonly allowEmptyOverwrite?: boolean
}

/**
 * How a streaming run (an unbounded source) makes an `on-commit` sink's data visible: it commits the sink's writer every
 * `commitInterval` (timed by `Clock`) or as soon as `commitRecords` records were written since the last commit,
 * acknowledges the source positions that commit covered, and opens a new writer for the next segment.
 */
export interface StreamingPolicy {
  /** Default `"10 seconds"`. */
  readonly commitInterval: Duration.Input
  /** Default 100000. */
  readonly commitRecords: number
  /**
   * How stateful stages keep their state when a state store checkpoints it. `"pipeline"` (default): one state for the
   * whole input, one snapshot per pipeline; run it as one process. `"partition"`: a state per source part (Kafka
   * partition), as Kafka Streams keeps one per task, saved per part: processes of one consumer group share the
   * partitions, and a partition that moves takes its state along (saved by the process that gives it up, restored by
   * the one that gets it). Windows then close on their own partition's watermark, and groups are formed within a
   * partition: the group keys must decide the partition (the topic is keyed by them), or results split.
   */
  readonly stateScope?: "pipeline" | "partition" | undefined
}

/** The streaming policy of pipelines that set none. */
export const defaultStreaming: StreamingPolicy = { commitInterval: "10 seconds", commitRecords: 100_000 }

/** The sink side of a pipeline, with its record type erased (it was checked when `to` was called). */
export interface SinkPlan<R> {
  readonly info: StageInfo
  readonly name: string
  readonly type: string
  readonly mode: WriteMode
  readonly durability: "per-write" | "on-commit"
  /** How the runtime gathers batches for this sink, if it does. */
  readonly batching: Batching | undefined
  readonly open: Effect.Effect<SinkWriter<unknown, unknown>, unknown, R | Scope.Scope>
  /** The sink's checks of its target, without writing (see `Sink.check`). */
  readonly check: Effect.Effect<void, unknown, R> | undefined
  /** The positions the sink stores with its data, when it does (see `Sink.positions`). */
  readonly positions: Checkpoint.Store<unknown, R> | undefined
  /** How the sink stages a split run's parts in its own storage, when it can (see `Sink.staging`). */
  readonly staging?: PartStaging<unknown, R> | undefined
  /** How the sink stages the parts of a run on threads of one process (see `Sink.threadStaging`). */
  readonly threadStaging?: PartStaging<unknown, R> | undefined
}

/** A complete pipeline, ready to run. */
export interface Pipeline<out E = never, out R = never> extends Pipeable {
  readonly name: string
  readonly bounded: boolean
  /** `true` when the source resumes from given positions (see `Source.resumable`). */
  readonly resumable?: boolean | undefined
  /** Source and transform stages, in order. */
  readonly stages: ReadonlyArray<StageInfo>
  readonly build: (ctx: RunContext) => Stream.Stream<Batch.Batch<unknown>, PipelineError, R>
  /** The size of the source's input, when the source can tell (for progress). */
  readonly inputSize: Effect.Effect<InputSize, PipelineError, R> | undefined
  /** Lists the parts its source reads apart (see `Source.split`); absent when the pipeline cannot be split. */
  readonly split?: ((options: SplitOptions) => Effect.Effect<ReadonlyArray<SplitPart>, PipelineError, R>) | undefined
  /** What the source does once a split run's sink committed its parts (see `Source.commitParts`). */
  readonly commitParts?: ((parts: ReadonlyArray<SplitPart>) => Effect.Effect<void, PipelineError, R>) | undefined
  readonly sink: SinkPlan<R>
  /**
   * The source's and the sink's sides of a pass-through (see `PassThrough`), when the pipeline has no transform and
   * both sides speak the same format; the runtime asks them at each attempt.
   */
  readonly passThrough?:
    | { readonly source: PassThrough.SourceSide<PipelineError, R>; readonly sink: PassThrough.SinkSide<unknown, R> }
    | undefined
  readonly deadLetters: SinkPlan<R> | undefined
  readonly retry: Retry.RetryPolicy
  readonly quality: QualityPolicy
  /** Segment commits of streaming runs (used only when the source is unbounded). */
  readonly streaming: StreamingPolicy
  /** Phantom: the connector errors that may surface as causes of the stage errors. */
  readonly "~errors"?: (_: never) => E
}

/**
 * Why a sink with this write mode cannot take an unbounded (streaming) input, or `undefined` when it can: an overwrite
 * would replace its data at every segment commit. Both front doors (the runtime and config building) ask this.
 */
export const unboundedProblem = (mode: WriteMode): string | undefined =>
  mode === "overwrite"
    ? 'an overwrite sink cannot take an unbounded (streaming) input: it would replace its data at every commit; use "append" or "upsert"'
    : undefined

/** Marks pipeline values, so a module's export can be recognised at run time. */
export const TypeId: unique symbol = Symbol.for("effect-etl/Pipeline")

/** True for pipeline values (e.g. the default export of a pipeline module). */
export const isPipeline = (u: unknown): u is Pipeline<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

const PipelineProto: Pipeable = {
  [TypeId]: TypeId,
  pipe() {
    // biome-ignore lint/complexity/noArguments: pipeArguments takes the arguments object by design
    return pipeArguments(this, arguments)
  }
} as Pipeable

const make = <E, R>(fields: Omit<Pipeline<E, R>, "pipe">): Pipeline<E, R> =>
  Object.assign(Object.create(PipelineProto) as Pipeline<E, R>, fields)

const planSink = <A, E, R>(
  sink: Sink<A, E, R>,
  kind: "sink" | "dead-letters",
  taken: ReadonlyArray<StageInfo>
): SinkPlan<R> => {
  const info: StageInfo = {
    name: uniqueName(taken, sink.name),
    kind,
    description: sink.description,
    cardinality: "one-to-one",
    connector: sink.type,
    ...(sink.dataset === undefined ? {} : { dataset: sink.dataset }),
    ...(sink.attributes === undefined ? {} : { attributes: sink.attributes })
  }
  return {
    info,
    name: sink.name,
    type: sink.type,
    mode: sink.mode,
    durability: sink.durability,
    batching: sink.batching,
    // The record type was checked by `to`; past this point the runtime only moves batches it built itself.
    open: sink.open as unknown as Effect.Effect<SinkWriter<unknown, unknown>, unknown, R | Scope.Scope>,
    check: sink.check,
    positions: sink.positions,
    ...(sink.staging === undefined ? {} : { staging: sink.staging }),
    ...(sink.threadStaging === undefined ? {} : { threadStaging: sink.threadStaging })
  }
}

/**
 * Attaches a sink. The sink must accept the flow's records.
 *
 * @example
 * Pipeline.to(Sink.collect<Transaction>("out"))
 */
export const to =
  <A, E2, R2>(sink: Sink<A, E2, R2>, options?: { readonly name?: string }) =>
  <E, R>(self: Flow<A, E, R>): Pipeline<E | E2, R | Exclude<R2, Scope.Scope>> =>
    make<E | E2, R | Exclude<R2, Scope.Scope>>({
      name: options?.name ?? self.name,
      bounded: self.bounded,
      ...(self.resumable === true ? { resumable: true } : {}),
      stages: self.stages,
      build: self.build,
      inputSize: self.inputSize,
      ...(self.split === undefined ? {} : { split: self.split }),
      ...(self.commitParts === undefined ? {} : { commitParts: self.commitParts }),
      sink: planSink(sink as Sink<A, E2, Exclude<R2, Scope.Scope>>, "sink", self.stages),
      ...(self.passThrough === undefined ||
      sink.writesRaw === undefined ||
      self.passThrough.format !== sink.writesRaw.format
        ? {}
        : {
            passThrough: {
              source: self.passThrough,
              sink: sink.writesRaw as PassThrough.SinkSide<unknown, Exclude<R2, Scope.Scope>>
            }
          }),
      deadLetters: undefined,
      retry: Retry.defaultPolicy,
      quality: {},
      streaming: defaultStreaming
    })

/** Renames the pipeline (its name is in every log line and in the RunReport). */
export const named =
  (name: string) =>
  <E, R>(self: Pipeline<E, R>): Pipeline<E, R> =>
    make({ ...self, name })

/**
 * Sets the retry policy (default: 3 attempts, exponential backoff from 5 s). Only retryable errors are retried.
 *
 * @example
 * Pipeline.withRetry({ attempts: 5, initialDelay: "1 second", factor: 2, maxDelay: "30 seconds" })
 */
export const withRetry =
  (policy: Retry.RetryPolicy) =>
  <E, R>(self: Pipeline<E, R>): Pipeline<E, R> =>
    make({ ...self, retry: policy })

/**
 * Sends rejected records (failed validation, casts, decoding) to a sink of dead letters, written before the batch they
 * came from is acknowledged. Without one, rejected records are counted and logged.
 */
export const withDeadLetters =
  <E2, R2>(sink: Sink<DeadLetter.DeadLetter, E2, R2>) =>
  <E, R>(self: Pipeline<E, R>): Pipeline<E | E2, R | Exclude<R2, Scope.Scope>> =>
    make<E | E2, R | Exclude<R2, Scope.Scope>>({
      ...self,
      deadLetters: planSink(sink as Sink<DeadLetter.DeadLetter, E2, Exclude<R2, Scope.Scope>>, "dead-letters", [
        ...self.stages,
        self.sink.info
      ])
    })

/**
 * Sets how often a streaming run commits an `on-commit` sink (see {@link StreamingPolicy}); fields left out keep their
 * defaults.
 *
 * @example
 * Pipeline.withStreaming({ commitInterval: "5 seconds", commitRecords: 50_000 })
 */
export const withStreaming =
  (policy: Partial<StreamingPolicy>) =>
  <E, R>(self: Pipeline<E, R>): Pipeline<E, R> =>
    make({ ...self, streaming: { ...self.streaming, ...policy } })

/** Sets the thresholds of rejected records above which the run fails (before the sink commits). */
export const withQuality =
  (quality: QualityPolicy) =>
  <E, R>(self: Pipeline<E, R>): Pipeline<E, R> =>
    make({ ...self, quality })

/** What the pipeline would do, one line per stage (what `validate` prints). */
export const describe = <E, R>(self: Pipeline<E, R>): ReadonlyArray<string> => {
  const lines = [`pipeline ${self.name} (${self.bounded ? "batch" : "streaming"})`]
  for (const stage of self.stages) lines.push(`  ${stage.kind.padEnd(12)} ${stage.name}: ${stage.description}`)
  lines.push(`  ${"sink".padEnd(12)} ${self.sink.info.name}: ${self.sink.info.description} [${self.sink.mode}]`)
  if (self.deadLetters !== undefined)
    lines.push(`  ${"dead-letters".padEnd(12)} ${self.deadLetters.info.name}: ${self.deadLetters.info.description}`)
  lines.push(`  ${"retry".padEnd(12)} ${Retry.describe(self.retry)}`)
  if (!self.bounded && self.sink.durability === "on-commit")
    lines.push(
      `  ${"commits".padEnd(12)} every ${String(self.streaming.commitInterval)} or ${self.streaming.commitRecords} records`
    )
  if (!self.bounded && self.streaming.stateScope === "partition" && self.stages.some((s) => s.stateful === true))
    lines.push(
      `  ${"state".padEnd(12)} per source partition: processes of one consumer group share the partitions, each partition's state moves with it`
    )
  if (self.resumable === true)
    lines.push(
      `  ${"delivery".padEnd(12)} ${
        self.sink.positions === undefined
          ? "at-least-once (the sink does not store source positions: a restart reads again what its last commit did not acknowledge)"
          : self.stages.some((s) => s.stateful === true)
            ? `source positions stored with the data (${self.sink.positions.where}); the stateful stages are exact after a restart with a state store (checkpoints) and an upsert sink, else at-least-once`
            : `exactly once: source positions stored with the data (${self.sink.positions.where}), a restart resumes there`
      }`
    )
  if (self.quality.maxRejected !== undefined || self.quality.maxRejectedRatio !== undefined)
    lines.push(
      `  ${"quality".padEnd(12)} ${[
        self.quality.maxRejected === undefined ? "" : `at most ${self.quality.maxRejected} rejected`,
        self.quality.maxRejectedRatio === undefined ? "" : `at most ${self.quality.maxRejectedRatio * 100}% rejected`
      ]
        .filter((s) => s !== "")
        .join(", ")}`
    )
  return lines
}
