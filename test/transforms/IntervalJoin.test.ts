import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../src/connectors/kafka/KafkaClient.ts"
import * as Batch from "../../src/core/Batch.ts"
import { TransformError } from "../../src/core/Errors.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import { StageCounter } from "../../src/core/Stage.ts"
import * as State from "../../src/core/State.ts"
import { StopSignal } from "../../src/core/Stop.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as IntervalJoin from "../../src/transforms/IntervalJoin.ts"
import {
  type IntervalJoinConfig,
  IntervalJoinState,
  LEFT,
  RIGHT,
  type Side
} from "../../src/transforms/internal/IntervalJoinState.ts"
import { bag, runFlow, split, splitSource } from "./support.ts"

interface Order {
  readonly id: number
  readonly k: string | null
  readonly t: number
}

interface Payment {
  readonly pid: number
  readonly k: string | null
  readonly paidAt: number
}

type Row = Readonly<Record<string, unknown>>

const o = (id: number, k: string | null, t: number): Order => ({ id, k, t })
const p = (pid: number, k: string | null, paidAt: number): Payment => ({ pid, k, paidAt })

const config = (overrides: Partial<IntervalJoinConfig> = {}): IntervalJoinConfig => ({
  leftKey: ["k"],
  rightKey: ["k"],
  leftTime: "t",
  rightTime: "paidAt",
  lowerMs: -5,
  upperMs: 0,
  type: "inner",
  as: undefined,
  latenessMs: 0,
  onLate: "reject",
  ...overrides
})

const counterOf = () =>
  new StageCounter({ name: "interval_join", kind: "transform", description: "", cardinality: "one-to-many" })

/** Drives the state by hand: each step's output batches are written, then their acks run (as the runtime does). */
const driver = (c: IntervalJoinConfig) => {
  const counter = counterOf()
  const state = new IntervalJoinState(c, counter, { right: "payments", checkpointed: false })
  const events: Array<string> = []
  const out: Array<Row> = []
  const deadLetters: Array<{ readonly reason: string; readonly message: string }> = []
  const seqs: [number, number] = [0, 0]
  const take = (result: ReadonlyArray<Batch.Batch<Row>> | TransformError): Array<Row> => {
    if (result instanceof TransformError) throw result
    const now: Array<Row> = []
    for (const batch of result) {
      for (const r of batch.records) now.push(r)
      out.push(...batch.records)
      deadLetters.push(...batch.deadLetters)
      if (batch.records.length > 0) events.push(`write ${batch.records.length}`)
      Effect.runSync(batch.ack)
    }
    return now
  }
  const batch = (side: Side, records: ReadonlyArray<unknown>, part?: Batch.Part) => {
    const i = seqs[side]++
    const name = side === LEFT ? "L" : "R"
    return Batch.make(records, {
      ack: Effect.sync(() => void events.push(`ack ${name}${i}`)),
      ...(part === undefined ? {} : { part })
    })
  }
  const balanced = () => {
    assert.strictEqual(
      counter.recordsIn,
      counter.consumed + counter.filtered + counter.rejected,
      "in = consumed + filtered + rejected"
    )
  }
  return {
    state,
    counter,
    events,
    out,
    deadLetters,
    left: (records: ReadonlyArray<Order>, part?: Batch.Part) => {
      const now = take(state.step(LEFT, batch(LEFT, records, part)))
      balanced()
      return now
    },
    right: (records: ReadonlyArray<Payment>, part?: Batch.Part) => {
      const now = take(state.step(RIGHT, batch(RIGHT, records, part)))
      balanced()
      return now
    },
    end: (side: Side) => take(state.end(side)),
    finish: () => {
      const now = take(state.finish(true))
      balanced()
      return now
    }
  }
}

const ids = (rows: ReadonlyArray<Row>) =>
  rows.map((r) => `${r.id}-${(r.payment as Row | null | undefined)?.pid ?? r.pid ?? "null"}`)

