/**
 * JSON configs with a schema registry connection, run by the CLI against the real broker and the real registry: a
 * sink config frames messages with the id it registered, a second config reads them back through the registry into
 * JSON Lines, and a registry's refusal fails a run at its start with the connection, subject and registry's message.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { inject } from "vitest"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../src/connectors/kafka/NodeKafka.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { uniqueTopic } from "../support/KafkaBroker.ts"
import * as SchemaRegistryServer from "../support/SchemaRegistryServer.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const password = "s3cr3t-registry-pw"

const registryUrl = SchemaRegistryServer.useShared()

const brokers = (): string => {
  const given = inject("kafkaBrokers")
  if (given === undefined || given === "") throw new Error("No Kafka broker: the global setup did not start one")
  return given
}

const order = (extra: ReadonlyArray<Record<string, unknown>> = []) => ({
  type: "record",
  name: "Order",
  namespace: "shop",
  fields: [{ name: "id", type: "long" }, { name: "customer", type: "string" }, ...extra]
})

const orders = [
  { id: 1, customer: "ann" },
  { id: 2, customer: "bob" },
  { id: 3, customer: "cy" }
]

/** A directory with schemas/order.avsc (and any `more` schemas) and the orders as input.jsonl. */
const workspace = (more: Readonly<Record<string, unknown>> = {}) => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-registry-"))
  fs.mkdirSync(nodePath.join(dir, "schemas"))
  for (const [name, schema] of Object.entries({ order: order(), ...more }))
    fs.writeFileSync(nodePath.join(dir, "schemas", `${name}.avsc`), JSON.stringify(schema))
  fs.writeFileSync(nodePath.join(dir, "input.jsonl"), `${orders.map((o) => JSON.stringify(o)).join("\n")}\n`)
  return dir
}

const connections = {
  kafka: { type: "kafka", brokers: [{ $env: "ETL_KAFKA_BROKERS" }] },
  reg: {
    type: "schema_registry",
    url: { $env: "ETL_REGISTRY_URL" },
    username: "etl",
    password: { $env: "ETL_REGISTRY_PASSWORD" }
  }
}

/** Runs `effect-etl run CONFIG --quiet` with the config written into `dir`. */
const run = (dir: string, name: string, config: Record<string, unknown>) => {
  const file = nodePath.join(dir, `${name}.json`)
  fs.writeFileSync(file, JSON.stringify({ name, connections, ...config }, null, 2))
  const result = spawnSync(
    process.execPath,
    [nodePath.join(root, "src/main.ts"), "run", file, "--quiet", "--schemas", nodePath.join(dir, "schemas")],
    {
      cwd: root,
      encoding: "utf8",
      env: {
        ...process.env,
        NO_COLOR: "1",
        ETL_KAFKA_BROKERS: brokers(),
        ETL_REGISTRY_URL: registryUrl(),
        ETL_REGISTRY_PASSWORD: password
      }
    }
  )
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const sinkConfig = (dir: string, topic: string, value: Record<string, unknown>) => ({
  source: { type: "file", path: nodePath.join(dir, "input.jsonl"), format: { type: "jsonl" }, schema: "order" },
  sink: { type: "kafka", connection: "kafka", topic, value: { type: "confluent", registry: "reg", ...value } }
})

const createTopic = (topic: string) =>
  Effect.runPromise(
    KafkaClient.use((c) => c.createTopic(topic, { partitions: 1 })).pipe(
      Effect.provide(NodeKafka.layer({ brokers: brokers().split(",") }))
    )
  )

/** The raw values of a topic's messages. */
const rawValues = (topic: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const out = Sink.collect<Uint8Array>("raw")
      yield* Pipeline.from(
        Kafka.source<Uint8Array>({
          topics: [topic],
          groupId: uniqueTopic("raw"),
          start: "earliest",
          value: { type: "bytes" }
        })
      ).pipe(Pipeline.to(out), Pipeline.run)
      return out.collected().records
    }).pipe(Effect.provide(NodeKafka.layer({ brokers: brokers().split(",") })))
  )

