import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Build from "../../src/config/Build.ts"
import * as JsonSchema from "../../src/config/JsonSchema.ts"
import * as Load from "../../src/config/Load.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"

const base = {
  name: "t",
  source: { type: "file", path: "in" },
  sink: { type: "file", path: "out", format: { type: "jsonl" } }
}

const issuesOf = (value: unknown) =>
  Load.decode("p.json", value).pipe(
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const Txn = Schema.Struct({ id: Schema.String, amount: Schema.Finite, status: Schema.String })
const lookup: Build.SchemaLookup = (name, path) =>
  name === "txn"
    ? Effect.succeed(
        RecordSchema.fromSchema(Txn, "txn") as RecordSchema.RecordSchema<Readonly<Record<string, unknown>>>
      )
    : Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))

const buildIssues = (value: unknown) =>
  Load.decode("p.json", value).pipe(
    Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup })),
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

describe("config decoding", () => {
  it.effect("accepts a minimal config", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", base)
      assert.strictEqual(config.name, "t")
    })
  )

  it.effect("rejects unknown keys, wrong types and unknown types with their JSON paths", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issuesOf({ ...base, sink: { ...base.sink, formt: 1 }, retry: { attempts: "3" } }), [
        "$.sink.formt: Unknown key (not allowed here; check its spelling)",
        '$.retry.attempts: Expected number, got "3"'
      ])
      assert.deepStrictEqual(yield* issuesOf({ ...base, transforms: [{ type: "flter", condition: "x" }] }), [
        '$.transforms[0]: Unknown type "flter": expected one of filter, derive, select, rename, cast, validate, aggregate, window, join, interval_join'
      ])
      const [ftp] = yield* issuesOf({ ...base, source: { type: "ftp", path: "x" } })
      assert.match(ftp!, /^\$\.source: Unknown type "ftp": expected one of file(, [a-z0-9]+)*$/)
      assert.deepStrictEqual(yield* issuesOf({ name: "t", sink: base.sink }), ["$.source: Missing required key"])
    })
  )

  it.effect("says what a config is when the file holds something else", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issuesOf([1, 2]), [
        '$: Expected a pipeline config: an object with "name", "source" and "sink", got [1,2]'
      ])
    })
  )

  it.effect("rejects upsert on files with a clear message", () =>
    Effect.gen(function* () {
      const issues = yield* issuesOf({ ...base, sink: { ...base.sink, mode: "upsert" } })
      assert.deepStrictEqual(issues, [
        '$.sink.mode: The file sink cannot upsert: files have no keys. Use "append" or "overwrite", or a database sink for upserts'
      ])
    })
  )

  it.effect("resolves $env references and names missing variables", () =>
    Effect.gen(function* () {
      const resolved = yield* Load.resolveEnv(
        "p.json",
        { a: { $env: "X" }, b: [{ $env: "Y", default: "d" }] },
        { X: "1" }
      )
      assert.deepStrictEqual(resolved, { a: "1", b: ["d"] })
      const error = yield* Load.resolveEnv("p.json", { source: { path: { $env: "NOPE" } } }, {}).pipe(Effect.flip)
      assert.strictEqual(error.message, "Invalid config p.json:\n  $.source.path: Environment variable NOPE is not set")
    })
  )

  it.effect("names the line and column of malformed JSON, and a missing file", () =>
    Effect.gen(function* () {
      const error = yield* Load.parseJson("p.json", '{\n  "name": "x",\n  oops\n}').pipe(Effect.flip)
      assert.include(error.message, "Malformed JSON at line 3, column 3")
      const missing = yield* Load.load("does/not/exist.json").pipe(Effect.flip)
      assert.strictEqual(
        missing.message,
        "Invalid config does/not/exist.json:\n  $: Cannot read the config: no such file"
      )
    })
  )

  it("the checked-in JSON Schema is what the config Schema generates (run `npm run gen:schema`)", () => {
    const checkedIn = fs.readFileSync(new URL("../../schemas/pipeline-config.schema.json", import.meta.url), "utf8")
    assert.strictEqual(checkedIn, JsonSchema.text())
    const doc = JsonSchema.document() as {
      $defs: { PipelineConfig: { additionalProperties: boolean; required: Array<string> } }
    }
    assert.strictEqual(doc.$defs.PipelineConfig.additionalProperties, false)
    assert.deepStrictEqual(doc.$defs.PipelineConfig.required, ["name", "source", "sink"])
  })
})

