/**
 * Observability settings: the optional `observability` block of a pipeline config (OTLP export, a Prometheus endpoint,
 * OpenLineage events, span sampling), and {@link resolve}, which merges it with the command-line flags and the standard
 * environment variables into the options of `Export.layer` and the lineage observer.
 *
 * Precedence, field by field: a command-line flag, then the config block, then the environment
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` and the signals' own `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
 * `_METRICS_ENDPOINT` / `_LOGS_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_EXPORTER_OTLP_COMPRESSION`, `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` /
 * `OTEL_LOGS_EXPORTER`, `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT`, `OPENLINEAGE_URL`, `OPENLINEAGE_API_KEY`,
 * `OPENLINEAGE_NAMESPACE`). The `OTEL_*_EXPORTER` variables switch signals: `none` turns one off, and `prometheus` in
 * `OTEL_METRICS_EXPORTER` serves the metrics on a Prometheus endpoint.
 */
import * as Data from "effect/Data"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { durationString, millisOf, NonEmpty } from "../core/ConfigFields.ts"
import * as Export from "../observability/Export.ts"
import type { LineageOptions } from "../observability/Lineage.ts"

const isHttpUrl = (text: string): boolean => {
  if (!URL.canParse(text)) return false
  const url = new URL(text)
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
}

/** An http(s) URL. */
const HttpUrl = Schema.String.check(
  Schema.makeFilter((s: string) => (isHttpUrl(s) ? undefined : "Expected an http:// or https:// URL"), {
    toJsonSchema: () => [{ pattern: "^https?://" }, true]
  })
)

const Port = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(0),
  Schema.isLessThanOrEqualTo(65535, { message: "Expected a port from 0 to 65535" })
)

const protocols = ["http/protobuf", "http/json"] as const

/** The `otlp` part of the block. */
export const OtlpConfig = Schema.Struct({
  endpoint: HttpUrl.annotate({
    description:
      'The collector\'s OTLP/HTTP base URL, e.g. "http://127.0.0.1:4318": traces go to /v1/traces, metrics to /v1/metrics, logs to /v1/logs'
  }),
  protocol: Schema.optionalKey(
    Schema.Literals(protocols).annotate({ description: 'The encoding: "http/protobuf" (default) or "http/json"' })
  ),
  headers: Schema.optionalKey(
    Schema.Record(Schema.String, Schema.String).annotate({
      description:
        'Headers sent with every export, e.g. {"Authorization": {"$secret": "otlp-token"}}; values are never logged'
    })
  ),
  service_name: Schema.optionalKey(
    NonEmpty.annotate({ description: 'The service.name resource attribute (default "effect-etl")' })
  ),
  compression: Schema.optionalKey(
    Schema.Literals(["gzip", "none"]).annotate({
      description: 'Compress each export request with gzip (default "none"; $OTEL_EXPORTER_OTLP_COMPRESSION)'
    })
  ),
  export_interval: Schema.optionalKey(
    durationString({ max: "1 hour", positive: true }).annotate({
      description:
        'How often metrics and spans are sent while the run goes on (default "10 seconds" for metrics, "5 seconds" for spans); what is left is sent when the run ends'
    })
  )
}).annotate({ description: "Send the run's traces, metrics and logs to an OpenTelemetry collector over OTLP/HTTP" })

/** The `prometheus` part of the block. */
export const PrometheusConfig = Schema.Struct({
  port: Port.annotate({ description: "The port of the metrics endpoint (0: any free port, logged at start)" }),
  host: Schema.optionalKey(
    NonEmpty.annotate({ description: 'The address to listen on (default "127.0.0.1"; "0.0.0.0" for every interface)' })
  ),
  path: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^\/\S*$/u, { message: 'Expected a path starting with "/"' })).annotate({
      description: 'The path of the metrics (default "/metrics"); other paths answer 404'
    })
  )
}).annotate({ description: "Serve the run's metrics in Prometheus text format for as long as it runs" })

