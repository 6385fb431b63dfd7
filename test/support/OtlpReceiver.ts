/**
 * An OTLP/HTTP receiver for tests: a node:http server on 127.0.0.1 (a free port) taking POST /v1/traces, /v1/metrics
 * and /v1/logs in JSON or protobuf, gzip-compressed or not, the way a collector does. Protobuf bodies are decoded with
 * protobufjs from the OTLP message definitions in `otlp/otlp.proto`; both encodings end up as the same plain values:
 * spans, metrics with their data points, log records, ids as lowercase hex.
 *
 * It lives as long as the scope it was made in. `metric(name, attributes)` gives the latest value a metric was sent
 * with, so a test asserts on a value in one line.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as nodePath from "node:path"
import * as zlib from "node:zlib"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import protobuf from "protobufjs"

const root = protobuf.parse(fs.readFileSync(nodePath.join(import.meta.dirname, "otlp", "otlp.proto"), "utf8")).root
const requestTypes = {
  "/v1/traces": root.lookupType("opentelemetry.proto.ExportTraceServiceRequest"),
  "/v1/metrics": root.lookupType("opentelemetry.proto.ExportMetricsServiceRequest"),
  "/v1/logs": root.lookupType("opentelemetry.proto.ExportLogsServiceRequest")
} as const
type SignalPath = keyof typeof requestTypes

/** Attribute values as plain JavaScript values (int64 as numbers). */
export type Attributes = Record<string, unknown>

/** A received span. */
export interface ReceivedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  /** Undefined for a root span. */
  readonly parentSpanId: string | undefined
  readonly attributes: Attributes
  /** 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message: string | undefined }
  readonly resource: Attributes
}

/** A data point of a received metric: `value` for sums and gauges; count/sum for histograms and summaries. */
export interface ReceivedDataPoint {
  readonly attributes: Attributes
  readonly value: number | undefined
  readonly count: number | undefined
  readonly sum: number | undefined
  readonly timeUnixNano: string
}

/** A received metric (one per export request it came in). */
export interface ReceivedMetric {
  readonly name: string
  readonly kind: "sum" | "gauge" | "histogram" | "exponentialHistogram" | "summary" | "unknown"
  readonly unit: string | undefined
  readonly dataPoints: ReadonlyArray<ReceivedDataPoint>
  readonly resource: Attributes
}

/** A received log record. */
export interface ReceivedLog {
  readonly body: unknown
  readonly severityText: string | undefined
  readonly traceId: string | undefined
  readonly spanId: string | undefined
  readonly attributes: Attributes
  readonly resource: Attributes
}

/** A request the receiver took. */
export interface ReceivedRequest {
  readonly path: string
  readonly contentType: string
  readonly gzip: boolean
  readonly headers: http.IncomingHttpHeaders
}

/** A running receiver. */
export interface OtlpReceiver {
  /** The base URL to export to, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  readonly requests: ReadonlyArray<ReceivedRequest>
  readonly spans: ReadonlyArray<ReceivedSpan>
  readonly metrics: ReadonlyArray<ReceivedMetric>
  readonly logs: ReadonlyArray<ReceivedLog>
  /** The spans named `name`. */
  readonly spansNamed: (name: string) => ReadonlyArray<ReceivedSpan>
  /**
   * The latest data point of the metric named `name` whose attributes include `attributes`: its value (sum, gauge) or
   * its count (histogram, summary); undefined when none came.
   */
  readonly metric: (name: string, attributes?: Attributes) => number | undefined
  /** The latest data point of that metric, whole. */
  readonly dataPoint: (name: string, attributes?: Attributes) => ReceivedDataPoint | undefined
  /** Forgets everything received so far. */
  readonly clear: () => void
}

type Json = Record<string, unknown>

const hex = (value: unknown): string | undefined => {
  if (typeof value === "string") return value === "" ? undefined : value.toLowerCase()
  if (value instanceof Uint8Array) return value.length === 0 ? undefined : Buffer.from(value).toString("hex")
  return undefined
}

const num = (value: unknown): number | undefined =>
  typeof value === "number" ? value : typeof value === "string" && value !== "" ? Number(value) : undefined

const anyValue = (value: unknown): unknown => {
  if (value === null || typeof value !== "object") return undefined
  const v = value as Json
  if ("stringValue" in v) return v.stringValue
  if ("boolValue" in v) return v.boolValue
  if ("intValue" in v) return num(v.intValue)
  if ("doubleValue" in v) return num(v.doubleValue)
  if ("arrayValue" in v) return (((v.arrayValue as Json).values ?? []) as Array<unknown>).map(anyValue)
  if ("kvlistValue" in v) return attributes((v.kvlistValue as Json).values)
  if ("bytesValue" in v) return v.bytesValue
  return undefined
}

const attributes = (list: unknown): Attributes => {
  const out: Attributes = {}
  for (const kv of (list ?? []) as Array<Json>) out[kv.key as string] = anyValue(kv.value)
  return out
}

