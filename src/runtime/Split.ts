/**
 * Split runs: a bounded pipeline whose source lists its parts (`Source.split`) runs in two phases.
 *
 * 1. **Read**, once per part, anywhere (one process, or the runners of a cluster): the part is read and taken through
 *    the stages before the first one that needs the whole input (the cut: an aggregate, a window, any stateful
 *    stage); what comes out, records and dead letters, is staged under the part's name (`Staging`). A pipeline without
 *    such a stage whose sink stages parts itself (`Sink.staging`: a staging table next to a SQL target) writes its
 *    records there instead, and they never leave the target's server. A part that is read again (a retried attempt,
 *    a runner that died) starts a fresh staging area: only its last complete read counts.
 * 2. **Finish**, once: the staged batches of every part, each part in its order, go through the stage at the cut and
 *    the ones after it to the sink, which commits once (an overwrite swaps, an append adds in one commit, an upsert
 *    merges); a sink that staged the parts itself takes them in with that commit. The dead letters of every part go
 *    to the run's dead-letter sink. The RunReport adds the parts' counts to the finish's, so that its row counts
 *    reconcile as a one-process run's do. Then `clear` removes what the run staged.
 *
 * A stage at the cut that merges (`StageInfo.mergeable`: an aggregate, or an aggregate fused with the window before
 * it) runs in both phases: each part computes its partial states and stages them instead of its records, and the
 * finish merges them (`RunContext.combine`).
 *
 * The result equals a one-process run's: the stages before the cut work record by record; a windowed aggregate's parts
 * decide lateness as one process does (each part of a bounded input is judged on its own latest event time, see
 * `Watermark.isLate`); and the finish reads the parts as a one-process run reads them (each a part of its own, with
 * its own watermark).
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Batch from "../core/Batch.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { BuildError, ExtractError, LoadError, messageOf, ofTag, type PipelineError } from "../core/Errors.ts"
import { cutOf } from "../core/Flow.ts"
import type { Pipeline, SinkPlan } from "../core/Plan.ts"
import * as Retry from "../core/Retry.ts"
import { type RunReport, stageReports, totals } from "../core/RunReport.ts"
import type { SinkWriter } from "../core/Sink.ts"
import * as Source from "../core/Source.ts"
import { makeRunContext, type SplitPart, type StageCounts, type StageInfo } from "../core/Stage.ts"
import * as ValueCodec from "../core/ValueCodec.ts"
import { LookupCache, makeLookupCache } from "../transforms/Join.ts"
import { RunObservers } from "./Observers.ts"
import * as Runner from "./Runner.ts"

/** What a staging area holds: the records a part gave, or its dead letters. */
export type StagedKind = "records" | "dead-letters"

/** A staging area failed (its database is down, a write was refused). */
export class StagingError extends Data.TaggedError("StagingError")<{
  readonly message: string
  readonly retryable: boolean
  readonly cause?: unknown
}> {}

/** The writer of one part's staging area (of one kind), for one read of the part. */
export interface StagingWriter {
  /** Stages a batch of values (records or dead letters), in order. */
  readonly write: (values: ReadonlyArray<unknown>) => Effect.Effect<void, StagingError>
  /** Makes what was written the part's staged data (replacing what an earlier read staged), atomically. */
  readonly commit: Effect.Effect<void, StagingError>
}

/** Where a split run keeps what each part gave until its finish phase takes it. */
export interface StagingShape {
  /** For logs and errors: `memory`, `postgres://host/db (etl_staging)`. */
  readonly description: string
  /** Opens a fresh staging area for a part's read; nothing of it is visible before `commit`. */
  readonly open: (
    run: string,
    part: string,
    kind: StagedKind
  ) => Effect.Effect<StagingWriter, StagingError, Scope.Scope>
  /** The batches of values a part's last committed read staged, in order (none when it staged nothing). */
  readonly read: (run: string, part: string, kind: StagedKind) => Stream.Stream<ReadonlyArray<unknown>, StagingError>
  /** Removes everything staged for a run. */
  readonly clear: (run: string) => Effect.Effect<void, StagingError>
  /** Records how many parts a run has (for a submitter's progress), where the staging can keep it. */
  readonly planned?: ((run: string, parts: number) => Effect.Effect<void, StagingError>) | undefined
}