/** The `lineage` part of the block. */
export const LineageConfig = Schema.Struct({
  url: Schema.optionalKey(
    HttpUrl.annotate({
      description: 'The OpenLineage endpoint\'s base URL, e.g. "http://marquez:5000" (events go to /api/v1/lineage)'
    })
  ),
  file: Schema.optionalKey(
    NonEmpty.annotate({ description: "A file the OpenLineage events are appended to, one JSON object per line" })
  ),
  namespace: Schema.optionalKey(
    NonEmpty.annotate({ description: 'The OpenLineage job namespace (default $OPENLINEAGE_NAMESPACE, else "default")' })
  ),
  api_key: Schema.optionalKey(
    NonEmpty.annotate({ description: 'Sent as a Bearer token, e.g. {"$secret": "lineage-key"}; never logged' })
  )
}).annotate({ description: "Send OpenLineage START/COMPLETE/FAIL events for each run" })

/** The `traces` part of the block. */
export const TracesConfig = Schema.Struct({
  batch_sample_rate: Schema.optionalKey(
    Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })).annotate({
      description:
        "The fraction (0..1) of batches that get their own spans (default 0.01); the run, attempt and commit spans are always sent"
    })
  )
}).annotate({ description: "Which spans are sent" })

/** The `observability` block of a pipeline config. */
export const ObservabilityConfig = Schema.Struct({
  otlp: Schema.optionalKey(OtlpConfig),
  prometheus: Schema.optionalKey(PrometheusConfig),
  lineage: Schema.optionalKey(LineageConfig),
  traces: Schema.optionalKey(TracesConfig)
}).annotate({
  description:
    "Where the run's traces, metrics, logs and lineage go; command-line flags override it, and it overrides the OTEL_* and OPENLINEAGE_* environment variables"
})

/** A decoded `observability` block. */
export type ObservabilityConfig = typeof ObservabilityConfig.Type

/** The observability flags of `effect-etl run`; absent when not given. */
export interface ObservabilityFlags {
  readonly otlpEndpoint?: string | undefined
  readonly otlpProtocol?: string | undefined
  readonly prometheusPort?: number | undefined
  readonly prometheusHost?: string | undefined
  readonly lineageUrl?: string | undefined
  readonly lineageFile?: string | undefined
}

/** Settings that cannot be used; the message names the flag, config field or environment variable. */
export class ObservabilityConfigError extends Data.TaggedError("ObservabilityConfigError")<{
  readonly message: string
}> {}

type Env = Readonly<Record<string, string | undefined>>

const given = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value.trim()

/** A list of `key=value` pairs separated by commas, values percent-encoded (the OTEL_* format). */
const parsePairs = (text: string): Record<string, string> | undefined => {
  const out: Record<string, string> = {}
  for (const part of text.split(",")) {
    if (part.trim() === "") continue
    const at = part.indexOf("=")
    if (at <= 0) return undefined
    const key = part.slice(0, at).trim()
    try {
      out[key] = decodeURIComponent(part.slice(at + 1).trim())
    } catch {
      return undefined
    }
  }
  return out
}

const exporters = (env: Env, name: string, allowed: ReadonlyArray<string>) => {
  const raw = given(env[name])
  const list = raw === undefined ? ["otlp"] : raw.split(",").map((s) => s.trim().toLowerCase())
  const bad = list.find((v) => !allowed.includes(v))
  return bad === undefined
    ? Result.succeed(new Set(list))
    : Result.fail(`${name}: "${bad}" is not supported (expected ${allowed.map((a) => `"${a}"`).join(", ")})`)
}

/**
 * The observability options of a run, from the command-line flags, the config's `observability` block and the
 * environment (in that order of precedence). Pure: pass `process.env` as `env`. A bad value fails with a message
 * naming where it came from; a secret (a header, an API key) never appears in one.
 */
