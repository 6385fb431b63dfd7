import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Replay from "../../src/config/Replay.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { lookup } from "../support/ReplayFixture.ts"

const input = [
  JSON.stringify({ id: "a", amount: 10, currency: "EUR" }),
  JSON.stringify({ id: "b", amount: 60, currency: "EUR" }),
  '{"id": "c", "amount": 1',
  JSON.stringify({ id: "d", amount: "x", currency: "EUR" }),
  JSON.stringify({ id: "e", amount: 5, currency: "eur" }),
  JSON.stringify({ id: "f", amount: 70, currency: "usd" }),
  JSON.stringify({ id: "g", amount: 80, currency: "CHF" })
].join("\n")

/** Doubles the amount, then checks it: a replay that applied the derive again would write 4 × the amount. */
const configWith = (maxAmount: number, extra?: Record<string, unknown>) => ({
  name: "payments",
  source: { type: "file", path: "in", format: { type: "jsonl" }, schema: "txn" },
  transforms: [
    { type: "derive", fields: { amount: "amount * 2.0" } },
    {
      type: "validate",
      rules: [
        { rule: "range", field: "amount", max: maxAmount },
        { rule: "pattern", field: "currency", regex: "^[A-Z]{3}$" }
      ]
    }
  ],
  sink: { type: "file", path: "out", format: { type: "jsonl" } },
  dead_letters: { type: "file", path: "dead", format: { type: "jsonl" } },
  ...extra
})

interface Letter {
  readonly stage: string
  readonly reason: string
  readonly message: string
  readonly record: unknown
  readonly origin?: string
}

const linesUnder = (files: FileStore.MemoryFiles, dir: string): ReadonlyArray<unknown> =>
  Array.from(FileStore.contents(files).entries())
    .filter(([path]) => path.startsWith(`${dir}/`) && path.endsWith(".jsonl"))
    .flatMap(([, bytes]) => new TextDecoder().decode(bytes).trim().split("\n"))
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as unknown)

const byId = (letters: ReadonlyArray<Letter>) =>
  new Map(
    letters.map((l) => {
      const record = l.record as { readonly id?: string } | string
      return [typeof record === "string" ? "raw" : record.id!, l]
    })
  )

const firstRun = (files: FileStore.MemoryFiles) =>
  Effect.gen(function* () {
    const config = yield* Load.decode("p.json", configWith(100))
    const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
    return yield* Pipeline.run(pipeline).pipe(Effect.provide(FileStore.layerMemory(files)))
  })

const replay = (
  files: FileStore.MemoryFiles,
  raw: unknown,
  options: { readonly from: string; readonly deadLetters?: string; readonly force?: boolean }
) =>
  Effect.gen(function* () {
    const config = yield* Load.decode("p.json", raw)
    const built = yield* Replay.build(config, { file: "p.json", schema: lookup, ...options })
    return yield* Pipeline.run(built.pipeline).pipe(Effect.provide(FileStore.layerMemory(files)))
  })

const refusal = (raw: unknown, options: { readonly from: string; readonly deadLetters?: string }) =>
  Effect.gen(function* () {
    const config = yield* Load.decode("p.json", raw)
    const error = yield* Effect.flip(Replay.build(config, { file: "p.json", schema: lookup, ...options }))
    return error.issues.map((i) => `${i.path}: ${i.message}`).join("\n")
  })

