import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import * as Batch from "../../src/core/Batch.ts"
import type * as DeadLetter from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Spans from "../../src/core/Spans.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Metrics from "../../src/runtime/Metrics.ts"
import * as Runner from "../../src/runtime/Runner.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import * as Rule from "../../src/transforms/Rule.ts"

interface Tx {
  readonly id: number
  readonly user: string
  readonly amount: number | null
  readonly t: Date
}

const records: ReadonlyArray<Tx> = Array.from({ length: 2500 }, (_, i) => ({
  id: i,
  user: `u${i % 7}`,
  amount: i % 50 === 0 ? null : i % 13 === 0 ? -1 : i,
  t: new Date(Date.UTC(2026, 0, 1) + i * 1000)
}))

const pipeline = (dead: Sink.Sink<DeadLetter.DeadLetter>) =>
  Pipeline.from(Source.fromIterable("txs", records, { batchSize: 100 })).pipe(
    Pipeline.validate([Rule.notNull("amount"), Rule.range("amount", { min: 0 })]),
    Pipeline.filter((r: Tx) => r.id % 3 !== 0, { name: "no-thirds" }),
    Pipeline.window(Pipeline.Window.tumbling("10 minutes", { time: "t" })),
    Pipeline.aggregate({
      groupBy: ["user", "windowStart", "windowEnd"],
      fields: { n: Agg.count(), total: Agg.sum("amount") }
    }),
    Pipeline.to(Sink.collect("out")),
    Pipeline.withDeadLetters(dead)
  )

/** The series of `name` whose attributes include `attributes`, from a registry snapshot. */
const series = (
  snapshot: ReadonlyArray<Metric.Metric.Snapshot>,
  name: string,
  attributes: Record<string, string>
): ReadonlyArray<Metric.Metric.Snapshot> =>
  snapshot.filter((m) => m.id === name && Object.entries(attributes).every(([k, v]) => m.attributes?.[k] === v))

const count = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>, name: string, attributes: Record<string, string>) => {
  const found = series(snapshot, name, attributes)
  assert.strictEqual(found.length, 1, `one series of ${name} ${JSON.stringify(attributes)}`)
  const state = found[0]!.state as Metric.CounterState<number> | Metric.GaugeState<number>
  return "count" in state ? state.count : state.value
}

