import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import * as Batch from "../../src/core/Batch.ts"
import type { DeadLetter } from "../../src/core/DeadLetter.ts"
import { ExtractError, LoadError, type PipelineError } from "../../src/core/Errors.ts"
import type { RunReport } from "../../src/core/RunReport.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import { MAX_LOGGED_WARNINGS } from "../../src/core/Stage.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Rule from "../../src/transforms/Rule.ts"

interface Txn {
  readonly id: number
  readonly userId: string
  readonly amount: number
  readonly status: "settled" | "pending"
}

const txns: ReadonlyArray<Txn> = Array.from({ length: 25 }, (_, i) => ({
  id: i,
  userId: `u${i % 3}`,
  amount: i * 10 - 20,
  status: i % 2 === 0 ? "settled" : "pending"
}))

describe("Pipeline", () => {
  it.effect("moves records from source to sink through typed transforms", () =>
    Effect.gen(function* () {
      const out = Sink.collect<{ readonly id: number; readonly cents: number }>("out")
      const report = yield* Pipeline.from(Source.fromIterable("txns", txns, { batchSize: 4 })).pipe(
        Pipeline.filter((t) => t.status === "settled"),
        Pipeline.map((t) => ({ id: t.id, cents: t.amount * 100 })),
        Pipeline.to(out),
        Pipeline.run
      )
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual(
        out.collected().records.map((r) => r.id),
        txns.filter((t) => t.status === "settled").map((t) => t.id)
      )
      assert.strictEqual(report.records.read, 25)
      assert.strictEqual(report.records.filtered, 12)
      assert.strictEqual(report.records.written, 13)
      assert.isTrue(report.reconciliation.ok)
      assert.deepStrictEqual(
        report.stages.map((s) => [s.name, s.kind]),
        [
          ["txns", "source"],
          ["filter", "transform"],
          ["map", "transform"],
          ["out", "sink"]
        ]
      )
    })
  )

  it.effect("select, rename, derive and cast give the types they promise", () =>
    Effect.gen(function* () {
      const out = Sink.collect<{ readonly user: string; readonly amount: string; readonly double: number }>("out")
      yield* Pipeline.from(Source.fromIterable("txns", txns.slice(0, 3))).pipe(
        Pipeline.select(["userId", "amount"]),
        Pipeline.rename({ userId: "user" }),
        Pipeline.derive({ double: (r: { readonly amount: number }) => r.amount * 2 }),
        Pipeline.cast({ amount: "string" }),
        Pipeline.to(out),
        Pipeline.run
      )
      assert.deepStrictEqual(out.collected().records, [
        { user: "u0", amount: "-20", double: -40 },
        { user: "u1", amount: "-10", double: -20 },
        { user: "u2", amount: "0", double: 0 }
      ])
    })
  )

  it("does not compile when the sink takes another record type or a field is missing", () => {
    const flow = Pipeline.from(Source.fromIterable("txns", txns))
    // @ts-expect-error: the sink wants records with a `name` field
    flow.pipe(Pipeline.to(Sink.collect<{ readonly name: string }>("out")))
    // @ts-expect-error: there is no field `nope` to select
    flow.pipe(Pipeline.select(["nope"]))
    // @ts-expect-error: a range rule needs a comparable field
    flow.pipe(Pipeline.validate([Rule.range("userId", { min: 0 })]))
    const selected = flow.pipe(Pipeline.select(["id", "status"]))
    expectTypeOf(selected).toEqualTypeOf<
      Pipeline.Flow<{ readonly id: number; readonly status: "settled" | "pending" }>
    >()
    const p = flow.pipe(Pipeline.to(Sink.collect<Txn>("out")))
    const run = Pipeline.run(p)
    expectTypeOf<Effect.Success<typeof run>>().toEqualTypeOf<RunReport>()
    expectTypeOf<Effect.Error<typeof run>>().toEqualTypeOf<PipelineError>()
    // needs no service at all: only `never` is assignable to `never`
    const needsNothing: Effect.Effect<RunReport, PipelineError, never> = run
    assert.isDefined(needsNothing)
  })

  it.effect("a warning names its rule and record; the first few are logged, every one is counted", () =>
    Effect.gen(function* () {
      const warnings: Array<string> = []
      const capture = Logger.make((options) => {
        if (options.logLevel === "Warn") warnings.push(String(options.message))
      })
      const run = (rules: Parameters<typeof Pipeline.validate>[0]) =>
        Pipeline.from(Source.fromIterable("txns", txns, { batchSize: 7 })).pipe(
          Pipeline.validate(rules),
          Pipeline.to(Sink.collect<Txn>("out")),
          Pipeline.run,
          Effect.provide(Logger.layer([capture]))
        )
      const few = yield* run([Rule.oneOf("userId", ["u0", "u1"], { onFail: "warn" })])
      assert.strictEqual(few.records.warned, 8)
      assert.strictEqual(warnings.length, 8)
      assert.include(warnings[0]!, "rule userId-one-of: userId: ")
      assert.include(warnings[0]!, 'in record {"id":2,"userId":"u2","amount":0,"status":"settled"}')
      warnings.length = 0
      const many = yield* run([Rule.range("amount", { min: 1000 }, { onFail: "warn" })])
      assert.strictEqual(many.records.warned, 25)
      assert.strictEqual(many.records.written, 25)
      assert.strictEqual(warnings.length, MAX_LOGGED_WARNINGS + 1)
      assert.strictEqual(warnings.at(-1), `25 warnings in all; only the first ${MAX_LOGGED_WARNINGS} were logged`)
    })
  )

  it.effect("validate rejects records to the dead letters, warns, and fails the run on `fail` rules", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Txn>("out")
      const dead = Sink.collect<DeadLetter>("dead")
      const report = yield* Pipeline.from(Source.fromIterable("txns", txns, { batchSize: 7 })).pipe(
        Pipeline.validate([Rule.range("amount", { min: 0 }), Rule.oneOf("userId", ["u0", "u1"], { onFail: "warn" })]),
        Pipeline.to(out),
        Pipeline.withDeadLetters(dead),
        Pipeline.run
      )
      assert.strictEqual(report.records.rejected, 2)
      assert.strictEqual(report.records.deadLettered, 2)
      assert.strictEqual(report.records.written, 23)
      assert.isTrue(report.records.warned > 0)
      assert.deepStrictEqual(dead.collected().records[0], {
        stage: "validate",
        reason: "rule:amount-range",
        message: "amount: expected a value >= 0, got -20",
        record: txns[0]
      })
      assert.isTrue(report.reconciliation.ok)

      const failing = yield* Pipeline.from(Source.fromIterable("txns", txns)).pipe(
        Pipeline.validate([Rule.range("amount", { min: 0 }, { onFail: "fail" })]),
        Pipeline.to(Sink.collect<Txn>("out2", { mode: "overwrite" })),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(failing._tag, "QualityError")
      assert.include(failing.message, "Rule amount-range failed: amount: expected a value >= 0, got -20")
    })
  )

  it.effect("a crossed rejection threshold fails the run before the sink commits", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Txn>("out", { mode: "overwrite" })
      const error = yield* Pipeline.from(Source.fromIterable("txns", txns)).pipe(
        Pipeline.validate([Rule.range("amount", { min: 100 })]),
        Pipeline.to(out),
        Pipeline.withQuality({ maxRejectedRatio: 0.1, dropRejected: true }),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "QualityError")
      assert.include(error.message, "12 of 25 records rejected")
      assert.strictEqual(out.collected().commits, 0)
    })
  )

  it.effect("retries retryable failures with exponential backoff from 5 s, 3 attempts in all", () =>
    Effect.gen(function* () {
      const attempts: Array<number> = []
      let calls = 0
      const flaky = Source.make<Txn, ExtractError>({
        name: "flaky",
        type: "memory",
        description: "fails twice",
        bounded: true,
        batches: (ctx) =>
          Stream.suspend(() => {
            attempts.push(ctx.now())
            calls++
            return calls < 3
              ? Stream.fail(new ExtractError({ stage: "flaky", message: "connection reset", retryable: true }))
              : Stream.make(Batch.make(txns))
          })
      })
      const out = Sink.collect<Txn>("out")
      const fiber = yield* Effect.forkChild(Pipeline.from(flaky).pipe(Pipeline.to(out), Pipeline.run))
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(attempts.length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(attempts.length, 2)
      yield* TestClock.adjust("10 seconds")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(attempts, [0, 5000, 15000])
      assert.strictEqual(report.attempts, 3)
      assert.strictEqual(out.collected().records.length, 25)
    })
  )

  it.effect("does not retry errors that are not retryable, and gives up after the last attempt", () =>
    Effect.gen(function* () {
      let opens = 0
      const broken = Sink.make<Txn, LoadError>({
        name: "broken",
        type: "memory",
        description: "always fails",
        mode: "append",
        durability: "per-write",
        open: Effect.sync(() => {
          opens++
          return {
            write: () =>
              Effect.fail(new LoadError({ stage: "broken", message: "constraint violated", retryable: false })),
            commit: Effect.succeed({ written: 0 })
          }
        })
      })
      const error = yield* Pipeline.from(Source.fromIterable("txns", txns)).pipe(
        Pipeline.to(broken),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "LoadError")
      assert.strictEqual(opens, 1)

      const fiber = yield* Effect.forkChild(
        Pipeline.from(Source.fail("down", { message: "server down", retryable: true })).pipe(
          Pipeline.to(Sink.collect<never>("out")),
          Pipeline.withRetry({ attempts: 2, initialDelay: "1 second", factor: 2 }),
          Pipeline.run,
          Effect.flip
        )
      )
      yield* TestClock.adjust("2 seconds")
      const last = yield* Fiber.join(fiber)
      assert.strictEqual(last._tag, "ExtractError")
      assert.strictEqual(last.message, "down: server down")
    })
  )

  it.effect("acknowledges batches only after the sink committed (on-commit) or wrote them (per-write)", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const source = Source.make<number>({
        name: "acked",
        type: "memory",
        description: "acks",
        bounded: true,
        batches: () =>
          Stream.fromIterable([1, 2]).pipe(
            Stream.map((i) => Batch.make([i], { ack: Effect.sync(() => void events.push(`ack ${i}`)) }))
          )
      })
      const sink = (durability: "per-write" | "on-commit") =>
        Sink.make<number>({
          name: "s",
          type: "memory",
          description: "s",
          mode: "append",
          durability,
          open: Effect.succeed({
            write: (records) => Effect.sync(() => void events.push(`write ${records[0]}`)),
            commit: Effect.sync(() => {
              events.push("commit")
              return { written: 2 }
            })
          })
        })
      yield* Pipeline.from(source).pipe(Pipeline.to(sink("on-commit")), Pipeline.run)
      assert.deepStrictEqual(events, ["write 1", "write 2", "commit", "ack 1", "ack 2"])
      events.length = 0
      yield* Pipeline.from(source).pipe(Pipeline.to(sink("per-write")), Pipeline.run)
      assert.deepStrictEqual(events, ["write 1", "ack 1", "write 2", "ack 2", "commit"])
    })
  )

  it.effect("decode turns encoded records into typed ones and rejects the rest with the failing path", () =>
    Effect.gen(function* () {
      const Row = Schema.Struct({ id: Schema.Int, at: Schema.DateFromString })
      const out = Sink.collect<typeof Row.Type>("out")
      const dead = Sink.collect<DeadLetter>("dead")
      const report = yield* Pipeline.from(
        Source.fromArrays(
          "raw",
          Stream.fromIterable<ReadonlyArray<unknown>>([
            [
              { id: 1, at: "2026-01-01T00:00:00Z" },
              { id: "x", at: "nope" }
            ]
          ])
        )
      ).pipe(Pipeline.decode(Row), Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
      assert.strictEqual(report.records.written, 1)
      assert.instanceOf(out.collected().records[0]!.at, Date)
      const [rejected] = dead.collected().records
      assert.strictEqual(rejected!.reason, "invalid-record")
      assert.include(rejected!.message, "id: Expected number")
      assert.include(rejected!.message, "at: ")
    })
  )

  it.effect("a source built at run time sees the run context", () =>
    Effect.gen(function* () {
      const out = Sink.collect<string>("out")
      const source = Source.unwrap("late", { type: "memory", description: "built per run", bounded: true }, (ctx) =>
        Effect.succeed(Stream.make(Batch.make([ctx.pipeline])))
      )
      yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.named("named-run"), Pipeline.run)
      assert.deepStrictEqual(out.collected().records, ["named-run"])
    })
  )

  it("describes what it would do", () => {
    const p = Pipeline.from(Source.fromIterable("txns", txns)).pipe(
      Pipeline.filter((t) => t.amount > 0, { description: "amount > 0" }),
      Pipeline.filter((t) => t.status === "settled"),
      Pipeline.to(Sink.collect<Txn>("out")),
      Pipeline.withQuality({ maxRejected: 10 })
    )
    assert.deepStrictEqual(Pipeline.describe(p), [
      "pipeline txns (batch)",
      "  source       txns: in-memory records (txns)",
      "  transform    filter: amount > 0",
      "  transform    filter#2: filter",
      "  sink         out: in-memory append (out) [append]",
      "  retry        3 attempts, backoff 5s ×2",
      "  quality      at most 10 rejected"
    ])
  })
})
