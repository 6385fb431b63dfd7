import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Transforms from "../../src/config/Transforms.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as JsonValue from "../../src/formats/JsonValue.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import * as Window from "../../src/transforms/Window.ts"

const base = {
  name: "t",
  source: { type: "file", path: "in", schema: "txn" },
  sink: { type: "file", path: "out", format: { type: "jsonl" } }
}

const Txn = Schema.Struct({
  userId: Schema.String,
  amount: Schema.String,
  eventTime: Schema.String,
  status: Schema.String
})

const lookup: Build.SchemaLookup = (name, path) =>
  name === "txn"
    ? Effect.succeed(RecordSchema.fromSchema(Txn, "txn") as RecordSchema.RecordSchema<Transforms.AnyRecord>)
    : Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))

const decodeIssues = (transforms: ReadonlyArray<unknown>) =>
  Load.decode("p.json", { ...base, transforms }).pipe(
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const buildIssues = (transforms: ReadonlyArray<unknown>) =>
  Load.decode("p.json", { ...base, transforms }).pipe(
    Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup })),
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const context: Transforms.BuildContext = {
  file: "p.json",
  path: "$.transforms[0]",
  fields: ["userId", "amount", "eventTime", "status"]
}

/** Builds one join transform with a schema lookup, as `Build.build` does. */
const joinIssues = (join: Record<string, unknown>) =>
  Schema.decodeUnknownEffect(Transforms.TransformConfig)({ type: "join", ...join }).pipe(
    Effect.orDie,
    Effect.flatMap((config) => Transforms.build(config, { ...context, schema: lookup })),
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const cast = { type: "cast", fields: { amount: "decimal", eventTime: "timestamp" } }

const lines = (rows: ReadonlyArray<unknown>) => rows.map((r) => JSON.stringify(r)).join("\n")

const transactions = [
  { userId: "u1", amount: "10.10", eventTime: "2026-11-01T00:10:00Z", status: "settled" },
  { userId: "u2", amount: "5.00", eventTime: "2026-11-01T00:20:00Z", status: "settled" },
  { userId: "u1", amount: "0.20", eventTime: "2026-11-01T00:50:00Z", status: "pending" },
  { userId: "u1", amount: "1.01", eventTime: "2026-11-01T01:05:00Z", status: "settled" },
  { userId: "u3", amount: "7.00", eventTime: "2026-11-01T01:15:00Z", status: "settled" },
  { userId: "u2", amount: "2.50", eventTime: "2026-11-01T00:59:00Z", status: "settled" },
  { userId: "u1", amount: "3.00", eventTime: "2026-11-01T02:30:00Z", status: "settled" }
]
const users = [
  { id: "u1", name: "Ada" },
  { id: "u2", name: "Bob" }
]

describe("aggregate, window and join in configs", () => {
  it.effect("rejects incomplete windows, aggregates and joins with the JSON path of the problem", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* decodeIssues([{ type: "window", kind: "tumbling", size: "1 hour" }]), [
        '$.transforms[0].time: An event-time window needs "time", the field holding each record\'s event time (or "watermark": "processing-time")'
      ])
      assert.deepStrictEqual(
        yield* decodeIssues([
          { type: "window", kind: "tumbling", size: "1 hour", watermark: "processing-time", time: "eventTime" }
        ]),
        [
          '$.transforms[0].time: "time" does not apply to a processing-time window: records\' times are the clock, so none is late'
        ]
      )
      assert.deepStrictEqual(
        yield* decodeIssues([
          { type: "window", kind: "tumbling", size: "1 hour", watermark: "processing-time", idle_timeout: "1 minute" }
        ]),
        [
          '$.transforms[0].idle_timeout: "idle_timeout" does not apply to a processing-time window: records\' times are the clock, so none is late'
        ]
      )
      assert.deepStrictEqual(
        yield* decodeIssues([
          { type: "window", kind: "tumbling", size: "1 hour", time: "t", idle_timeout: "0 seconds" }
        ]),
        ['$.transforms[0].idle_timeout: Expected a duration above zero, got "0 seconds"']
      )
      assert.deepStrictEqual(
        yield* decodeIssues([{ type: "window", kind: "tumbling", size: "1 hour", time: "t", watermark: "ingest" }]),
        ['$.transforms[0].watermark: Expected "event-time" | "processing-time", got "ingest"']
      )
      assert.deepStrictEqual(yield* decodeIssues([{ type: "window", kind: "sliding", size: "1 hour", time: "t" }]), [
        '$.transforms[0].slide: A sliding window needs "slide", e.g. "slide": "10 minutes"'
      ])
      assert.deepStrictEqual(
        yield* decodeIssues([{ type: "window", kind: "session", gap: "0 seconds", time: "t", size: "1 hour" }]),
        ['$.transforms[0].gap: "gap" must be a positive duration']
      )
      assert.deepStrictEqual(yield* decodeIssues([{ type: "window", kind: "tumbling", size: "an hour", time: "t" }]), [
        '$.transforms[0].size: Expected a duration like "5 seconds", "500 millis" or "2 minutes", got "an hour"'
      ])
      assert.deepStrictEqual(
        yield* decodeIssues([{ type: "aggregate", fields: { p: { fn: "percentile", field: "amount" } } }]),
        ['$.transforms[0].fields.p.quantile: "percentile" needs a "quantile" between 0 and 1, e.g. "quantile": 0.95']
      )
      assert.deepStrictEqual(yield* decodeIssues([{ type: "aggregate", fields: { total: { fn: "sum" } } }]), [
        '$.transforms[0].fields.total.field: "sum" needs the field it aggregates, e.g. "field": "amount"'
      ])
      assert.deepStrictEqual(
        yield* decodeIssues([{ type: "aggregate", group_by: ["n"], fields: { n: { fn: "count" } } }]),
        ['$.transforms[0].fields.n: "n" is also a grouping field; give the aggregate another name']
      )
      assert.deepStrictEqual(
        yield* decodeIssues([
          { type: "join", source: { type: "file", path: "users" }, on: "userId", kind: "full", refresh: "1 minute" }
        ]),
        [
          '$.transforms[0].refresh: "refresh" works with inner and left joins only: a full join emits the unmatched rows of one table at the end'
        ]
      )
    })
  )

  it.effect("checks fields against the input schema before running", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* buildIssues([
          { type: "aggregate", group_by: ["userId"], fields: { total: { fn: "sum", field: "amout" } } }
        ]),
        [
          '$.transforms[0].fields.total.field: Unknown field "amout"; records here have: userId, amount, eventTime, status'
        ]
      )
      assert.deepStrictEqual(
        yield* buildIssues([{ type: "aggregate", group_by: ["user"], fields: { n: { fn: "count" } } }]),
        ['$.transforms[0].group_by: Unknown field "user"; records here have: userId, amount, eventTime, status']
      )
      assert.deepStrictEqual(
        yield* buildIssues([{ type: "window", kind: "tumbling", size: "1 hour", time: "createdAt" }]),
        ['$.transforms[0].time: Unknown field "createdAt"; records here have: userId, amount, eventTime, status']
      )
      assert.deepStrictEqual(
        yield* buildIssues([
          { type: "window", kind: "tumbling", size: "1 hour", time: "eventTime" },
          { type: "select", fields: ["userId", "windowStart", "nope"] }
        ]),
        [
          '$.transforms[1].fields: Unknown field "nope"; records here have: userId, amount, eventTime, status, windowStart, windowEnd'
        ]
      )
      const [afterAggregate] = yield* buildIssues([
        { type: "aggregate", group_by: ["userId"], fields: { n: { fn: "count" } } },
        { type: "filter", condition: "amount > 1" }
      ])
      assert.match(afterAggregate!, /^\$\.transforms\[1\]\.condition: .*amount/)
      assert.deepStrictEqual(
        yield* joinIssues({ source: { type: "file", path: "users", schema: "txn" }, on: "userId" }),
        [
          '$.transforms[0]: Both sides have fields "amount", "eventTime", "status": leave them out of the joined side ("select") or rename them ("rename": {"amount": "..."})'
        ]
      )
      assert.deepStrictEqual(
        yield* joinIssues({ source: { type: "file", path: "users", schema: "txn" }, on: { userId: "id" } }),
        ['$.transforms[0].on: Unknown field "id"; records here have: userId, amount, eventTime, status']
      )
      assert.deepStrictEqual(
        yield* joinIssues({
          source: { type: "file", path: "users", schema: "txn" },
          on: "userId",
          select: ["status"],
          rename: { status: "userStatus", userId: "uid" }
        }),
        [
          '$.transforms[0].rename.userId: "userId" is a join key of the joined side; it is not repeated in the output, so it cannot be renamed'
        ]
      )
      const built = yield* Schema.decodeUnknownEffect(Transforms.TransformConfig)({
        type: "join",
        source: { type: "file", path: "users", schema: "txn" },
        on: "userId",
        kind: "full",
        select: ["status"],
        rename: { status: "userStatus" }
      }).pipe(Effect.flatMap((config) => Transforms.build(config, { ...context, schema: lookup })))
      assert.deepStrictEqual(built.fields, ["userId", "amount", "eventTime", "status", "userStatus"])
    })
  )

  it.effect("builds processing-time windows without a time field, and event-time windows with an idle timeout", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", {
        ...base,
        transforms: [
          { type: "window", name: "by_clock", kind: "tumbling", size: "1 minute", watermark: "processing-time" },
          {
            type: "window",
            name: "by_event",
            kind: "tumbling",
            size: "1 hour",
            time: "eventTime",
            idle_timeout: "2 minutes"
          }
        ]
      })
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      assert.deepStrictEqual(Pipeline.describe(pipeline).slice(2, 4), [
        "  transform    by_clock: window: tumbling 1m windows on processing time",
        "  transform    by_event: window: tumbling 1h windows on eventTime (late records rejected, idle timeout 2m)"
      ])
    })
  )

  it.effect("builds and runs the same join → window → aggregate pipeline the typed API describes", () =>
    Effect.gen(function* () {
      const good = yield* Load.decode("p.json", {
        ...base,
        transforms: [
          cast,
          { type: "filter", condition: 'status == "settled"' },
          { type: "join", source: { type: "file", path: "users", name: "users" }, on: { userId: "id" }, kind: "left" },
          { type: "window", kind: "tumbling", size: "1 hour", time: "eventTime", allowed_lateness: "10 minutes" },
          {
            type: "aggregate",
            group_by: ["userId", "name", "windowStart", "windowEnd"],
            fields: { total: { fn: "sum", field: "amount" }, n: { fn: "count" } }
          }
        ],
        quality: { drop_rejected: ["window"] }
      })
      const pipeline = yield* Build.build(good, { file: "p.json", schema: lookup })
      assert.deepStrictEqual(Pipeline.describe(pipeline).slice(2, 7), [
        "  transform    cast: cast amount: decimal, eventTime: timestamp",
        '  transform    filter: filter status == "settled"',
        "  transform    join: left join with users on userId = users.id",
        "  transform    window: window: tumbling 1h windows on eventTime (lateness 10m, late records rejected)",
        "  transform    aggregate: aggregate sum(amount) as total, count() as n by userId, name, windowStart, windowEnd per window"
      ])
      const files = FileStore.memory({ "in/a.jsonl": lines(transactions), "users/u.jsonl": lines(users) })
      const report = yield* Pipeline.run(pipeline).pipe(Effect.provide(FileStore.layerMemory(files)))
      assert.isTrue(report.reconciliation.ok)
      assert.strictEqual(report.records.rejected, 1)
      assert.strictEqual(report.records.dropped, 1)
      const written = FileStore.contents(files)
      const part = Array.from(written.keys()).find((k) => k.startsWith("out/part-"))!
      const fromConfig = new TextDecoder()
        .decode(written.get(part))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>)

      const typedOut = Sink.collect<Record<string, unknown>>("out")
      const typedUsers = Source.fromIterable("users", users)
      yield* Pipeline.from(
        Source.fromIterable(
          "txns",
          transactions.map((t) => ({
            ...t,
            amount: BigDecimal.fromStringUnsafe(t.amount),
            eventTime: new Date(t.eventTime)
          }))
        )
      ).pipe(
        Pipeline.filter((t) => t.status === "settled"),
        Pipeline.join(typedUsers, { on: { userId: "id" }, type: "left" }),
        Pipeline.window(Window.tumbling("1 hour", { time: "eventTime", allowedLateness: "10 minutes" })),
        Pipeline.aggregate({
          groupBy: ["userId", "name", "windowStart", "windowEnd"],
          fields: { total: Agg.sum("amount"), n: Agg.count() }
        }),
        Pipeline.to(typedOut),
        Pipeline.withQuality({ dropRejected: ["window"] }),
        Pipeline.run
      )
      const typed = typedOut.collected().records.map((r) => ({
        ...r,
        total: JsonValue.decimalText(r.total as BigDecimal.BigDecimal),
        windowStart: (r.windowStart as Date).toISOString(),
        windowEnd: (r.windowEnd as Date).toISOString()
      }))
      assert.deepStrictEqual(fromConfig, typed)
      assert.deepStrictEqual(fromConfig, [
        {
          userId: "u1",
          name: "Ada",
          windowStart: "2026-11-01T00:00:00.000Z",
          windowEnd: "2026-11-01T01:00:00.000Z",
          total: "10.10",
          n: 1
        },
        {
          userId: "u2",
          name: "Bob",
          windowStart: "2026-11-01T00:00:00.000Z",
          windowEnd: "2026-11-01T01:00:00.000Z",
          total: "5.00",
          n: 1
        },
        {
          userId: "u1",
          name: "Ada",
          windowStart: "2026-11-01T01:00:00.000Z",
          windowEnd: "2026-11-01T02:00:00.000Z",
          total: "1.01",
          n: 1
        },
        {
          userId: "u3",
          name: null,
          windowStart: "2026-11-01T01:00:00.000Z",
          windowEnd: "2026-11-01T02:00:00.000Z",
          total: "7.00",
          n: 1
        },
        {
          userId: "u1",
          name: "Ada",
          windowStart: "2026-11-01T02:00:00.000Z",
          windowEnd: "2026-11-01T03:00:00.000Z",
          total: "3.00",
          n: 1
        }
      ])
    })
  )
})