describe("run metrics", () => {
  it.effect("every stage's metrics equal the RunReport's counts exactly", () =>
    Effect.gen(function* () {
      const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
      const { report, error } = yield* Runner.execute(pipeline(dead))
      assert.isUndefined(error)
      const snapshot = yield* Metric.snapshot
      const run = { run_id: report.runId, pipeline: report.pipeline }
      assert.strictEqual(report.stages.length, 7)
      for (const stage of report.stages) {
        const at = { ...run, stage: stage.name, stage_kind: stage.kind }
        assert.strictEqual(count(snapshot, "etl_records_in_total", at), stage.recordsIn, `${stage.name} in`)
        assert.strictEqual(count(snapshot, "etl_records_out_total", at), stage.recordsOut, `${stage.name} out`)
        assert.strictEqual(count(snapshot, "etl_records_filtered_total", at), stage.filtered)
        assert.strictEqual(count(snapshot, "etl_records_rejected_total", at), stage.rejected)
        assert.strictEqual(count(snapshot, "etl_records_consumed_total", at), stage.consumed)
        assert.strictEqual(count(snapshot, "etl_records_warned_total", at), stage.warned)
        assert.strictEqual(count(snapshot, "etl_batches_total", at), stage.batches)
      }
      // What the stages did is not trivial: every kind of count is exercised.
      assert.isAbove(report.records.rejected, 0)
      assert.isAbove(report.records.filtered, 0)
      assert.isAbove(report.records.combined.in, 0)
      const sink = { ...run, stage: "out", stage_kind: "sink", connector: "memory" }
      assert.strictEqual(count(snapshot, "etl_records_committed_total", sink), report.records.written)
      assert.strictEqual(
        count(snapshot, "etl_records_committed_total", { ...run, stage: "dead", stage_kind: "dead-letters" }),
        report.records.deadLettered
      )
      assert.strictEqual(count(snapshot, "etl_records_dropped_total", run), report.records.dropped)
      // Rejections by reason add up to the report's rejected records; rules are named.
      const rejections = series(snapshot, "etl_rejections_total", run)
      const byRule = new Map(
        rejections.map((m) => [m.attributes?.rule, (m.state as Metric.CounterState<number>).count])
      )
      assert.strictEqual(
        Array.from(byRule.values()).reduce((a, b) => a + b, 0),
        report.records.rejected
      )
      assert.deepStrictEqual(
        rejections.map((m) => m.attributes?.reason),
        rejections.map(() => "rule")
      )
      assert.strictEqual(byRule.size, 2)
      // Every batch of the validate stage was timed; the sink's writes and its commit too.
      const durations = series(snapshot, "etl_batch_duration_seconds", { ...run, stage: "validate" })
      assert.strictEqual((durations[0]!.state as Metric.HistogramState).count, report.stages[1]!.batches)
      const commits = series(snapshot, "etl_sink_commit_duration_seconds", sink)
      assert.strictEqual((commits[0]!.state as Metric.HistogramState).count, 1)
      // The windows are all closed at the end; their state is released.
      assert.strictEqual(count(snapshot, "etl_windows_open", { ...run, stage: "window" }), 0)
      assert.strictEqual(count(snapshot, "etl_state_entries", { ...run, stage: "aggregate" }), 0)
    })
  )

  it.live("retries are counted by error and stage", () =>
    Effect.gen(function* () {
      let reads = 0
      // A connector's error: tagged, with the reason it classified (as PostgresError, KafkaError, ... are).
      const lost = { _tag: "DbError", message: "connection reset", reason: { _tag: "ConnectionLost", retryable: true } }
      const flaky = Source.make<number, typeof lost>({
        name: "flaky",
        type: "memory",
        description: "fails twice, then reads",
        bounded: true,
        batches: () => Stream.suspend(() => (++reads <= 2 ? Stream.fail(lost) : Stream.make(Batch.make([1, 2, 3]))))
      })
      const { report, error } = yield* Runner.execute(
        Pipeline.from(flaky).pipe(
          Pipeline.to(Sink.collect("out")),
          Pipeline.withRetry({ attempts: 3, initialDelay: "1 millis", factor: 1 })
        )
      )
      assert.isUndefined(error)
      assert.strictEqual(report.attempts, 3)
      const snapshot = yield* Metric.snapshot
      const retries = series(snapshot, "etl_retries_total", { run_id: report.runId })
      assert.strictEqual(retries.length, 1)
      assert.deepInclude(retries[0]!.attributes, {
        error_type: "ExtractError",
        reason: "ConnectionLost",
        stage: "flaky"
      })
      assert.strictEqual((retries[0]!.state as Metric.CounterState<number>).count, 2)
      // The series of the attempt that succeeded replaced those of the failed ones.
      assert.strictEqual(count(snapshot, "etl_records_in_total", { run_id: report.runId, stage: "flaky" }), 3)
    })
  )

  it.effect("a registry keeps the series of the last ended runs only", () =>
    Effect.gen(function* () {
      const runIds: Array<string> = []
      for (let i = 0; i < Metrics.finishedRunsKept + 2; i++) {
        const { report } = yield* Runner.execute(
          Pipeline.from(Source.fromIterable("n", [1, 2, 3])).pipe(Pipeline.to(Sink.collect("out")))
        )
        runIds.push(report.runId)
      }
      const snapshot = yield* Metric.snapshot
      const kept = new Set(snapshot.map((m) => m.attributes?.run_id))
      assert.deepStrictEqual(
        runIds.map((id) => kept.has(id)),
        runIds.map((_, i) => i >= 2)
      )
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it("reads quantiles from a histogram within its bucket", () => {
    const state = (values: ReadonlyArray<number>) => {
      const h = Metric.histogram("q", {
        boundaries: Metric.exponentialBoundaries({ start: 0.001, factor: 1.15, count: 115 })
      })
      const context = Effect.runSync(Effect.context<never>())
      for (const v of values) h.updateUnsafe(v, context)
      return h.valueUnsafe(context)
    }
    const values = Array.from({ length: 1000 }, (_, i) => (i + 1) / 100)
    const s = state(values)
    assert.approximately(Metrics.quantile(s, 0.5), 5, 5 * 0.08)
    assert.approximately(Metrics.quantile(s, 0.95), 9.5, 9.5 * 0.08)
    assert.strictEqual(Metrics.quantile({ buckets: [], count: 0, min: 0, max: 0, sum: 0 }, 0.5), 0)
  })

  it("lists every metric once, and the README lists them all", () => {
    const names = Metrics.catalog.map((m) => m.name)
    assert.strictEqual(new Set(names).size, names.length)
    for (const m of Metrics.catalog) assert.match(m.name, /^etl_[a-z_]+$/)
    // The Kafka connector defines its lag gauge itself (it cannot import the runtime): the two texts agree.
    assert.strictEqual(
      Kafka.consumerLag.description,
      Metrics.catalog.find((m) => m.name === Kafka.consumerLag.id)?.description
    )
    const readme = fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const list = readme.slice(readme.indexOf("<!-- metric list"), readme.indexOf("<!-- end of metric list -->"))
    const documented = Array.from(list.matchAll(/^\| `(etl_[a-z_]+)` \| (\w+) \|/gm), (m) => `${m[1]} ${m[2]}`)
    assert.deepStrictEqual(
      documented,
      Metrics.catalog.map((m) => `${m.name} ${m.type}`)
    )
  })
})

describe("run spans", () => {
  it.effect(
    "a run, its attempt, the source read, sampled batches, sink writes and the commit are spans of one trace",
    () =>
      Effect.gen(function* () {
        const spans: Array<Tracer.NativeSpan> = []
        const tracer = Tracer.make({
          span(options) {
            const span = new Tracer.NativeSpan(options)
            spans.push(span)
            return span
          }
        })
        const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
        const { report } = yield* Runner.execute(pipeline(dead)).pipe(
          Effect.provideService(Tracer.Tracer, tracer),
          Effect.provideService(Spans.BatchSpanRate, 0.1)
        )
        const byName = (name: string) => spans.filter((s) => s.name === name)
        const [run] = byName("Pipeline.run")
        assert.isDefined(run)
        assert.strictEqual(run!.attributes.get("runId"), report.runId)
        const [attempt] = byName("Pipeline.attempt")
        assert.strictEqual(attempt!.parent._tag === "Some" && attempt!.parent.value.spanId, run!.spanId)
        const [read] = byName("source.read")
        assert.strictEqual(read!.attributes.get("etl.stage"), "txs")
        assert.strictEqual(read!.attributes.get("etl.connector"), "memory")
        // 25 batches at a rate of 0.1: the first, then every 10th.
        for (const stage of ["validate", "no-thirds", "aggregate"])
          assert.strictEqual(
            byName("stage.batch").filter((s) => s.attributes.get("etl.stage") === stage).length,
            3,
            stage
          )
        assert.isAbove(byName("sink.write").length, 0)
        assert.strictEqual(byName("sink.commit").length, 2)
        for (const span of spans) {
          assert.strictEqual(span.traceId, run!.traceId)
          assert.strictEqual(span.status._tag, "Ended", span.name)
        }
      })
  )

  it.effect("batch spans are off at a rate of 0", () =>
    Effect.gen(function* () {
      const spans: Array<Tracer.NativeSpan> = []
      const tracer = Tracer.make({
        span(options) {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      yield* Runner.execute(pipeline(Sink.collect<DeadLetter.DeadLetter>("dead"))).pipe(
        Effect.provideService(Tracer.Tracer, tracer),
        Effect.provideService(Spans.BatchSpanRate, 0)
      )
      assert.deepStrictEqual(
        spans.filter((s) => s.name === "stage.batch" || s.name === "sink.write"),
        []
      )
      assert.strictEqual(spans.filter((s) => s.name === "sink.commit").length, 2)
    })
  )

  it("spaces sampled batches by the rate", () => {
    assert.strictEqual(Spans.spacing(0), 0)
    assert.strictEqual(Spans.spacing(1), 1)
    assert.strictEqual(Spans.spacing(0.01), 100)
    assert.strictEqual(Spans.spacing(Number.NaN), 0)
  })
})