/** The obvious interval join: every pair, by nested loops; a left join adds the left records with no pair. */
const reference = (
  orders: ReadonlyArray<Order>,
  payments: ReadonlyArray<Payment>,
  lower: number,
  upper: number,
  type: "inner" | "left"
): Array<Row> => {
  const out: Array<Row> = []
  for (const l of orders) {
    let met = false
    for (const r of payments)
      if (l.k !== null && l.k === r.k && l.t + lower <= r.paidAt && r.paidAt <= l.t + upper) {
        met = true
        out.push({ ...l, payment: r })
      }
    if (!met && type === "left") out.push({ ...l, payment: null })
  }
  return out
}

describe("interval join state", () => {
  it("joins each left record with the right records of its key from t + lower to t + upper, both bounds included", () => {
    const d = driver(config())
    d.right([p(1, "a", 94), p(2, "a", 95), p(3, "a", 98), p(6, "b", 99), p(4, "a", 100)])
    assert.deepStrictEqual(
      d.left([o(1, "a", 100)]).map((r) => r.pid),
      [2, 3, 4]
    )
    // The right record arriving second finds the left one just as well.
    assert.deepStrictEqual(d.left([o(2, "a", 110)]), [])
    assert.deepStrictEqual(ids(d.right([p(5, "a", 104), p(7, "a", 105), p(8, "a", 110), p(9, "a", 111)])), [
      "2-7",
      "2-8"
    ])
    d.finish()
    assert.strictEqual(d.deadLetters.length, 0)
    assert.deepStrictEqual(d.out[0], { id: 1, k: "a", t: 100, pid: 2, paidAt: 95 })
    assert.strictEqual(d.counter.recordsOut, 5)
  })

  it("nests the right record under `as`, and a left join emits an unmatched left record once the right watermark passes t + upper", () => {
    const d = driver(config({ type: "left", as: "payment", lowerMs: -5, upperMs: 3 }))
    d.left([o(1, "a", 100), o(2, "b", 100)])
    assert.deepStrictEqual(d.right([p(1, "a", 103)]), [
      { id: 1, k: "a", t: 100, payment: { pid: 1, k: "a", paidAt: 103 } }
    ])
    // 103 is still within 100 + 3: a payment of b at 103 could still come.
    assert.deepStrictEqual(d.out.length, 1)
    assert.deepStrictEqual(d.right([p(2, "c", 104)]), [{ id: 2, k: "b", t: 100, payment: null }])
    // The matched record is let go quietly, and never emitted twice.
    assert.deepStrictEqual(d.finish(), [])
    assert.strictEqual(d.counter.consumed, 3)
    assert.strictEqual(d.counter.filtered, 1)
  })

  it("holds each input batch's ack until its records are let go, after the outputs they took part in, in order per side", () => {
    const d = driver(config({ lowerMs: -10, upperMs: 10 }))
    d.left([o(1, "a", 100)])
    d.left([o(2, "a", 105)])
    d.right([p(1, "a", 100)])
    assert.deepStrictEqual(d.events, ["write 2"])
    // The left watermark (200) lets the right record go; the right watermark (100) keeps both left records.
    d.left([o(3, "x", 200)])
    assert.deepStrictEqual(d.events, ["write 2", "ack R0"])
    // The right watermark (112) passes 100 + 10 but not 105 + 10: batch L0 could go, but L1 and L2 not yet.
    d.right([p(2, "z", 112)])
    assert.deepStrictEqual(d.events, ["write 2", "ack R0", "ack L0", "ack R1"])
    d.right([p(3, "x", 195)])
    assert.deepStrictEqual(d.events, ["write 2", "ack R0", "ack L0", "ack R1", "write 1", "ack L1"])
    d.finish()
    assert.deepStrictEqual(d.events, ["write 2", "ack R0", "ack L0", "ack R1", "write 1", "ack L1", "ack L2", "ack R2"])
  })

  it("rejects or drops records behind their own side's watermark, after the allowed lateness, and rejects bad times", () => {
    const d = driver(config({ latenessMs: 10 }))
    d.left([o(1, "a", 100), o(2, "a", 200), o(3, "a", 190), o(4, "a", 189)])
    d.right([p(1, "a", 50), { ...p(2, "a", 0), paidAt: "soon" } as unknown as Payment])
    assert.deepStrictEqual(
      d.deadLetters.map((x) => x.reason),
      ["late", "invalid-event-time"]
    )
    assert.strictEqual(
      d.deadLetters[0]!.message,
      "t 1970-01-01T00:00:00.189Z is behind the watermark 1970-01-01T00:00:00.190Z (latest event time 1970-01-01T00:00:00.200Z of the left input minus allowed lateness 10ms)"
    )
    assert.include(d.deadLetters[1]!.message, "paidAt (payments input): expected a timestamp")
    // The right side has its own watermark: 50 is not late there.
    assert.strictEqual(d.counter.rejected, 2)
    const dropping = driver(config({ onLate: "drop" }))
    dropping.left([o(1, "a", 100), o(2, "a", 99)])
    assert.strictEqual(dropping.counter.filtered, 1)
    assert.strictEqual(dropping.deadLetters.length, 0)
  })

  it("keeps a watermark per input part: a part read ahead does not make another part's records late", () => {
    const d = driver(config())
    d.right([p(1, "a", 1000)], { id: 0, of: 2 })
    d.right([p(2, "a", 10)], { id: 1, of: 2 })
    d.left([o(1, "a", 12)])
    assert.deepStrictEqual(ids(d.out), ["1-2"])
    assert.strictEqual(d.deadLetters.length, 0)
  })

  it("matches nothing on a NULL key; a left join still emits the left record", () => {
    const inner = driver(config())
    inner.right([p(1, null, 100)])
    inner.left([o(1, null, 100)])
    inner.finish()
    assert.strictEqual(inner.out.length, 0)
    assert.strictEqual(inner.counter.filtered, 2)
    const left = driver(config({ type: "left", as: "payment" }))
    left.right([p(1, null, 100)])
    assert.deepStrictEqual(left.left([o(1, null, 100)]), [{ id: 1, k: null, t: 100, payment: null }])
  })

  it("lets go of everything the other side can no longer meet once a bounded side ends", () => {
    const d = driver(config({ type: "left", as: "payment" }))
    d.left([o(1, "a", 100), o(2, "b", 100)])
    d.right([p(1, "a", 99)])
    assert.strictEqual(d.state.held(LEFT), 2)
    assert.deepStrictEqual(d.end(RIGHT), [{ id: 2, k: "b", t: 100, payment: null }])
    assert.strictEqual(d.state.held(LEFT), 0)
    // Later left records meet only what the right side holds, and are not kept.
    assert.deepStrictEqual(ids(d.left([o(3, "a", 101), o(4, "a", 200)])), ["3-1", "4-null"])
    assert.strictEqual(d.state.held(LEFT), 0)
  })

  it("fails when a merged output would overwrite a left field", () => {
    const counter = counterOf()
    const state = new IntervalJoinState(config(), counter, { right: "payments", checkpointed: false })
    state.step(RIGHT, Batch.make([{ ...p(1, "a", 100), t: 5 }]))
    const result = state.step(LEFT, Batch.make([o(1, "a", 100)]))
    assert.instanceOf(result, TransformError)
    assert.include(
      (result as TransformError).message,
      'interval_join: both sides have a field named "t"; rename it on one side, leave it out (select), or put the matched records in a field of their own (as)'
    )
  })

  it("keeps no more records than the interval and the watermarks allow, however long the streams", () => {
    const lower = -5_000
    const upper = 1_000
    const step = 10
    const size = 100
    const span = size * step
    const d = driver(config({ lowerMs: lower, upperMs: upper }))
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    let max = 0
    let pairs = 0
    for (let b = 0; b < 2_000; b++) {
      const from = b * size
      const orders = Array.from({ length: size }, (_, i) => o(from + i, keys[(from + i) % 100]!, (from + i) * step))
      const payments = Array.from({ length: size }, (_, i) => p(from + i, keys[(from + i) % 100]!, (from + i) * step))
      pairs += d.left(orders).length + d.right(payments).length
      max = Math.max(max, d.state.size)
      d.out.length = 0
    }
    // Left records wait for the right watermark to pass t + upper, right ones for the left watermark to pass t - lower;
    // a batch more on each side, as the watermark moves batch by batch.
    const bound = Math.ceil((upper - lower + 2 * span) / step) + 2
    assert.isAtMost(max, bound)
    // It does hold the interval's worth (so the bound is not met by dropping what could match).
    assert.isAtLeast(max, (upper - lower) / step)
    // Every pair was found: right record j meets left record i when j ≡ i (mod 100) and i - 500 ≤ j ≤ i + 100.
    const n = 2_000 * size
    let expected = 0
    for (let i = 0; i < n; i++)
      expected += Math.min(1, Math.floor((n - 1 - i) / 100)) - Math.max(-5, Math.ceil(-i / 100)) + 1
    d.finish()
    assert.strictEqual(pairs + d.out.length, expected)
  })
})