describe("config building", () => {
  it.effect("builds the same pipeline the typed API describes", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", {
        ...base,
        source: { ...base.source, schema: "txn" },
        transforms: [
          { type: "validate", rules: [{ rule: "range", field: "amount", min: 0 }] },
          { type: "filter", condition: 'status == "settled"' },
          { type: "derive", fields: { big: "amount > 100.0" } },
          { type: "select", fields: ["id", "big"] }
        ],
        dead_letters: { type: "file", path: "dead", format: { type: "jsonl" } },
        retry: { attempts: 5, initial_delay: "1 second" },
        quality: { max_rejected: 3 }
      })
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      assert.deepStrictEqual(Pipeline.describe(pipeline), [
        "pipeline t (batch)",
        "  source       source: files in, schema txn",
        "  transform    validate: validate amount >= 0 (reject)",
        '  transform    filter: filter status == "settled"',
        "  transform    derive: derive big = amount > 100.0",
        "  transform    select: select id, big",
        "  sink         sink: files under out/ (jsonl) [append]",
        "  dead-letters dead-letters: files under dead/ (jsonl)",
        "  retry        5 attempts, backoff 1s ×2",
        "  quality      at most 3 rejected"
      ])
      const files = FileStore.memory({
        "in/a.jsonl": [
          { id: "a", amount: 150, status: "settled" },
          { id: "b", amount: -1, status: "settled" },
          { id: "c", amount: 5, status: "pending" },
          { id: "d", amount: "x", status: "settled" }
        ]
          .map((r) => JSON.stringify(r))
          .join("\n")
      })
      const report = yield* Pipeline.run(pipeline).pipe(Effect.provide(FileStore.layerMemory(files)))
      assert.deepStrictEqual(report.records, {
        read: 4,
        written: 1,
        filtered: 1,
        rejected: 2,
        warned: 0,
        deadLettered: 2,
        dropped: 0,
        combined: { in: 0, out: 0 }
      })
      const written = FileStore.contents(files)
      const part = Array.from(written.keys()).find((k) => k.startsWith("out/part-"))!
      assert.strictEqual(new TextDecoder().decode(written.get(part)), '{"id":"a","big":true}\n')
    })
  )

  it.effect("checks field names and expressions against the source schema before running", () =>
    Effect.gen(function* () {
      const withSchema = { ...base, source: { ...base.source, schema: "txn" } }
      const [filter] = yield* buildIssues({
        ...withSchema,
        transforms: [{ type: "filter", condition: 'stauts == "x"' }]
      })
      assert.match(filter!, /^\$\.transforms\[0\]\.condition: .*Unknown field "stauts".*did you mean "status"/)
      assert.deepStrictEqual(
        yield* buildIssues({ ...withSchema, transforms: [{ type: "select", fields: ["id", "nope"] }] }),
        ['$.transforms[0].fields: Unknown field "nope"; records here have: id, amount, status']
      )
      assert.deepStrictEqual(
        yield* buildIssues({
          ...withSchema,
          transforms: [{ type: "validate", rules: [{ rule: "pattern", field: "id", regex: "(" }] }]
        }),
        [
          "$.transforms[0].rules[0].regex: Invalid regular expression: Invalid regular expression: /(/u: Unterminated group"
        ]
      )
      assert.deepStrictEqual(yield* buildIssues({ ...base, sink: { ...base.sink, format: { type: "avro" } } }), [
        '$.sink.schema: An avro sink needs the schema of the records it writes: name one from schemas/ (e.g. "schema": "transaction")'
      ])
      assert.deepStrictEqual(yield* buildIssues({ ...base, mode: "streaming" }), [
        '$.mode: A file source is bounded and cannot run in streaming mode; use "mode": "batch"'
      ])
      assert.deepStrictEqual(yield* buildIssues({ ...base, source: { ...base.source, schema: "nope" } }), [
        '$.source.schema: Unknown schema "nope"'
      ])
    })
  )
})

