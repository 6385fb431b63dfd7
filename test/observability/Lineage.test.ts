import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import addFormats from "ajv-formats"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as File from "../../src/connectors/file/File.ts"
import * as NodeFileStore from "../../src/connectors/file/NodeFileStore.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import type { RunReport } from "../../src/core/RunReport.ts"
import * as Lineage from "../../src/observability/Lineage.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { RunObservers } from "../../src/runtime/Observers.ts"
import * as Runner from "../../src/runtime/Runner.ts"

// ---------------------------------------------------------------------------------------------------------------------
// The OpenLineage JSON Schemas (vendored under test/fixtures/openlineage, see SOURCE.md there)
// ---------------------------------------------------------------------------------------------------------------------

const fixtures = nodePath.join(import.meta.dirname, "../fixtures/openlineage")
const readSchema = (file: string) =>
  JSON.parse(fs.readFileSync(nodePath.join(fixtures, file), "utf8")) as { readonly $id: string }

const ajv = new Ajv2020({ strict: false, allErrors: true })
// ajv-formats is a CommonJS module whose default export is the plugin.
;(addFormats as unknown as (a: Ajv2020) => void)(ajv)
const spec = readSchema("OpenLineage.json")
ajv.addSchema(spec)
const facetFiles = {
  schema: "SchemaDatasetFacet.json",
  inputStatistics: "InputStatisticsInputDatasetFacet.json",
  outputStatistics: "OutputStatisticsOutputDatasetFacet.json",
  errorMessage: "ErrorMessageRunFacet.json",
  jobType: "JobTypeJobFacet.json"
} as const
const facetIds: Record<string, string> = {}
for (const [name, file] of Object.entries(facetFiles)) {
  const schema = readSchema(file)
  ajv.addSchema(schema)
  facetIds[name] = schema.$id
}
const validateEvent = ajv.compile({ $ref: `${spec.$id}#/$defs/RunEvent` })

type Json = Record<string, unknown>

/** Problems of an event against the RunEvent schema and against the schema of every facet it carries. */
const problems = (event: unknown): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (!validateEvent(event)) out.push(...(validateEvent.errors ?? []).map((e) => `${e.instancePath} ${e.message}`))
  const e = event as Json
  const facetGroups: Array<Json | undefined> = [
    (e.run as Json | undefined)?.facets as Json | undefined,
    (e.job as Json | undefined)?.facets as Json | undefined
  ]
  for (const dataset of [...((e.inputs as Array<Json>) ?? []), ...((e.outputs as Array<Json>) ?? [])])
    facetGroups.push(
      dataset.facets as Json | undefined,
      dataset.inputFacets as Json | undefined,
      dataset.outputFacets as Json | undefined
    )
  for (const group of facetGroups)
    for (const [name, value] of Object.entries(group ?? {})) {
      const id = facetIds[name]
      if (id === undefined) {
        out.push(`facet ${name} has no vendored schema`)
        continue
      }
      const validate = ajv.getSchema(id)!
      if (!validate({ [name]: value }))
        out.push(...(validate.errors ?? []).map((err) => `${name}${err.instancePath} ${err.message}`))
    }
  return out
}

// ---------------------------------------------------------------------------------------------------------------------
// An OpenLineage HTTP receiver, and a pipeline over files
// ---------------------------------------------------------------------------------------------------------------------

interface Received {
  readonly path: string
  readonly authorization: string | undefined
  readonly contentType: string | undefined
  readonly body: Json
}