/** The staging service. */
export class Staging extends Context.Service<Staging, StagingShape>()("effect-etl/runtime/Split/Staging") {}

/** Staging in memory, for tests and for split runs in one process. Values are kept as JSON, as a database keeps them. */
export const makeMemory = (): StagingShape => {
  const committed = new Map<string, ReadonlyArray<string>>()
  const keyOf = (run: string, part: string, kind: StagedKind) => JSON.stringify([run, part, kind])
  return {
    description: "memory",
    open: (run, part, kind) =>
      Effect.sync(() => {
        const rows: Array<string> = []
        return {
          write: (values) => Effect.sync(() => void rows.push(encodeValues(values))),
          commit: Effect.sync(() => void committed.set(keyOf(run, part, kind), rows.slice()))
        }
      }),
    read: (run, part, kind) =>
      Stream.suspend(() => Stream.fromIterable((committed.get(keyOf(run, part, kind)) ?? []).map(decodeValues))),
    clear: (run) =>
      Effect.sync(() => {
        for (const key of Array.from(committed.keys()))
          if ((JSON.parse(key) as Array<string>)[0] === run) committed.delete(key)
      })
  }
}

/** Values as the JSON text a staging area keeps (see `ValueCodec`: dates, decimals, bigints and bytes survive). */
export const encodeValues = (values: ReadonlyArray<unknown>): string => JSON.stringify(values.map(ValueCodec.encode))

/** The values `encodeValues` gave. */
export const decodeValues = (text: string): ReadonlyArray<unknown> =>
  (JSON.parse(text) as ReadonlyArray<unknown>).map(ValueCodec.decode)

/** How a pipeline splits, or why it cannot. */
export interface SplitPlan {
  /** The index of the first stage the finish phase runs (see `Split.cut`). */
  readonly cut: number
  /** The stage at the cut merges: the parts compute its partial states, the finish merges them (see `Split.merge`). */
  readonly merge: boolean
  /** The name of the stage that merges (the one at the cut, or the one fused with it), when `merge`. */
  readonly merger: string | undefined
  /**
   * The parts write to the sink's own staging (`Sink.staging`: the pipeline has no stage that needs the whole input,
   * and the sink can stage): the finish moves what they staged into the target in one commit, on the target's server.
   */
  readonly native: boolean
  /** The stages the read phase runs (the source first). */
  readonly readStages: ReadonlyArray<StageInfo>
  /** The stages the finish phase runs (the merging stage first, when there is one: it merges the parts' states). */
  readonly finishStages: ReadonlyArray<StageInfo>
}

/** Why the pipeline cannot run split, or `undefined` when it can. */
export const problemOf = <E, R>(p: Pipeline<E, R>): string | undefined => {
  if (!p.bounded) return `${p.name} reads a stream that never ends; split runs are for bounded (batch) pipelines`
  if (p.split === undefined)
    return p.stages.some((s) => s.inputs !== undefined)
      ? `${p.name} reads two inputs (an interval join), so it cannot be split into parts`
      : `the source ${p.stages[0]!.name} cannot list parts of its input (an incremental read saves its mark when it ends)`
  return undefined
}

/** Where the pipeline is cut between its phases. */
export const planOf = <E, R>(p: Pipeline<E, R>): SplitPlan => {
  const cut = cutOf(p.stages)
  const merger = mergerOf(p.stages, cut)
  return {
    cut,
    merge: merger !== undefined,
    merger: merger === undefined ? undefined : p.stages[merger]!.name,
    native: cut === p.stages.length && p.sink.staging !== undefined,
    readStages: p.stages.slice(0, merger === undefined ? cut : merger + 1),
    finishStages: p.stages.slice(merger ?? cut)
  }
}

/**
 * The index of the stage that merges partial states at the cut: the stage at the cut, or the one fused with it (an
 * aggregate right after a window); `undefined` when there is none.
 */
const mergerOf = (stages: ReadonlyArray<StageInfo>, cut: number): number | undefined => {
  if (stages[cut]?.mergeable === true) return cut
  const next = stages[cut + 1]
  return next?.fused === true && next.mergeable === true ? cut + 1 : undefined
}

