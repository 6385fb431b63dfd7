/**
 * OpenLineage events for every run: a run observer (see `runtime/Observers.ts`) that sends a `START` RunEvent when a
 * run starts and a `COMPLETE` or `FAIL` one when it ends (https://openlineage.io/docs/spec/object-model), so a lineage
 * server (Marquez, DataHub, OpenMetadata, ...) learns which datasets each pipeline reads and writes.
 *
 * - The job is `{namespace, name: pipeline}`; the run id is the run's UUID (a run id that is not one is turned into a
 *   UUID derived from it, the same every time, as the spec wants UUIDs).
 * - Inputs are the datasets the source (and any stage reading a dataset of its own) names; outputs are the sink's
 *   dataset and the dead-letter sink's when there is one. Each carries its fields (the `schema` facet) when known; the
 *   end event adds row counts from the RunReport (`inputStatistics`: records read, and bytes when the source tells
 *   them; `outputStatistics`: records written, with bytes and files when the sink tells them). A failed run's event carries its error (`errorMessage`).
 * - Transports: HTTP POST of the JSON event to `${url}/api/v1/lineage` (OpenLineage's HTTP transport, with
 *   `Authorization: Bearer <apiKey>` when a key is given, else Basic credentials when the URL has a user name, and a
 *   timeout), and/or one JSON line per event appended to
 *   `file`. A transport that fails never fails the run: it logs a warning naming the transport (never the key).
 *
 * @example
 * Pipeline.run(p).pipe(Effect.provideService(Observers.RunObservers, [Lineage.observer({ url: "http://marquez:5000", namespace: "etl" })]))
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { RunReport } from "../core/RunReport.ts"
import type { Dataset, StageInfo } from "../core/Stage.ts"
import type { RunFinished, RunObserver, RunStarted } from "../runtime/Observers.ts"
import * as Redaction from "../secrets/Redaction.ts"

/** Where lineage events go, and under which job namespace. */
export interface LineageOptions {
  /** The base URL of an OpenLineage HTTP endpoint (e.g. Marquez's `http://marquez:5000`); events go to `/api/v1/lineage`. */
  readonly url?: string | undefined
  /** A file that gets one JSON line per event. */
  readonly file?: string | undefined
  /** The job namespace (e.g. the team or the scheduler), OpenLineage's `job.namespace`. */
  readonly namespace: string
  /** Sent as `Authorization: Bearer <apiKey>` to `url`. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The job name (default: the pipeline's name). */
  readonly jobName?: string
  /** How long an HTTP request may take, in milliseconds (default 10,000). */
  readonly timeoutMs?: number | undefined
}

/** The OpenLineage RunEvent schema this module writes. */
export const schemaURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

const facetSchemas = {
  schema: "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
  inputStatistics:
    "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet",
  outputStatistics:
    "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
  errorMessage: "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
  jobType: "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
} as const

/** The package's version, read once from its package.json (next to `src/` and `dist/`). */
const version: string = Effect.runSync(
  Effect.try(
    () =>
      JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { readonly version?: unknown }
  ).pipe(
    Effect.map((pkg) => (typeof pkg.version === "string" ? pkg.version : "0.0.0")),
    Effect.orElseSucceed(() => "0.0.0")
  )
)

/** The `producer` of every event and facet: this package and its version. */
export const producer = `https://www.npmjs.com/package/effect-etl/v/${version}`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The run id as a UUID: a UUID stays as it is; any other text becomes a name-based UUID (version 5 layout, SHA-1 of
 * the text), so the same run id always gives the same UUID.
 */
