import * as http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Stream from "effect/Stream"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import * as Batch from "../../src/core/Batch.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Spans from "../../src/core/Spans.ts"
import { StopSignal } from "../../src/core/Stop.ts"
import * as Export from "../../src/observability/Export.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Runner from "../../src/runtime/Runner.ts"
import * as OtlpReceiver from "../support/OtlpReceiver.ts"

const pipeline = (name: string) =>
  Pipeline.from(
    Source.fromIterable(
      "numbers",
      Array.from({ length: 10 }, (_, i) => ({ n: i })),
      { batchSize: 3 }
    )
  ).pipe(
    Pipeline.map((r) => ({ n: r.n * 2 })),
    Pipeline.to(Sink.collect<{ readonly n: number }>("out"), { name })
  )

const testCounter = Metric.counter("etl_export_test_total", { description: "A counter the tests update" })

/** Runs the pipeline with the export layer, updating the test counter inside the run's scope. */
const runWith = (options: Export.ObservabilityOptions, name: string) =>
  Effect.gen(function* () {
    yield* Metric.update(Metric.withAttributes(testCounter, { test: name }), 7)
    return yield* Runner.execute(pipeline(name))
  }).pipe(Effect.provide(Export.layer(options)))

const get = (url: string) =>
  Effect.promise(
    () =>
      new Promise<{ status: number; contentType: string; body: string }>((resolve, reject) => {
        http
          .get(url, (response) => {
            const chunks: Array<Buffer> = []
            response.on("data", (c: Buffer) => chunks.push(c))
            response.on("end", () =>
              resolve({
                status: response.statusCode ?? 0,
                contentType: String(response.headers["content-type"] ?? ""),
                body: Buffer.concat(chunks).toString("utf8")
              })
            )
          })
          .on("error", reject)
      })
  )

const refused = (url: string) =>
  Effect.promise(
    () =>
      new Promise<boolean>((resolve) => {
        http.get(url, () => resolve(false)).on("error", () => resolve(true))
      })
  )