const keyArb = fc.constantFrom<string | null>("a", "b", "c", null)

/** Records in event-time order: each a key and a step (0 or more) after the previous one. */
const timed = <A>(make: (i: number, k: string | null, t: number) => A) =>
  fc.array(fc.record({ k: keyArb, dt: fc.integer({ min: 0, max: 6 }) }), { maxLength: 40 }).map((steps) => {
    let t = 1_000
    return steps.map(({ k, dt }, i) => {
      t += dt
      return make(i, k, t)
    })
  })

const orders = timed(o)
const payments = timed(p)

const interval = fc
  .record({ lower: fc.integer({ min: -12, max: 6 }), width: fc.integer({ min: 0, max: 12 }) })
  .map(({ lower, width }) => [lower, lower + width] as const)

const shape = fc.constantFrom(
  { type: "inner" as const, as: undefined },
  { type: "inner" as const, as: "payment" },
  { type: "left" as const, as: "payment" }
)

/** The reference rows in the shape the join emits: nested under `as`, or merged (the shared key once). */
const expectedRows = (
  left: ReadonlyArray<Order>,
  right: ReadonlyArray<Payment>,
  [lower, upper]: readonly [number, number],
  s: { readonly type: "inner" | "left"; readonly as: string | undefined }
) =>
  reference(left, right, lower, upper, s.type).map((row) => {
    if (s.as !== undefined) return row
    const { payment, ...l } = row as unknown as Order & { readonly payment: Payment }
    return { ...l, pid: payment.pid, paidAt: payment.paidAt }
  })

