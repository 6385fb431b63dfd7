/**
 * Logs, in one of two formats:
 * - `json`: one JSON object per line, with the run id, pipeline, stage and the trace/span ids of the current span, so a
 *   run's lines can be found and followed in any log system;
 * - `pretty`: one line per log for a person at a terminal, `12:00:01.234 INFO  [pipeline/stage] message key=value`,
 *   without the run and trace ids, coloured when the stream is a terminal.
 *
 * The default is `pretty` when stderr is a terminal and `json` otherwise; `ETL_LOG_FORMAT` (or the CLI's `--log-format`)
 * chooses one. Both formats print the same fields, built once by `formatLine`.
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

/** How log lines are written. */
export type LogFormat = "pretty" | "json"

/** The formats, for flags and checks. */
export const formats: ReadonlyArray<LogFormat> = ["pretty", "json"]

/** Whether a string names a log format. */
export const isLogFormat = (value: string): value is LogFormat => (formats as ReadonlyArray<string>).includes(value)

/** Fields a pretty line leaves out: on every line of a run, they say nothing to a person reading them. */
const hiddenInPretty = new Set([
  "timestamp",
  "level",
  "message",
  "runId",
  "pipeline",
  "stage",
  "traceId",
  "spanId",
  "span"
])

const colours = {
  dim: "\x1b[2m",
  reset: "\x1b[0m",
  level: {
    trace: "\x1b[90m",
    debug: "\x1b[34m",
    info: "\x1b[32m",
    warn: "\x1b[33m",
    error: "\x1b[31m",
    fatal: "\x1b[35m"
  } as Record<string, string>
}

const pad2 = (n: number) => String(n).padStart(2, "0")

/** A value as it stands after `key=`: plain when it is a word, JSON otherwise (quoted, escaped, on one line). */
const prettyValue = (value: unknown): string =>
  typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : (JSON.stringify(value) ?? String(value))

/**
 * Renders the fields of one log line (as `formatLine` builds them) as one pretty line, coloured with ANSI codes when
 * `colour` is set. Exported for tests.
 *
 * @example
 * prettyLine(formatLine(options), false) // "12:00:01.234 INFO  [quickstart/sink] batch written rows=3"
 */
export const prettyLine = (fields: Record<string, unknown>, colour: boolean): string => {
  const date = new Date(String(fields.timestamp))
  const time = `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, "0")}`
  const level = String(fields.level)
  const where = [fields.pipeline, fields.stage]
    .filter((v) => v !== undefined)
    .map((v) => (typeof v === "string" ? v : JSON.stringify(v)))
  const rest: Array<string> = []
  for (const [key, value] of Object.entries(fields))
    if (!hiddenInPretty.has(key))
      rest.push(colour ? `${colours.dim}${key}=${colours.reset}${prettyValue(value)}` : `${key}=${prettyValue(value)}`)
  const levelText = level.toUpperCase().padEnd(5)
  const head = colour
    ? `${colours.dim}${time}${colours.reset} ${colours.level[level] ?? ""}${levelText}${colours.reset}`
    : `${time} ${levelText}`
  const message = String(fields.message).replace(/\r?\n/g, " ")
  return [head, ...(where.length > 0 ? [`[${where.join("/")}]`] : []), message, ...rest].join(" ")
}

/**
 * A logger writing pretty lines to stderr, coloured when `colour` is set; scrubbed like the JSON logger's lines.
 */
export const prettyLogger = (colour: boolean): Logger.Logger<unknown, void> =>
  Logger.make((options) => {
    const secrets = options.fiber.getRef(Redaction.Secrets)
    process.stderr.write(`${secrets.scrub(prettyLine(formatLine(options), colour))}\n`)
  })

/**
 * The format asked for by `ETL_LOG_FORMAT`, else `pretty` when stderr is a terminal and `json` otherwise. An unknown
 * value of the variable is reported in `invalid`, and the default is used.
 */
export const defaultFormat = (
  env: Record<string, string | undefined> = process.env,
  tty: boolean = process.stderr.isTTY === true
): { readonly format: LogFormat; readonly invalid?: string } => {
  const fromEnv = env.ETL_LOG_FORMAT?.trim().toLowerCase()
  const fallback: LogFormat = tty ? "pretty" : "json"
  if (fromEnv === undefined || fromEnv === "") return { format: fallback }
  return isLogFormat(fromEnv) ? { format: fromEnv } : { format: fallback, invalid: fromEnv }
}

/** The logger of a format: pretty lines are coloured only when stderr is a terminal (and `NO_COLOR` is not set). */
export const logger = (format: LogFormat): Logger.Logger<unknown, void> =>
  format === "json" ? jsonLogger : prettyLogger(process.stderr.isTTY === true && (process.env.NO_COLOR ?? "") === "")

/** Replaces the current loggers with the one of `format`, leaving the minimum level as it is. */
export const layerFormat = (format: LogFormat): Layer.Layer<never> => Logger.layer([logger(format)])

/**
 * A logger writing JSON lines to stderr. Every value the config took from `$env` or `$secret` (the registry in
 * `Redaction.Secrets`) is scrubbed from the line, wherever it appears: a message, an annotation, a driver's error.
 */
export const jsonLogger: Logger.Logger<unknown, void> = Logger.make((options) => {
  const secrets = options.fiber.getRef(Redaction.Secrets)
  process.stderr.write(`${secrets.scrub(JSON.stringify(formatLine(options)))}\n`)
})

/**
 * Replaces the default loggers with the logger of `format` (default: `defaultFormat()`), at `level` and above
 * (default `Info`).
 */
export const layer = (
  level: LogLevel.LogLevel = "Info",
  format: LogFormat = defaultFormat().format
): Layer.Layer<never> => Layer.mergeAll(layerFormat(format), Layer.succeed(References.MinimumLogLevel, level))
