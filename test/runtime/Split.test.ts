import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as File from "../../src/connectors/file/File.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Postgres from "../../src/connectors/postgres/Postgres.ts"
import * as SqlMemory from "../../src/connectors/sql/SqlMemory.ts"
import * as Batch from "../../src/core/Batch.ts"
import type * as DeadLetter from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Split from "../../src/runtime/Split.ts"
import * as Rule from "../../src/transforms/Rule.ts"
import * as Window from "../../src/transforms/Window.ts"
import { countingStaging } from "../support/Staging.ts"
import { bag } from "../transforms/support.ts"

interface Txn {
  readonly id: number
  readonly user: string
  readonly amount: number
  readonly price: BigDecimal.BigDecimal
  readonly at: Date
}

const txns = (n: number): Array<Txn> =>
  Array.from({ length: n }, (_, i) => ({
    id: i,
    user: `u${i % 7}`,
    amount: i % 11 === 0 ? -i : i % 50,
    price: BigDecimal.make(BigInt(i * 37 + 1), 2),
    at: new Date(Date.UTC(2026, 0, 1, 0, i % 120))
  }))

const staging = Layer.succeed(Split.Staging, Split.makeMemory())

const run = <E>(p: Pipeline.Pipeline<E, never>, concurrency = 2) =>
  Split.runLocal(p, { runId: "test-run", concurrency }).pipe(Effect.provide(staging))

/** A pipeline over `records` read in `parts` parts: validate, filter, then per-user totals. */
const totals = (records: ReadonlyArray<Txn>, parts: number) => {
  const out = Sink.collect<Record<string, unknown>>("out", { mode: "overwrite" })
  const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
  const p = Pipeline.from(Source.fromIterable("txns", records, { parts, batchSize: 10 })).pipe(
    Pipeline.validate([Rule.range("amount", { min: 0 })]),
    Pipeline.filter((t: Txn) => t.amount !== 13),
    Pipeline.aggregate({
      groupBy: ["user"],
      fields: { n: Pipeline.Agg.count(), total: Pipeline.Agg.sum("price"), top: Pipeline.Agg.max("amount") }
    }),
    Pipeline.to(out),
    Pipeline.withDeadLetters(dead),
    Pipeline.withQuality({ allowEmptyOverwrite: true })
  )
  return { p, out, dead }
}

interface WindowCase {
  readonly kind: "tumbling" | "sliding" | "session"
  readonly ms: number
  readonly lateness: number
}

const windowArb: fc.Arbitrary<WindowCase> = fc.record({
  kind: fc.constantFrom("tumbling" as const, "sliding" as const, "session" as const),
  ms: fc.constantFrom(10_000, 30_000),
  lateness: fc.constantFrom(0, 20_000)
})

/** Per-user windowed totals over `records` read in `parts` parts; late records go to the dead letters. */
const windowedTotals = (records: ReadonlyArray<Txn>, parts: number, spec: WindowCase) => {
  const out = Sink.collect<Record<string, unknown>>("out", { mode: "overwrite" })
  const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
  const options = { time: "at" as const, allowedLateness: spec.lateness }
  const window =
    spec.kind === "tumbling"
      ? Window.tumbling(spec.ms, options)
      : spec.kind === "sliding"
        ? Window.sliding(spec.ms * 2, spec.ms, options)
        : Window.session(spec.ms, { ...options, by: ["user"] })
  const p = Pipeline.from(Source.fromIterable("txns", records, { parts, batchSize: 7 })).pipe(
    Pipeline.validate([Rule.range("amount", { min: 0 })]),
    Pipeline.window(window),
    Pipeline.aggregate({
      groupBy: ["user", "windowStart", "windowEnd"],
      fields: {
        n: Pipeline.Agg.count(),
        total: Pipeline.Agg.sum("price"),
        top: Pipeline.Agg.max("amount"),
        first: Pipeline.Agg.first("id"),
        last: Pipeline.Agg.last("id"),
        users: Pipeline.Agg.countDistinct("id")
      }
    }),
    Pipeline.to(out),
    Pipeline.withDeadLetters(dead),
    Pipeline.withQuality({ allowEmptyOverwrite: true })
  )
  return { p, out, dead }
}

