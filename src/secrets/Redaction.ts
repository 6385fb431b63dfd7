/**
 * Keeping the values a config took from the environment or the vault out of everything printed: the config loader
 * records every string it resolved from `{"$env": ...}` or `{"$secret": ...}`, and the log formatter, the CLI's error
 * output and the RunReport it prints scrub them. A value is scrubbed wherever it is used (a user name, a table name, a
 * path) and wherever it shows up (a driver's error message, a log line), not only in the fields declared secret.
 *
 * Values shorter than `minLength` characters are not scrubbed: replacing every `"a"` or `"10"` would garble every
 * message while hiding nothing worth hiding.
 */
import * as Context from "effect/Context"

/** What replaces a scrubbed value. */
export const placeholder = "<redacted>"

/** Values shorter than this are left alone. */
export const minLength = 3

/** The forms a value takes in printed text: as is, and escaped inside a JSON string. */
const formsOf = (value: string): ReadonlyArray<string> => {
  const escaped = JSON.stringify(value).slice(1, -1)
  return escaped === value ? [value] : [value, escaped]
}

/** A URL part with its %XX escapes decoded as UTF-8 (the parser leaves the part ASCII; bad bytes become U+FFFD). */
const percentDecoded = (part: string): string =>
  new TextDecoder().decode(
    Buffer.from(
      part.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
      "latin1"
    )
  )

/**
 * The values to scrub for one resolved value: the value itself and, when it is a URL with credentials (a connection
 * string), its user name and password too, since drivers print those on their own.
 */
export const valuesOf = (value: string): ReadonlyArray<string> => {
  const out = [value]
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && URL.canParse(value)) {
    const url = new URL(value)
    for (const part of [url.username, url.password])
      if (part !== "") {
        out.push(part, percentDecoded(part))
      }
  }
  return out
}

/**
 * A scrubber for a set of values: replaces each of them in a text by `<redacted>`, longest first, wherever it is not
 * part of a longer word (letters and digits on either side); punctuation, quotes, `_`, `@` and `:` delimit it.
 */
export const scrubber = (values: Iterable<string>): ((text: string) => string) => {
  const forms = new Set<string>()
  for (const value of values)
    for (const v of valuesOf(value)) if (v.length >= minLength) for (const form of formsOf(v)) forms.add(form)
  if (forms.size === 0) return (text) => text
  const sorted = Array.from(forms).sort((a, b) => b.length - a.length)
  // A value inside a longer run of letters and digits is another word ("test" in "latest"), not the value: a form that
  // starts (ends) with a letter or digit must not have one right before (after) it.
  const alnum = /[\p{L}\p{N}]/u
  const alternatives = sorted.map((f) => {
    const escaped = f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    const before = alnum.test(f[0]!) ? "(?<![\\p{L}\\p{N}])" : ""
    const after = alnum.test(f.at(-1)!) ? "(?![\\p{L}\\p{N}])" : ""
    return `${before}${escaped}${after}`
  })
  const pattern = new RegExp(alternatives.join("|"), "gu")
  return (text) => text.replace(pattern, placeholder)
}

/** Replaces every one of `values` in `text` by `<redacted>`. */
export const scrub = (text: string, values: Iterable<string>): string => scrubber(values)(text)

/** The values recorded so far, and the scrubber over them. */
export interface Registry {
  /** Records values to scrub from now on. */
  readonly add: (values: Iterable<string>) => void
  /** The text with every recorded value replaced by `<redacted>`. */
  readonly scrub: (text: string) => string
}

/** An empty registry. */
export const registry = (): Registry => {
  const values = new Set<string>()
  let current = scrubber(values)
  return {
    add: (more) => {
      const before = values.size
      for (const v of more) values.add(v)
      if (values.size !== before) current = scrubber(values)
    },
    scrub: (text) => current(text)
  }
}

/**
 * The registry of the values to keep out of logs and errors: the config loader records into it, the JSON logger and
 * the CLI scrub with it. The CLI provides one per invocation; without one, a registry shared by the process is used.
 */
export const Secrets = Context.Reference<Registry>("effect-etl/secrets/Secrets", { defaultValue: registry })
