import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Records from "../../src/config/Records.ts"
import * as RegistryBuild from "../../src/config/RegistryBuild.ts"
import type * as RegistryConfig from "../../src/config/RegistryConfig.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as KafkaClient from "../../src/connectors/kafka/KafkaClient.ts"
import * as AvroWire from "../../src/formats/AvroWire.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../../src/schema/AvroSchema.ts"
import * as RegistryClient from "../../src/schema/RegistryClient.ts"
import * as SchemaRegistry from "../../src/schema/SchemaRegistry.ts"

const order = {
  type: "record",
  name: "Order",
  namespace: "shop",
  fields: [
    { name: "id", type: "long" },
    { name: "customer", type: "string" }
  ]
}

const orderKey = { type: "record", name: "OrderKey", namespace: "shop", fields: [{ name: "id", type: "long" }] }

const schemas = SchemaRegistry.layerMemory({ order, order_key: orderKey, label: "string" })

const kafka = { type: "kafka", brokers: ["127.0.0.1:9092"] }
const registry = { type: "schema_registry", url: "http://127.0.0.1:8081" }

const sinkConfig = (
  value: Record<string, unknown>,
  connections: Record<string, unknown> = { kafka, reg: registry }
) => ({
  name: "t",
  connections,
  source: { type: "file", path: "in" },
  sink: { type: "kafka", connection: "kafka", topic: "orders", value }
})

const sourceConfig = (value: Record<string, unknown>) => ({
  name: "t",
  connections: { kafka, reg: registry },
  source: { type: "kafka", connection: "kafka", topics: ["orders"], group_id: "g", value },
  sink: { type: "file", path: "out", format: { type: "jsonl" } }
})

const issuesOf = (value: unknown) =>
  Load.decode("p.json", value).pipe(
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const build = (value: unknown) =>
  Effect.gen(function* () {
    const config = yield* Load.decode("p.json", value)
    const registry = yield* SchemaRegistry.SchemaRegistry
    return yield* Build.build(config, { file: "p.json", schema: Records.lookup(registry, "p.json") })
  }).pipe(Effect.provide(schemas))

const buildIssues = (value: unknown) =>
  build(value).pipe(
    Effect.flip,
    Effect.map((e) => ("issues" in e ? e.issues.map((i) => `${i.path}: ${i.message}`) : [String(e)]))
  )

describe("schema registry connections in configs", () => {
  it.effect("decode with a url, basic auth (the password redacted), a CA and a request timeout", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode(
        "p.json",
        sinkConfig(
          { type: "confluent", registry: "reg", schema: "order" },
          {
            kafka,
            reg: {
              type: "schema_registry",
              url: "https://registry.internal/apis/ccompat/v7",
              username: "etl",
              password: "s3cr3t-registry",
              ca: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
              request_timeout: "5 seconds"
            }
          }
        )
      )
      const reg = config.connections?.reg as RegistryConfig.ConnectionConfig
      assert.strictEqual(reg.username, "etl")
      assert.isTrue(Redacted.isRedacted(reg.password))
      assert.strictEqual(Redacted.value(reg.password!), "s3cr3t-registry")
      assert.notInclude(JSON.stringify(config), "s3cr3t-registry")
      assert.notInclude(String(reg.password), "s3cr3t-registry")
    })
  )

  it.effect("reject a bad url, a password without a user, credentials twice, a CA for http, unknown keys", () =>
    Effect.gen(function* () {
      const issues = (reg: Record<string, unknown>) =>
        issuesOf(sinkConfig({ type: "confluent", registry: "reg", schema: "order" }, { kafka, reg }))
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "ftp://etl:s3cr3t@host/x" }), [
        '$.connections.reg.url: Expected an http:// or https:// URL, got the scheme "ftp"'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "registry:8081" }), [
        '$.connections.reg.url: Expected an http:// or https:// URL, got the scheme "registry"'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "http://h?x=1" }), [
        "$.connections.reg.url: Expected the registry's base URL (requests add their own paths), got a query or fragment"
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "not a url" }), [
        '$.connections.reg.url: Expected an http:// or https:// URL, e.g. "http://127.0.0.1:8081", got text that is not a URL'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "http://h", password: "s3cr3t-pw" }), [
        '$.connections.reg: A "password" needs a "username" (basic authentication sends both)'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "http://u:p@h", username: "etl" }), [
        '$.connections.reg: Give the credentials either in "url" or as "username" and "password", not both'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "http://h", ca: "ca.pem" }), [
        '$.connections.reg: "ca" is for an https URL: the registry\'s URL is http, which has no certificate to check'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "http://h", request_timeout: "2 hours" }), [
        '$.connections.reg.request_timeout: Expected a duration of at most 10 minutes, got "2 hours"'
      ])
      assert.deepStrictEqual(yield* issues({ type: "schema_registry", url: "http://h", user: "etl" }), [
        "$.connections.reg.user: Unknown key (not allowed here; check its spelling)"
      ])
      const [wrongType] = yield* issues({ type: "schema_registry", url: "http://h", password: 42 })
      assert.strictEqual(
        wrongType,
        "$.connections.reg.password: Expected a string, got a value that is not shown (it may be a secret)"
      )
    })
  )

  it.effect("a password from the environment is never in an error of the config", () =>
    Effect.gen(function* () {
      const resolved = yield* Load.resolveEnv(
        "p.json",
        sinkConfig(
          { type: "confluent", registry: "reg", schema: "order" },
          { kafka, reg: { type: "schema_registry", url: { $env: "REG_URL" }, password: { $env: "REG_PW" } } }
        ),
        { REG_URL: "http://h", REG_PW: "s3cr3t-from-env" }
      )
      const error = yield* Effect.flip(Load.decode("p.json", resolved))
      assert.notInclude(error.message, "s3cr3t-from-env")
      assert.include(error.message, '$.connections.reg: A "password" needs a "username"')
    })
  )
})

