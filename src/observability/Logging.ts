/**
 * Structured logs: one JSON object per line, with the run id, pipeline, stage and the trace/span ids of the current
 * span, so a run's lines can be found and followed in any log system.
 *
 * Lines go to stderr (stdout is kept for the RunReport). Secrets never reach them: `Redacted` values print as
 * `<redacted>`, causes are reduced to their messages, and the values a config took from `$env`/`$secret` are scrubbed.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import { toJson } from "../formats/JsonValue.ts"
import * as Redaction from "../secrets/Redaction.ts"

const safe = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return "<redacted>"
  // An Error's stack is for developers; the log keeps what a reader needs.
  if (value instanceof Error) return { name: value.name, message: value.message }
  return toJson(value)
}

const messageText = (message: unknown): { readonly text: string; readonly extra: ReadonlyArray<unknown> } => {
  const parts = Array.isArray(message) ? message : [message]
  const [first, ...rest] = parts
  return { text: typeof first === "string" ? first : JSON.stringify(safe(first)), extra: rest.map(safe) }
}

/** Builds the JSON object of one log line. Exported for tests. */
export const formatLine = (options: Logger.Options<unknown>): Record<string, unknown> => {
  const { text, extra } = messageText(options.message)
  const line: Record<string, unknown> = {
    timestamp: options.date.toISOString(),
    level: options.logLevel.toLowerCase(),
    message: text
  }
  const annotations = options.fiber.getRef(References.CurrentLogAnnotations)
  for (const [key, value] of Object.entries(annotations)) line[key] = safe(value)
  const span = Context.getOption(options.fiber.context, Tracer.ParentSpan)
  if (span._tag === "Some") {
    line.traceId = span.value.traceId
    line.spanId = span.value.spanId
    if (span.value._tag === "Span") line.span = span.value.name
  }
  if (extra.length > 0) line.details = extra.length === 1 ? extra[0] : extra
  if (options.cause.reasons.length > 0) {
    const errors = Cause.prettyErrors(options.cause)
    line.error = errors.map((e) => e.message).join("; ")
  }
  return line
}

/**
 * A logger writing JSON lines to stderr. Every value the config took from `$env` or `$secret` (the registry in
 * `Redaction.Secrets`) is scrubbed from the line, wherever it appears: a message, an annotation, a driver's error.
 */
export const jsonLogger: Logger.Logger<unknown, void> = Logger.make((options) => {
  const secrets = options.fiber.getRef(Redaction.Secrets)
  process.stderr.write(`${secrets.scrub(JSON.stringify(formatLine(options)))}\n`)
})

/** Replaces the default loggers with the JSON logger, at `level` and above (default `Info`). */
export const layer = (level: LogLevel.LogLevel = "Info"): Layer.Layer<never> =>
  Layer.mergeAll(Logger.layer([jsonLogger]), Layer.succeed(References.MinimumLogLevel, level))
