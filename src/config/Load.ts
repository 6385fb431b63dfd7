/**
 * Reading a pipeline config file: JSON parsing with positions, `{"$env": "VAR"}` references, and decoding with the
 * config Schema. Every problem comes back as a ConfigError naming the file, the JSON path and what was expected.
 */
import * as fs from "node:fs/promises"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as ConfigError from "./ConfigError.ts"
import { PipelineConfig } from "./PipelineConfig.ts"

/** Reads a file's text; a missing or unreadable file is a ConfigError. */
export const readText = (file: string): Effect.Effect<string, ConfigError.ConfigError> =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (cause) => {
      const code = (cause as { readonly code?: unknown }).code
      const why =
        code === "ENOENT"
          ? "no such file"
          : code === "EACCES"
            ? "permission denied"
            : code === "EISDIR"
              ? "is a directory, not a config file"
              : String((cause as Error).message)
      return ConfigError.single(file, "$", `Cannot read the config: ${why}`)
    }
  })

/** Parses JSON text; a syntax error names the line and column. */
export const parseJson = (file: string, text: string): Effect.Effect<unknown, ConfigError.ConfigError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (cause) => {
      const message = cause instanceof Error ? cause.message : String(cause)
      const position = /position (\d+)/.exec(message)
      let where = ""
      if (position !== null) {
        const offset = Number(position[1])
        const before = text.slice(0, offset)
        const line = before.split("\n").length
        const column = offset - before.lastIndexOf("\n")
        where = ` at line ${line}, column ${column}`
      }
      return ConfigError.single(file, "$", `Malformed JSON${where}: ${message.replace(/ in JSON at position.*$/, "")}`)
    }
  })

/**
 * Replaces every `{"$env": "VAR"}` (optionally with `"default"`) by the variable's value. A missing variable without a
 * default is an issue at its path; the value itself never appears in an error.
 */
export const resolveEnv = (
  file: string,
  value: unknown,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<unknown, ConfigError.ConfigError> => {
  const issues: Array<ConfigError.ConfigIssue> = []
  const walk = (v: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]))
    if (typeof v !== "object" || v === null) return v
    const obj = v as Record<string, unknown>
    if ("$env" in obj) {
      const keys = Object.keys(obj)
      const name = obj.$env
      if (typeof name !== "string" || keys.some((k) => k !== "$env" && k !== "default")) {
        issues.push({
          path: ConfigError.jsonPath(path),
          message: 'Expected {"$env": "VARIABLE"} with an optional "default" string'
        })
        return v
      }
      const found = env[name]
      if (found !== undefined) return found
      if (typeof obj.default === "string") return obj.default
      issues.push({ path: ConfigError.jsonPath(path), message: `Environment variable ${name} is not set` })
      return v
    }
    const out: Record<string, unknown> = {}
    for (const [k, item] of Object.entries(obj)) out[k] = walk(item, [...path, k])
    return out
  }
  const resolved = walk(value, [])
  return issues.length === 0 ? Effect.succeed(resolved) : Effect.fail(ConfigError.make(file, issues))
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const valueAt = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let v = root
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined
    v = (v as Record<PropertyKey, unknown>)[key]
  }
  return v
}

const describeValue = (v: unknown): string => {
  if (v === undefined) return "nothing"
  const text = JSON.stringify(v) ?? String(v)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/**
 * Makes the Schema's messages read well in a config: a union of objects that did not match names the discriminating
 * key and its allowed values; a plain `Expected string` says what it got instead.
 */
const explain = (root: unknown, path: ReadonlyArray<PropertyKey>, message: string): string => {
  const value = valueAt(root, path)
  if (message === "Expected no excess property") return "Unknown key (not allowed here; check its spelling)"
  if (message.startsWith("Missing key")) return "Missing required key"
  if (message.startsWith("Expected {")) {
    for (const key of ["type", "rule"]) {
      const allowed = Array.from(message.matchAll(new RegExp(`"${key}": "([^"]+)"`, "g")), (m) => m[1]!)
      if (allowed.length === 0) continue
      const unique = Array.from(new Set(allowed))
      if (typeof value !== "object" || value === null)
        return `Expected an object with "${key}" one of ${unique.join(", ")}, got ${describeValue(value)}`
      const tag = (value as Record<string, unknown>)[key]
      if (tag === undefined) return `Missing "${key}": expected one of ${unique.join(", ")}`
      return `Unknown ${key} ${describeValue(tag)}: expected one of ${unique.join(", ")}`
    }
  }
  if (/^Expected [a-z"]/.test(message) && !message.includes(", got ")) return `${message}, got ${describeValue(value)}`
  return message
}

/** Decodes a parsed, env-resolved config value with the config Schema; unknown keys are errors. */
export const decode = (file: string, value: unknown): Effect.Effect<PipelineConfig, ConfigError.ConfigError> => {
  const exit = Schema.decodeUnknownExit(PipelineConfig)(value, { errors: "all", onExcessProperty: "error" })
  if (exit._tag === "Success") return Effect.succeed(exit.value)
  const reason = exit.cause.reasons[0]
  const error = reason !== undefined && reason._tag === "Fail" ? reason.error : undefined
  if (!(error instanceof Schema.SchemaError)) return Effect.fail(ConfigError.single(file, "$", String(exit.cause)))
  const issues = formatter(error.issue).issues.map((i) => {
    const path = (i.path ?? []) as ReadonlyArray<PropertyKey>
    return { path: ConfigError.jsonPath(path), message: explain(value, path, i.message) }
  })
  return Effect.fail(ConfigError.make(file, issues))
}

/** Reads, parses, resolves and decodes a config file. */
export const load = (file: string): Effect.Effect<PipelineConfig, ConfigError.ConfigError> =>
  readText(file).pipe(
    Effect.flatMap((text) => parseJson(file, text)),
    Effect.flatMap((json) => resolveEnv(file, json)),
    Effect.flatMap((resolved) => decode(file, resolved))
  )