describe("confluent payloads through a registry connection", () => {
  it.effect("a sink registers under <topic>-value by default, and describes the registry without credentials", () =>
    Effect.gen(function* () {
      const pipeline = yield* build(
        sinkConfig(
          { type: "confluent", registry: "reg", schema: "order" },
          { kafka, reg: { type: "schema_registry", url: "http://etl:s3cr3t-url@127.0.0.1:8081/apis/ccompat/v7/" } }
        )
      )
      const text = Pipeline.describe(pipeline).join("\n")
      assert.include(
        text,
        "kafka topic orders (confluent (schema registry http://127.0.0.1:8081/apis/ccompat/v7, subject orders-value))"
      )
      assert.notInclude(text, "s3cr3t-url")
      // Lineage names the fields of the registered schema.
      assert.deepStrictEqual(
        pipeline.sink.info.dataset?.fields?.map((f) => f.name),
        ["id", "customer"]
      )
    })
  )

  it.effect("subject strategies name the subject after the topic, the record, or both", () =>
    Effect.gen(function* () {
      const subjectOf = (strategy: string) =>
        Effect.map(
          build(sinkConfig({ type: "confluent", registry: "reg", schema: "order", subject_strategy: strategy })),
          (p) => /subject ([^)]+)\)/.exec(Pipeline.describe(p).join("\n"))?.[1]
        )
      assert.strictEqual(yield* subjectOf("topic"), "orders-value")
      assert.strictEqual(yield* subjectOf("record"), "shop.Order")
      assert.strictEqual(yield* subjectOf("topic_record"), "orders-shop.Order")
    })
  )

  it.effect("a source reads by id (no subject) with the named registry", () =>
    Effect.gen(function* () {
      const pipeline = yield* build(sourceConfig({ type: "confluent", registry: "reg", schema: "order" }))
      assert.include(
        Pipeline.describe(pipeline).join("\n"),
        "kafka topics orders (confluent (schema registry http://127.0.0.1:8081), group g"
      )
    })
  )

  it.effect("without registry, confluent keeps mapping ids to local schemas", () =>
    Effect.gen(function* () {
      const pipeline = yield* build(sinkConfig({ type: "confluent", schemas: { "7": "order" }, write_id: 7 }))
      assert.include(Pipeline.describe(pipeline).join("\n"), "kafka topic orders (confluent (ids 7))")
    })
  )

  it.effect("reject mixed or missing fields with their paths", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issuesOf(sinkConfig({ type: "confluent" })), [
        '$.sink.value: Give "schemas" (schema id → schema in schemas/) or "registry" (a schema_registry connection) with "schema"'
      ])
      assert.deepStrictEqual(
        yield* issuesOf(sinkConfig({ type: "confluent", registry: "reg", schema: "order", schemas: { "1": "order" } })),
        ['$.sink.value: With "registry", schema ids come from the registry "reg": remove "schemas" and "write_id"']
      )
      assert.deepStrictEqual(yield* issuesOf(sinkConfig({ type: "confluent", registry: "reg" })), [
        '$.sink.value: With "registry", give "schema": the name of the Avro schema in schemas/ that is registered (sinks) or read as (sources)'
      ])
      assert.deepStrictEqual(
        yield* issuesOf(sinkConfig({ type: "confluent", schemas: { "1": "order" }, auto_register: false })),
        [
          '$.sink.value: "auto_register" needs "registry" (a schema_registry connection); without it schema ids map to local schemas through "schemas"'
        ]
      )
      assert.deepStrictEqual(
        yield* issuesOf(sinkConfig({ type: "confluent", registry: "reg", schema: "order", subject_strategy: "name" })),
        ['$.sink.value.subject_strategy: Expected "topic" | "record" | "topic_record", got "name"']
      )
    })
  )

  it.effect("reject a registry that is not declared, or not a schema registry, and sink-only fields on a source", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* buildIssues(sinkConfig({ type: "confluent", registry: "nope", schema: "order" })), [
        '$.sink.value.registry: Unknown connection "nope": declare it under "connections" with "type": "schema_registry" (schema registries declared: reg)'
      ])
      assert.deepStrictEqual(
        yield* buildIssues(sinkConfig({ type: "confluent", registry: "kafka", schema: "order" })),
        [
          '$.sink.value.registry: Connection "kafka" is a kafka connection; "registry" needs a schema_registry one (schema registries declared: reg)'
        ]
      )
      assert.deepStrictEqual(
        yield* buildIssues(sourceConfig({ type: "confluent", registry: "reg", schema: "order", auto_register: false })),
        [
          `$.source.value.auto_register: "auto_register" is for sinks: a source reads the writer schema of each message's id from the registry, whatever its subject`
        ]
      )
      assert.deepStrictEqual(
        yield* buildIssues(
          sinkConfig({ type: "confluent", registry: "reg", schema: "label", subject_strategy: "record" })
        ),
        [
          '$.sink.value.subject_strategy: "record" names the subject after the record\'s full name, and the schema "label" is not a named record: use "topic"'
        ]
      )
    })
  )
})

