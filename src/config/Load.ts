/**
 * Reading a pipeline config file: JSON parsing with positions, `{"$env": "VAR"}` references, and decoding with the
 * config Schema. Every problem comes back as a ConfigError naming the file, the JSON path and what was expected.
 */
import * as fs from "node:fs/promises"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as ConfigError from "../core/ConfigError.ts"
import * as Redaction from "../secrets/Redaction.ts"
import * as Vault from "../secrets/Vault.ts"
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

/** `{"$env": "VARIABLE"}`, optionally with a `"default"`: the variable's value, read when the config is loaded. */
export const EnvReference = Schema.Struct({
  $env: Schema.String.annotate({ description: "The name of an environment variable" }),
  default: Schema.optionalKey(
    Schema.String.annotate({ description: "The value when the variable is not set (it is not a secret)" })
  )
}).annotate({
  identifier: "EnvReference",
  description: "The value of an environment variable, read when the config is loaded; never printed"
})

/** `{"$secret": "name"}`: a secret from the vault, read when the config is loaded. */
export const SecretReference = Schema.Struct({
  $secret: Schema.String.annotate({ description: "The name of a secret in the vault (`effect-etl vault set <name>`)" })
}).annotate({
  identifier: "SecretReference",
  description: "A secret from the encrypted vault, read when the config is loaded; never printed"
})

/**
 * A reference the loader replaces by a string before decoding: it may stand wherever a config takes a string (and only
 * there, since what it gives is a string). The generated JSON Schema accepts it at exactly those places.
 */
export const Reference = Schema.Union([EnvReference, SecretReference]).annotate({ identifier: "Reference" })

const isReference = {
  $env: (v: unknown) => Schema.decodeUnknownExit(EnvReference)(v, { onExcessProperty: "error" })._tag === "Success",
  $secret: (v: unknown) =>
    Schema.decodeUnknownExit(SecretReference)(v, { onExcessProperty: "error" })._tag === "Success"
}

/** A config with its references replaced, and the JSON paths of the values that came from them. */
export interface Resolved {
  readonly value: unknown
  /** Paths of values taken from the environment or the vault: errors never print them. */
  readonly sensitive: ReadonlySet<string>
  /**
   * The strings read from the environment or the vault (not the defaults written in the config): whatever prints
   * errors or logs scrubs them (see `Redaction`).
   */
  readonly secrets: ReadonlyArray<string>
}

/** How deep a config value may nest: real configs stay under ten levels. */
export const maxDepth = 64

/** Keys that name JavaScript object internals: as config keys they would be dropped or would reach a prototype. */
const forbiddenKeys: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"])

/**
 * Checks the shape of a parsed config before anything walks it recursively: no value nests deeper than `maxDepth`,
 * and no object has a key naming an object internal (`__proto__`, `constructor`, `prototype`). Iterative, so a
 * hostile file cannot overflow the stack here; the recursive steps after it only ever see bounded depths.
 */
export const checkShape = (value: unknown): ReadonlyArray<ConfigError.ConfigIssue> => {
  const issues: Array<ConfigError.ConfigIssue> = []
  let tooDeep = false
  const stack: Array<{ readonly value: unknown; readonly path: ReadonlyArray<PropertyKey> }> = [{ value, path: [] }]
  while (stack.length > 0) {
    const { value: v, path } = stack.pop()!
    if (typeof v !== "object" || v === null) continue
    if (path.length > maxDepth) {
      // One issue is enough: its path shows where the nesting starts.
      if (!tooDeep)
        issues.push({
          path: ConfigError.jsonPath(path),
          message: `Nested deeper than ${maxDepth} levels: a pipeline config never is (is this a generated or pasted value?)`
        })
      tooDeep = true
      continue
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: [...path, i] })
      continue
    }
    const keys = Object.keys(v)
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!
      if (forbiddenKeys.has(key))
        issues.push({
          path: ConfigError.jsonPath([...path, key]),
          message: `Unknown key ${JSON.stringify(key)}: it names a JavaScript object internal and is not allowed anywhere in a config`
        })
      else stack.push({ value: (v as Record<string, unknown>)[key], path: [...path, key] })
    }
  }
  return issues
}