export const runUuid = (runId: string): string => {
  if (UUID.test(runId)) return runId.toLowerCase()
  const bytes = createHash("sha1").update(`effect-etl/run/${runId}`).digest().subarray(0, 16)
  bytes[6] = (bytes[6]! & 0x0f) | 0x50
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** An OpenLineage RunEvent, as sent. */
export interface RunEvent {
  readonly eventType: "START" | "COMPLETE" | "FAIL"
  readonly eventTime: string
  readonly producer: string
  readonly schemaURL: string
  readonly run: { readonly runId: string; readonly facets?: Readonly<Record<string, unknown>> }
  readonly job: {
    readonly namespace: string
    readonly name: string
    readonly facets?: Readonly<Record<string, unknown>>
  }
  readonly inputs: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly outputs: ReadonlyArray<Readonly<Record<string, unknown>>>
}

const facet = (schema: string, fields: Readonly<Record<string, unknown>>) => ({
  _producer: producer,
  _schemaURL: schema,
  ...fields
})

const datasetOf = (dataset: Dataset, extra: Readonly<Record<string, unknown>>): Record<string, unknown> => ({
  namespace: dataset.namespace,
  name: dataset.name,
  ...(dataset.fields === undefined || dataset.fields.length === 0
    ? {}
    : {
        facets: {
          schema: facet(facetSchemas.schema, {
            // A field whose type is not known is named without one (the facet's type is optional).
            fields: dataset.fields.map((f) =>
              f.type === "unknown" ? { name: f.name } : { name: f.name, type: f.type }
            )
          })
        }
      }),
  ...extra
})

const statistics = (
  name: "inputStatistics" | "outputStatistics",
  counts: { readonly rowCount: number; readonly size?: number | undefined; readonly fileCount?: number | undefined }
) => ({
  [name]: facet(facetSchemas[name], {
    rowCount: counts.rowCount,
    ...(counts.size === undefined ? {} : { size: counts.size }),
    ...(counts.fileCount === undefined ? {} : { fileCount: counts.fileCount })
  })
})

/** Bytes and files a sink's result tells of (`details.bytes`, `details.files`), when it does. */
const sinkSizes = (result: { readonly details?: Readonly<Record<string, unknown>> | undefined } | undefined) => {
  const bytes = result?.details?.bytes
  const files = result?.details?.files
  return {
    ...(typeof bytes === "number" && Number.isInteger(bytes) ? { size: bytes } : {}),
    ...(Array.isArray(files) ? { fileCount: files.length } : {})
  }
}

const isInput = (stage: StageInfo) => stage.kind === "source" || stage.kind === "transform"

/**
 * The RunEvent of a run's start or end. With a report, inputs and outputs carry row counts; with an error message,
 * the run carries the `errorMessage` facet.
 */
export const event = (
  eventType: RunEvent["eventType"],
  run: RunStarted,
  options: {
    readonly namespace: string
    readonly jobName?: string | undefined
    readonly eventTime: string
    readonly report?: RunReport | undefined
    readonly errorMessage?: string | undefined
  }
): RunEvent => {
  const report = options.report
  const inputs: Array<Record<string, unknown>> = []
  const outputs: Array<Record<string, unknown>> = []
  for (const stage of run.stages) {
    if (stage.dataset === undefined) continue
    if (isInput(stage))
      inputs.push(
        datasetOf(
          stage.dataset,
          report !== undefined && stage.kind === "source"
            ? {
                // Each source its own count: a pipeline with an interval join reads two.
                inputFacets: statistics("inputStatistics", {
                  rowCount: report.stages.find((r) => r.name === stage.name)?.recordsIn ?? report.records.read,
                  size: report.stages.find((r) => r.name === stage.name)?.bytes
                })
              }
            : {}
        )
      )
    else {
      const result = stage.kind === "sink" ? report?.sink : report?.deadLetters
      outputs.push(
        datasetOf(
          stage.dataset,
          result === undefined
            ? {}
            : { outputFacets: statistics("outputStatistics", { rowCount: result.written, ...sinkSizes(result) }) }
        )
      )
    }
  }
  return {
    eventType,
    eventTime: options.eventTime,
    producer,
    schemaURL,
    run: {
      runId: runUuid(run.runId),
      ...(options.errorMessage === undefined
        ? {}
        : {
            facets: {
              errorMessage: facet(facetSchemas.errorMessage, {
                message: options.errorMessage,
                programmingLanguage: "TypeScript"
              })
            }
          })
    },
    job: {
      namespace: options.namespace,
      name: options.jobName ?? run.pipeline,
      facets: {
        jobType: facet(facetSchemas.jobType, {
          processingType: run.streaming ? "STREAMING" : "BATCH",
          integration: "EFFECT_ETL",
          jobType: "JOB"
        })
      }
    },
    inputs,
    outputs
  }
}

/**
 * The lineage endpoint of a base URL without any user name and password (they become a Basic `Authorization`
 * header, since a request URL may not carry them), and the endpoint as messages show it (no query string either).
 */
const endpointOf = (
  url: string
): { readonly endpoint: string; readonly shown: string; readonly basic: Redacted.Redacted<string> | undefined } => {
  const raw = `${url.replace(/\/+$/, "")}/api/v1/lineage`
  const parsed = URL.parse(raw)
  if (parsed === null) return { endpoint: raw, shown: "the lineage URL", basic: undefined }
  const basic =
    parsed.username === "" && parsed.password === ""
      ? undefined
      : Redacted.make(
          Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString(
            "base64"
          )
        )
  parsed.username = ""
  parsed.password = ""
  const endpoint = parsed.toString()
  parsed.search = ""
  return { endpoint, shown: parsed.toString(), basic }
}

const causeText = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { readonly cause?: unknown }).cause
    const code = (inner as { readonly code?: unknown } | undefined)?.code
    return typeof code === "string" ? `${cause.message} (${code})` : cause.message
  }
  return String(cause)
}

