/**
 * The outputs of one attempt: the sink's writer and the dead-letter sink's writer, the acknowledgements they hold back,
 * and — for a streaming run into an `on-commit` sink — the segments they commit in.
 *
 * - Per-write outputs (both writers durable on write): a batch is acknowledged as soon as it is written.
 * - Bounded runs into an on-commit sink: one writer pair for the attempt; every acknowledgement waits for the final
 *   commit (dead letters commit first, then the sink).
 * - Streaming runs into an on-commit sink: a writer pair per segment, in a scope of its own, opened with the segment's
 *   first batch and committed every `commitInterval` or `commitRecords` records; the segment's acknowledgements run
 *   after its commit. A segment commits in the background while the next one is read and written: one commit at a
 *   time, in order (its checkpoint and acknowledgements after it), and a failed one ends the attempt at once.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Batch from "../../core/Batch.ts"
import * as Checkpoint from "../../core/Checkpoint.ts"
import * as DeadLetter from "../../core/DeadLetter.ts"
import { LoadError, type PipelineError, wrap } from "../../core/Errors.ts"
import { type Pipeline, type SinkPlan, unboundedProblem } from "../../core/Plan.ts"
import type { SinkResult, SinkWriter } from "../../core/Sink.ts"
import * as Spans from "../../core/Spans.ts"
import type { RunContext, StageCounter } from "../../core/Stage.ts"
import * as State from "../../core/State.ts"
import type { RunMetrics } from "../Metrics.ts"
import type { StreamingStats } from "./StreamingStats.ts"

/** What an attempt's outputs committed. */
export interface Committed {
  readonly sink: SinkResult
  readonly deadLetters: SinkResult | undefined
}

/** The outputs of an attempt. */
export interface Outputs<R> {
  /** True when batches are committed in segments (a streaming run into an on-commit sink). */
  readonly segmented: boolean
  /**
   * Fails as soon as a segment committing in the background fails (never succeeds): the attempt stops reading then,
   * instead of at its next commit.
   */
  readonly commitFailed: Effect.Effect<never, PipelineError>
  /** Writes a batch: its dead letters first, then its records. */
  readonly write: (batch: Batch.Batch<unknown>) => Effect.Effect<void, LoadError, R>
  /** After a batch was written: acknowledges it now (per-write) or holds its ack; commits a full segment. */
  readonly settle: (batch: Batch.Batch<unknown>) => Effect.Effect<void, PipelineError, R>
  /** A commit-interval tick: commits the open segment, if it holds batches. */
  readonly tick: Effect.Effect<void, PipelineError, R>
  /** Records the sink has received in this attempt. */
  readonly received: () => number
  /** Commits what is left (the final commit of a bounded run, or the last segment) and runs the held acks. */
  readonly finish: (beforeCommit: Effect.Effect<void, PipelineError>) => Effect.Effect<Committed, PipelineError, R>
}