/** Sets the value at a path of keys inside plain objects and arrays built by `resolveReferences`. */
const setAt = (holder: unknown, keys: ReadonlyArray<PropertyKey>, value: unknown): void => {
  let node = holder as Record<PropertyKey, unknown>
  for (let i = 0; i < keys.length - 1; i++) node = node[keys[i]!] as Record<PropertyKey, unknown>
  node[keys[keys.length - 1]!] = value
}

/**
 * Replaces every `{"$env": "VAR"}` (optionally with `"default"`) by the variable's value and every
 * `{"$secret": "name"}` by the secret from the vault (read once, only when the config has a `$secret`). A missing
 * variable or secret is an issue at its path; no value ever appears in an error. The config's shape is checked
 * first (`checkShape`).
 */
export const resolveReferences = (
  file: string,
  value: unknown,
  options?: { readonly env?: Readonly<Record<string, string | undefined>>; readonly vault?: Vault.VaultOptions }
): Effect.Effect<Resolved, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const shape = checkShape(value)
    if (shape.length > 0) return yield* Effect.fail(ConfigError.make(file, shape))
    const env = options?.env ?? process.env
    const issues: Array<ConfigError.ConfigIssue> = []
    const sensitive = new Set<string>()
    const values: Array<string> = []
    const secrets: Array<{ readonly name: string; readonly path: string; readonly keys: ReadonlyArray<PropertyKey> }> =
      []
    const reference = (obj: Record<string, unknown>, key: "$env" | "$secret", path: string): boolean => {
      const ok = isReference[key](obj)
      if (!ok)
        issues.push({
          path,
          message:
            key === "$env"
              ? 'Expected {"$env": "VARIABLE"} with an optional "default" string'
              : 'Expected {"$secret": "name"}'
        })
      return ok
    }
    // Recursive, but over a value `checkShape` has bounded.
    const walk = (v: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
      if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]))
      if (typeof v !== "object" || v === null) return v
      const obj = v as Record<string, unknown>
      const at = ConfigError.jsonPath(path)
      if (Object.hasOwn(obj, "$env")) {
        if (!reference(obj, "$env", at)) return v
        const name = obj.$env as string
        const fromEnv = env[name]
        if (fromEnv !== undefined) values.push(fromEnv)
        const found = fromEnv ?? (typeof obj.default === "string" ? obj.default : undefined)
        if (found === undefined) issues.push({ path: at, message: `Environment variable ${name} is not set` })
        sensitive.add(at)
        return found ?? v
      }
      if (Object.hasOwn(obj, "$secret")) {
        if (!reference(obj, "$secret", at)) return v
        sensitive.add(at)
        secrets.push({ name: obj.$secret as string, path: at, keys: path })
        return v
      }
      const out: Record<string, unknown> = {}
      for (const [k, item] of Object.entries(obj)) out[k] = walk(item, [...path, k])
      return out
    }
    const resolved = { root: walk(value, []) }
    if (secrets.length > 0 && issues.length === 0) {
      const entries = yield* Vault.read(options?.vault ?? Vault.fromEnv()).pipe(
        Effect.mapError((e) => ConfigError.single(file, secrets[0]!.path, e.message))
      )
      for (const secret of secrets) {
        const found = entries.get(secret.name)
        if (found === undefined)
          issues.push({ path: secret.path, message: `No secret named ${JSON.stringify(secret.name)} in the vault` })
        else {
          values.push(found)
          setAt(resolved, ["root", ...secret.keys], found)
        }
      }
    }
    const registry = yield* Redaction.Secrets
    registry.add(values)
    if (issues.length > 0) return yield* Effect.fail(ConfigError.make(file, issues))
    return { value: resolved.root, sensitive, secrets: values }
  })

/** The same error with every one of `secrets` scrubbed from its messages (see `Redaction`). */
export const redact = (error: ConfigError.ConfigError, secrets: ReadonlyArray<string>): ConfigError.ConfigError => {
  if (secrets.length === 0) return error
  const scrub = Redaction.scrubber(secrets)
  return ConfigError.make(
    error.file,
    error.issues.map((i) => ({ path: scrub(i.path), message: scrub(i.message) }))
  )
}