export const resolve = (
  flags: ObservabilityFlags,
  config: ObservabilityConfig | undefined,
  env: Env
): Result.Result<Export.ObservabilityOptions, ObservabilityConfigError> => {
  const problems: Array<string> = []

  // OTLP
  const traces = exporters(env, "OTEL_TRACES_EXPORTER", ["otlp", "none"])
  const metrics = exporters(env, "OTEL_METRICS_EXPORTER", ["otlp", "prometheus", "none"])
  const logs = exporters(env, "OTEL_LOGS_EXPORTER", ["otlp", "none"])
  for (const r of [traces, metrics, logs]) if (Result.isFailure(r)) problems.push(r.failure)
  const on = (r: Result.Result<Set<string>, string>, what: string) => Result.isSuccess(r) && r.success.has(what)

  const endpointFlag = given(flags.otlpEndpoint)
  const endpointEnv = given(env.OTEL_EXPORTER_OTLP_ENDPOINT)
  if (endpointFlag !== undefined && !isHttpUrl(endpointFlag))
    problems.push(`--otlp-endpoint: expected an http:// or https:// URL, got ${JSON.stringify(endpointFlag)}`)
  if (endpointFlag === undefined && config?.otlp === undefined && endpointEnv !== undefined && !isHttpUrl(endpointEnv))
    problems.push(
      `OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL, got ${JSON.stringify(endpointEnv)}`
    )
  const endpoint = endpointFlag ?? config?.otlp?.endpoint ?? endpointEnv
  // A signal's own variable (a full URL) wins over OTEL_EXPORTER_OTLP_ENDPOINT, never over a flag or the config.
  const signalEndpoints: Partial<Record<"traces" | "metrics" | "logs", string>> = {}
  if (endpointFlag === undefined && config?.otlp?.endpoint === undefined)
    for (const signal of ["traces", "metrics", "logs"] as const) {
      const name = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`
      const value = given(env[name])
      if (value === undefined) continue
      if (isHttpUrl(value)) signalEndpoints[signal] = value
      else problems.push(`${name}: expected an http:// or https:// URL, got ${JSON.stringify(value)}`)
    }

  const compressionEnv = given(env.OTEL_EXPORTER_OTLP_COMPRESSION)?.toLowerCase()
  const compression = config?.otlp?.compression ?? compressionEnv ?? "none"
  if (compression !== "gzip" && compression !== "none")
    problems.push(`OTEL_EXPORTER_OTLP_COMPRESSION: expected "gzip" or "none", got ${JSON.stringify(compression)}`)

  const protocolFlag = given(flags.otlpProtocol)
  const protocolEnv = given(env.OTEL_EXPORTER_OTLP_PROTOCOL)
  const protocolOf = (value: string, where: string): Export.OtlpProtocol | undefined => {
    if ((protocols as ReadonlyArray<string>).includes(value)) return value as Export.OtlpProtocol
    problems.push(
      `${where}: ${JSON.stringify(value)} is not supported (expected "http/protobuf" or "http/json"${value === "grpc" ? "; gRPC export is not available, use the collector's HTTP port, usually 4318" : ""})`
    )
    return undefined
  }
  const protocol =
    protocolFlag !== undefined
      ? protocolOf(protocolFlag, "--otlp-protocol")
      : (config?.otlp?.protocol ??
        (protocolEnv !== undefined ? protocolOf(protocolEnv, "OTEL_EXPORTER_OTLP_PROTOCOL") : "http/protobuf"))

  const headersEnv = given(env.OTEL_EXPORTER_OTLP_HEADERS)
  const envHeaders = headersEnv === undefined ? {} : parsePairs(headersEnv)
  if (envHeaders === undefined)
    problems.push("OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas (values URL-encoded)")
  const headers: Record<string, Redacted.Redacted<string>> = {}
  for (const [k, v] of Object.entries({ ...envHeaders, ...config?.otlp?.headers })) headers[k] = Redacted.make(v)

  const attributesEnv = given(env.OTEL_RESOURCE_ATTRIBUTES)
  const resourceAttributes = attributesEnv === undefined ? {} : parsePairs(attributesEnv)
  if (resourceAttributes === undefined)
    problems.push("OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs separated by commas (values URL-encoded)")
  const serviceName =
    config?.otlp?.service_name ??
    given(env.OTEL_SERVICE_NAME) ??
    given(resourceAttributes?.["service.name"]) ??
    "effect-etl"

  const intervalEnv = given(env.OTEL_METRIC_EXPORT_INTERVAL)
  let exportInterval: number | undefined =
    config?.otlp?.export_interval === undefined ? undefined : millisOf(config.otlp.export_interval)
  if (exportInterval === undefined && intervalEnv !== undefined) {
    const ms = Number(intervalEnv)
    if (Number.isInteger(ms) && ms > 0) exportInterval = ms
    else
      problems.push(`OTEL_METRIC_EXPORT_INTERVAL: expected milliseconds above zero, got ${JSON.stringify(intervalEnv)}`)
  }

  // A signal is sent when its exporter is on and it has somewhere to go.
  const reachable = (signal: "traces" | "metrics" | "logs") =>
    endpoint !== undefined || signalEndpoints[signal] !== undefined
  const signals = {
    traces: on(traces, "otlp") && reachable("traces"),
    metrics: on(metrics, "otlp") && reachable("metrics"),
    logs: on(logs, "otlp") && reachable("logs")
  }
  const otlp =
    signals.traces || signals.metrics || signals.logs
      ? Export.otlp({
          endpoint: endpoint ?? "",
          signalEndpoints,
          compression: compression === "gzip" ? "gzip" : "none",
          protocol: protocol ?? "http/protobuf",
          headers,
          serviceName,
          resourceAttributes: resourceAttributes ?? {},
          exportInterval: exportInterval === undefined ? undefined : `${exportInterval} millis`,
          ...signals
        })
      : undefined

  // Prometheus
  const portFlag = flags.prometheusPort
  if (portFlag !== undefined && !(Number.isInteger(portFlag) && portFlag >= 0 && portFlag <= 65535))
    problems.push(`--prometheus-port: expected a port from 0 to 65535, got ${portFlag}`)
  const hostFlag = given(flags.prometheusHost)
  let envPort: number | undefined
  const envPrometheus = on(metrics, "prometheus")
  if (envPrometheus) {
    const raw = given(env.OTEL_EXPORTER_PROMETHEUS_PORT)
    envPort = raw === undefined ? 9464 : Number(raw)
    if (!(Number.isInteger(envPort) && envPort >= 0 && envPort <= 65535))
      problems.push(`OTEL_EXPORTER_PROMETHEUS_PORT: expected a port from 0 to 65535, got ${JSON.stringify(raw)}`)
  }
  const port = portFlag ?? config?.prometheus?.port ?? envPort
  if (port === undefined && hostFlag !== undefined)
    problems.push("--prometheus-host: needs --prometheus-port (or a prometheus block with a port in the config)")
  const prometheus =
    port === undefined
      ? undefined
      : Export.prometheus({
          port,
          host:
            hostFlag ??
            config?.prometheus?.host ??
            (envPrometheus ? given(env.OTEL_EXPORTER_PROMETHEUS_HOST) : undefined) ??
            "127.0.0.1",
          path: config?.prometheus?.path ?? "/metrics"
        })

  // Lineage: the destination (URL and/or file) is taken whole from the first place that names one.
  const urlFlag = given(flags.lineageUrl)
  const fileFlag = given(flags.lineageFile)
  if (urlFlag !== undefined && !isHttpUrl(urlFlag))
    problems.push(`--lineage-url: expected an http:// or https:// URL, got ${JSON.stringify(urlFlag)}`)
  const urlEnv = given(env.OPENLINEAGE_URL)
  const fromEnv =
    urlFlag === undefined &&
    fileFlag === undefined &&
    config?.lineage?.url === undefined &&
    config?.lineage?.file === undefined
  const destination =
    urlFlag !== undefined || fileFlag !== undefined
      ? { url: urlFlag, file: fileFlag }
      : fromEnv
        ? { url: urlEnv, file: undefined }
        : { url: config?.lineage?.url, file: config?.lineage?.file }
  if (fromEnv && urlEnv !== undefined && !isHttpUrl(urlEnv))
    problems.push(`OPENLINEAGE_URL: expected an http:// or https:// URL, got ${JSON.stringify(urlEnv)}`)
  const apiKey = config?.lineage?.api_key ?? given(env.OPENLINEAGE_API_KEY)
  const lineage: LineageOptions | undefined =
    destination.url === undefined && destination.file === undefined
      ? undefined
      : {
          namespace: config?.lineage?.namespace ?? given(env.OPENLINEAGE_NAMESPACE) ?? "default",
          ...(destination.url === undefined ? {} : { url: destination.url }),
          ...(destination.file === undefined ? {} : { file: destination.file }),
          ...(apiKey === undefined ? {} : { apiKey: Redacted.make(apiKey) })
        }

  if (problems.length > 0) return Result.fail(new ObservabilityConfigError({ message: problems.join("; ") }))
  return Result.succeed({
    otlp,
    prometheus,
    lineage,
    batchSampleRate: config?.traces?.batch_sample_rate
  })
}

/** The values of the options that must be kept out of logs and errors (header values, the lineage API key). */
export const secretsOf = (options: Export.ObservabilityOptions): ReadonlyArray<string> => [
  ...Object.values(options.otlp?.headers ?? {}).map(Redacted.value),
  ...(options.lineage?.apiKey === undefined ? [] : [Redacted.value(options.lineage.apiKey)])
]
