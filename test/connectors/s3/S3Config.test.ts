import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Build from "../../../src/config/Build.ts"
import * as Load from "../../../src/config/Load.ts"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as S3Client from "../../../src/connectors/s3/S3Client.ts"
import * as ConfigError from "../../../src/core/ConfigError.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

const s3Source = { type: "s3", endpoint: "http://127.0.0.1:9000", path_style: true, bucket: "lake", path: "in/" }
const s3Sink = { type: "s3", bucket: "lake", path: "out", format: { type: "jsonl" } }
const lookup: Build.SchemaLookup = (name, path) =>
  Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))

const issuesOf = (value: unknown) =>
  Load.decode("p.json", value).pipe(
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

describe("S3 config", () => {
  it.effect("decodes sources and sinks; credentials become Redacted and never show in descriptions", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", {
        name: "t",
        source: {
          ...s3Source,
          access_key_id: "AKIA-SECRET-1",
          secret_access_key: "s3cr3t",
          format: { type: "csv", compression: "gzip" }
        },
        sink: { ...s3Sink, mode: "overwrite", partition_by: ["day"], max_records_per_object: 10, part_size: 5242880 }
      })
      assert.isTrue(config.source.type === "s3" && Redacted.isRedacted(config.source.secret_access_key))
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      const text = Pipeline.describe(pipeline).join("\n")
      assert.include(text, "s3://lake/in/ (csv, gzip)")
      assert.include(text, "s3://lake/out/ (jsonl, partitioned by day) [overwrite]")
      assert.notInclude(text + JSON.stringify(config), "s3cr3t")
    })
  )

  it.effect("rejects upsert, a too small part size and an avro sink without schema with clear messages", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issuesOf({ name: "t", source: s3Source, sink: { ...s3Sink, mode: "upsert" } }), [
        '$.sink.mode: The S3 sink cannot upsert: objects have no keys. Use "append" or "overwrite", or a database sink for upserts'
      ])
      const small = yield* issuesOf({ name: "t", source: s3Source, sink: { ...s3Sink, part_size: 1024 } })
      assert.strictEqual(small.length, 1)
      assert.include(small[0]!, "$.sink.part_size")
      const avro = yield* Load.decode("p.json", {
        name: "t",
        source: s3Source,
        sink: { ...s3Sink, format: { type: "avro" } }
      }).pipe(
        Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup })),
        Effect.flip
      )
      assert.strictEqual(avro.issues[0]!.path, "$.sink.schema")
    })
  )
})

describe("S3 named connections", () => {
  const lake = {
    type: "s3",
    endpoint: "http://127.0.0.1:9000",
    path_style: true,
    access_key_id: "AKIA-SECRET-1",
    secret_access_key: "s3cr3t"
  }
  const named = {
    name: "t",
    connections: { lake },
    source: { type: "s3", connection: "lake", bucket: "lake", path: "in/", format: { type: "jsonl" } },
    sink: { type: "s3", connection: "lake", bucket: "lake", path: "out", format: { type: "jsonl" } }
  }
  const build = (value: unknown) =>
    Load.decode("p.json", value).pipe(
      Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup }))
    )

  it.effect("a source and a sink naming one connection share its one client; credentials stay Redacted", () =>
    Effect.gen(function* () {
      const store = S3Client.memory({ lake: { "in/a.jsonl": '{"id":1}\n{"id":2}\n' } })
      const config = yield* Load.decode("p.json", named)
      assert.notInclude(JSON.stringify(config), "s3cr3t")
      const pipeline = yield* build(named)
      const report = yield* Pipeline.run(pipeline).pipe(
        Effect.provide(Layer.succeed(S3Client.connection("lake"), S3Client.makeMemory(store))),
        Effect.provide(FileStore.layerMemory())
      )
      assert.strictEqual(report.records.written, 2)
      assert.isTrue([...store.buckets.get("lake")!.keys()].some((k) => k.startsWith("out/part-")))
    })
  )

  it.effect("a connection nobody provided fails the run saying how to provide it", () =>
    Effect.gen(function* () {
      const pipeline = yield* build(named)
      const error = yield* Pipeline.run(pipeline).pipe(Effect.provide(FileStore.layerMemory()), Effect.flip)
      assert.include(error.message, 'The S3 connection "lake" is not provided')
    })
  )

  it.effect("rejects unknown connections, connections of another system and inline fields beside a connection", () =>
    Effect.gen(function* () {
      const issues = (value: unknown) =>
        build(value).pipe(
          Effect.flip,
          Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
        )
      assert.deepStrictEqual(yield* issues({ ...named, sink: { ...named.sink, connection: "warehouse" } }), [
        '$.sink.connection: Unknown connection "warehouse": declare it under "connections" (declared: lake)'
      ])
      assert.deepStrictEqual(
        yield* issues({ ...named, connections: { lake: { type: "kafka", brokers: ["127.0.0.1:9092"] } } }),
        ['$.source.connection: Connection "lake" is a Kafka connection; an s3 source needs an S3 one']
      )
      assert.deepStrictEqual(yield* issues({ ...named, source: { ...named.source, region: "eu-west-1" } }), [
        '$.source: With "connection", the endpoint, region, path_style and credentials come from the connection "lake": remove them here'
      ])
    })
  )
})
