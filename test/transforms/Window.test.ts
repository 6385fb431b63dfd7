import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import type * as DeadLetter from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import * as Window from "../../src/transforms/Window.ts"
import { bag, batchSizes, canonical, type Run, runSync, split, splitSource } from "./support.ts"

interface Ev {
  readonly seq: number
  readonly user: string | null
  readonly x: number | null
  readonly t: Date
}

const s = (seconds: number) => new Date(seconds * 1000)

const ev = (seq: number, user: string | null, seconds: number, x: number | null = seq): Ev => ({
  seq,
  user,
  x,
  t: s(seconds)
})

interface Spec {
  readonly kind: "tumbling" | "sliding" | "session"
  readonly size: number
  readonly slide: number
  readonly gap: number
  readonly lateness: number
}

const toWindow = (spec: Spec, onLate: Window.OnLate = "reject") => {
  const options = { time: "t" as const, allowedLateness: spec.lateness, onLate }
  return spec.kind === "tumbling"
    ? Window.tumbling(spec.size, options)
    : spec.kind === "sliding"
      ? Window.sliding(spec.size, spec.slide, options)
      : Window.session(spec.gap, { ...options, by: ["user"] })
}

/** The obviously correct windows: sequential lateness, then windows per record (sessions: gaps and islands). */
const reference = (events: ReadonlyArray<Ev>, spec: Spec) => {
  let max = Number.NEGATIVE_INFINITY
  const accepted: Array<Ev> = []
  const late: Array<Ev> = []
  for (const e of events) {
    const t = e.t.getTime()
    if (t < max - spec.lateness) late.push(e)
    else {
      accepted.push(e)
      max = Math.max(max, t)
    }
  }
  const assigned: Array<{ readonly e: Ev; readonly start: number; readonly end: number }> = []
  if (spec.kind === "tumbling")
    for (const e of accepted) {
      const start = Math.floor(e.t.getTime() / spec.size) * spec.size
      assigned.push({ e, start, end: start + spec.size })
    }
  if (spec.kind === "sliding")
    for (const e of accepted) {
      const t = e.t.getTime()
      for (let k = Math.floor((t - spec.size) / spec.slide); k <= Math.floor(t / spec.slide); k++) {
        const start = k * spec.slide
        if (start <= t && t < start + spec.size) assigned.push({ e, start, end: start + spec.size })
      }
    }
  if (spec.kind === "session") {
    const byUser = new Map<string, Array<Ev>>()
    for (const e of accepted) byUser.set(canonical(e.user), [...(byUser.get(canonical(e.user)) ?? []), e])
    for (const list of byUser.values()) {
      const sorted = [...list].sort((a, b) => a.t.getTime() - b.t.getTime())
      let island: Array<Ev> = []
      const close = () => {
        if (island.length === 0) return
        const start = island[0]!.t.getTime()
        const end = island[island.length - 1]!.t.getTime() + spec.gap
        for (const e of island) assigned.push({ e, start, end })
        island = []
      }
      for (const e of sorted) {
        if (island.length > 0 && e.t.getTime() - island[island.length - 1]!.t.getTime() >= spec.gap) close()
        island.push(e)
      }
      close()
    }
  }
  return { assigned, late }
}

const referenceRows = (events: ReadonlyArray<Ev>, spec: Spec) =>
  reference(events, spec).assigned.map(({ e, start, end }) => ({
    ...e,
    windowStart: new Date(start),
    windowEnd: new Date(end)
  }))

const referenceAggregate = (events: ReadonlyArray<Ev>, spec: Spec) => {
  const groups = new Map<string, Array<{ readonly e: Ev; readonly start: number; readonly end: number }>>()
  for (const a of reference(events, spec).assigned) {
    const key = `${canonical(a.e.user)}|${a.start}|${a.end}`
    groups.set(key, [...(groups.get(key) ?? []), a])
  }
  return Array.from(groups.values(), (unordered) => {
    const list = [...unordered].sort((a, b) => a.e.seq - b.e.seq)
    const xs = list.map((a) => a.e.x).filter((x): x is number => x !== null)
    return {
      user: list[0]!.e.user,
      windowStart: new Date(list[0]!.start),
      windowEnd: new Date(list[0]!.end),
      n: list.length,
      total: xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0),
      low: xs.length === 0 ? null : Math.min(...xs),
      firstX: xs[0] ?? null
    }
  })
}