describe("interval join against the nested-loop reference", () => {
  it("equals it for in-order inputs, any batching and any interleaving of the two sides, and acks every batch once in order", () => {
    fc.assert(
      fc.property(
        orders,
        payments,
        interval,
        shape,
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.boolean(), { maxLength: 60 }),
        (left, right, bounds, s, leftSizes, rightSizes, schedule) => {
          const d = driver(config({ lowerMs: bounds[0], upperMs: bounds[1], type: s.type, as: s.as }))
          const lefts = split(left, leftSizes)
          const rights = split(right, rightSizes)
          let i = 0
          let j = 0
          let turn = 0
          while (i < lefts.length || j < rights.length) {
            const pickLeft =
              j >= rights.length || (i < lefts.length && (schedule[turn++ % (schedule.length || 1)] ?? true))
            if (pickLeft) d.left(lefts[i++]!)
            else d.right(rights[j++]!)
            assert.isAtMost(d.state.held(LEFT), left.length)
          }
          d.end(LEFT)
          d.end(RIGHT)
          d.finish()
          assert.deepStrictEqual(bag(d.out), bag(expectedRows(left, right, bounds, s)))
          assert.strictEqual(d.deadLetters.length, 0)
          assert.strictEqual(d.counter.recordsOut, d.out.length)
          assert.strictEqual(d.state.size, 0)
          const acks = d.events.filter((e) => e.startsWith("ack "))
          const inOrder = (side: string, n: number) =>
            assert.deepStrictEqual(
              acks.filter((a) => a.startsWith(`ack ${side}`)),
              Array.from({ length: n }, (_, k) => `ack ${side}${k}`)
            )
          inOrder("L", lefts.length)
          inOrder("R", rights.length)
        }
      ),
      { numRuns: 400 }
    )
  })

  it("equals it when both flows are read at once through the pipeline stage", () =>
    fc.assert(
      fc.asyncProperty(
        orders,
        payments,
        interval,
        shape,
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
        async (left, right, bounds, s, sizes) => {
          const flow = Pipeline.from(splitSource("orders", split(left, sizes))).pipe(
            IntervalJoin.dynamic(Pipeline.from(splitSource("payments", split(right, [...sizes].reverse()))), {
              leftKey: "k",
              rightKey: "k",
              leftTime: "t",
              rightTime: "paidAt",
              between: [bounds[0], bounds[1]],
              type: s.type,
              as: s.as
            })
          )
          const run = await Effect.runPromise(runFlow(flow))
          assert.deepStrictEqual(bag(run.records), bag(expectedRows(left, right, bounds, s)))
        }
      ),
      { numRuns: 60 }
    ))
})