const receiver = (status: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly url: string; readonly received: Array<Received> }>((resume) => {
      const received: Array<Received> = []
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          received.push({
            path: req.url ?? "",
            authorization: req.headers.authorization,
            contentType: req.headers["content-type"],
            body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Json
          })
          res.writeHead(status, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed(Object.assign({ url: `http://127.0.0.1:${port}`, received }, { server })))
      })
    }),
    (r) =>
      Effect.callback<void>((resume) => {
        const server = (r as unknown as { readonly server: http.Server }).server
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** A port nothing listens on: a server is opened on port 0 and closed again. */
const closedPort = Effect.callback<number>((resume) => {
  const server = http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const Order = Schema.Struct({ id: Schema.Int, amount: Schema.Finite })

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(nodePath.join(os.tmpdir(), "lineage-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Orders from a JSON Lines file (one invalid), the small ones filtered out, to a directory; rejects to another. */
const filesPipeline = (dir: string, input: string) => {
  fs.writeFileSync(
    nodePath.join(dir, "orders.jsonl"),
    ['{"id":1,"amount":5}', '{"id":2,"amount":50}', '{"id":3,"amount":"x"}', '{"id":4,"amount":500}', ""].join("\n")
  )
  return Pipeline.from(
    File.source({ path: nodePath.join(dir, input), schema: RecordSchema.fromSchema(Order, "order") })
  ).pipe(
    Pipeline.filter((o) => o.amount > 10),
    Pipeline.to(File.sink({ path: nodePath.join(dir, "out"), format: { type: "jsonl" } })),
    Pipeline.withDeadLetters(File.sink({ path: nodePath.join(dir, "dead"), format: { type: "jsonl" } })),
    Pipeline.named("orders")
  )
}

const runWith = (pipeline: ReturnType<typeof filesPipeline>, options: Lineage.LineageOptions, runId?: string) =>
  Effect.gen(function* () {
    const logs: Array<{ readonly level: string; readonly message: string }> = []
    const logger = Logger.make((o) => {
      const parts = Array.isArray(o.message) ? o.message : [o.message]
      logs.push({ level: o.logLevel, message: parts.map(String).join(" ") })
    })
    const { report } = yield* Runner.execute(pipeline, runId === undefined ? undefined : { runId }).pipe(
      Effect.provide(NodeFileStore.layer),
      Effect.provideService(RunObservers, [Lineage.observer(options)]),
      Effect.provide(Logger.layer([logger]))
    )
    return { report, logs }
  })

const dataset = (event: Json, key: "inputs" | "outputs", i: number) => (event[key] as Array<Json>)[i]!

const assertCounts = (complete: Json, report: RunReport, dir: string) => {
  const input = dataset(complete, "inputs", 0)
  assert.strictEqual(input.namespace, "file")
  assert.strictEqual(input.name, nodePath.join(dir, "orders.jsonl"))
  assert.deepStrictEqual((input.facets as Json).schema, {
    _producer: Lineage.producer,
    _schemaURL: "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    fields: [
      { name: "id", type: "number" },
      { name: "amount", type: "number" }
    ]
  })
  const read = (input.inputFacets as Json).inputStatistics as Json
  assert.strictEqual(read.rowCount, report.records.read)
  assert.strictEqual(read.size, report.stages[0]!.bytes)
  const output = dataset(complete, "outputs", 0)
  assert.deepStrictEqual([output.namespace, output.name], ["file", nodePath.join(dir, "out")])
  const stats = (output.outputFacets as Json).outputStatistics as Json
  assert.strictEqual(stats.rowCount, report.records.written)
  assert.strictEqual(stats.fileCount, 1)
  assert.isAbove(stats.size as number, 0)
  const dead = dataset(complete, "outputs", 1)
  assert.deepStrictEqual([dead.namespace, dead.name], ["file", nodePath.join(dir, "dead")])
  assert.strictEqual(((dead.outputFacets as Json).outputStatistics as Json).rowCount, report.records.deadLettered)
}

describe("OpenLineage events", () => {
  it.live("a successful run sends START then COMPLETE over HTTP, with its datasets and the RunReport's counts", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* receiver(200)
      const { report, logs } = yield* runWith(filesPipeline(dir, "orders.jsonl"), {
        url: `${server.url}/`,
        namespace: "team-a",
        apiKey: Redacted.make("k3y-abc")
      })
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [4, 2, 1])
      assert.deepStrictEqual(
        server.received.map((r) => [r.path, r.authorization, r.contentType, r.body.eventType]),
        [
          ["/api/v1/lineage", "Bearer k3y-abc", "application/json", "START"],
          ["/api/v1/lineage", "Bearer k3y-abc", "application/json", "COMPLETE"]
        ]
      )
      const [start, complete] = [server.received[0]!.body, server.received[1]!.body]
      for (const event of [start, complete]) {
        assert.deepStrictEqual(problems(event), [])
        assert.strictEqual(event.schemaURL, "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")
        assert.match(event.producer as string, /^https:\/\/www\.npmjs\.com\/package\/effect-etl\/v\/\d+\.\d+\.\d+/)
        assert.deepStrictEqual(
          { namespace: (event.job as Json).namespace, name: (event.job as Json).name },
          { namespace: "team-a", name: "orders" }
        )
        assert.strictEqual((event.run as Json).runId, report.runId)
      }
      assert.isUndefined(dataset(start, "inputs", 0).inputFacets)
      assert.isUndefined(dataset(start, "outputs", 0).outputFacets)
      assert.strictEqual((start.outputs as Array<Json>).length, 2)
      assertCounts(complete, report, dir)
      assert.isAtMost(Date.parse(start.eventTime as string), Date.parse(complete.eventTime as string))
      assert.deepStrictEqual(
        logs.filter((l) => l.message.startsWith("lineage")),
        []
      )
    })
  )

  it.live("a failed run sends START then FAIL with its error message", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* receiver(201)
      const { report } = yield* runWith(filesPipeline(dir, "missing-*.jsonl"), { url: server.url, namespace: "team-a" })
      assert.strictEqual(report.status, "failed")
      assert.deepStrictEqual(
        server.received.map((r) => [r.body.eventType, r.authorization]),
        [
          ["START", undefined],
          ["FAIL", undefined]
        ]
      )
      const fail = server.received[1]!.body
      assert.deepStrictEqual(problems(fail), [])
      const error = ((fail.run as Json).facets as Json).errorMessage as Json
      assert.strictEqual(error.message, report.error?.message)
      assert.include(error.message as string, "No files match")
      assert.strictEqual(error.programmingLanguage, "TypeScript")
      assert.isUndefined(dataset(fail, "outputs", 0).outputFacets)
    })
  )

  it.live("the file transport appends one JSON line per event; a run id that is not a UUID becomes a stable one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = nodePath.join(dir, "lineage", "events.jsonl")
      const { report } = yield* runWith(
        filesPipeline(dir, "orders.jsonl"),
        { file, namespace: "team-b", jobName: "nightly-orders" },
        "nightly-2026-12-04"
      )
      const events = fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Json)
      assert.deepStrictEqual(
        events.map((e) => e.eventType),
        ["START", "COMPLETE"]
      )
      for (const event of events) {
        assert.deepStrictEqual(problems(event), [])
        assert.strictEqual((event.job as Json).name, "nightly-orders")
        assert.strictEqual((event.run as Json).runId, Lineage.runUuid("nightly-2026-12-04"))
      }
      assert.match(
        Lineage.runUuid("nightly-2026-12-04"),
        /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
      )
      assert.notStrictEqual(Lineage.runUuid("nightly-2026-12-04"), Lineage.runUuid("nightly-2026-12-05"))
      assertCounts(events[1]!, report, dir)
    })
  )

  it.live("a lineage server that refuses or fails leaves the run succeeded and logs a warning without the key", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const port = yield* closedPort
      const refused = yield* runWith(filesPipeline(dir, "orders.jsonl"), {
        url: `http://user:pa55word@127.0.0.1:${port}`,
        namespace: "team-a",
        apiKey: Redacted.make("k3y-abc")
      })
      assert.strictEqual(refused.report.status, "succeeded")
      const refusedWarnings = refused.logs.filter((l) => l.message.startsWith("lineage"))
      assert.deepStrictEqual(
        refusedWarnings.map((l) => l.level),
        ["Warn", "Warn"]
      )
      assert.include(refusedWarnings[0]!.message, `START event to http://127.0.0.1:${port}/api/v1/lineage`)
      assert.include(refusedWarnings[0]!.message, "ECONNREFUSED")

      const server = yield* receiver(500)
      const failing = yield* runWith(filesPipeline(dir, "orders.jsonl"), {
        url: server.url,
        namespace: "team-a",
        apiKey: Redacted.make("k3y-abc")
      })
      assert.strictEqual(failing.report.status, "succeeded")
      assert.strictEqual(server.received.length, 2)
      const failingWarnings = failing.logs.filter((l) => l.message.startsWith("lineage"))
      assert.strictEqual(failingWarnings.length, 2)
      assert.include(failingWarnings[1]!.message, "COMPLETE event")
      assert.include(failingWarnings[1]!.message, "HTTP 500")
      for (const line of [...refused.logs, ...failing.logs]) {
        assert.notInclude(line.message, "k3y-abc")
        assert.notInclude(line.message, "pa55word")
      }
    })
  )

  it.live("credentials in the URL are sent as Basic authorization, never in the request URL", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* receiver(200)
      const { report } = yield* runWith(filesPipeline(dir, "orders.jsonl"), {
        url: server.url.replace("http://", "http://lineage:s%40cret@"),
        namespace: "team-a"
      })
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual(
        server.received.map((r) => [r.path, r.authorization]),
        [
          ["/api/v1/lineage", `Basic ${Buffer.from("lineage:s@cret").toString("base64")}`],
          ["/api/v1/lineage", `Basic ${Buffer.from("lineage:s@cret").toString("base64")}`]
        ]
      )
    })
  )

  it("a streaming run is a STREAMING job; stages without a dataset are left out, a joined table is an input", () => {
    const event = Lineage.event(
      "START",
      {
        runId: "0d7d7d0e-8a5b-4c7e-9a37-3c1f3b0b8f11",
        pipeline: "enrich",
        startedAt: "2026-12-04T00:00:00.000Z",
        streaming: true,
        stages: [
          { name: "events", kind: "source", description: "memory", cardinality: "one-to-one" },
          {
            name: "users",
            kind: "transform",
            description: "join users",
            cardinality: "one-to-many",
            dataset: { namespace: "postgres://db:5432", name: "app.public.users" }
          },
          {
            name: "out",
            kind: "sink",
            description: "topic",
            cardinality: "one-to-one",
            dataset: { namespace: "kafka://k:9092", name: "enriched", fields: [{ name: "id", type: "unknown" }] }
          }
        ]
      },
      { namespace: "etl", eventTime: "2026-12-04T00:00:00.000Z" }
    )
    assert.deepStrictEqual(problems(event), [])
    assert.strictEqual(((event.job.facets as Json).jobType as Json).processingType, "STREAMING")
    assert.deepStrictEqual(event.inputs, [{ namespace: "postgres://db:5432", name: "app.public.users" }])
    assert.deepStrictEqual(((event.outputs[0]!.facets as Json).schema as Json).fields, [{ name: "id" }])
  })
})