const aggregateFields = { n: Agg.count(), total: Agg.sum("x"), low: Agg.min("x"), firstX: Agg.first("x") }

const windowed = (parts: ReadonlyArray<ReadonlyArray<Ev>>, spec: Spec, events?: Array<string>) =>
  runSync(Pipeline.from(splitSource("events", parts, events)).pipe(Pipeline.window(toWindow(spec))), {
    events: events ?? []
  })

const perWindow = (parts: ReadonlyArray<ReadonlyArray<Ev>>, spec: Spec, events?: Array<string>) =>
  runSync(
    Pipeline.from(splitSource("events", parts, events)).pipe(
      Pipeline.window(toWindow(spec)),
      Pipeline.aggregate({ groupBy: ["user", "windowStart", "windowEnd"], fields: aggregateFields })
    ),
    { events: events ?? [] }
  )

const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({
    kind: fc.constant("tumbling" as const),
    size: fc.constantFrom(5000, 10_000),
    slide: fc.constant(0),
    gap: fc.constant(0),
    lateness: fc.constantFrom(0, 3000, 15_000)
  }),
  fc.record({
    kind: fc.constant("sliding" as const),
    size: fc.constantFrom(10_000, 7000, 3000),
    slide: fc.constantFrom(5000, 3000),
    gap: fc.constant(0),
    lateness: fc.constantFrom(0, 4000)
  }),
  fc.record({
    kind: fc.constant("session" as const),
    size: fc.constant(0),
    slide: fc.constant(0),
    gap: fc.constantFrom(2000, 4000),
    lateness: fc.constantFrom(0, 5000, 20_000)
  })
)

/** Mostly increasing event times with jitter (out of order), in seconds. */
const eventsArb = fc
  .array(
    fc.record({
      user: fc.oneof(
        { arbitrary: fc.constant("hot"), weight: 5 },
        { arbitrary: fc.constantFrom("a", "b"), weight: 2 },
        { arbitrary: fc.constant(null), weight: 1 }
      ),
      step: fc.integer({ min: 0, max: 3 }),
      jitter: fc.integer({ min: -8, max: 2 }),
      x: fc.option(fc.integer({ min: -50, max: 50 }), { nil: null, freq: 5 })
    }),
    { maxLength: 50 }
  )
  .map((raw): Array<Ev> => {
    let clock = 100
    return raw.map((r, seq) => {
      clock += r.step
      return { seq, user: r.user, x: r.x, t: s(Math.max(0, clock + r.jitter)) }
    })
  })

/** Checks that when the ack of input batch `i` ran, every output depending on batches ≤ i had been written. */
const assertAcksAfterOutputs = <A>(
  run: Run<A>,
  parts: ReadonlyArray<ReadonlyArray<Ev>>,
  outputsOf: (e: Ev) => ReadonlyArray<string>,
  keyOf: (row: A) => string
) => {
  let written = 0
  let acked = 0
  const batchOf = new Map<number, number>()
  parts.forEach((p, i) => {
    for (const e of p) batchOf.set(e.seq, i)
  })
  for (const event of run.events) {
    if (event.startsWith("write ")) {
      written += Number(event.slice(6))
      continue
    }
    const i = Number(event.slice(4))
    assert.strictEqual(i, acked++, "acks run in input order")
    const done = new Set(run.records.slice(0, written).map(keyOf))
    for (const p of parts.slice(0, i + 1))
      for (const e of p)
        for (const out of outputsOf(e)) assert.isTrue(done.has(out), `ack ${i} ran before ${out} was written`)
  }
  assert.strictEqual(acked, parts.length, "every input batch is acknowledged at the end")
}