/** Replaces `{"$env": "VAR"}` references only (see `resolveReferences`). */
export const resolveEnv = (
  file: string,
  value: unknown,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<unknown, ConfigError.ConfigError> =>
  Effect.map(resolveReferences(file, value, { env }), (r) => r.value)

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const valueAt = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let v = root
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined
    v = (v as Record<PropertyKey, unknown>)[key]
  }
  return v
}

const REDACTED: unique symbol = Symbol("redacted")

const describeValue = (v: unknown): string => {
  if (v === REDACTED) return "a value from $env/$secret (not shown)"
  if (v === undefined) return "nothing"
  const text = JSON.stringify(v) ?? String(v)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/**
 * Makes the Schema's messages read well in a config: a union of objects that did not match names the discriminating
 * key and its allowed values; a plain `Expected string` says what it got instead.
 */
const explain = (
  root: unknown,
  path: ReadonlyArray<PropertyKey>,
  message: string,
  sensitive: ReadonlySet<string>
): string => {
  // A value taken from the environment or the vault may be a secret: say where it came from, never what it is.
  const value = sensitive.has(ConfigError.jsonPath(path)) ? REDACTED : valueAt(root, path)
  if (message === "Expected no excess property") return "Unknown key (not allowed here; check its spelling)"
  if (path.length === 0 && message === "Expected PipelineConfig")
    return `Expected a pipeline config: an object with "name", "source" and "sink", got ${describeValue(value)}`
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
export const decode = (
  file: string,
  value: unknown,
  sensitive: ReadonlySet<string> = new Set()
): Effect.Effect<PipelineConfig, ConfigError.ConfigError> => {
  const shape = checkShape(value)
  if (shape.length > 0) return Effect.fail(ConfigError.make(file, shape))
  const exit = Schema.decodeUnknownExit(PipelineConfig)(value, { errors: "all", onExcessProperty: "error" })
  if (exit._tag === "Success") return Effect.succeed(exit.value)
  const reason = exit.cause.reasons[0]
  const error = reason !== undefined && reason._tag === "Fail" ? reason.error : undefined
  if (!(error instanceof Schema.SchemaError)) return Effect.fail(ConfigError.single(file, "$", String(exit.cause)))
  const issues = formatter(error.issue).issues.map((i) => {
    const path = (i.path ?? []) as ReadonlyArray<PropertyKey>
    return { path: ConfigError.jsonPath(path), message: explain(value, path, i.message, sensitive) }
  })
  return Effect.fail(ConfigError.make(file, issues))
}

/** A decoded config and the strings it took from the environment or the vault. */
export interface Loaded {
  readonly config: PipelineConfig
  /** Strings that came from `$env` or `$secret`: never printed (see `Redaction`). */
  readonly secrets: ReadonlyArray<string>
}

/**
 * Reads, parses, resolves and decodes a config file, keeping the strings its references resolved to; they are
 * scrubbed from the error when decoding fails.
 */
export const loadWithSecrets = (file: string): Effect.Effect<Loaded, ConfigError.ConfigError> =>
  Effect.flatMap(readText(file), (text) => loadText(file, text))

/**
 * Parses, resolves and decodes the text of a config file (`file` names it in errors): what {@link loadWithSecrets}
 * does once it has read the file, for a config that travelled (a cluster run's runners get its text).
 */
export const loadText = (file: string, text: string): Effect.Effect<Loaded, ConfigError.ConfigError> =>
  parseJson(file, text).pipe(
    Effect.flatMap((json) => resolveReferences(file, json)),
    Effect.flatMap((resolved) =>
      decode(file, resolved.value, resolved.sensitive).pipe(
        Effect.map((config) => ({ config, secrets: resolved.secrets })),
        Effect.mapError((error) => redact(error, resolved.secrets))
      )
    )
  )

/** Reads, parses, resolves and decodes a config file. */
export const load = (file: string): Effect.Effect<PipelineConfig, ConfigError.ConfigError> =>
  Effect.map(loadWithSecrets(file), (loaded) => loaded.config)