/** POSTs the event; fails with a message saying why (no header, key or body in it). */
const post = (
  target: ReturnType<typeof endpointOf>,
  body: string,
  apiKey: Redacted.Redacted<string> | undefined,
  timeoutMs: number
): Effect.Effect<void, string> =>
  Effect.tryPromise({
    try: async (signal) => {
      const authorization =
        apiKey !== undefined
          ? `Bearer ${Redacted.value(apiKey)}`
          : target.basic === undefined
            ? undefined
            : `Basic ${Redacted.value(target.basic)}`
      const response = await fetch(target.endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          ...(authorization === undefined ? {} : { Authorization: authorization })
        },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      })
      await response.body?.cancel()
      return response.status
    },
    // A driver's message may quote the URL: only the shown form leaves this function.
    catch: (cause) => causeText(cause).split(target.endpoint).join(target.shown)
  }).pipe(
    Effect.flatMap((status) =>
      status >= 200 && status < 300 ? Effect.void : Effect.fail(`the server answered HTTP ${status}`)
    )
  )

/** Appends the event as one JSON line, creating the file's directory when missing. */
const append = (file: string, body: string): Effect.Effect<void, string> =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(nodePath.dirname(file), { recursive: true })
      await fs.appendFile(file, `${body}\n`, "utf8")
    },
    catch: causeText
  })

/**
 * A run observer sending OpenLineage RunEvents (START, then COMPLETE or FAIL) over HTTP and/or to a file. Neither
 * transport can fail the run: a failure is logged as a warning.
 *
 * @example
 * Effect.provideService(Observers.RunObservers, [Lineage.observer({ url: "http://127.0.0.1:5000", namespace: "etl" })])
 */
export const observer = (options: LineageOptions): RunObserver => {
  const http = options.url === undefined ? undefined : endpointOf(options.url)
  const timeoutMs = options.timeoutMs ?? 10_000
  const send = (lineageEvent: RunEvent): Effect.Effect<void> =>
    Effect.gen(function* () {
      const body = JSON.stringify(lineageEvent)
      const secrets = yield* Redaction.Secrets
      const warn = (transport: string) => (reason: string) =>
        Effect.logWarning(
          secrets.scrub(
            `lineage: could not send the ${lineageEvent.eventType} event to ${transport}: ${reason} (the run goes on)`
          )
        )
      if (http !== undefined) yield* post(http, body, options.apiKey, timeoutMs).pipe(Effect.catch(warn(http.shown)))
      if (options.file !== undefined) yield* append(options.file, body).pipe(Effect.catch(warn(options.file)))
    })
  const eventTime = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())
  return {
    started: (run) =>
      Effect.flatMap(eventTime, (time) =>
        send(event("START", run, { namespace: options.namespace, jobName: options.jobName, eventTime: time }))
      ),
    finished: (run: RunFinished) =>
      Effect.gen(function* () {
        const time = yield* eventTime
        const secrets = yield* Redaction.Secrets
        const message = run.report.error?.message
        yield* send(
          event(run.report.status === "succeeded" ? "COMPLETE" : "FAIL", run, {
            namespace: options.namespace,
            jobName: options.jobName,
            eventTime: time,
            report: run.report,
            ...(run.report.status === "failed" ? { errorMessage: secrets.scrub(message ?? "the run failed") } : {})
          })
        )
      })
  }
}