describe("replay of dead letters", () => {
  it.effect(
    "re-enters each record where it was rejected, writes the ones that now pass, keeps the rest with new reasons and original origins",
    () =>
      Effect.gen(function* () {
        const files = FileStore.memory({ "in/a.jsonl": input })
        const first = yield* firstRun(files)
        assert.deepStrictEqual([first.records.read, first.records.written, first.records.deadLettered], [7, 1, 6])
        const before = byId(linesUnder(files, "dead") as ReadonlyArray<Letter>)
        assert.strictEqual(before.get("raw")?.reason, "decode-error")
        assert.strictEqual(before.get("raw")?.origin, "in/a.jsonl:3")
        assert.strictEqual(before.get("d")?.reason, "invalid-record")
        assert.strictEqual(before.get("b")?.reason, "rule:amount-range")
        assert.deepStrictEqual(before.get("b")?.record, { id: "b", amount: 120, currency: "EUR" })
        assert.strictEqual(before.get("f")?.reason, "rule:amount-range")

        // The fix: amounts up to 1000 are fine. Currencies in lower case still are not.
        const report = yield* replay(files, configWith(1000), { from: "dead", deadLetters: "dead-2", force: true })
        assert.strictEqual(report.status, "succeeded")
        assert.isTrue(report.reconciliation.ok)
        assert.strictEqual(report.records.read, 6)
        assert.strictEqual(
          report.records.read,
          report.records.written + report.records.deadLettered + report.records.filtered
        )
        assert.strictEqual(report.records.written, 2)
        assert.strictEqual(report.records.deadLettered, 4)
        const derive = report.stages.find((s) => s.name === "derive")!
        assert.deepStrictEqual([derive.recordsIn, derive.recordsOut], [4, 4])

        const written = linesUnder(files, "out") as ReadonlyArray<{ readonly id: string; readonly amount: number }>
        assert.deepStrictEqual(written.map((r) => [r.id, r.amount]).sort(), [
          ["a", 20],
          ["b", 120],
          ["g", 160]
        ])
        const after = byId(linesUnder(files, "dead-2") as ReadonlyArray<Letter>)
        assert.deepStrictEqual(Array.from(after.keys()).sort(), ["d", "e", "f", "raw"])
        assert.strictEqual(after.get("raw")?.reason, "decode-error")
        assert.strictEqual(after.get("raw")?.origin, "in/a.jsonl:3")
        assert.strictEqual(after.get("d")?.reason, "invalid-record")
        assert.strictEqual(after.get("d")?.origin, before.get("d")?.origin)
        assert.match(after.get("d")!.origin!, /^in\/a\.jsonl#4$/)
        // f failed on its amount; with the fix it fails on its currency, and its amount was not doubled again.
        assert.strictEqual(after.get("f")?.reason, "rule:currency-pattern")
        assert.deepStrictEqual(after.get("f")?.record, { id: "f", amount: 140, currency: "usd" })
        assert.strictEqual(after.get("e")?.reason, "rule:currency-pattern")
        assert.strictEqual(after.get("e")?.stage, "validate")
        // The set replayed is left as it was.
        assert.strictEqual(linesUnder(files, "dead").length, 6)
      })
  )

  it.effect("a fixed source schema lets records the source rejected through, decoded as the source decodes", () =>
    Effect.gen(function* () {
      const files = FileStore.memory({ "in/a.jsonl": input })
      yield* firstRun(files)
      const fixedLine = FileStore.memory({
        "dead/part-1.jsonl": `${JSON.stringify({
          stage: "source",
          reason: "decode-error",
          message: "cut short",
          record: JSON.stringify({ id: "c", amount: 1, currency: "EUR" }),
          origin: "in/a.jsonl:3"
        })}\n`
      })
      const report = yield* replay(fixedLine, configWith(1000), { from: "dead", deadLetters: "dead-2", force: true })
      assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [1, 1, 0])
      const written = linesUnder(fixedLine, "out")
      // Read from the source, the record goes through every transform: its amount is doubled once.
      assert.deepStrictEqual(written, [{ id: "c", amount: 2, currency: "EUR" }])
    })
  )

  it.effect(
    "bytes that were not UTF-8, lines nested too deep and rows that are no dead letters stay in the new set, saying why",
    () =>
      Effect.gen(function* () {
        const files = FileStore.memory({
          "dead/part-1.jsonl": [
            JSON.stringify({
              stage: "source",
              reason: "decode-error",
              message: "in/a.jsonl line 9: not valid UTF-8; the record is kept as its raw bytes",
              record: "/w==",
              origin: "in/a.jsonl:9"
            }),
            JSON.stringify({ id: "z", note: "not a dead letter" }),
            JSON.stringify({
              stage: "source",
              reason: "decode-error",
              message: "in/a.jsonl line 10: nested too deep",
              record: `{"id": "deep", "x": ${"[".repeat(150)}${"]".repeat(150)}}`,
              origin: "in/a.jsonl:10"
            })
          ].join("\n")
        })
        const report = yield* replay(files, configWith(1000), { from: "dead", deadLetters: "dead-2", force: true })
        assert.isTrue(report.reconciliation.ok)
        assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [3, 0, 3])
        const after = linesUnder(files, "dead-2") as ReadonlyArray<Letter>
        const deep = after.find((l) => l.origin === "in/a.jsonl:10")!
        assert.strictEqual(deep.reason, "decode-error")
        assert.include(deep.message, "nests deeper than 100 levels")
        const bytes = after.find((l) => l.origin === "in/a.jsonl:9")!
        assert.strictEqual(bytes.origin, "in/a.jsonl:9")
        assert.include(bytes.message, "not valid UTF-8 text")
        const row = after.find((l) => l.reason === "replay:not-a-dead-letter")!
        assert.strictEqual(row.stage, "replay")
        assert.deepStrictEqual(row.record, { id: "z", note: "not a dead letter" })
      })
  )

  it.effect("a dead letter of a stage the config no longer has is kept as still failing, saying so", () =>
    Effect.gen(function* () {
      const files = FileStore.memory({ "in/a.jsonl": input })
      yield* firstRun(files)
      const renamed = configWith(1000)
      const transforms = [renamed.transforms[0], { ...renamed.transforms[1], name: "checks" }]
      const report = yield* replay(
        files,
        { ...renamed, transforms },
        {
          from: "dead",
          deadLetters: "dead-2",
          force: true
        }
      )
      assert.isTrue(report.reconciliation.ok)
      const after = linesUnder(files, "dead-2") as ReadonlyArray<Letter>
      const unknown = after.filter((l) => l.reason === "replay:unknown-stage")
      assert.strictEqual(unknown.length, 4)
      assert.strictEqual(unknown[0]!.stage, "replay")
      assert.include(
        unknown[0]!.message,
        '"validate" is not a stage of this pipeline (its stages: source, derive, checks)'
      )
      assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [6, 0, 6])
    })
  )

  it.effect("records pass a lookup join before their entry counted as its input, and the counts reconcile", () =>
    Effect.gen(function* () {
      const withJoin = (maxAmount: number) => {
        const base = configWith(maxAmount)
        return {
          ...base,
          transforms: [
            base.transforms[0],
            {
              type: "join",
              source: { type: "file", path: "rates", format: { type: "jsonl" } },
              on: "currency",
              kind: "left"
            },
            base.transforms[1]
          ]
        }
      }
      const files = FileStore.memory({
        "in/a.jsonl": input,
        "rates/r.jsonl": [
          { currency: "EUR", rate: 1 },
          { currency: "CHF", rate: 2 }
        ]
          .map((r) => JSON.stringify(r))
          .join("\n")
      })
      const config = yield* Load.decode("p.json", withJoin(100))
      yield* Pipeline.run(yield* Build.build(config, { file: "p.json", schema: lookup })).pipe(
        Effect.provide(FileStore.layerMemory(files))
      )
      const report = yield* replay(files, withJoin(1000), { from: "dead", deadLetters: "dead-2", force: true })
      assert.isTrue(report.reconciliation.ok, JSON.stringify(report.reconciliation.checks.filter((c) => !c.ok)))
      const join = report.stages.find((s) => s.name === "join")!
      assert.strictEqual(join.recordsIn, join.consumed)
      const written = linesUnder(files, "out") as ReadonlyArray<Record<string, unknown>>
      assert.deepStrictEqual(
        written.filter((r) => r.id === "b" || r.id === "g"),
        [
          { id: "b", amount: 120, currency: "EUR", rate: 1 },
          { id: "g", amount: 160, currency: "CHF", rate: 2 }
        ]
      )
    })
  )

  it.effect("refuses an append or overwrite sink without force, the set it reads as the new set, and aggregates", () =>
    Effect.gen(function* () {
      assert.include(
        yield* refusal(configWith(1000), { from: "dead", deadLetters: "dead-2" }),
        '$.sink.mode: Replay refused: the sink "sink" appends without keys: a record replayed twice, or one that was already written, would be written twice. Replay into an upsert sink (idempotent by its keys), or pass --force to append anyway'
      )
      const overwrite = configWith(1000)
      assert.include(
        yield* refusal(
          { ...overwrite, sink: { ...overwrite.sink, mode: "overwrite" } },
          { from: "dead", deadLetters: "dead-2" }
        ),
        "its target would hold only the replayed records"
      )
      assert.include(
        yield* refusal(configWith(1000), { from: "dead/" }),
        "--dead-letters: The records that still fail would go to dead/, the dead-letter set being replayed"
      )
      const { dead_letters: _, ...without } = configWith(1000)
      assert.include(
        yield* refusal(without, { from: "dead" }),
        "The config has no dead_letters: give --dead-letters LOCATION"
      )
      const aggregating = configWith(1000)
      assert.include(
        yield* refusal(
          {
            ...aggregating,
            transforms: [
              ...aggregating.transforms,
              { type: "aggregate", group_by: ["currency"], fields: { total: { fn: "sum", field: "amount" } } }
            ]
          },
          { from: "dead", deadLetters: "dead-2" }
        ),
        "Cannot replay: aggregate"
      )
    })
  )
})