describe("Export", () => {
  for (const protocol of ["http/protobuf", "http/json"] as const)
    it.live(`sends the run's spans, logs and metrics to an OTLP collector (${protocol})`, () =>
      Effect.gen(function* () {
        const receiver = yield* OtlpReceiver.make
        const name = `otlp-${protocol.replace("/", "-")}`
        const { report } = yield* runWith(
          {
            otlp: Export.otlp({
              endpoint: receiver.url,
              protocol,
              serviceName: "export-test",
              headers: { authorization: Redacted.make("Bearer t0ken") }
            })
          },
          name
        )
        assert.strictEqual(report.status, "succeeded")

        const [run, ...more] = receiver.spansNamed("Pipeline.run")
        assert.isDefined(run)
        assert.lengthOf(more, 0)
        assert.strictEqual(run!.attributes.pipeline, name)
        assert.strictEqual(run!.attributes.runId, report.runId)
        assert.strictEqual(run!.resource["service.name"], "export-test")
        assert.match(run!.traceId, /^[0-9a-f]{32}$/)
        for (const span of receiver.spans) assert.strictEqual(span.traceId, run!.traceId)

        const started = receiver.logs.find((l) => l.body === `run started: ${name}`)
        assert.isDefined(started)
        assert.strictEqual(started!.traceId, run!.traceId)
        assert.isDefined(started!.spanId)

        assert.strictEqual(receiver.metric("etl_export_test_total", { test: name }), 7)
        assert.strictEqual(receiver.metric("etl_records_in_total", { run_id: report.runId, stage: "numbers" }), 10)
        assert.strictEqual(receiver.metric("etl_records_out_total", { run_id: report.runId, stage: "out" }), 10)

        const contentType = protocol === "http/json" ? "application/json" : "application/x-protobuf"
        assert.includeMembers(
          receiver.requests.map((r) => r.path),
          ["/v1/traces", "/v1/logs", "/v1/metrics"]
        )
        for (const request of receiver.requests) {
          assert.strictEqual(request.contentType, contentType)
          assert.strictEqual(request.headers.authorization, "Bearer t0ken")
        }
      }).pipe(Effect.scoped)
    )

  it.live("sends only the signals that are on", () =>
    Effect.gen(function* () {
      const receiver = yield* OtlpReceiver.make
      yield* runWith(
        { otlp: Export.otlp({ endpoint: receiver.url, traces: true, metrics: false, logs: false }) },
        "otlp-traces-only"
      )
      assert.deepStrictEqual([...new Set(receiver.requests.map((r) => r.path))], ["/v1/traces"])
    }).pipe(Effect.scoped)
  )

  it.live("gzips the bodies when asked, and sends a signal to its own URL", () =>
    Effect.gen(function* () {
      const receiver = yield* OtlpReceiver.make
      const other = yield* OtlpReceiver.make
      const { report } = yield* runWith(
        {
          otlp: Export.otlp({
            endpoint: receiver.url,
            compression: "gzip",
            logs: false,
            signalEndpoints: { metrics: `${other.url}/v1/metrics` }
          })
        },
        "otlp-gzip"
      )
      assert.deepStrictEqual([...new Set(receiver.requests.map((r) => r.path))], ["/v1/traces"])
      assert.isTrue(receiver.requests.every((r) => r.gzip))
      assert.strictEqual(receiver.spansNamed("Pipeline.run")[0]!.attributes.runId, report.runId)
      assert.deepStrictEqual([...new Set(other.requests.map((r) => r.path))], ["/v1/metrics"])
      assert.strictEqual(other.metric("etl_records_in_total", { run_id: report.runId, stage_kind: "source" }), 10)
    }).pipe(Effect.scoped)
  )

  it.live("a collector that is down does not fail the run", () =>
    Effect.gen(function* () {
      // A port that was free a moment ago: nothing listens there.
      const receiver = yield* Effect.scoped(OtlpReceiver.make)
      const { report, error } = yield* runWith(
        { otlp: Export.otlp({ endpoint: receiver.url, headers: { authorization: Redacted.make("Bearer s3cret") } }) },
        "otlp-down"
      )
      assert.strictEqual(report.status, "succeeded")
      assert.isUndefined(error)
    })
  )

  it.live("header values never reach the logs, even when export fails", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const capture = Logger.make((options) => {
        lines.push(`${JSON.stringify(options.message)} ${Cause.pretty(options.cause)}`)
      })
      const receiver = yield* Effect.scoped(OtlpReceiver.make)
      yield* runWith(
        {
          otlp: Export.otlp({
            endpoint: receiver.url,
            headers: { authorization: Redacted.make("Bearer s3cret-a"), "x-team-key": Redacted.make("s3cret-b") }
          })
        },
        "otlp-secrets"
      ).pipe(Effect.provide(Logger.layer([capture])), Effect.provideService(References.MinimumLogLevel, "All"))
      assert.isAbove(lines.length, 0)
      for (const line of lines) assert.notMatch(line, /s3cret/)
    })
  )

  it.live("serves the run's metrics in Prometheus text format while the layer is in scope", () =>
    Effect.gen(function* () {
      const { address } = yield* Export.PrometheusServer
      assert.isDefined(address)
      const { report } = yield* Runner.execute(pipeline("prometheus"))
      assert.strictEqual(report.status, "succeeded")
      yield* Metric.update(Metric.withAttributes(testCounter, { test: "prometheus" }), 5)

      const scrape = yield* get(address!.url)
      assert.strictEqual(scrape.status, 200)
      assert.strictEqual(scrape.contentType, Export.prometheusContentType)
      const families = parsePrometheusTextFormat(scrape.body)
      const family = families.find((f) => f.name === "etl_export_test_total")
      assert.isDefined(family)
      assert.strictEqual(family!.type, "COUNTER")
      const sample = family!.metrics.find((m) => "labels" in m && m.labels?.test === "prometheus")
      assert.isDefined(sample)
      assert.strictEqual(Number((sample as { value: string }).value), 5)

      const written = families
        .find((f) => f.name === "etl_records_out_total")
        ?.metrics.find((m) => m.labels?.run_id === report.runId && m.labels?.stage === "out")
      assert.isDefined(written)
      assert.strictEqual(Number((written as { value: string }).value), 10)

      const other = yield* get(`http://127.0.0.1:${address!.port}/other`)
      assert.strictEqual(other.status, 404)
    }).pipe(Effect.provide(Export.layer({ prometheus: Export.prometheus({ port: 0 }) })))
  )

  it.live("a streaming run can be scraped while it runs, and the endpoint goes when it stops", () =>
    Effect.gen(function* () {
      const queue = yield* Queue.unbounded<Batch.Batch<{ readonly n: number }>>()
      const source = Source.make<{ readonly n: number }>({
        name: "endless",
        type: "memory",
        description: "an endless queue",
        bounded: false,
        batches: () =>
          Stream.unwrap(
            Effect.map(Effect.service(StopSignal), (stop) => Stream.interruptWhen(Stream.fromQueue(queue), stop))
          )
      })
      const stop = yield* Deferred.make<void>()
      const server = yield* Deferred.make<{ readonly url: string }>()
      const run = yield* Effect.gen(function* () {
        const { address } = yield* Export.PrometheusServer
        yield* Deferred.succeed(server, address!)
        return yield* Runner.execute(
          Pipeline.from(source).pipe(Pipeline.to(Sink.collect<{ readonly n: number }>("out"), { name: "endless" }))
        )
      }).pipe(
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.provide(Export.layer({ prometheus: Export.prometheus({ port: 0 }) })),
        Effect.forkChild
      )
      const { url } = yield* Deferred.await(server)
      yield* Queue.offer(queue, Batch.make([{ n: 1 }, { n: 2 }, { n: 3 }]))
      const readSoFar = Effect.map(get(url), ({ body }) => {
        const family = parsePrometheusTextFormat(body).find((f) => f.name === "etl_records_in_total")
        const sample = family?.metrics.find((m) => m.labels?.pipeline === "endless" && m.labels?.stage === "endless")
        return sample === undefined ? 0 : Number((sample as { value: string }).value)
      })
      // Scrapes until the run has read the batch: the endpoint answers all along.
      let seen = yield* readSoFar
      while (seen < 3) {
        yield* Effect.sleep("20 millis")
        seen = yield* readSoFar
      }
      assert.strictEqual(seen, 3)
      yield* Deferred.succeed(stop, undefined)
      const { report } = yield* Fiber.join(run)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.written, 3)
      assert.isTrue(yield* refused(url))
    })
  )

  it.live("stops listening when the layer's scope closes", () =>
    Effect.gen(function* () {
      const address = yield* Effect.map(Effect.service(Export.PrometheusServer), (s) => s.address).pipe(
        Effect.provide(Export.layer({ prometheus: Export.prometheus({ port: 0, path: "/m" }) }))
      )
      assert.isDefined(address)
      assert.isTrue(address!.url.endsWith("/m"))
      assert.isTrue(yield* refused(address!.url))
    })
  )

  it.live("a port already taken is a warning, not a failed run", () =>
    Effect.gen(function* () {
      const first = yield* Export.PrometheusServer
      const port = first.address!.port
      const { address } = yield* Effect.service(Export.PrometheusServer).pipe(
        Effect.provide(Export.layer({ prometheus: Export.prometheus({ port }) }))
      )
      assert.isUndefined(address)
    }).pipe(Effect.provide(Export.layer({ prometheus: Export.prometheus({ port: 0 }) })))
  )

  it.live("sets the batch span rate when told", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Spans.BatchSpanRate, 0.5)
    }).pipe(Effect.provide(Export.layer({ batchSampleRate: 0.5 })))
  )

  it.live("installs nothing when nothing is configured", () =>
    Effect.gen(function* () {
      const { address } = yield* Export.PrometheusServer
      assert.isUndefined(address)
      const { report } = yield* Runner.execute(pipeline("nothing"))
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(yield* Spans.BatchSpanRate, 0.01)
    }).pipe(Effect.provide(Export.layer({})))
  )
})
