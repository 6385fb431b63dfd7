import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import * as Batch from "../../src/core/Batch.ts"
import { LoadError } from "../../src/core/Errors.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import { StopSignal } from "../../src/core/Stop.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Runner from "../../src/runtime/Runner.ts"

interface Row {
  readonly id: number
}

/**
 * An endless log like a Kafka partition: appended batches keep their source timestamp; a read starts at the last
 * acknowledged batch and waits for new ones; an acknowledgement moves the committed position.
 */
const makeLog = Effect.gen(function* () {
  const entries: Array<{ readonly rows: ReadonlyArray<Row>; readonly at: number }> = []
  let committed = 0
  let reads = 0
  let changed = yield* Deferred.make<void>()
  let nextId = 0
  const append = (n: number) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      entries.push({ rows: Array.from({ length: n }, () => ({ id: nextId++ })), at })
      const wake = changed
      changed = yield* Deferred.make<void>()
      yield* Deferred.succeed(wake, undefined)
    })
  const source = Source.make<Row>({
    name: "log",
    type: "memory",
    description: "an endless in-memory log",
    bounded: false,
    batches: () =>
      Stream.unwrap(
        Effect.gen(function* () {
          const stop = yield* StopSignal
          reads++
          let position = committed
          const next: Effect.Effect<Batch.Batch<Row>> = Effect.suspend(() => {
            if (position >= entries.length) return Effect.andThen(Deferred.await(changed), next)
            const index = position++
            const entry = entries[index]!
            return Effect.succeed(
              Batch.make(entry.rows, {
                sourceTimestamp: entry.at,
                ack: Effect.sync(() => {
                  committed = Math.max(committed, index + 1)
                })
              })
            )
          })
          return Stream.interruptWhen(Stream.fromEffectRepeat(next), stop)
        })
      )
  })
  return {
    source,
    append,
    committed: () => committed,
    reads: () => reads
  }
})

/** A `Sink.collect` that records the log's committed position at each commit, and can fail chosen commits. */
const watchedSink = (committedAtCommit: () => number, failCommits: ReadonlyArray<number> = []) => {
  const inner = Sink.collect<Row>("out")
  const positions: Array<number> = []
  let commitCalls = 0
  const sink = Sink.make<Row, LoadError>({
    ...inner,
    open: Effect.map(inner.open, (writer) => ({
      write: writer.write,
      commit: Effect.suspend(() => {
        commitCalls++
        positions.push(committedAtCommit())
        return failCommits.includes(commitCalls)
          ? Effect.fail(new LoadError({ stage: "out", message: "connection lost at commit", retryable: true }))
          : writer.commit
      })
    }))
  })
  return { sink, collected: inner.collected, positions }
}

/** Lets the forked run catch up, advancing the test clock in small steps (see EFFECT4.md pitfall 5). */
const advance = (seconds: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < seconds * 4; i++) {
      yield* TestClock.adjust("250 millis")
      for (let j = 0; j < 20; j++) yield* Effect.yieldNow
    }
  })

const settle = Effect.gen(function* () {
  for (let j = 0; j < 50; j++) yield* Effect.yieldNow
})