type Kind = "line" | "broken-line" | "validate" | "gone"
interface Case {
  readonly kind: Kind
  readonly amount: number
  readonly upper: boolean
  readonly origin: boolean
}

describe("dead-letter locations", () => {
  const withConnections = {
    ...configWith(1000),
    connections: {
      pg: { type: "postgres", url: "postgres://127.0.0.1:5432/test" },
      my: { type: "mysql", url: "mysql://127.0.0.1:3306/test" },
      events: { type: "kafka", brokers: ["127.0.0.1:9092"] },
      store: { type: "s3", endpoint: "http://127.0.0.1:9000", region: "us-east-1" }
    }
  }
  const locate = (text: string) =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", withConnections)
      return yield* Replay.location(config, text, { file: "p.json", flag: "--from", pipeline: "payments" })
    })

  it.effect("reads paths, tables, topics and S3 prefixes in the forms the config's connectors use", () =>
    Effect.gen(function* () {
      const file = yield* locate("out/dead")
      assert.deepStrictEqual(
        [file.type, file.target, file.source, file.sink],
        [
          "file",
          "out/dead",
          { type: "file", path: "out/dead", format: { type: "jsonl" } },
          { type: "file", path: "out/dead", format: { type: "jsonl" }, mode: "append" }
        ]
      )
      const table = yield* locate("pg:audit.dead_letters")
      assert.deepStrictEqual(
        [table.type, table.source],
        ["postgres", { type: "postgres", connection: "pg", table: "dead_letters", table_schema: "audit" }]
      )
      const mysql = yield* locate("my:rejects")
      assert.deepStrictEqual(mysql.sink, { type: "mysql", connection: "my", table: "rejects", mode: "append" })
      const topic = yield* locate("events:orders-dead")
      assert.deepStrictEqual([topic.type, topic.target], ["kafka", "orders-dead"])
      assert.deepInclude(topic.source, { topics: ["orders-dead"], start: "earliest", bounded: true })
      const s3 = yield* locate("store:lake/dead/orders")
      assert.deepInclude(s3.source, { type: "s3", connection: "store", bucket: "lake", path: "dead/orders" })
      // A prefix that names no connection is part of a path.
      const path = yield* locate("nosuch:dead")
      assert.strictEqual(path.type, "file")
      const empty = yield* Effect.flip(locate(" "))
      assert.include(empty.message, "--from is empty")
    })
  )

  it.effect("refuses to write the new set where the replayed set is, however the path is written", () =>
    Effect.gen(function* () {
      assert.include(
        yield* refusal(configWith(1000), { from: `${process.cwd()}/dead` }),
        "the dead-letter set being replayed"
      )
      const table = {
        ...withConnections,
        dead_letters: { type: "postgres", connection: "pg", table: "dead_letters" }
      }
      assert.include(yield* refusal(table, { from: "pg:audit.dead_letters" }), "the dead-letter set being replayed")
    })
  )
})