describe("split runs", () => {
  it.effect("give what a one-process run gives, and a report whose counts reconcile", () =>
    Effect.gen(function* () {
      const records = txns(500)
      const single = totals(records, 1)
      const one = yield* Pipeline.run(single.p)
      const split = totals(records, 5)
      const { report, error } = yield* run(split.p)
      assert.isUndefined(error)
      assert.deepStrictEqual(bag(split.out.collected().records), bag(single.out.collected().records))
      assert.strictEqual(split.dead.collected().records.length, single.dead.collected().records.length)
      assert.strictEqual(report.records.read, 500)
      assert.strictEqual(report.records.rejected, one.records.rejected)
      assert.strictEqual(report.records.filtered, one.records.filtered)
      assert.strictEqual(report.records.written, one.records.written)
      assert.strictEqual(report.records.deadLettered, one.records.deadLettered)
      assert.isTrue(report.reconciliation.ok)
      assert.deepStrictEqual(
        report.stages.map((s) => [s.name, s.recordsIn, s.recordsOut]),
        one.stages.map((s) => [s.name, s.recordsIn, s.recordsOut])
      )
      // The sink committed once.
      assert.strictEqual(split.out.collected().commits, 1)
    })
  )

  it.effect("stage an aggregate's partial states, not its input records", () =>
    Effect.gen(function* () {
      const counting = countingStaging()
      const split = totals(txns(500), 5)
      const { report, error } = yield* Split.runLocal(split.p, { runId: "partial" }).pipe(
        Effect.provideService(Split.Staging, counting.shape)
      )
      assert.isUndefined(error)
      // 7 users in each of 5 parts, instead of the ~400 records that pass the filter.
      assert.strictEqual(counting.counted.records, 35)
      assert.strictEqual(split.out.collected().records.length, 7)
      const aggregate = report.stages.find((s) => s.name === "aggregate")!
      assert.strictEqual(aggregate.recordsOut, 7)
      assert.strictEqual(aggregate.consumed, aggregate.recordsIn)
      assert.isTrue(report.reconciliation.ok)
    })
  )

  it.effect("equal a one-process run for any records and any number of parts (decimal sums exact)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              id: fc.nat(),
              user: fc.constantFrom("a", "b", "c"),
              amount: fc.integer({ min: -5, max: 60 }),
              price: fc.bigInt({ min: -10_000n, max: 10_000n }).map((v) => BigDecimal.make(v, 3)),
              at: fc.constant(new Date(0))
            }),
            { maxLength: 80 }
          ),
          fc.integer({ min: 1, max: 9 }),
          async (records, parts) => {
            const single = totals(records, 1)
            await Effect.runPromise(Pipeline.run(single.p))
            const split = totals(records, parts)
            const { error } = await Effect.runPromise(run(split.p, 3))
            assert.isUndefined(error)
            assert.deepStrictEqual(bag(split.out.collected().records), bag(single.out.collected().records))
          }
        ),
        { numRuns: 40 }
      )
    )
  )

  it.effect("merge windowed aggregates' partial windows: equal a one-process run, late records included", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              id: fc.nat({ max: 1000 }),
              user: fc.constantFrom("a", "b", "c"),
              amount: fc.integer({ min: -5, max: 60 }),
              price: fc.bigInt({ min: -10_000n, max: 10_000n }).map((v) => BigDecimal.make(v, 3)),
              // Out of order within each part: some records are late within their part.
              at: fc.integer({ min: 0, max: 240 }).map((s) => new Date(s * 1000))
            }),
            { maxLength: 80 }
          ),
          fc.integer({ min: 1, max: 7 }),
          windowArb,
          async (records, parts, spec) => {
            const single = windowedTotals(records, parts, spec)
            const one = await Effect.runPromise(Pipeline.run(single.p))
            const split = windowedTotals(records, parts, spec)
            const { report, error } = await Effect.runPromise(run(split.p, 3))
            assert.isUndefined(error)
            assert.deepStrictEqual(bag(split.out.collected().records), bag(single.out.collected().records))
            const letters = (dead: typeof split.dead) =>
              bag(dead.collected().records.map((d) => [d.stage, d.reason, (d.record as Txn).id]))
            assert.deepStrictEqual(letters(split.dead), letters(single.dead))
            assert.deepStrictEqual(
              report.stages.map((s) => [s.name, s.recordsIn, s.recordsOut, s.rejected, s.filtered]),
              one.stages.map((s) => [s.name, s.recordsIn, s.recordsOut, s.rejected, s.filtered])
            )
            assert.isTrue(report.reconciliation.ok)
          }
        ),
        { numRuns: 60 }
      )
    )
  )

  it.effect("stage a windowed aggregate's partial windows, not its input records", () =>
    Effect.gen(function* () {
      const counting = countingStaging()
      // 500 records in time order over 2 hours, in 5 parts of 24 minutes: the third part crosses the hour, so the
      // parts stage 6 windows of 7 users each, instead of 500 records.
      const records = txns(500).map((t, i) => ({ ...t, at: new Date(Date.UTC(2026, 0, 1) + i * 14_400) }))
      const split = windowedTotals(records, 5, { kind: "tumbling", ms: 3_600_000, lateness: 0 })
      const { report, error } = yield* Split.runLocal(split.p, { runId: "partial-windows" }).pipe(
        Effect.provideService(Split.Staging, counting.shape)
      )
      assert.isUndefined(error)
      assert.strictEqual(counting.counted.records, 6 * 7)
      assert.strictEqual(split.out.collected().records.length, 2 * 7)
      assert.isTrue(report.reconciliation.ok)
    })
  )

  it.effect("let the parts of a pipeline without an aggregate stage in the sink's own tables (memory database)", () =>
    Effect.gen(function* () {
      const db = SqlMemory.memory({
        tables: {
          out: { columns: { id: "bigint", user: "text", amount: "bigint" } },
          single: { columns: { id: "bigint", user: "text", amount: "bigint" } }
        }
      })
      const Row = Schema.Struct({ id: Schema.Number, user: Schema.String, amount: Schema.Number })
      const rows = txns(200).map((t) => ({ id: t.id, user: t.user, amount: t.amount }))
      const pipeline = (table: string) =>
        Pipeline.from(Source.fromIterable("txns", rows, { parts: 4, batchSize: 9 })).pipe(
          Pipeline.filter((r: (typeof rows)[number]) => r.amount >= 0),
          Pipeline.to(Postgres.table(table, Row))
        )
      const p = pipeline("out")
      assert.isTrue(Split.planOf(p).native)
      const { shape: staging, counted } = countingStaging()
      const one = yield* Pipeline.run(pipeline("single")).pipe(Effect.provide(Postgres.layerMemory(db)))
      const { report, error } = yield* Split.runLocal(p, { runId: "native", concurrency: 2 }).pipe(
        Effect.provideService(Split.Staging, staging),
        Effect.provide(Postgres.layerMemory(db))
      )
      assert.isUndefined(error)
      assert.strictEqual(counted.records, 0)
      assert.deepStrictEqual(db.tables.get("out")!.rows, db.tables.get("single")!.rows)
      assert.strictEqual(report.records.written, one.records.written)
      assert.isTrue(report.reconciliation.ok)
      // The parts' staging tables are gone (the offsets table holds the run's mark); the target committed once.
      assert.deepStrictEqual(Array.from(db.tables.keys()).sort(), ["etl_offsets", "out", "single"])
      assert.strictEqual(db.commits.filter((c) => c.table === "out").length, 1)
      // The last part fails (a rejected record, no dead-letter sink) after the others staged theirs: the run fails,
      // and what they staged goes.
      const failing = Pipeline.from(Source.fromIterable("txns", rows, { parts: 4, batchSize: 9 })).pipe(
        Pipeline.validate([Rule.range("id", { max: 180 })]),
        Pipeline.to(Postgres.table("out", Row))
      )
      const failed = yield* Effect.flip(
        Split.runLocal(failing, { runId: "failing" }).pipe(
          Effect.provideService(Split.Staging, staging),
          Effect.provide(Postgres.layerMemory(db))
        )
      )
      assert.strictEqual(failed._tag, "QualityError")
      assert.deepStrictEqual(Array.from(db.tables.keys()).sort(), ["etl_offsets", "out", "single"])
    })
  )

  it.effect("load a join's lookup once, emit its rejected rows once, and run a right join in the finish", () =>
    Effect.gen(function* () {
      let loads = 0
      const users = Source.make({
        name: "users",
        type: "memory",
        description: "users",
        bounded: true,
        batches: () =>
          Stream.suspend(() => {
            loads++
            return Stream.succeed(
              Batch.make(
                [
                  { user: "u1", tier: "gold" },
                  { user: "u2", tier: "silver" },
                  { user: "u9", tier: "none" }
                ],
                { deadLetters: [{ stage: "users", reason: "invalid-record", message: "bad row", record: { user: 7 } }] }
              )
            )
          })
      })
      const joined = (type: "left" | "right", parts: number) => {
        const out = Sink.collect<Record<string, unknown>>("out", { mode: "overwrite" })
        const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
        const p = Pipeline.from(Source.fromIterable("txns", txns(60), { parts, batchSize: 7 })).pipe(
          Pipeline.join(users, { on: "user", type }),
          Pipeline.to(out),
          Pipeline.withDeadLetters(dead)
        )
        return { p, out, dead }
      }
      for (const type of ["left", "right"] as const) {
        const single = joined(type, 1)
        yield* Pipeline.run(single.p)
        loads = 0
        const split = joined(type, 6)
        const { report, error } = yield* run(split.p)
        assert.isUndefined(error)
        assert.deepStrictEqual(bag(split.out.collected().records), bag(single.out.collected().records))
        assert.strictEqual(split.dead.collected().records.length, 1, type)
        assert.strictEqual(loads, 1, `${type}: the lookup is loaded once`)
        assert.isTrue(report.reconciliation.ok)
      }
    })
  )

  it.effect(
    "commit an append once when its finish runs again after its commit (a mark in the sink's positions)",
    () => {
      const files = FileStore.memory()
      return Effect.gen(function* () {
        const p = Pipeline.from(Source.fromIterable("txns", txns(50), { parts: 3 })).pipe(
          Pipeline.to(File.sink<Txn>({ path: "out", format: { type: "jsonl" }, mode: "append" }))
        )
        const runId = "append-once"
        const parts = yield* p.split!(Source.defaultSplit)
        const results = yield* Effect.forEach(parts, (part, index) => Split.readPart(p, { runId, part, index }))
        const first = yield* Split.finish(p, { runId, parts, results })
        assert.isUndefined(first.error)
        assert.strictEqual(first.report.records.written, 50)
        const lines = () =>
          Array.from(FileStore.contents(files).entries())
            .filter(([k]) => k.startsWith("out/") && k.endsWith(".jsonl"))
            .flatMap(([, v]) =>
              new TextDecoder()
                .decode(v)
                .split("\n")
                .filter((l) => l !== "")
            )
        assert.strictEqual(lines().length, 50)
        // The runner died after the commit, before the cluster recorded the end: the finish runs again.
        const again = yield* Split.finish(p, { runId, parts, results })
        assert.isUndefined(again.error)
        assert.strictEqual(again.report.records.written, 50)
        assert.isTrue(again.report.reconciliation.ok)
        assert.strictEqual(lines().length, 50, "nothing was written twice")
        // Another run appends again.
        const more = yield* Effect.forEach(parts, (part, index) => Split.readPart(p, { runId: "another", part, index }))
        const other = yield* Split.finish(p, { runId: "another", parts, results: more })
        assert.isUndefined(other.error)
        assert.strictEqual(lines().length, 100)
      }).pipe(Effect.provide(Layer.merge(staging, FileStore.layerMemory(files))))
    }
  )

  it.effect("judge the quality thresholds on the whole run, as one process does, dropped rejects included", () =>
    Effect.gen(function* () {
      // Every 11th amount from 11 on is negative: 5 of 60 records rejected, 8.3 % overall, but 2 of 20 (10 %) in the
      // parts 20-40 and 40-60, above a 9 % threshold that the whole run stays under.
      const quality = (policy: Pipeline.QualityPolicy) => {
        const out = Sink.collect<Txn>("out")
        const p = Pipeline.from(Source.fromIterable("txns", txns(60), { parts: 3 })).pipe(
          Pipeline.validate([Rule.range("amount", { min: 0 })]),
          Pipeline.to(out),
          Pipeline.withQuality({ dropRejected: true, ...policy })
        )
        return { p, out }
      }
      for (const [policy, fails] of [
        [{ maxRejectedRatio: 0.09 }, false],
        [{ maxRejectedRatio: 0.08 }, true],
        [{ maxRejected: 5 }, false],
        [{ maxRejected: 4 }, true]
      ] as const) {
        const single = quality(policy)
        const one = yield* Effect.result(Pipeline.run(single.p))
        assert.strictEqual(one._tag === "Failure", fails, JSON.stringify(policy))
        const split = quality(policy)
        const { report, error } = yield* run(split.p)
        assert.strictEqual(error !== undefined, fails, JSON.stringify(policy))
        if (!fails) {
          assert.strictEqual(report.records.dropped, 5)
          assert.strictEqual(split.out.collected().records.length, 55)
        } else {
          assert.strictEqual(error?._tag, "QualityError")
          assert.strictEqual(split.out.collected().commits, 0)
        }
      }
    })
  )

  it.effect("name the part that failed", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Txn>("out")
      const p = Pipeline.from(Source.fromIterable("txns", txns(40), { parts: 4 })).pipe(
        Pipeline.validate([Rule.range("amount", { min: 0 })]),
        Pipeline.to(out)
      )
      // No dead-letter sink: a rejected record fails the run, in the part that read it.
      const error = yield* Effect.flip(run(p))
      assert.strictEqual(error._tag, "QualityError")
      assert.match(error.message, /^part 10-20 \(records 10 to 19\): validate rejected a record/)
      assert.strictEqual(out.collected().commits, 0)
    })
  )

  it.effect("are refused for a source that cannot list parts", () =>
    Effect.gen(function* () {
      const p = Pipeline.from(Source.fromIterable("txns", txns(3))).pipe(Pipeline.to(Sink.collect<Txn>("out")))
      const error = yield* Effect.flip(run(p))
      assert.match(error.message, /cannot list parts/)
    })
  )

  it.effect("keep only the last read of a part that was read again", () =>
    Effect.gen(function* () {
      const memory = Split.makeMemory()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const first = yield* memory.open("r", "p", "records")
          yield* first.write([1, 2])
          yield* first.commit
          // A second read of the part that dies before its commit changes nothing.
          const dead = yield* memory.open("r", "p", "records")
          yield* dead.write([9])
          const again = yield* memory.open("r", "p", "records")
          yield* again.write([3])
          yield* again.commit
        })
      )
      const read = yield* Stream.runCollect(memory.read("r", "p", "records"))
      assert.deepStrictEqual(Array.from(read), [[3]])
      yield* memory.clear("r")
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(memory.read("r", "p", "records"))), [])
    })
  )
})