describe("streaming runs", () => {
  it.effect("commit an on-commit sink every commit interval and acknowledge a segment only after its commit", () =>
    Effect.gen(function* () {
      const log = yield* makeLog
      const out = watchedSink(log.committed)
      const stop = yield* Deferred.make<void>()
      const fiber = yield* Pipeline.from(log.source).pipe(
        Pipeline.to(out.sink),
        Pipeline.withStreaming({ commitInterval: "10 seconds", commitRecords: 1000 }),
        Runner.execute,
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.forkChild
      )
      yield* settle
      yield* log.append(3)
      yield* log.append(2)
      yield* advance(5)
      assert.strictEqual(out.collected().commits, 0)
      assert.strictEqual(log.committed(), 0)
      yield* advance(6)
      assert.strictEqual(out.collected().commits, 1)
      assert.strictEqual(out.collected().records.length, 5)
      assert.deepStrictEqual(out.positions, [0])
      assert.strictEqual(log.committed(), 2)

      yield* log.append(4)
      yield* advance(10)
      assert.strictEqual(out.collected().commits, 2)
      assert.deepStrictEqual(out.positions, [0, 2])
      assert.strictEqual(log.committed(), 3)

      yield* advance(10)
      assert.strictEqual(out.collected().commits, 2, "an empty segment is not committed")
      yield* Deferred.succeed(stop, undefined)
      const { report, error } = yield* Fiber.join(fiber)
      assert.isUndefined(error)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.written, 9)
      assert.strictEqual(report.sink?.written, 9)
      assert.strictEqual(report.streaming?.segments, 2)
      assert.strictEqual(report.streaming?.latencyMs?.batches, 3)
      const latency = report.streaming?.latencyMs
      assert.isDefined(latency)
      assert.isAtLeast(latency!.max, 10_000)
      assert.isAtMost(latency!.max, 11_000)
      assert.isAtMost(latency!.p50, latency!.p95)
    })
  )

  it.effect("commit as soon as commit_records records were written, without waiting for the interval", () =>
    Effect.gen(function* () {
      const log = yield* makeLog
      const out = watchedSink(log.committed)
      const stop = yield* Deferred.make<void>()
      const fiber = yield* Pipeline.from(log.source).pipe(
        Pipeline.to(out.sink),
        Pipeline.withStreaming({ commitInterval: "1 hour", commitRecords: 5 }),
        Runner.execute,
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.forkChild
      )
      yield* settle
      yield* log.append(3)
      yield* settle
      assert.strictEqual(out.collected().commits, 0)
      yield* log.append(3)
      yield* settle
      assert.strictEqual(out.collected().commits, 1)
      assert.strictEqual(out.collected().records.length, 6)
      assert.strictEqual(log.committed(), 2)
      yield* log.append(6)
      yield* settle
      assert.strictEqual(out.collected().commits, 2)
      assert.strictEqual(log.committed(), 3)
      yield* Deferred.succeed(stop, undefined)
      const { report } = yield* Fiber.join(fiber)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.streaming?.segments, 2)
    })
  )

  it.effect("retry a failed segment commit from the last acknowledged position", () =>
    Effect.gen(function* () {
      const log = yield* makeLog
      const out = watchedSink(log.committed, [2])
      const stop = yield* Deferred.make<void>()
      const fiber = yield* Pipeline.from(log.source).pipe(
        Pipeline.to(out.sink),
        Pipeline.withStreaming({ commitInterval: "1 hour", commitRecords: 2 }),
        Pipeline.withRetry({ attempts: 3, initialDelay: "1 second", factor: 2 }),
        Runner.execute,
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.forkChild
      )
      yield* settle
      yield* log.append(2)
      yield* settle
      assert.strictEqual(out.collected().commits, 1)
      assert.strictEqual(log.committed(), 1)
      yield* log.append(2)
      yield* settle
      assert.strictEqual(out.collected().commits, 1, "the failed segment is not visible")
      assert.strictEqual(log.committed(), 1, "nor acknowledged")
      assert.strictEqual(log.reads(), 1)
      yield* advance(2)
      assert.strictEqual(log.reads(), 2)
      assert.strictEqual(out.collected().commits, 2)
      assert.strictEqual(log.committed(), 2)
      assert.deepStrictEqual(
        out.collected().records.map((r) => r.id),
        [0, 1, 2, 3]
      )
      yield* Deferred.succeed(stop, undefined)
      const { report } = yield* Fiber.join(fiber)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.attempts, 2)
    })
  )

  it.effect("commit and acknowledge the segment in flight on a graceful stop", () =>
    Effect.gen(function* () {
      const log = yield* makeLog
      const out = watchedSink(log.committed)
      const stop = yield* Deferred.make<void>()
      const fiber = yield* Pipeline.from(log.source).pipe(
        Pipeline.filter((r: Row) => r.id !== 1),
        Pipeline.to(out.sink),
        Pipeline.withStreaming({ commitInterval: "10 seconds", commitRecords: 1000 }),
        Runner.execute,
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.forkChild
      )
      yield* settle
      yield* log.append(3)
      yield* advance(2)
      assert.strictEqual(out.collected().commits, 0)
      yield* Deferred.succeed(stop, undefined)
      const { report, error } = yield* Fiber.join(fiber)
      assert.isUndefined(error)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(out.collected().commits, 1)
      assert.deepStrictEqual(
        out.collected().records.map((r) => r.id),
        [0, 2]
      )
      assert.strictEqual(log.committed(), 1)
      assert.strictEqual(report.records.read, 3)
      assert.strictEqual(report.records.filtered, 1)
      assert.isTrue(report.reconciliation.ok)
    })
  )

  it.effect("report a failed final commit after a stop as a failure, without retrying it", () =>
    Effect.gen(function* () {
      const log = yield* makeLog
      const out = watchedSink(log.committed, [1])
      const stop = yield* Deferred.make<void>()
      const fiber = yield* Pipeline.from(log.source).pipe(
        Pipeline.to(out.sink),
        Pipeline.withStreaming({ commitInterval: "1 hour", commitRecords: 1000 }),
        Pipeline.withRetry({ attempts: 3, initialDelay: "1 second", factor: 2 }),
        Runner.execute,
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.forkChild
      )
      yield* settle
      yield* log.append(2)
      yield* settle
      yield* Deferred.succeed(stop, undefined)
      yield* advance(5)
      const { report, error } = yield* Fiber.join(fiber)
      assert.strictEqual(error?._tag, "LoadError")
      assert.strictEqual(report.status, "failed")
      assert.strictEqual(report.attempts, 1)
      assert.strictEqual(out.collected().commits, 0)
      assert.strictEqual(log.committed(), 0, "nothing acknowledged: the next run reads it again")
    })
  )

  it.effect("reject an overwrite sink on an unbounded source", () =>
    Effect.gen(function* () {
      const log = yield* makeLog
      const { error, report } = yield* Pipeline.from(log.source).pipe(
        Pipeline.to(Sink.collect<Row>("out", { mode: "overwrite" })),
        Runner.execute
      )
      assert.strictEqual(report.status, "failed")
      assert.strictEqual(error?._tag, "LoadError")
      assert.isFalse(error?.retryable)
      assert.include(error?.message, "overwrite sink cannot take an unbounded (streaming) input")
    })
  )

  it.effect("ignore the stop signal in batch mode", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Row>("out")
      const { report } = yield* Pipeline.from(Source.fromIterable("rows", [{ id: 1 }, { id: 2 }])).pipe(
        Pipeline.to(out),
        Runner.execute,
        Effect.provideService(StopSignal, Effect.void)
      )
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(out.collected().records.length, 2)
      assert.isUndefined(report.streaming)
    })
  )
})