describe("replay against a model", () => {
  it("every dead letter is written or kept once, where it re-enters, with its origin", async () => {
    const arbitrary = fc.array(
      fc.record({
        kind: fc.constantFrom<Kind>("line", "broken-line", "validate", "gone"),
        amount: fc.integer({ min: 0, max: 1200 }),
        upper: fc.boolean(),
        origin: fc.boolean()
      }),
      { maxLength: 60 }
    )
    await fc.assert(
      fc.asyncProperty(arbitrary, async (cases: ReadonlyArray<Case>) => {
        const record = (i: number, c: Case) => ({ id: `r${i}`, amount: c.amount, currency: c.upper ? "EUR" : "eur" })
        const letters = cases.map((c, i) => {
          const origin =
            c.origin || c.kind === "line" || c.kind === "broken-line" ? { origin: `in/a.jsonl:${i + 1}` } : {}
          switch (c.kind) {
            case "line":
              return {
                stage: "source",
                reason: "decode-error",
                message: "m",
                record: JSON.stringify(record(i, c)),
                ...origin
              }
            case "broken-line":
              return { stage: "source", reason: "decode-error", message: "m", record: `{"id": "r${i}"`, ...origin }
            case "validate":
              return { stage: "validate", reason: "rule:amount-range", message: "m", record: record(i, c), ...origin }
            default:
              return { stage: "gone", reason: "rule:x", message: "m", record: record(i, c), ...origin }
          }
        })
        const files = FileStore.memory({
          "dead/part-1.jsonl": letters.map((l) => JSON.stringify(l)).join("\n")
        })
        const report = await Effect.runPromise(
          replay(files, configWith(1000), { from: "dead", deadLetters: "dead-2", force: true })
        )
        // The model: a line read again is derived (its amount doubled), a validate reject enters after the derive.
        const expected = new Map<string, number>()
        const failing = new Map<string, string | undefined>()
        cases.forEach((c, i) => {
          const amount = c.kind === "line" ? c.amount * 2 : c.amount
          const passes = (c.kind === "line" || c.kind === "validate") && amount <= 1000 && c.upper
          if (passes) expected.set(`r${i}`, amount)
          else failing.set(`r${i}`, (letters[i] as { readonly origin?: string }).origin)
        })
        assert.isTrue(report.reconciliation.ok)
        assert.strictEqual(report.records.read, cases.length)
        assert.strictEqual(report.records.written, expected.size)
        assert.strictEqual(report.records.deadLettered, failing.size)
        const written = linesUnder(files, "out") as ReadonlyArray<{ readonly id: string; readonly amount: number }>
        assert.deepStrictEqual(new Map(written.map((r) => [r.id, r.amount])), expected)
        const kept = linesUnder(files, "dead-2") as ReadonlyArray<Letter>
        const keptIds = new Map(
          kept.map((l) => {
            const r = l.record
            const id = typeof r === "string" ? /"id": "(r\d+)"/.exec(r)![1]! : (r as { readonly id: string }).id
            return [id, l.origin]
          })
        )
        assert.deepStrictEqual(keptIds, failing)
      }),
      { numRuns: 40 }
    )
  })
})