const matches = (have: Attributes, want: Attributes | undefined) =>
  want === undefined || Object.entries(want).every(([k, v]) => have[k] === v)

const decodeBody = (path: SignalPath, contentType: string, body: Buffer): Json => {
  if (contentType.startsWith("application/json")) return JSON.parse(body.toString("utf8")) as Json
  const type = requestTypes[path]
  return type.toObject(type.decode(body), { longs: String, enums: Number, defaults: false, oneofs: false }) as Json
}

const readBody = (request: http.IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks)))
    request.on("error", reject)
  })

/** Starts a receiver for the life of the current scope. */
export const make: Effect.Effect<OtlpReceiver, never, Scope.Scope> = Effect.gen(function* () {
  const requests: Array<ReceivedRequest> = []
  const spans: Array<ReceivedSpan> = []
  const metrics: Array<ReceivedMetric> = []
  const logs: Array<ReceivedLog> = []

  const take = (path: SignalPath, data: Json) => {
    if (path === "/v1/traces")
      for (const rs of (data.resourceSpans ?? []) as Array<Json>) {
        const resource = attributes((rs.resource as Json | undefined)?.attributes)
        for (const ss of (rs.scopeSpans ?? []) as Array<Json>)
          for (const s of (ss.spans ?? []) as Array<Json>) {
            const status = (s.status ?? {}) as Json
            spans.push({
              name: s.name as string,
              traceId: hex(s.traceId) ?? "",
              spanId: hex(s.spanId) ?? "",
              parentSpanId: hex(s.parentSpanId),
              attributes: attributes(s.attributes),
              status: { code: num(status.code) ?? 0, message: (status.message as string | undefined) || undefined },
              resource
            })
          }
      }
    else if (path === "/v1/metrics")
      for (const rm of (data.resourceMetrics ?? []) as Array<Json>) {
        const resource = attributes((rm.resource as Json | undefined)?.attributes)
        for (const sm of (rm.scopeMetrics ?? []) as Array<Json>)
          for (const m of (sm.metrics ?? []) as Array<Json>) {
            const kind = (["sum", "gauge", "histogram", "exponentialHistogram", "summary"] as const).find(
              (k) => m[k] !== undefined
            )
            const points = kind === undefined ? [] : (((m[kind] as Json).dataPoints ?? []) as Array<Json>)
            metrics.push({
              name: m.name as string,
              kind: kind ?? "unknown",
              unit: (m.unit as string | undefined) || undefined,
              resource,
              dataPoints: points.map((p) => ({
                attributes: attributes(p.attributes),
                value: num(p.asDouble) ?? num(p.asInt),
                count: num(p.count),
                sum: num(p.sum),
                timeUnixNano: String(p.timeUnixNano ?? "")
              }))
            })
          }
      }
    else
      for (const rl of (data.resourceLogs ?? []) as Array<Json>) {
        const resource = attributes((rl.resource as Json | undefined)?.attributes)
        for (const sl of (rl.scopeLogs ?? []) as Array<Json>)
          for (const l of (sl.logRecords ?? []) as Array<Json>)
            logs.push({
              body: anyValue(l.body),
              severityText: (l.severityText as string | undefined) || undefined,
              traceId: hex(l.traceId),
              spanId: hex(l.spanId),
              attributes: attributes(l.attributes),
              resource
            })
      }
  }

  const handle = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    const path = (request.url ?? "").split("?")[0] ?? ""
    if (request.method !== "POST" || !(path in requestTypes)) {
      response.writeHead(404).end()
      return
    }
    const raw = await readBody(request)
    const gzip = request.headers["content-encoding"] === "gzip"
    const body = gzip ? zlib.gunzipSync(raw) : raw
    const contentType = request.headers["content-type"] ?? ""
    requests.push({ path, contentType, gzip, headers: request.headers })
    const json = contentType.startsWith("application/json")
    try {
      take(path as SignalPath, decodeBody(path as SignalPath, contentType, body))
    } catch (cause) {
      response.writeHead(400, { "content-type": "text/plain" }).end(String(cause))
      return
    }
    response.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" })
    response.end(json ? "{}" : undefined)
  }

  const server = http.createServer((request, response) => {
    handle(request, response).catch(() => response.writeHead(500).end())
  })
  const port = yield* Effect.acquireRelease(
    Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    }),
    () =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

  const dataPoint = (name: string, want?: Attributes) => {
    for (let i = metrics.length - 1; i >= 0; i--) {
      const m = metrics[i]!
      if (m.name !== name) continue
      const points = m.dataPoints.filter((p) => matches(p.attributes, want))
      if (points.length > 0) return points[points.length - 1]
    }
    return undefined
  }

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans,
    metrics,
    logs,
    spansNamed: (name) => spans.filter((s) => s.name === name),
    dataPoint,
    metric: (name, want) => {
      const p = dataPoint(name, want)
      return p === undefined ? undefined : (p.value ?? p.count)
    },
    clear: () => {
      requests.length = 0
      spans.length = 0
      metrics.length = 0
      logs.length = 0
    }
  }
})