describe("Pipeline.intervalJoin", () => {
  const sampleOrders = [o(1, "a", 100), o(2, "b", 100), o(3, "a", 200), o(4, null, 300)]
  const samplePayments = [p(1, "a", 96), p(2, "a", 99), p(3, "b", 150), p(4, "a", 200), p(5, "c", 250)]

  it.effect("runs in a pipeline: both sources are read and counted, and the row counts reconcile", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Row>("out")
      const report = yield* Pipeline.from(Source.fromIterable("orders", sampleOrders, { batchSize: 2 })).pipe(
        Pipeline.intervalJoin(
          Pipeline.from(Source.fromIterable("payments", samplePayments, { batchSize: 2 })).pipe(
            Pipeline.filter((x) => x.pid !== 2)
          ),
          {
            leftKey: "k",
            rightKey: "k",
            leftTime: "t",
            rightTime: "paidAt",
            between: ["-5 millis", "0 millis"],
            type: "left",
            as: "payment"
          }
        ),
        Pipeline.to(out),
        Pipeline.run
      )
      assert.deepStrictEqual(bag(out.collected().records), [
        ...bag([
          { ...sampleOrders[0]!, payment: samplePayments[0]! },
          { ...sampleOrders[1]!, payment: null },
          { ...sampleOrders[2]!, payment: samplePayments[3]! },
          { ...sampleOrders[3]!, payment: null }
        ])
      ])
      assert.isTrue(report.reconciliation.ok)
      assert.deepStrictEqual(
        report.stages.map((s) => [s.name, s.kind, s.recordsIn, s.recordsOut]),
        [
          ["orders", "source", 4, 4],
          ["payments", "source", 5, 5],
          ["filter", "transform", 5, 4],
          ["interval_join", "transform", 8, 4],
          ["out", "sink", 4, 4]
        ]
      )
      assert.deepStrictEqual(report.stages[3]!.inputs, ["orders", "filter"])
      assert.include(
        report.reconciliation.checks.map((c) => c.rule),
        "received = output of orders + filter"
      )
      assert.strictEqual(report.records.read, 9)
      // Orders: all 4 emitted (consumed); payments: 1 and 4 met an order, 3 and 5 met none (filtered).
      assert.deepStrictEqual(report.records.combined, { in: 6, out: 4 })
      assert.strictEqual(report.records.filtered, 1 + 2)
    })
  )

  it.effect("names a second source like the first one apart, and refuses a bad interval before reading", () =>
    Effect.gen(function* () {
      const flow = Pipeline.from(Source.fromIterable("events", sampleOrders)).pipe(
        Pipeline.intervalJoin(Pipeline.from(Source.fromIterable("events", samplePayments)), {
          leftKey: "k",
          rightKey: "k",
          leftTime: "t",
          rightTime: "paidAt",
          between: ["-5 millis", "0 millis"],
          as: "payment"
        })
      )
      assert.deepStrictEqual(
        flow.stages.map((s) => s.name),
        ["events", "events#2", "interval_join"]
      )
      assert.strictEqual(
        flow.stages[2]!.description,
        "inner interval join with events on k, events.paidAt in [t - 5ms, t] as payment (late records rejected)"
      )
      const error = yield* Pipeline.from(Source.fromIterable("orders", sampleOrders)).pipe(
        IntervalJoin.dynamic(Pipeline.from(Source.fromIterable("payments", samplePayments)), {
          leftKey: "k",
          rightKey: "k",
          leftTime: "t",
          rightTime: "paidAt",
          between: ["1 minute", "-1 minute"]
        }),
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "BuildError")
      assert.strictEqual(
        error.message,
        "interval_join: the interval is empty: its lower bound (+1m) is after its upper bound (-1m)"
      )
    })
  )

  it.effect("keeps what it holds unacknowledged when an endless input stops, instead of emitting unmatched rows", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const left = splitSource("orders", [[o(1, "a", 100)], [o(2, "b", 300)]], events, { bounded: false })
      const right = Source.make<Payment>({
        name: "payments",
        type: "memory",
        description: "endless",
        bounded: false,
        batches: () =>
          Stream.make(
            Batch.make([p(1, "a", 99), p(2, "a", 299)], { ack: Effect.sync(() => void events.push("ack P")) })
          )
      })
      const run = yield* runFlow(
        Pipeline.from(left).pipe(
          Pipeline.intervalJoin(Pipeline.from(right), {
            leftKey: "k",
            rightKey: "k",
            leftTime: "t",
            rightTime: "paidAt",
            between: ["-5 millis", "0 millis"],
            type: "left",
            as: "payment"
          })
        ),
        { events }
      )
      assert.deepStrictEqual(ids(run.records), ["1-1"])
      // Order 2 may still meet a payment when the stream goes on (and payment 2 an order): neither is emitted as
      // unmatched, nor acknowledged; order 1 is.
      assert.include(run.events, "ack 0")
      assert.notInclude(run.events, "ack 1")
      assert.notInclude(run.events, "ack P")
      assert.isFalse(
        Pipeline.from(left).pipe(
          Pipeline.intervalJoin(Pipeline.from(right), {
            leftKey: "k",
            rightKey: "k",
            leftTime: "t",
            rightTime: "paidAt",
            between: [0, 0]
          })
        ).bounded
      )
    })
  )

  it("types its output: merged fields, or the right record under `as` (nullable in a left join)", () => {
    interface Ledger {
      readonly _: "Ledger"
    }
    interface LedgerError {
      readonly _: "LedgerError"
    }
    const orders = Pipeline.from(Source.fromIterable<Order>("orders", []))
    const paid = Pipeline.from(
      Source.make<Payment, LedgerError, Ledger>({
        name: "payments",
        type: "memory",
        description: "typed only",
        bounded: true,
        batches: () => Stream.empty
      })
    )
    const base = {
      leftKey: "k",
      rightKey: "k",
      leftTime: "t",
      rightTime: "paidAt",
      between: ["-5 minutes", "0 minutes"]
    } as const
    const merged = orders.pipe(Pipeline.intervalJoin(paid, base))
    expectTypeOf(merged).toEqualTypeOf<
      Pipeline.Flow<
        {
          readonly id: number
          readonly k: string | null
          readonly t: number
          readonly pid: number
          readonly paidAt: number
        },
        LedgerError,
        Ledger
      >
    >()
    const nested = orders.pipe(Pipeline.intervalJoin(paid, { ...base, type: "left", as: "payment" }))
    expectTypeOf(nested).toEqualTypeOf<
      Pipeline.Flow<
        { readonly id: number; readonly k: string | null; readonly t: number; readonly payment: Payment | null },
        LedgerError,
        Ledger
      >
    >()
    const inner = orders.pipe(Pipeline.intervalJoin(paid, { ...base, as: "payment" }))
    expectTypeOf(inner).toEqualTypeOf<
      Pipeline.Flow<
        { readonly id: number; readonly k: string | null; readonly t: number; readonly payment: Payment },
        LedgerError,
        Ledger
      >
    >()
    // @ts-expect-error a left join needs `as` (the unmatched left records carry null there)
    orders.pipe(Pipeline.intervalJoin(paid, { ...base, type: "left" }))
    // @ts-expect-error the right records have no field "amount"
    orders.pipe(Pipeline.intervalJoin(paid, { ...base, rightKey: "amount" }))
    // @ts-expect-error the left records have no field "orderedAt"
    orders.pipe(Pipeline.intervalJoin(paid, { ...base, leftTime: "orderedAt" }))
    // @ts-expect-error the left field "k" is a string, not an event time
    orders.pipe(Pipeline.intervalJoin(paid, { ...base, leftTime: "k" }))
    const clashing = Pipeline.from(Source.fromIterable<Order & { readonly paidAt: string }>("orders", []))
    // @ts-expect-error both sides have a field "paidAt": merging would overwrite it
    clashing.pipe(Pipeline.intervalJoin(paid, base))
    clashing.pipe(Pipeline.intervalJoin(paid, { ...base, as: "payment" }))
    // @ts-expect-error the left records already have a field "t"
    orders.pipe(Pipeline.intervalJoin(paid, { ...base, as: "t" }))
  })
})

