/**
 * The schema registry as a named connection in a config's `connections`: `{"type": "schema_registry", "url": ...}`
 * with optional basic-auth credentials (the password a secret reference, redacted), a CA for `https` and a request
 * timeout. Kafka value formats name it (`{"type": "confluent", "registry": NAME, ...}`); `RegistryBuild`
 * turns it into one client per run.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { durationString, NonEmpty } from "../core/ConfigFields.ts"
import type * as RegistryClient from "../schema/RegistryClient.ts"

const secret = (description: string) =>
  Schema.RedactedFromValue(
    Schema.String.annotate({
      description,
      message: "Expected a string, got a value that is not shown (it may be a secret)"
    })
  )

/**
 * Why a registry URL is refused, or undefined when it is an http(s) URL with a host. Each message says what it got
 * without quoting the URL, which may hold credentials.
 */
const urlProblem = (s: string): string | undefined => {
  if (!URL.canParse(s))
    return 'Expected an http:// or https:// URL, e.g. "http://127.0.0.1:8081", got text that is not a URL'
  const url = new URL(s)
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `Expected an http:// or https:// URL, got the scheme ${JSON.stringify(url.protocol.slice(0, -1))}`
  if (url.hostname === "") return "Expected a URL with a host, got none"
  if (url.search !== "" || url.hash !== "")
    return "Expected the registry's base URL (requests add their own paths), got a query or fragment"
  return undefined
}

/** A PEM text (rather than the path of a file holding one). */
export const isPem = (ca: string): boolean => ca.includes("-----BEGIN")

/** A named schema registry connection in a config's `connections`. */
export const ConnectionConfig = Schema.Struct({
  type: Schema.Literal("schema_registry").annotate({
    description: "A schema registry with the Confluent REST API (Confluent, Apicurio ccompat, Karapace, Redpanda)"
  }),
  url: Schema.String.check(
    Schema.makeFilter(urlProblem, { toJsonSchema: () => [{ pattern: "^https?://" }, true] })
  ).annotate({
    description:
      'The base URL of the registry\'s API, e.g. "http://127.0.0.1:8081" or "https://host/apis/ccompat/v7"; credentials in it (https://user:password@host) are taken as username and password: write {"$env": "VARIABLE"} for such a URL'
  }),
  username: Schema.optionalKey(NonEmpty.annotate({ description: "The user name of basic authentication" })),
  password: Schema.optionalKey(
    secret('The password of basic authentication; write {"$env": "VARIABLE"} or {"$secret": "name"}, not the password')
  ),
  ca: Schema.optionalKey(
    NonEmpty.annotate({
      description:
        "The CA certificate(s) to trust for an https URL (a private CA): PEM text, or the path of a PEM file (relative to the working directory)"
    })
  ),
  request_timeout: Schema.optionalKey(
    durationString({ max: "10 minutes", positive: true }).annotate({
      description: 'Longest wait for the registry\'s answer to one request (default "30 seconds")'
    })
  )
})
  .check(
    Schema.makeFilter(
      (c: { readonly url: string; readonly username?: string; readonly password?: unknown; readonly ca?: string }) => {
        if (urlProblem(c.url) !== undefined) return undefined
        const url = new URL(c.url)
        if ((url.username !== "" || url.password !== "") && (c.username !== undefined || c.password !== undefined))
          return 'Give the credentials either in "url" or as "username" and "password", not both'
        if (c.password !== undefined && c.username === undefined)
          return 'A "password" needs a "username" (basic authentication sends both)'
        if (c.ca !== undefined && url.protocol !== "https:")
          return '"ca" is for an https URL: the registry\'s URL is http, which has no certificate to check'
        return undefined
      }
    )
  )
  .annotate({
    description:
      "A schema registry, one client (and one cache of schemas) per run shared by every Kafka payload naming it"
  })

/** A decoded schema registry connection config. */
export type ConnectionConfig = typeof ConnectionConfig.Type

/**
 * The client options of a connection config; `ca` is the PEM text (the caller reads a `ca` that names a file).
 */
export const clientOptions = (c: ConnectionConfig, ca: string | undefined): RegistryClient.Options => ({
  url: c.url,
  ...(c.username === undefined ? {} : { username: c.username }),
  ...(c.password === undefined ? {} : { password: c.password }),
  ...(ca === undefined ? {} : { ca }),
  ...(c.request_timeout === undefined
    ? {}
    : { timeoutMs: Duration.toMillis(Duration.fromInputUnsafe(c.request_timeout as Duration.Input)) })
})