describe("a config run on the memory broker and registry", () => {
  it.effect("a source config reads Avro keys and values through the named registry (envelopes)", () =>
    Effect.gen(function* () {
      const memory = yield* RegistryClient.makeMemory()
      const keyId = yield* memory.register("orders-key", orderKey as unknown as AvroSchema.Schema)
      const valueId = yield* memory.register("orders-value", order as unknown as AvroSchema.Schema)
      const frame = (id: number, schema: unknown, value: unknown) => {
        const encoded = AvroWire.confluent({
          schemas: new Map([[id, AvroBridge.toAvroType(schema as AvroSchema.Schema)]]),
          writeId: id
        }).encode(value)
        return encoded.ok ? encoded.bytes : new Uint8Array()
      }
      const kafkaClient = KafkaClient.makeMemory(KafkaClient.memory({ orders: 1 }))
      yield* Effect.scoped(
        Effect.flatMap(kafkaClient.producer({ compression: "none" }), (producer) =>
          producer.send("orders", [
            { key: frame(keyId, orderKey, { id: 1 }), value: frame(valueId, order, { id: 1, customer: "ann" }) },
            { key: frame(keyId, orderKey, { id: 2 }), value: frame(valueId, order, { id: 2, customer: "bob" }) }
          ])
        )
      )
      const pipeline = yield* build({
        name: "t",
        connections: { kafka, reg: registry },
        source: {
          type: "kafka",
          connection: "kafka",
          topics: ["orders"],
          group_id: "g",
          start: "earliest",
          envelope: true,
          key: { type: "confluent", registry: "reg", schema: "order_key" },
          value: { type: "confluent", registry: "reg", schema: "order" }
        },
        transforms: [{ type: "select", fields: ["key", "value"] }],
        sink: { type: "file", path: "out", format: { type: "jsonl" } }
      })
      const files = FileStore.memory()
      yield* Pipeline.run(pipeline).pipe(
        Effect.provide(FileStore.layerMemory(files)),
        Effect.provideService(KafkaClient.connection("kafka"), kafkaClient),
        Effect.provideService(RegistryClient.connection("reg"), memory)
      )
      const lines = Array.from(FileStore.contents(files).entries())
        .filter(([k]) => k.startsWith("out/part-"))
        .flatMap(([, bytes]) => new TextDecoder().decode(bytes).split("\n"))
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as unknown)
      assert.deepStrictEqual(lines, [
        { key: { id: 1 }, value: { id: 1, customer: "ann" } },
        { key: { id: 2 }, value: { id: 2, customer: "bob" } }
      ])
    })
  )
})

