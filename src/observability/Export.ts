/**
 * Telemetry export: one Layer, built from resolved options, that sends a run's traces, metrics and logs to an
 * OpenTelemetry collector over OTLP/HTTP (Effect's own exporters, `http/protobuf` or `http/json`) and serves its
 * metrics on a Prometheus `/metrics` endpoint, for as long as the layer's scope is open (a whole streaming run).
 *
 * Nothing is exported and nothing listens when no option is set. Export is best effort: a collector that is down or
 * refuses the data never fails the run (Effect's exporter retries, then pauses for a minute and logs at debug level),
 * and a Prometheus port that cannot be bound is a warning. When the scope closes, the OTLP exporters send what they
 * still hold (the last spans, the final metric values), waiting at most a few seconds.
 *
 * Header values are `Redacted`: they never appear in logs or errors.
 *
 * @example
 * ```ts
 * Runner.execute(pipeline).pipe(
 *   Effect.provide(Export.layer({ otlp: Export.otlp({ endpoint: "http://127.0.0.1:4318" }) }))
 * )
 * ```
 */
import * as http from "node:http"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as OtlpExporter from "effect/observability/OtlpExporter"
import * as OtlpLogger from "effect/observability/OtlpLogger"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as Redacted from "effect/Redacted"
import * as Spans from "../core/Spans.ts"
import type { LineageOptions } from "./Lineage.ts"

/** The OTLP/HTTP encodings: protobuf (OpenTelemetry's default) or JSON. */
export type OtlpProtocol = "http/protobuf" | "http/json"

/** Where and how to send OTLP data. */
export interface OtlpOptions {
  /** The collector's base URL, e.g. `http://127.0.0.1:4318`; signals go to `/v1/traces`, `/v1/metrics`, `/v1/logs`. */
  readonly endpoint: string
  readonly protocol: OtlpProtocol
  /** Sent with every request (e.g. `Authorization`); never logged. */
  readonly headers: Readonly<Record<string, Redacted.Redacted<string>>>
  /** `service.name` of the resource. */
  readonly serviceName: string
  /** More resource attributes (`OTEL_RESOURCE_ATTRIBUTES`). */
  readonly resourceAttributes: Readonly<Record<string, string>>
  /** How often metrics (and spans) are sent while the run goes on; Effect's defaults when absent (10 s, 5 s). */
  readonly exportInterval: Duration.Input | undefined
  /** Which signals are sent. */
  readonly traces: boolean
  readonly metrics: boolean
  readonly logs: boolean
  /** `gzip` compresses each request body (OTel's `OTEL_EXPORTER_OTLP_COMPRESSION`); `none` by default. */
  readonly compression: "gzip" | "none"
  /**
   * Full URLs of single signals (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, ...), used as they are instead of
   * `${endpoint}/v1/<signal>`.
   */
  readonly signalEndpoints: Readonly<Partial<Record<"traces" | "metrics" | "logs", string>>>
}

/** The Prometheus endpoint. */
export interface PrometheusOptions {
  /** 0 takes a free port (see {@link PrometheusServer}). */
  readonly port: number
  readonly host: string
  readonly path: string
}

/** Every observability setting of a run, resolved (see `resolve` in `config/ObservabilityConfig.ts`). */
export interface ObservabilityOptions {
  readonly otlp?: OtlpOptions | undefined
  readonly prometheus?: PrometheusOptions | undefined
  readonly lineage?: LineageOptions | undefined
  /** The fraction (0..1) of batches that get their own span (`Spans.BatchSpanRate`; left as it is when absent). */
  readonly batchSampleRate?: number | undefined
}

/** OTLP options with defaults for what is not given: protobuf, every signal, service `effect-etl`. */
export const otlp = (options: Partial<OtlpOptions> & { readonly endpoint: string }): OtlpOptions => ({
  protocol: "http/protobuf",
  headers: {},
  serviceName: "effect-etl",
  resourceAttributes: {},
  exportInterval: undefined,
  traces: true,
  metrics: true,
  logs: true,
  compression: "none",
  signalEndpoints: {},
  ...options
})

/** Prometheus options with defaults: host `127.0.0.1`, path `/metrics`. */
export const prometheus = (options: Partial<PrometheusOptions> & { readonly port: number }): PrometheusOptions => ({
  host: "127.0.0.1",
  path: "/metrics",
  ...options
})

/** The Prometheus endpoint of the layer in scope: its bound address, or `undefined` when there is none. */
export class PrometheusServer extends Context.Service<
  PrometheusServer,
  { readonly address: { readonly host: string; readonly port: number; readonly url: string } | undefined }