describe("window", () => {
  it("emits a tumbling window when the watermark passes its end, and rejects records behind the watermark", () => {
    const events: Array<string> = []
    const input = [
      [ev(0, "a", 1), ev(1, "a", 12)],
      [ev(2, "a", 8), ev(3, "a", 3)],
      [ev(4, "a", 16), ev(5, "a", 31)]
    ]
    const run = runSync(
      Pipeline.from(splitSource("events", input, events)).pipe(
        Pipeline.window(Window.tumbling("10 seconds", { time: "t", allowedLateness: "5 seconds" })),
        Pipeline.aggregate({ groupBy: ["windowStart", "windowEnd"], fields: { n: Agg.count(), xs: Agg.sum("x") } })
      ),
      { events }
    )
    assert.deepStrictEqual(run.records, [
      { windowStart: s(0), windowEnd: s(10), n: 2, xs: 2 },
      { windowStart: s(10), windowEnd: s(20), n: 2, xs: 5 },
      { windowStart: s(30), windowEnd: s(40), n: 1, xs: 5 }
    ])
    assert.deepStrictEqual(run.deadLetters, [
      {
        stage: "window",
        reason: "late",
        message:
          "t 1970-01-01T00:00:03.000Z is behind the watermark 1970-01-01T00:00:07.000Z (latest event time 1970-01-01T00:00:12.000Z minus allowed lateness 5s)",
        record: input[1]![1]
      }
    ])
    assert.deepStrictEqual(events, ["write 0", "write 2", "ack 0", "ack 1", "write 1", "ack 2"])
    const counts = run.ctx.stages().map((c) => [c.info.name, c.recordsIn, c.consumed, c.rejected, c.recordsOut])
    assert.deepStrictEqual(counts.slice(1), [
      ["window", 6, 5, 1, 5],
      ["aggregate", 5, 5, 0, 3]
    ])
  })

  it("drops late records when told to, counting them as filtered", () => {
    const run = runSync(
      Pipeline.from(Source.fromIterable("events", [ev(0, "a", 10), ev(1, "a", 2), ev(2, "a", 11)])).pipe(
        Pipeline.window(Window.tumbling("5 seconds", { time: "t", onLate: "drop" }))
      )
    )
    assert.deepStrictEqual(
      run.records.map((r) => [r.seq, r.windowStart.getTime()]),
      [
        [0, 10_000],
        [2, 10_000]
      ]
    )
    assert.deepStrictEqual(run.deadLetters, [])
    const counter = run.ctx.stages().find((c) => c.info.name === "window")!
    assert.strictEqual(counter.filtered, 1)
    assert.strictEqual(counter.recordsIn, 3)
  })

  it("handles out-of-order input within the allowed lateness, and flushes open windows at the end", () => {
    const input = [ev(0, "a", 9), ev(1, "a", 4), ev(2, "a", 14), ev(3, "a", 6), ev(4, "a", 1)]
    const run = runSync(
      Pipeline.from(splitSource("events", [input])).pipe(
        Pipeline.window(Window.tumbling("5 seconds", { time: "t", allowedLateness: "8 seconds" }))
      )
    )
    assert.deepStrictEqual(
      run.records.map((r) => [r.seq, r.windowStart.getTime() / 1000, r.windowEnd.getTime() / 1000]),
      [
        [1, 0, 5],
        [0, 5, 10],
        [3, 5, 10],
        [2, 10, 15]
      ]
    )
    assert.deepStrictEqual(
      run.deadLetters.map((d) => [d.reason, (d.record as Ev).seq]),
      [["late", 4]]
    )
  })

  it("puts a record in every sliding window that covers it", () => {
    const run = runSync(
      Pipeline.from(Source.fromIterable("events", [ev(0, "a", 7), ev(1, "a", 12)])).pipe(
        Pipeline.window(Window.sliding("10 seconds", "5 seconds", { time: "t" }))
      )
    )
    assert.deepStrictEqual(
      run.records.map((r) => [r.seq, r.windowStart.getTime() / 1000]),
      [
        [0, 0],
        [0, 5],
        [1, 5],
        [1, 10]
      ]
    )
  })

  it("merges two sessions when a record bridges them", () => {
    const events: Array<string> = []
    const run = runSync(
      Pipeline.from(
        splitSource(
          "events",
          [[ev(0, "a", 0), ev(1, "b", 1)], [ev(2, "a", 10)], [ev(3, "a", 5)], [ev(4, "b", 40)]],
          events
        )
      ).pipe(
        Pipeline.window(Window.session("6 seconds", { time: "t", by: ["user"], allowedLateness: "20 seconds" })),
        Pipeline.aggregate({
          groupBy: ["user", "windowStart", "windowEnd"],
          fields: { n: Agg.count(), xs: Agg.sum("x") }
        })
      ),
      { events }
    )
    assert.deepStrictEqual(run.records, [
      { user: "b", windowStart: s(1), windowEnd: s(7), n: 1, xs: 1 },
      { user: "a", windowStart: s(0), windowEnd: s(16), n: 3, xs: 5 },
      { user: "b", windowStart: s(40), windowEnd: s(46), n: 1, xs: 4 }
    ])
    assert.deepStrictEqual(events, ["write 2", "ack 0", "ack 1", "ack 2", "write 1", "ack 3"])
  })

  it("rejects records without a usable event time", () => {
    const raw: ReadonlyArray<Readonly<Record<string, unknown>>> = [{ t: s(1) }, { t: "2026-01-01" }, { t: null }]
    const run = runSync(
      Pipeline.from(Source.fromIterable("raw", raw)).pipe(Window.dynamic(Window.tumbling("1 minute", { time: "t" })))
    )
    assert.strictEqual(run.records.length, 1)
    assert.deepStrictEqual(
      run.deadLetters.map((d: DeadLetter.DeadLetter) => [d.reason, d.message]),
      [
        ["invalid-event-time", 't: expected a timestamp (a Date or epoch milliseconds), got "2026-01-01"'],
        ["invalid-event-time", "t: expected a timestamp (a Date or epoch milliseconds), got null"]
      ]
    )
  })

  it.effect("refuses a window spec that cannot work before reading anything", () =>
    Effect.gen(function* () {
      const error = yield* Pipeline.from(Source.fromIterable<Ev>("events", [ev(0, "a", 1)])).pipe(
        Pipeline.window(Window.sliding("1 hour", "0 seconds", { time: "t" })),
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "BuildError")
      assert.strictEqual(error.message, "window: the window's slide must be a positive duration, got 0 ms")
    })
  )

  it("keeps state for open windows only: a long input leaves just the last window to flush", () => {
    const input = Array.from({ length: 6000 }, (_, i) => ev(i, `u${i % 50}`, i))
    const run = perWindow(split(input, [100]), { kind: "tumbling", size: 60_000, slide: 0, gap: 0, lateness: 0 })
    assert.strictEqual(run.records.length, 100 * 50)
    assert.isAtLeast(run.batches.filter((b) => b.records.length > 0).length, 50)
    const last = run.batches[run.batches.length - 1]!
    assert.strictEqual(last.records.length, 50)
    assert.isTrue(last.records.every((r) => r.windowStart.getTime() === 5940_000))
  })

  it.effect("emits windows of an unbounded input as the watermark advances", () =>
    Effect.gen(function* () {
      const out = Sink.collect<{ readonly user: string | null; readonly windowStart: Date; readonly n: number }>("out")
      const report = yield* Pipeline.from(
        splitSource("stream", [[ev(0, "a", 1), ev(1, "b", 2)], [ev(2, "a", 11)], [ev(3, "a", 25)]], undefined, {
          bounded: false
        })
      ).pipe(
        Pipeline.window(Window.tumbling("10 seconds", { time: "t" })),
        Pipeline.aggregate({ groupBy: ["user", "windowStart"], fields: { n: Agg.count() } }),
        Pipeline.to(out),
        Pipeline.run
      )
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual(
        out.collected().records.map((r) => [r.user, r.windowStart.getTime() / 1000, r.n]),
        [
          ["a", 0, 1],
          ["b", 0, 1],
          ["a", 10, 1],
          ["a", 20, 1]
        ]
      )
    })
  )

  it("matches the reference model for any window, lateness, batching and out-of-order input", () => {
    fc.assert(
      fc.property(eventsArb, specArb, batchSizes, (input, spec, sizes) => {
        const one = windowed([input], spec)
        const parts = split(input, sizes)
        const events: Array<string> = []
        const many = windowed(parts, spec, events)
        assert.deepStrictEqual(many.records.map(canonical), one.records.map(canonical))
        assert.deepStrictEqual(bag(one.records), bag(referenceRows(input, spec)))
        assert.deepStrictEqual(bag(many.deadLetters.map((d) => d.record)), bag(reference(input, spec).late))
        const windowsOf = new Map<number, Array<string>>()
        for (const a of reference(input, spec).assigned)
          windowsOf.set(a.e.seq, [...(windowsOf.get(a.e.seq) ?? []), `${a.e.seq}@${a.start}`])
        assertAcksAfterOutputs(
          many,
          parts,
          (e) => windowsOf.get(e.seq) ?? [],
          (row) => `${row.seq}@${row.windowStart.getTime()}`
        )
      }),
      { numRuns: 300 }
    )
  })

  it("aggregates per window like the reference, for any batching, and like window then aggregate unfused", () => {
    fc.assert(
      fc.property(eventsArb, specArb, batchSizes, (input, spec, sizes) => {
        const one = perWindow([input], spec)
        const parts = split(input, sizes)
        const events: Array<string> = []
        const many = perWindow(parts, spec, events)
        assert.deepStrictEqual(many.records.map(canonical), one.records.map(canonical))
        assert.deepStrictEqual(bag(one.records), bag(referenceAggregate(input, spec)))
        const unfused = runSync(
          Pipeline.from(splitSource("events", parts)).pipe(
            Pipeline.window(toWindow(spec)),
            Pipeline.filter(() => true),
            Pipeline.aggregate({ groupBy: ["user", "windowStart", "windowEnd"], fields: aggregateFields })
          )
        )
        assert.deepStrictEqual(bag(unfused.records), bag(one.records))
        const rowsOf = new Map<number, Array<string>>()
        for (const a of reference(input, spec).assigned)
          rowsOf.set(a.e.seq, [...(rowsOf.get(a.e.seq) ?? []), `${canonical(a.e.user)}@${a.start}`])
        assertAcksAfterOutputs(
          many,
          parts,
          (e) => rowsOf.get(e.seq) ?? [],
          (row) => `${canonical(row.user)}@${row.windowStart.getTime()}`
        )
      }),
      { numRuns: 300 }
    )
  })

  it("types windowed records and their aggregates, and needs a timestamp field", () => {
    const flow = Pipeline.from(Source.fromIterable<Ev>("events", []))
    const windowedFlow = flow.pipe(Pipeline.window(Window.tumbling("1 hour", { time: "t" })))
    expectTypeOf(windowedFlow).toExtend<
      Pipeline.Flow<{
        readonly seq: number
        readonly user: string | null
        readonly x: number | null
        readonly t: Date
        readonly windowStart: Date
        readonly windowEnd: Date
      }>
    >()
    const hourly = windowedFlow.pipe(
      Pipeline.aggregate({ groupBy: ["user", "windowStart", "windowEnd"], fields: { total: Agg.sum("x") } })
    )
    expectTypeOf(hourly).toEqualTypeOf<
      Pipeline.Flow<{
        readonly user: string | null
        readonly windowStart: Date
        readonly windowEnd: Date
        readonly total: number | null
      }>
    >()
    // @ts-expect-error: `user` is not a timestamp
    flow.pipe(Pipeline.window(Window.tumbling("1 hour", { time: "user" })))
    // @ts-expect-error: there is no field `occurredAt`
    flow.pipe(Pipeline.window(Window.sliding("1 hour", "5 minutes", { time: "occurredAt" })))
    // @ts-expect-error: sessions by a field that does not exist
    flow.pipe(Pipeline.window(Window.session("30 minutes", { time: "t", by: ["tenant"] })))
  })
})