describe("checkpointed interval join (memory broker and state store)", () => {
  const encoder = new TextEncoder()
  const seed = (cluster: KafkaClient.MemoryCluster, topic: string, records: ReadonlyArray<Order | Payment>) =>
    KafkaClient.appendMemory(
      cluster,
      topic,
      records.map((r) => ({ key: null, value: encoder.encode(JSON.stringify(r)) })),
      0
    )
  const allOrders = [...Array.from({ length: 60 }, (_, i) => o(i, `k${i % 7}`, 1_000 + i * 10)), o(999, "end", 1e9)]
  const allPayments = [...Array.from({ length: 80 }, (_, i) => p(i, `k${i % 5}`, 1_000 + i * 8)), p(999, "end-p", 1e9)]
  /** A per-write sink shared by the runs, so that what each run wrote adds up. */
  const shared = () => {
    const rows: Array<Row> = []
    const sink = Sink.make<Row>({
      name: "out",
      type: "memory",
      description: "rows of every run",
      mode: "append",
      durability: "per-write",
      open: Effect.sync(() => {
        let written = 0
        return {
          write: (records: ReadonlyArray<Row>) =>
            Effect.sync(() => {
              rows.push(...records)
              written += records.length
            }),
          commit: Effect.sync(() => {
            const result = { written }
            written = 0
            return result
          })
        }
      })
    })
    return { rows, sink }
  }
  const pipeline = (sink: Sink.Sink<Row>, group: string) =>
    Pipeline.from(
      Kafka.source<Order>({
        topics: ["orders"],
        groupId: `${group}-o`,
        start: "earliest",
        bounded: false,
        value: { type: "json" }
      })
    ).pipe(
      Pipeline.intervalJoin(
        Pipeline.from(
          Kafka.source<Payment>({
            topics: ["payments"],
            groupId: `${group}-p`,
            start: "earliest",
            bounded: false,
            value: { type: "json" }
          })
        ),
        {
          leftKey: "k",
          rightKey: "k",
          leftTime: "t",
          rightTime: "paidAt",
          between: [-30, 20],
          type: "left",
          as: "payment"
        }
      ),
      Pipeline.to(sink),
      Pipeline.named("paid"),
      Pipeline.withStreaming({ commitInterval: "1 hour" })
    )
  const store = () => {
    const kv = Effect.runSync(Effect.provide(Effect.service(KeyValueStore.KeyValueStore), KeyValueStore.layerMemory))
    return { kv, layer: Layer.succeed(State.StateStore, State.fromKeyValueStore(kv, "memory")) }
  }

  it.effect("a stream stopped and restarted ends with the rows of a stream that never stopped, none twice", () =>
    Effect.gen(function* () {
      const once = KafkaClient.memory({ orders: 1, payments: 1 }, { fetchSize: 7 })
      seed(once, "orders", allOrders)
      seed(once, "payments", allPayments)
      const onceOut = shared()
      yield* Pipeline.run(pipeline(onceOut.sink, "g")).pipe(
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(once), store().layer))
      )
      const expected = bag(onceOut.rows)
      assert.deepStrictEqual(
        expected,
        bag(reference(allOrders.slice(0, -1), allPayments.slice(0, -1), -30, 20, "left"))
      )

      const split = KafkaClient.memory({ orders: 1, payments: 1 }, { fetchSize: 7 })
      const splitOut = shared()
      const states = store()
      const layer = Layer.mergeAll(KafkaClient.layerMemory(split), states.layer)
      seed(split, "orders", allOrders.slice(0, 25))
      seed(split, "payments", allPayments.slice(0, 40))
      const first = yield* Pipeline.run(pipeline(splitOut.sink, "g1")).pipe(Effect.provide(layer))
      assert.strictEqual(first.records.read, 65)
      const saved = JSON.parse((yield* states.kv.get("pipeline:paid"))!) as State.Snapshot
      assert.deepStrictEqual(saved.resume, { "orders/0": "25", "payments/0": "40" })
      assert.includeMembers(Object.keys(saved.stages), ["interval_join"])
      // Orders still open at the stop were kept in the state, not emitted as unmatched.
      assert.isBelow(splitOut.rows.length, expected.length)

      seed(split, "orders", allOrders.slice(25))
      seed(split, "payments", allPayments.slice(40))
      // Other groups, "earliest": the checkpoint's positions still win.
      const second = yield* Pipeline.run(pipeline(splitOut.sink, "g2")).pipe(Effect.provide(layer))
      assert.strictEqual(second.records.read, allOrders.length + allPayments.length - 65)
      assert.isTrue(second.reconciliation.ok)
      assert.deepStrictEqual(bag(splitOut.rows), expected)
    }).pipe(Effect.provideService(StopSignal, Effect.never))
  )

  it.effect("refuses a right flow with a stateful stage of its own when checkpoints would not save its state", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ orders: 1, payments: 1 })
      const windowed = Pipeline.from(
        Kafka.source<Payment>({ topics: ["payments"], groupId: "w", bounded: false, value: { type: "json" } })
      ).pipe(Pipeline.window(Pipeline.Window.tumbling(100, { time: "paidAt" })))
      const error = yield* Pipeline.from(
        Kafka.source<Order>({ topics: ["orders"], groupId: "w", bounded: false, value: { type: "json" } })
      ).pipe(
        Pipeline.intervalJoin(windowed, {
          leftKey: "k",
          rightKey: "k",
          leftTime: "t",
          rightTime: "paidAt",
          between: [0, 10],
          as: "payment"
        }),
        Pipeline.to(shared().sink),
        Pipeline.run,
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(cluster), store().layer)),
        Effect.flip
      )
      assert.strictEqual(
        error.message,
        "interval_join: window keeps state, but checkpoint barriers enter through the left input (kafka) only, so its state would not be saved; move the stateful stage after interval_join or run without a state store"
      )
    }).pipe(Effect.provideService(StopSignal, Effect.never))
  )
})