>()("effect-etl/observability/PrometheusServer") {}

/** The content type of Prometheus' text exposition format. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

const otlpLayer = (options: OtlpOptions): Layer.Layer<OtlpExporter.Flusher> => {
  const base = options.endpoint.replace(/\/+$/, "")
  const url = (signal: "traces" | "metrics" | "logs") => options.signalEndpoints[signal] ?? `${base}/v1/${signal}`
  const compression = options.compression
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(options.headers)) headers[name] = Redacted.value(value)
  const resource = { serviceName: options.serviceName, attributes: { ...options.resourceAttributes } }
  const signals: Array<
    Layer.Layer<OtlpExporter.Flusher, never, HttpClient.HttpClient | OtlpSerialization.OtlpSerialization>
  > = []
  if (options.traces)
    signals.push(
      OtlpTracer.layer({ url: url("traces"), resource, headers, compression, exportInterval: options.exportInterval })
    )
  if (options.metrics)
    signals.push(
      OtlpMetrics.layer({ url: url("metrics"), resource, headers, compression, exportInterval: options.exportInterval })
    )
  // Merged with the loggers already there: the JSON lines on stderr go on.
  if (options.logs)
    signals.push(OtlpLogger.layer({ url: url("logs"), resource, headers, compression, mergeWithExisting: true }))
  const [first, ...rest] = signals
  if (first === undefined) return OtlpExporter.layerFlusher
  const transport = Layer.merge(
    FetchHttpClient.layer,
    options.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf
  )
  return Layer.mergeAll(first, ...rest).pipe(Layer.provide(transport))
}

const listen = (server: http.Server, options: PrometheusOptions) =>
  Effect.callback<{ host: string; port: number } | Error>((resume) => {
    const onError = (error: Error) => resume(Effect.succeed(error))
    server.once("error", onError)
    server.listen(options.port, options.host, () => {
      server.off("error", onError)
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : options.port
      resume(Effect.succeed({ host: options.host, port }))
    })
  })

const close = (server: http.Server) =>
  Effect.callback<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })

const prometheusLayer = (options: PrometheusOptions): Layer.Layer<PrometheusServer> =>
  Layer.effect(
    PrometheusServer,
    Effect.gen(function* () {
      // The registry of the run: the metrics of the fibers this layer is provided to.
      const context = yield* Effect.context<never>()
      const server = http.createServer((request, response) => {
        const path = (request.url ?? "/").split("?")[0]
        if (path !== options.path) {
          response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found\n")
          return
        }
        if (request.method !== "GET" && request.method !== "HEAD") {
          response.writeHead(405, { allow: "GET, HEAD" }).end()
          return
        }
        const body = PrometheusMetrics.formatUnsafe(context)
        response.writeHead(200, { "content-type": prometheusContentType })
        response.end(request.method === "HEAD" ? undefined : body)
      })
      const bound = yield* Effect.acquireRelease(listen(server, options), (result) =>
        result instanceof Error ? Effect.void : close(server)
      )
      if (bound instanceof Error) {
        yield* Effect.logWarning(
          `Prometheus endpoint not started on ${options.host}:${options.port}: ${bound.message}; the run goes on without it`
        )
        return { address: undefined }
      }
      const host = bound.host.includes(":") ? `[${bound.host}]` : bound.host
      yield* Effect.logInfo(`Prometheus metrics at http://${host}:${bound.port}${options.path}`)
      return { address: { ...bound, url: `http://${host}:${bound.port}${options.path}` } }
    })
  )

/**
 * Installs what the options ask for: OTLP export of traces, metrics and logs, a Prometheus endpoint, the batch
 * sampling rate. Provide it around a run (`Effect.provide(Export.layer(options))`); its scope is the export's life.
 * Lineage is not installed here: it is a run observer (see `Lineage.observer`). `OtlpExporter.Flusher` sends what the
 * exporters hold now (a no-op without OTLP).
 */
export const layer = (options: ObservabilityOptions): Layer.Layer<PrometheusServer | OtlpExporter.Flusher> =>
  Layer.mergeAll(
    options.otlp === undefined ? OtlpExporter.layerFlusher : otlpLayer(options.otlp),
    options.prometheus === undefined
      ? Layer.succeed(PrometheusServer, { address: undefined })
      : prometheusLayer(options.prometheus),
    options.batchSampleRate === undefined ? Layer.empty : Layer.succeed(Spans.BatchSpanRate, options.batchSampleRate)
  )

/** Whether the options export or serve anything. */
export const isEnabled = (options: ObservabilityOptions): boolean =>
  options.otlp !== undefined || options.prometheus !== undefined || options.lineage !== undefined