const registryJson = async (method: "GET" | "PUT", path: string, body?: unknown): Promise<unknown> => {
  const response = await fetch(`${registryUrl()}${path}`, {
    method,
    headers: { "content-type": "application/vnd.schemaregistry.v1+json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  assert.isTrue(response.ok, `${method} ${path}: ${response.status}`)
  return response.json()
}

const noStackTrace = (text: string) => assert.notMatch(text, /\n\s+at .+:\d+:\d+/)

describe("CLI: Kafka configs through a schema registry (real broker, real registry)", () => {
  it("a sink config frames messages with the id it registered; a source config reads them back into JSON Lines", async () => {
    const dir = workspace()
    const topic = uniqueTopic("cli-registry")
    await createTopic(topic)
    const produced = run(dir, "produce", sinkConfig(dir, topic, { schema: "order" }))
    assert.strictEqual(produced.code, 0, produced.stderr)

    const latest = (await registryJson("GET", `/subjects/${topic}-value/versions/latest`)) as { readonly id: number }
    const frames = await rawValues(topic)
    assert.strictEqual(frames.length, orders.length)
    for (const frame of frames) {
      assert.strictEqual(frame[0], 0)
      assert.strictEqual(Buffer.from(frame).readUInt32BE(1), latest.id)
    }

    const out = nodePath.join(dir, "out")
    const consumed = run(dir, "consume", {
      source: {
        type: "kafka",
        connection: "kafka",
        topics: [topic],
        group_id: uniqueTopic("cli-reader"),
        start: "earliest",
        value: { type: "confluent", registry: "reg", schema: "order" }
      },
      sink: { type: "file", path: out, format: { type: "jsonl" } }
    })
    assert.strictEqual(consumed.code, 0, consumed.stderr)
    const report = JSON.parse(consumed.stdout) as { status: string; records: { read: number; written: number } }
    assert.strictEqual(report.status, "succeeded")
    assert.strictEqual(report.records.written, orders.length)
    const lines = fs
      .readdirSync(out)
      .filter((f) => f.startsWith("part-"))
      .flatMap((f) => fs.readFileSync(nodePath.join(out, f), "utf8").split("\n"))
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as unknown)
    assert.deepStrictEqual(lines, orders)
    assert.notInclude(produced.stdout + produced.stderr + consumed.stdout + consumed.stderr, password)
  })

  it("a schema the subject's compatibility refuses fails the run at its start, naming connection, subject and reason", async () => {
    const dir = workspace()
    const topic = uniqueTopic("cli-compat")
    await createTopic(topic)
    const first = run(dir, "first", sinkConfig(dir, topic, { schema: "order" }))
    assert.strictEqual(first.code, 0, first.stderr)
    await registryJson("PUT", `/config/${topic}-value`, { compatibility: "BACKWARD" })

    // The order schema of another project: a new field without a default, which cannot read the old data.
    const next = workspace({ order: order([{ name: "total", type: "double" }]) })
    const refused = run(next, "refused", sinkConfig(next, topic, { schema: "order" }))
    assert.strictEqual(refused.code, 1)
    const report = JSON.parse(refused.stdout) as {
      status: string
      records: { read: number }
      error: { message: string }
    }
    assert.strictEqual(report.status, "failed")
    // The registry's URL came from $env: like every value from the environment, it is not printed.
    assert.match(
      report.error.message,
      new RegExp(
        `Schema registry connection "reg": register under ${topic}-value: the schema registry at <redacted> answered 409: .+`
      )
    )
    assert.strictEqual(report.records.read, 0)
    assert.include(refused.stderr, "run failed: sink: Schema registry connection")
    noStackTrace(refused.stderr)
    assert.notInclude(refused.stdout + refused.stderr, password)
    // Nothing was produced by the refused run.
    assert.strictEqual((await rawValues(topic)).length, orders.length)
  })

  it("auto_register false with a subject the registry does not have fails at the start and says how to fix it", async () => {
    const dir = workspace()
    const topic = uniqueTopic("cli-lookup")
    await createTopic(topic)
    const missing = run(dir, "lookup", sinkConfig(dir, topic, { schema: "order", auto_register: false }))
    assert.strictEqual(missing.code, 1, missing.stderr)
    const report = JSON.parse(missing.stdout) as { status: string; error: { message: string } }
    assert.strictEqual(report.status, "failed")
    assert.include(report.error.message, `Schema registry connection "reg": look up under ${topic}-value`)
    assert.include(report.error.message, '"auto_register" is false, so the sink only looks its schema up')
    assert.include(missing.stderr, "run failed: sink: Schema registry connection")
    noStackTrace(missing.stderr)
    assert.notInclude(missing.stdout + missing.stderr, password)
    assert.strictEqual((await rawValues(topic)).length, 0)
  })
})