describe("the client of a registry connection", () => {
  const reg: RegistryConfig.ConnectionConfig = {
    type: "schema_registry",
    url: "http://etl:s3cr3t-pw@127.0.0.1:1/registry"
  }

  it.effect("names the connection in its errors, never the credentials", () =>
    Effect.gen(function* () {
      const client = RegistryBuild.payloadClient("reg", reg, { autoRegister: true })
      const error = yield* client
        .register("orders-value", order as unknown as AvroSchema.Schema)
        .pipe(Effect.provide(RegistryBuild.connectionLayer("reg", reg)), Effect.flip)
      assert.isTrue(error.retryable)
      assert.match(
        error.message,
        /^Schema registry connection "reg": register under orders-value: http:\/\/127\.0\.0\.1:1\/registry cannot be reached/
      )
      assert.notInclude(error.message, "s3cr3t-pw")
      assert.notInclude(error.url, "s3cr3t-pw")
    })
  )

  it.effect("tells an auto_register false sink how to fix a schema its subject does not have", () =>
    Effect.gen(function* () {
      const memory = yield* RegistryClient.makeMemory()
      const client = RegistryBuild.payloadClient("reg", reg, { autoRegister: false })
      const error = yield* client
        .lookup("orders-value", order as unknown as AvroSchema.Schema)
        .pipe(Effect.provideService(RegistryClient.connection("reg"), memory), Effect.flip)
      assert.strictEqual(
        error.message,
        'Schema registry connection "reg": subject orders-value not found ("auto_register" is false, so the sink only looks its schema up: register it under the subject first, or set "auto_register": true)'
      )
    })
  )

  it.effect("is not provided: says how to provide it", () =>
    Effect.gen(function* () {
      const client = RegistryBuild.payloadClient("reg", reg, { autoRegister: true })
      const error = yield* Effect.flip(client.schemaById(1))
      assert.include(error.message, 'The schema registry connection "reg" is not provided')
    })
  )

  it.effect("reads its CA from a file, and names the field when the file is missing", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "registry-ca-"))
      const missing = nodePath.join(dir, "missing.pem")
      const https: RegistryConfig.ConnectionConfig = {
        type: "schema_registry",
        url: "https://127.0.0.1:1",
        ca: missing
      }
      const error = yield* RegistryBuild.payloadClient("reg", https, { autoRegister: true })
        .schemaById(1)
        .pipe(Effect.provide(RegistryBuild.connectionLayer("reg", https)), Effect.flip)
      assert.include(error.message, "(connections.reg.ca) cannot be read: ENOENT")
      assert.isFalse(error.retryable)
      const file = nodePath.join(dir, "ca.pem")
      fs.writeFileSync(file, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
      const withFile: RegistryConfig.ConnectionConfig = { ...https, ca: file }
      const bad = yield* RegistryBuild.payloadClient("reg", withFile, { autoRegister: true })
        .schemaById(1)
        .pipe(Effect.provide(RegistryBuild.connectionLayer("reg", withFile)), Effect.flip)
      // The file was read and handed to TLS, which refuses the PEM: the error is the request's, not the file's.
      assert.notInclude(bad.message, "cannot be read")
      fs.rmSync(dir, { recursive: true, force: true })
    })
  )
})