describe("streaming configs", () => {
  const kafka = {
    name: "s",
    mode: "streaming",
    source: { type: "kafka", brokers: ["127.0.0.1:9092"], topics: ["t"], group_id: "g", value: { type: "json" } },
    sink: { type: "file", path: "out", format: { type: "jsonl" } }
  }

  it.effect("stream a Kafka source without `bounded` and take the commit settings", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", {
        ...kafka,
        streaming: { commit_interval: "2 seconds", commit_records: 500 }
      })
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      assert.isFalse(pipeline.bounded)
      assert.deepStrictEqual(pipeline.streaming, { commitInterval: "2 seconds", commitRecords: 500 })
      assert.include(Pipeline.describe(pipeline).join("\n"), "commits      every 2 seconds or 500 records")
    })
  )

  it.effect("reject an overwrite sink, and streaming settings in batch mode", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* buildIssues({ ...kafka, sink: { ...kafka.sink, mode: "overwrite" } }), [
        '$.sink.mode: an overwrite sink cannot take an unbounded (streaming) input: it would replace its data at every commit; use "append" or "upsert"'
      ])
      assert.deepStrictEqual(yield* buildIssues({ ...base, streaming: { commit_records: 10 } }), [
        '$.streaming: Streaming settings need "mode": "streaming"'
      ])
      assert.deepStrictEqual(
        yield* issuesOf({ ...kafka, streaming: { commit_records: 0 } }).pipe(Effect.map((i) => i.length)),
        1
      )
    })
  )
})

describe("streaming state and offsets in configs (issue 11)", () => {
  const streaming = {
    name: "s",
    mode: "streaming",
    connections: {
      events: { type: "kafka", brokers: ["127.0.0.1:9092"] },
      warehouse: { type: "postgres", url: "postgres://root@127.0.0.1:5432/test" },
      shop: { type: "mysql", url: "mysql://root@127.0.0.1:3306/test" }
    },
    source: { type: "kafka", connection: "events", topics: ["t"], group_id: "g", value: { type: "json" } },
    sink: { type: "postgres", connection: "warehouse", table: "t" }
  }

  it.effect("a state store on a connection that is not PostgreSQL names the path and the postgres connections", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* buildIssues({ ...streaming, streaming: { state: { type: "postgres", connection: "shop" } } }),
        [
          '$.streaming.state.connection: "shop" is not a postgres connection of "connections"; postgres connections: warehouse'
        ]
      )
      assert.deepStrictEqual(
        yield* issuesOf({ ...streaming, streaming: { state: { type: "redis" } } }).pipe(
          Effect.map((i) => i.length > 0)
        ),
        true
      )
    })
  )

  it("streaming configs get a state store (a directory by default), batch configs and `none` get none", () => {
    const decoded = (value: unknown) => Effect.runSync(Load.decode("p.json", value))
    assert.isDefined(Build.stateStore(decoded(streaming)))
    assert.isDefined(
      Build.stateStore(decoded({ ...streaming, streaming: { state: { type: "postgres", connection: "warehouse" } } }))
    )
    assert.isUndefined(Build.stateStore(decoded({ ...streaming, streaming: { state: { type: "none" } } })))
    assert.isUndefined(Build.stateStore(decoded(base)))
  })

  it.effect("state_scope keeps state per partition (validate says so), and names the values it takes", () =>
    Effect.gen(function* () {
      const windowed = {
        ...streaming,
        streaming: { state_scope: "partition" },
        transforms: [
          { type: "window", kind: "tumbling", time: "ts", size: "1 minute" },
          { type: "aggregate", group_by: ["windowStart"], fields: { n: { fn: "count" } } }
        ],
        sink: { ...streaming.sink, mode: "upsert", keys: ["windowStart"] }
      }
      const pipeline = yield* Load.decode("p.json", windowed).pipe(
        Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup }))
      )
      assert.strictEqual(pipeline.streaming.stateScope, "partition")
      assert.include(Pipeline.describe(pipeline).join("\n"), "state        per source partition")
      const issues = yield* issuesOf({ ...windowed, streaming: { state_scope: "process" } })
      assert.strictEqual(issues.length, 1)
      assert.include(issues[0], "$.streaming.state_scope")
      assert.include(issues[0], "partition")
    })
  )

  it.effect("offsets_table names the offsets table, or turns it off; overwrite stores no positions", () =>
    Effect.gen(function* () {
      const build = (sink: Record<string, unknown>) =>
        Load.decode("p.json", { ...streaming, sink: { ...streaming.sink, ...sink } }).pipe(
          Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup }))
        )
      assert.strictEqual((yield* build({})).sink.positions?.where, "table etl_offsets")
      assert.strictEqual((yield* build({ offsets_table: "my_offsets" })).sink.positions?.where, "table my_offsets")
      assert.isUndefined((yield* build({ offsets_table: false })).sink.positions)
      assert.isTrue((yield* build({})).resumable)
    })
  )
})