describe("interval join state saved and restored", () => {
  it("takes back its records, watermarks and matches, and passes over a bounded side read again after a restart", () => {
    const c = config({ type: "left", as: "payment", lowerMs: -10, upperMs: 10 })
    const d = driver(c)
    d.right([p(1, "a", 100), p(2, "b", 100)])
    d.left([o(1, "a", 100), o(2, "c", 105)])
    d.end(RIGHT)
    assert.deepStrictEqual(ids(d.out), ["1-1", "2-null"])
    const saved = JSON.parse(JSON.stringify(d.state.save()))
    const counter = counterOf()
    const restored = new IntervalJoinState(c, counter, { right: "payments", checkpointed: true })
    restored.load(saved)
    assert.strictEqual(restored.size, d.state.size)
    assert.strictEqual(counter.stateEntries, d.state.size)
    assert.strictEqual(restored.horizon(LEFT), d.state.horizon(LEFT))
    assert.strictEqual(restored.horizon(RIGHT), Number.POSITIVE_INFINITY)
    // The payments (a file, say) are read again: already in the state, they are passed over and counted as filtered.
    const again = restored.step(RIGHT, Batch.make([p(1, "a", 100), p(2, "b", 100)]))
    assert.deepStrictEqual(again, [Batch.make([], { ack: Effect.void })])
    assert.strictEqual(counter.filtered, 2)
    // An order of b meets the restored payment; one at 104 is late, behind the restored left watermark (105).
    const more = restored.step(LEFT, Batch.make([o(4, "b", 110), o(5, "a", 104)]))
    assert.deepStrictEqual(ids((more as ReadonlyArray<Batch.Batch<Row>>).flatMap((b) => b.records)), ["4-2"])
    assert.deepStrictEqual(
      (more as ReadonlyArray<Batch.Batch<Row>>).flatMap((b) => b.deadLetters).map((x) => x.reason),
      ["late"]
    )
  })
})