/** What the read of one part gave: the counts of the stages it ran, and what it staged. */
export interface PartResult {
  readonly part: string
  /** Counts of the read phase's stages, by stage name. */
  readonly counts: Readonly<Record<string, StageCounts>>
  /** Records staged. */
  readonly staged: number
  /** Dead letters staged. */
  readonly deadLetters: number
  /** Rejected records dropped on purpose (the pipeline allows it, without a dead-letter sink). */
  readonly dropped: number
  readonly durationMs: number
}

const stagingPlan = (
  name: string,
  kind: "sink" | "dead-letters",
  staging: StagingShape,
  run: string,
  part: string
): SinkPlan<never> => ({
  info: {
    name,
    kind,
    description: `staging of part ${part} (${staging.description})`,
    cardinality: "one-to-one"
  },
  name,
  type: "staging",
  mode: "append",
  durability: "on-commit",
  // Small batches are staged together: one row of the staging per 10,000 records or so.
  batching: { size: 10_000, linger: "1 second" },
  open: Effect.map(staging.open(run, part, kind === "sink" ? "records" : "dead-letters"), (writer) => {
    let written = 0
    return {
      write: (values: ReadonlyArray<unknown>) =>
        Effect.map(writer.write(values), () => {
          written += values.length
        }),
      commit: Effect.map(writer.commit, () => ({ written, location: `${staging.description}: ${part}` }))
    }
  }),
  check: undefined,
  positions: undefined
})

const stagingError = (stage: string, part: string) => (e: StagingError) =>
  new LoadError({ stage, message: `staging of part ${part}: ${e.message}`, retryable: e.retryable, cause: e })

/**
 * Reads one part: the pipeline's stages before the cut, into the part's staging area. The pipeline's retry policy
 * applies; a part that fails names itself in the error.
 */
export const readPart = <E, R>(
  p: Pipeline<E, R>,
  options: {
    readonly runId: string
    readonly part: SplitPart
    /** The part's place in the run's list of parts (the first one emits what a run emits once). */
    readonly index: number
  }
): Effect.Effect<PartResult, PipelineError, R | Staging> =>
  Effect.gen(function* () {
    const staging = yield* Staging
    const { cut, merge, readStages, native } = planOf(p)
    const part = options.part
    // The thresholds are the run's: the finish judges them on the whole run (a part may reject more than its share).
    const { maxRejected: _max, maxRejectedRatio: _ratio, ...partQuality } = p.quality
    const reader: Pipeline<E, R> = withPlan(p, {
      quality: partQuality,
      stages: readStages,
      // Records pass through as bytes only to the sink's own staging (the run's staging takes records).
      passThrough: native ? p.passThrough : undefined,
      sink: native
        ? partSink(p.sink, options.runId, part.id)
        : mapOpenError(stagingPlan("staging", "sink", staging, options.runId, part.id), part.id),
      deadLetters:
        p.deadLetters === undefined
          ? undefined
          : mapOpenError(stagingPlan("staging-dead-letters", "dead-letters", staging, options.runId, part.id), part.id)
    })
    const { report, error } = yield* Runner.execute(reader, {
      runId: `${options.runId}/${part.id}`,
      split: {
        phase: "read",
        cut,
        merge,
        parts: [part],
        first: options.index === 0,
        index: options.index,
        run: options.runId
      }
    }).pipe(Effect.provideService(RunObservers, []), Effect.annotateLogs({ part: part.id }))
    if (error !== undefined) return yield* Effect.fail(inPart(error, part))
    const counts: Record<string, StageCounts> = {}
    // The sink's own staging: the sink counts what it received, for the finish that commits it.
    for (const stage of report.stages)
      if (readStages.some((s) => s.name === stage.name) || (native && stage.name === p.sink.info.name))
        counts[stage.name] = {
          recordsIn: stage.recordsIn,
          recordsOut: stage.recordsOut,
          filtered: stage.filtered,
          rejected: stage.rejected,
          consumed: stage.consumed,
          warned: stage.warned,
          batches: stage.batches,
          busyMs: stage.busyMs,
          bytes: stage.bytes ?? 0
        }
    return {
      part: part.id,
      counts,
      staged: report.records.written,
      deadLetters: report.records.deadLettered,
      dropped: report.records.dropped,
      durationMs: report.durationMs
    }
  })