/** Adds up the results of a streaming run's segment commits. */
export const addResults = (a: SinkResult | undefined, b: SinkResult): SinkResult => {
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

/**
 * The states of a barrier by source part (part → stage → state), for stages that keep one per part (see
 * `Steps.partitioned`): every part some stage holds a state for.
 */
const byPart = (barrier: State.Barrier): Map<string, Record<string, unknown>> => {
  const out = new Map<string, Record<string, unknown>>()
  for (const { stage, state } of barrier.states) {
    if (!State.isPartitioned(state)) continue
    for (const [part, partState] of Object.entries(state.parts)) {
      let stages = out.get(part)
      if (stages === undefined) {
        stages = {}
        out.set(part, stages)
      }
      stages[stage] = partState
    }
  }
  return out
}

/** Opens the outputs of an attempt of `p`, in the attempt's scope. */
export const make = <E, R>(
  p: Pipeline<E, R>,
  ctx: RunContext,
  stats: StreamingStats,
  metrics: RunMetrics,
  /** Runs before each segment commit of a streaming run (the quality checks). */
  beforeSegmentCommit: Effect.Effect<void, PipelineError>,
  /** Where checkpoint barriers save the stages' states (a streaming run with stateful stages), if anywhere. */
  stateStore?: State.StateStoreShape | undefined
): Effect.Effect<Outputs<Exclude<R, Scope.Scope>>, LoadError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const sinkName = p.sink.info.name
    const sinkCounter = ctx.stage(p.sink.info)
    const dlCounter = p.deadLetters === undefined ? undefined : ctx.stage(p.deadLetters.info)
    const perWrite = p.sink.durability === "per-write" && (p.deadLetters?.durability ?? "per-write") === "per-write"
    const streaming = !p.bounded
    const segmented = streaming && !perWrite
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
    const heldAcks: Array<Effect.Effect<void, PipelineError>> = []
    // The source positions the held acks commit, for a sink that stores them with its data.
    const storesPositions = (p.sink.positions !== undefined || stateStore !== undefined) && p.resumable === true
    let heldPositions = new Map<string, Checkpoint.Range>()
    // Where the source resumes after what was committed so far: what a checkpoint saves.
    const committedResume = new Map<string, string>(ctx.resume ?? [])
    const advance = (positions: ReadonlyMap<string, Checkpoint.Range>) => {
      for (const range of positions.values()) {
        const before = committedResume.get(range.part)
        committedResume.set(range.part, before === undefined ? range.to : Checkpoint.max(before, range.to))
      }
    }
    /** Saves the barrier's stage states with the positions committed so far (after the sink's commit). */
    const save = (barrier: State.Barrier) =>
      stateStore === undefined
        ? Effect.void
        : Effect.gen(function* () {
            const savedAt = new Date(clock.currentTimeMillisUnsafe()).toISOString()
            const parts = ctx.partitionStates
            const snapshots: Array<State.Snapshot> =
              parts === undefined
                ? [
                    {
                      version: 1,
                      pipeline: p.name,
                      resume: Object.fromEntries(committedResume),
                      stages: Object.fromEntries(barrier.states.map((s) => [s.stage, s.state])),
                      savedAt
                    }
                  ]
                : [...byPart(barrier)].map(([part, stages]) => {
                    // The later of what this attempt committed and where the part's restored checkpoint resumes (the
                    // part may have been read by another process since this one last committed it).
                    const committed = committedResume.get(part)
                    const restored = parts.resumed(part)
                    const at =
                      committed === undefined
                        ? restored
                        : restored === undefined
                          ? committed
                          : Checkpoint.max(committed, restored)
                    return {
                      version: 1,
                      pipeline: parts.key(part),
                      resume: at === undefined ? {} : { [part]: at },
                      stages,
                      savedAt
                    }
                  })
            yield* Effect.forEach(
              snapshots,
              (snapshot) =>
                Effect.mapError(
                  stateStore.save(snapshot),
                  (e) => new LoadError({ stage: sinkName, message: e.message, retryable: e.retryable, cause: e })
                ),
              { concurrency: 8, discard: true }
            )
            yield* Effect.logDebug(`checkpoint ${barrier.id} saved to ${stateStore.description}`)
          })

    const openSegment = Effect.gen(function* () {
      const scope = yield* Scope.fork(attemptScope)
      segmentScope = scope
      writer = yield* Scope.provide(openWriter(p.sink), scope)
      dlWriter = p.deadLetters === undefined ? undefined : yield* Scope.provide(openWriter(p.deadLetters), scope)
      segmentOpenedAt = clock.currentTimeMillisUnsafe()
    })

    /** Commits a writer, timed and counted on its stage, in a span of its own. */
    const commitOne = (w: SinkWriter<unknown, unknown>, plan: SinkPlan<R>, counter: StageCounter) =>
      Effect.suspend(() => {
        const started = performance.now()
        return Effect.map(Effect.mapError(w.commit, wrap(LoadError, plan.info.name)), (result) => {
          const ms = performance.now() - started
          // Not `counter.busy(ms)`: that times writes; a commit has its own histogram (`metrics.commit`).
          counter.busyMs += ms
          counter.committed += result.written
          const bytes = result.details?.bytes
          if (typeof bytes === "number") counter.bytes += bytes
          metrics.commit(counter, ms)
          return result
        })
      }).pipe(Effect.withSpan("sink.commit", { attributes: Spans.stageAttributes(plan.info) }))

    /**
     * Commits the dead letters, then the sink (with the source positions its records cover), then runs `afterCommit`
     * (a checkpoint) and the acks they held.
     */
    const commitBoth = (
      sinkWriter: SinkWriter<unknown, unknown> | undefined,
      dlSinkWriter: SinkWriter<unknown, unknown> | undefined,
      positions: ReadonlyMap<string, Checkpoint.Range>,
      acks: ReadonlyArray<Effect.Effect<void, PipelineError>>,
      afterCommit: Effect.Effect<void, LoadError>
    ) =>
      Effect.gen(function* () {
        const dlResult =
          dlSinkWriter === undefined || p.deadLetters === undefined || dlCounter === undefined
            ? undefined
            : yield* commitOne(dlSinkWriter, p.deadLetters, dlCounter)
        if (sinkWriter?.checkpoint !== undefined && positions.size > 0) {
          const checkpoint = {
            pipeline: p.name,
            positions: Checkpoint.sorted(positions),
            fenced: stateStore === undefined
          }
          yield* Effect.mapError(sinkWriter.checkpoint(checkpoint), wrap(LoadError, sinkName))
        }
        const sinkResult = sinkWriter === undefined ? { written: 0 } : yield* commitOne(sinkWriter, p.sink, sinkCounter)
        advance(positions)
        yield* afterCommit
        for (const ack of acks) yield* ack
        return { sink: sinkResult, deadLetters: dlResult }
      })

    /** A segment taken off the outputs to be committed. */
    interface Closed {
      readonly scope: Scope.Closeable
      readonly writer: SinkWriter<unknown, unknown>
      readonly dlWriter: SinkWriter<unknown, unknown> | undefined
      readonly acks: ReadonlyArray<Effect.Effect<void, PipelineError>>
      readonly positions: ReadonlyMap<string, Checkpoint.Range>
      readonly batches: number
      readonly timestamps: ReadonlyArray<number | undefined>
      readonly openedAt: number
    }

    /** Takes the open segment off the outputs: the next batch opens a new one. */
    const close = (scope: Scope.Closeable, sinkWriter: SinkWriter<unknown, unknown>): Closed => {
      const closed: Closed = {
        scope,
        writer: sinkWriter,
        dlWriter,
        acks: heldAcks.splice(0),
        positions: heldPositions,
        batches: segmentBatches,
        timestamps: segmentTimestamps,
        openedAt: segmentOpenedAt
      }
      heldPositions = new Map()
      segmentTimestamps = []
      segmentBatches = 0
      segmentRecords = 0
      segmentScope = undefined
      writer = undefined
      dlWriter = undefined
      return closed
    }

    /** Commits a closed segment, logs it, and closes its writers. */
    const commitClosed = (segment: Closed, afterCommit: Effect.Effect<void, LoadError>) =>
      Effect.gen(function* () {
        const result = yield* commitBoth(segment.writer, segment.dlWriter, segment.positions, segment.acks, afterCommit)
        sinkTotal = addResults(sinkTotal, result.sink)
        if (result.deadLetters !== undefined) dlTotal = addResults(dlTotal, result.deadLetters)
        stats.segments++
        const now = clock.currentTimeMillisUnsafe()
        let oldest: number | undefined
        for (const ts of segment.timestamps) {
          stats.observe(ts, now)
          oldest = Batch.oldest(oldest, ts)
        }
        yield* Effect.logInfo(`segment ${stats.segments} committed: ${result.sink.written} records`).pipe(
          Effect.annotateLogs({
            segment: stats.segments,
            records: result.sink.written,
            batches: segment.batches,
            durationMs: now - segment.openedAt,
            ...(oldest === undefined ? {} : { latencyMs: Math.max(0, now - oldest) })
          })
        )
        yield* Scope.close(segment.scope, Exit.void)
      })

    // At most one segment commits in the background while the next one is read and written; commits (and the
    // checkpoints and acks after them) stay in order, and a commit that fails fails the attempt at the next one.
    let committing: Fiber.Fiber<void, PipelineError> | undefined
    const commitFailed = yield* Deferred.make<never, PipelineError>()
    const committed = Effect.suspend(() => {
      const fiber = committing
      committing = undefined
      return fiber === undefined ? Effect.void : Fiber.join(fiber)
    })

    /**
     * Commits the open segment (checked by `beforeCommit` first) in the background once the previous commit is done,
     * then `afterCommit`; with nothing open, `afterCommit` once the previous commit is done.
     */
    const commitSegment = (
      beforeCommit: Effect.Effect<void, PipelineError>,
      afterCommit: Effect.Effect<void, LoadError> = Effect.void
    ) =>
      Effect.gen(function* () {
        const scope = segmentScope
        const sinkWriter = writer
        if (scope === undefined || sinkWriter === undefined) {
          yield* committed
          return yield* afterCommit
        }
        if (segmentBatches === 0) {
          close(scope, sinkWriter)
          yield* committed
          yield* afterCommit
          // An empty segment was never committed: closing its scope discards what its writers prepared.
          return yield* Scope.close(scope, Exit.void)
        }
        yield* beforeCommit
        const segment = close(scope, sinkWriter)
        yield* committed
        committing = yield* Effect.forkIn(
          commitClosed(segment, afterCommit).pipe(
            Effect.tapCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.void : Deferred.failCause(commitFailed, cause)
            )
          ),
          attemptScope
        )
      })

    return {
      segmented,
      commitFailed: Deferred.await(commitFailed),
      received: () => sinkCounter.recordsIn,
      write: (batch) =>
        Effect.gen(function* () {
          if (segmented && writer === undefined) yield* openSegment
          const deadLetters = batch.deadLetters
          if (
            deadLetters.length > 0 &&
            dlWriter !== undefined &&
            dlCounter !== undefined &&
            p.deadLetters !== undefined
          ) {
            const started = performance.now()
            // Made encodable first: a record no encoder can write costs its own form, never the run.
            yield* Spans.sampled(
              dlCounter,
              Effect.mapError(
                dlWriter.write(DeadLetter.encodableAll(deadLetters)),
                wrap(LoadError, p.deadLetters.info.name)
              ),
              "sink.write",
              deadLetters.length
            )
            dlCounter.busy(performance.now() - started)
            dlCounter.batches++
            dlCounter.recordsIn += deadLetters.length
            dlCounter.recordsOut += deadLetters.length
          }
          const n = batch.records.length
          if (n > 0 && writer !== undefined) {
            const started = performance.now()
            const raw = batch.raw
            const written =
              raw === undefined
                ? writer.write(batch.records)
                : writer.writeRaw === undefined
                  ? Effect.die(new Error(`the sink ${sinkName} was given records as bytes but cannot write them`))
                  : writer.writeRaw(raw)
            yield* Spans.sampled(sinkCounter, Effect.mapError(written, wrap(LoadError, sinkName)), "sink.write", n)
            sinkCounter.busy(performance.now() - started)
            sinkCounter.recordsIn += n
            sinkCounter.recordsOut += n
          }
          sinkCounter.batches++
        }),
      settle: (batch) =>
        Effect.gen(function* () {
          if (batch.barrier !== undefined) {
            // A checkpoint: what came before the barrier is written; commit it, save the states, then acknowledge.
            if (storesPositions && batch.positions !== undefined) Checkpoint.gather(heldPositions, batch.positions)
            if (perWrite || !segmented) {
              advance(heldPositions)
              heldPositions = new Map()
              yield* save(batch.barrier)
              yield* batch.ack
              return
            }
            heldAcks.push(batch.ack)
            // An idle interval (nothing written, nothing to acknowledge) commits nothing; the states are saved.
            if (segmentBatches > 0 || heldPositions.size > 0 || batch.ack !== Effect.void) segmentBatches++
            return yield* commitSegment(beforeSegmentCommit, save(batch.barrier))
          }
          if (perWrite) {
            yield* batch.ack
            if (streaming) stats.observe(batch.sourceTimestamp, clock.currentTimeMillisUnsafe())
            return
          }
          heldAcks.push(batch.ack)
          if (storesPositions && batch.positions !== undefined) Checkpoint.gather(heldPositions, batch.positions)
          if (!segmented) return
          segmentBatches++
          segmentRecords += batch.records.length + batch.deadLetters.length
          segmentTimestamps.push(batch.sourceTimestamp)
          if (segmentRecords >= p.streaming.commitRecords) yield* commitSegment(beforeSegmentCommit)
        }),
      tick: Effect.suspend(() => (segmentBatches > 0 ? commitSegment(beforeSegmentCommit) : Effect.void)),
      finish: (beforeCommit) =>
        Effect.gen(function* () {
          if (segmented) {
            yield* commitSegment(beforeCommit)
            yield* committed
            return {
              sink: sinkTotal ?? { written: 0 },
              deadLetters: p.deadLetters === undefined ? undefined : (dlTotal ?? { written: 0 })
            }
          }
          yield* beforeCommit
          return yield* commitBoth(writer, dlWriter, heldPositions, heldAcks.splice(0), Effect.void)
        })
    } satisfies Outputs<Exclude<R, Scope.Scope>>
  })
