/**
 * The error of a config that cannot be read, decoded or built: each issue names the JSON path and what was expected.
 */
import * as Data from "effect/Data"

/** One problem in a config, at a JSON path like `$.transforms[1].condition`. */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
}

/** A config that cannot be used. `message` lists every issue, one per line, prefixed by the file. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly file: string
  readonly issues: ReadonlyArray<ConfigIssue>
  readonly message: string
}> {
  /** Never retryable: the same config fails the same way. */
  get retryable(): boolean {
    return false
  }
}

/** Formats a path of keys and indices as a JSON path: `["source", "format", 0]` → `$.source.format[0]`. */
export const jsonPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = "$"
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`
    else if (typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)) out += `.${key}`
    else out += `[${JSON.stringify(String(key))}]`
  }
  return out
}

/** Builds a ConfigError from its issues. */
export const make = (file: string, issues: ReadonlyArray<ConfigIssue>): ConfigError =>
  new ConfigError({
    file,
    issues,
    message: `Invalid config ${file}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`
  })

/** A ConfigError with a single issue. */
export const single = (file: string, path: string, message: string): ConfigError => make(file, [{ path, message }])