/** The sink of a part that writes to the sink's own staging: it appends to the part's staging area. */
const partSink = <R>(sink: SinkPlan<R>, runId: string, part: string): SinkPlan<R> => ({
  ...sink,
  info: { ...sink.info, description: `${sink.staging!.description}: part ${part}` },
  mode: "append",
  durability: "on-commit",
  open: sink.staging!.part(runId, part),
  check: undefined,
  positions: undefined,
  staging: undefined
})

const mapOpenError = (plan: SinkPlan<never>, part: string): SinkPlan<never> => ({
  ...plan,
  open: Effect.map(
    Effect.mapError(plan.open, (e) => stagingError(plan.info.name, part)(e as StagingError)),
    (writer) => ({
      write: (values: ReadonlyArray<unknown>) =>
        Effect.mapError(writer.write(values), (e) => stagingError(plan.info.name, part)(e as StagingError)),
      commit: Effect.mapError(writer.commit, (e) => stagingError(plan.info.name, part)(e as StagingError))
    })
  )
})

/** The error of a part's read, naming the part. */
const inPart = (error: PipelineError, part: SplitPart): PipelineError =>
  ofTag(error._tag, {
    stage: error.stage,
    message: `part ${part.id} (${part.description}): ${messageOf(error)}`,
    retryable: error.retryable,
    cause: error.cause
  })

/** The staged batches of the parts, each part in its order and a part of its own (see `Source.readParts`). */
const stagedBatches = (
  staging: StagingShape,
  runId: string,
  parts: ReadonlyArray<SplitPart>,
  stage: string
): Stream.Stream<Batch.Batch<unknown>, PipelineError> =>
  Source.readParts(
    parts,
    (part) =>
      Stream.concat(
        Stream.map(staging.read(runId, part.id, "dead-letters"), (letters) =>
          Batch.make<unknown>([], { deadLetters: letters as ReadonlyArray<DeadLetter.DeadLetter> })
        ),
        Stream.map(staging.read(runId, part.id, "records"), (records) => Batch.make(records))
      ).pipe(Stream.mapError(stagingError(stage, part.id))),
    // Two parts at a time: one is read from the staging while the other is decoded and written.
    { concurrency: 2, id: (part) => part.id }
  )

/**
 * The finish phase: the staged batches of every part through the stages from the cut on, to the sink, committed
 * once. The report counts the whole run: the parts' reads and the finish.
 */
export const finish = <E, R>(
  p: Pipeline<E, R>,
  options: {
    readonly runId: string
    readonly parts: ReadonlyArray<SplitPart>
    readonly results: ReadonlyArray<PartResult>
    /** When the run started (its plan), in milliseconds since the epoch: the report's start. */
    readonly startedAt?: number | undefined
  }
): Effect.Effect<{ readonly report: RunReport; readonly error: PipelineError | undefined }, never, R | Staging> =>
  Effect.gen(function* () {
    const staging = yield* Staging
    const { cut, merge, merger: merging, native } = planOf(p)
    const counts = new Map<string, StageCounts>()
    let dropped = 0
    for (const result of options.results) {
      dropped += result.dropped
      for (const [name, c] of Object.entries(result.counts)) {
        // A merging stage's outputs in the parts were partial states; the finish counts its results.
        const own = name === merging ? { ...c, recordsOut: 0 } : c
        const sum = counts.get(name)
        counts.set(name, sum === undefined ? own : add(sum, own))
      }
    }
    // The sink's own staging: its finish writer takes what the parts staged, in the parts' order.
    const finishing = native
      ? withPlan(p, {
          sink: {
            ...p.sink,
            open: p.sink.staging!.finish(
              options.runId,
              options.results.map((result) => ({ id: result.part, records: result.staged }))
            )
          }
        })
      : p
    const staged = native ? options.results.reduce((sum, r) => sum + r.staged, 0) : 0
    const outcome = yield* Runner.execute(markCommit(finishing, options.runId, staged), {
      runId: options.runId,
      split: {
        phase: "finish",
        cut,
        merge,
        dropped,
        staged: stagedBatches(staging, options.runId, options.parts, p.stages[0]!.name)
      },
      counts,
      dropped,
      startedAt: options.startedAt
    })
    // The sink committed: the source may now record that its parts were read (a Kafka group's offsets), retried as
    // the pipeline retries (it is idempotent).
    if (outcome.error !== undefined || p.commitParts === undefined) return outcome
    const committed = yield* Effect.result(
      p
        .commitParts(options.parts)
        .pipe(Effect.retry({ schedule: Retry.schedule(p.retry), while: (e: PipelineError) => e.retryable }))
    )
    if (committed._tag === "Success") return outcome
    const error = new ExtractError({
      stage: p.stages[0]!.name,
      message: `the run's records are committed to ${p.sink.info.name}, but ${p.stages[0]!.name} could not record that its parts were read: ${messageOf(committed.failure)}. A later run that starts from the source's committed positions would read these records again`,
      retryable: committed.failure.retryable,
      cause: committed.failure
    })
    const summary = { tag: error._tag, stage: error.stage, message: error.message, retryable: error.retryable }
    return { report: { ...outcome.report, status: "failed" as const, error: summary }, error }
  })

/**
 * The report of a split run that failed in a part: what the parts that were read counted (the failed part's reads are
 * not in it), nothing written, and the error. A one-process run prints a report when it fails too; so does a cluster
 * run, with this one.
 */
export const failedReport = <E, R>(
  p: Pipeline<E, R>,
  options: {
    readonly runId: string
    /** The parts read before the run failed. */
    readonly results: ReadonlyArray<PartResult>
    readonly error: NonNullable<RunReport["error"]>
    /** When the run started (its plan), in milliseconds since the epoch. */
    readonly startedAt: number
    readonly finishedAt: number
  }
): RunReport => {
  const { readStages, native } = planOf(p)
  const counts = new Map<string, StageCounts>()
  for (const result of options.results)
    for (const [name, c] of Object.entries(result.counts)) {
      const sum = counts.get(name)
      counts.set(name, sum === undefined ? c : add(sum, c))
    }
  const ctx = makeRunContext({ runId: options.runId, pipeline: p.name, counts, now: () => options.finishedAt })
  for (const info of native ? [...readStages, p.sink.info] : readStages) ctx.stage(info)
  const stages = stageReports(ctx)
  const t = totals(stages)
  const durationMs = Math.max(0, options.finishedAt - options.startedAt)
  return {
    runId: options.runId,
    pipeline: p.name,
    status: "failed",
    startedAt: new Date(options.startedAt).toISOString(),
    finishedAt: new Date(options.finishedAt).toISOString(),
    durationMs,
    attempts: 1,
    records: {
      read: t.read,
      written: 0,
      filtered: t.filtered,
      rejected: t.rejected,
      warned: t.warned,
      deadLettered: 0,
      dropped: options.results.reduce((sum, r) => sum + r.dropped, 0),
      combined: { in: t.combinedIn, out: t.combinedOut }
    },
    recordsPerSecond: durationMs > 0 ? Math.round((t.read / durationMs) * 1000) : t.read,
    stages,
    reconciliation: { ok: false, checks: [] },
    error: options.error
  }
}

/** The part of the mark an append's finish stores with its data, in the sink's positions. */
export const commitMark = (runId: string): string => `cluster-run:${runId}`

/**
 * An append's finish commits a mark of its run with its data (the sink's positions, atomically, fenced): a finish
 * that runs again after its commit — its runner died before the cluster recorded that it ended — finds the mark and
 * commits nothing (it goes through the stages to count what the commit wrote), and one that runs at the same time as
 * another is refused by the fence. An overwrite or an upsert writes the same data again: they need no mark.
 */
const markCommit = <E, R>(p: Pipeline<E, R>, runId: string, staged: number): Pipeline<E, R> => {
  const store = p.sink.positions
  if (p.sink.mode !== "append" || store === undefined) return p
  const part = commitMark(runId)
  const committed = Effect.map(store.load(p.name), (stored) => stored.get(part) === "1")
  /**
   * A writer that counts what it is given (and what the parts staged in the sink's own staging) and writes nothing:
   * the run's data is there already.
   */
  const counting = (location: string, from = 0): Effect.Effect<SinkWriter<unknown, unknown>> =>
    Effect.sync(() => {
      let written = from
      return {
        write: (values: ReadonlyArray<unknown>) =>
          Effect.sync(() => {
            written += values.length
          }),
        commit: Effect.sync(() => ({ written, location }))
      }
    })
  const sink: SinkPlan<R> = {
    ...p.sink,
    open: Effect.flatMap(committed, (done) =>
      done
        ? Effect.andThen(
            Effect.logInfo(
              `run ${runId} was committed to ${p.sink.info.name} by an earlier finish: nothing is written again`
            ),
            counting(`${p.sink.info.name} (committed by an earlier finish of run ${runId})`, staged)
          )
        : Effect.map(p.sink.open, (writer) => ({
            ...writer,
            commit: Effect.andThen(
              writer.checkpoint!({ pipeline: p.name, positions: [{ part, from: "0", to: "1" }], fenced: true }),
              writer.commit
            )
          }))
    )
  }
  const deadLetters: SinkPlan<R> | undefined =
    p.deadLetters === undefined
      ? undefined
      : {
          ...p.deadLetters,
          open: Effect.flatMap(committed, (done) =>
            done
              ? counting(`${p.deadLetters!.info.name} (written by an earlier finish of run ${runId})`)
              : p.deadLetters!.open
          )
        }
  return withPlan(p, { sink, deadLetters })
}

/** The pipeline with other fields (its prototype kept: it stays a pipeline value). */
const withPlan = <E, R>(p: Pipeline<E, R>, fields: Partial<Pipeline<E, R>>): Pipeline<E, R> =>
  Object.assign(Object.create(Object.getPrototypeOf(p)) as Pipeline<E, R>, p, fields)

const add = (a: StageCounts, b: StageCounts): StageCounts => ({
  recordsIn: a.recordsIn + b.recordsIn,
  recordsOut: a.recordsOut + b.recordsOut,
  filtered: a.filtered + b.filtered,
  rejected: a.rejected + b.rejected,
  consumed: a.consumed + b.consumed,
  warned: a.warned + b.warned,
  batches: a.batches + b.batches,
  busyMs: a.busyMs + b.busyMs,
  bytes: a.bytes + b.bytes
})

/**
 * Runs a pipeline split, in this process: lists its parts, reads `concurrency` of them at a time, then finishes. What
 * the cluster does across runners, for tests and for a machine with cores to spare.
 */
export const runLocal = <E, R>(
  p: Pipeline<E, R>,
  options?: { readonly runId?: string; readonly concurrency?: number; readonly targetBytes?: number }
): Effect.Effect<
  { readonly report: RunReport; readonly error: PipelineError | undefined },
  PipelineError,
  R | Staging
> =>
  Effect.gen(function* () {
    const problem = problemOf(p)
    if (problem !== undefined)
      return yield* Effect.fail(new BuildError({ stage: p.stages[0]!.name, message: problem, retryable: false }))
    const runId = options?.runId ?? crypto.randomUUID()
    const parts = yield* p.split!({ targetBytes: options?.targetBytes ?? Source.defaultSplit.targetBytes })
    const results = yield* Effect.forEach(parts, (part, index) => readPart(p, { runId, part, index }), {
      concurrency: options?.concurrency ?? 1
    }).pipe(
      Effect.provideService(LookupCache, makeLookupCache(4)),
      // A part failed: what the others staged goes.
      Effect.onError(() => clear(p, runId, parts))
    )
    const outcome = yield* finish(p, { runId, parts, results })
    yield* clear(p, runId, parts)
    return outcome
  })

/**
 * Removes what a run staged: in the staging service, and in the sink's own staging when the parts wrote there. A
 * failure is logged, not raised (the run's outcome stands; what stays is named in the log).
 */
export const clear = <E, R>(
  p: Pipeline<E, R>,
  runId: string,
  parts: ReadonlyArray<SplitPart>
): Effect.Effect<void, never, R | Staging> =>
  Effect.gen(function* () {
    const staging = yield* Staging
    yield* staging
      .clear(runId)
      .pipe(Effect.catch((e) => Effect.logWarning(`the staging of run ${runId} stays: ${e.message}`)))
    if (planOf(p).native)
      yield* p.sink
        .staging!.clear(
          runId,
          parts.map((part) => part.id)
        )
        .pipe(
          Effect.catch((e) =>
            Effect.logWarning(`the staging of run ${runId} in ${p.sink.staging!.description} stays: ${messageOf(e)}`)
          )
        )
  })
