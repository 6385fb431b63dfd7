/**
 * A client of a schema registry with the Confluent Schema Registry REST API (Confluent, Apicurio's `ccompat` API,
 * Karapace, Redpanda): writer schemas fetched by id, reader schemas registered or looked up under a subject.
 *
 * Lookups are cached: a schema id names one schema forever, so each id is fetched once per client, and concurrent
 * lookups of one id share one request (a failed request is not cached). A schema registered or found under a subject
 * is cached by subject and schema text. Credentials are `Redacted` and never appear in errors: the URL an error names
 * is the base URL without them.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const registry = yield* RegistryClient.RegistryClient
 *   const id = yield* registry.register("orders-value", orderSchema)
 *   const writer = yield* registry.schemaById(id)
 * }).pipe(Effect.provide(RegistryClient.layer({ url: "http://127.0.0.1:8081" })))
 * ```
 */
import * as http from "node:http"
import * as https from "node:https"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AvroSchema from "./AvroSchema.ts"

/** A registry request failed: `status` and `errorCode` are the registry's (40403: no schema with that id, ...). */
export class RegistryError extends Data.TaggedError("RegistryError")<{
  /** What was asked: `fetch schema 7`, `register under orders-value`, ... */
  readonly operation: string
  /** The registry's base URL, without credentials. */
  readonly url: string
  readonly status?: number | undefined
  readonly errorCode?: number | undefined
  readonly message: string
  /** Connection failures and 5xx answers may succeed when tried again; the registry's 4xx answers will not. */
  readonly retryable: boolean
}> {}

/** The registry's operations. */
export interface Service {
  /** The registry's base URL, without credentials. */
  readonly url: string
  /** The schema with this id (a writer schema named by a message's header). */
  readonly schemaById: (id: number) => Effect.Effect<AvroSchema.Schema, RegistryError>
  /**
   * Registers the schema under the subject (the registry checks it against the subject's compatibility setting; an
   * incompatible schema fails with the registry's message) and returns its id; the same schema again gives the same id.
   */
  readonly register: (subject: string, schema: AvroSchema.Schema) => Effect.Effect<number, RegistryError>
  /** The id of the schema as already registered under the subject; fails (errorCode 40401/40403) when it is not. */
  readonly lookup: (subject: string, schema: AvroSchema.Schema) => Effect.Effect<number, RegistryError>
}

/** The schema registry client service. */
export class RegistryClient extends Context.Service<RegistryClient, Service>()("effect-etl/RegistryClient") {}

/** The identifier of the client of a named schema registry connection (a config's `connections`). */
export interface RegistryConnection<out Name extends string = string> {
  readonly "~effect-etl/RegistryConnection": Name
}

/**
 * The service key of the client of the named connection `name`: one client (one cache) per declared connection,
 * shared by every source and sink whose payload names it (see `RegistryBuild.connectionLayer` in config/).
 */
export const connection = <const Name extends string>(name: Name): Context.Service<RegistryConnection<Name>, Service> =>
  Context.Service<RegistryConnection<Name>, Service>(`effect-etl/RegistryClient/${name}`)

/** The base URL of a registry as errors and descriptions name it: credentials removed, no trailing slash. */
export const publicUrlOf = (url: string): string => {
  if (!URL.canParse(url)) return "(invalid)"
  const parsed = new URL(url)
  parsed.username = ""
  parsed.password = ""
  return publicUrl(parsed)
}

/**
 * How a subject is named: `topic` gives `<topic>-value` (or `-key`), `record` the record's full name, `topic-record`
 * `<topic>-<full name>` (Confluent's TopicNameStrategy, RecordNameStrategy and TopicRecordNameStrategy).
 */
export type SubjectStrategy = "topic" | "record" | "topic-record"

/**
 * The subject of a topic's values (or keys) under a naming strategy; `undefined` when the strategy needs the record's
 * full name and there is none (a schema that is not a named record).
 */
export const subjectName = (
  strategy: SubjectStrategy,
  options: { readonly topic: string; readonly recordName?: string | undefined; readonly key?: boolean | undefined }
): string | undefined => {
  if (strategy === "topic") return `${options.topic}-${options.key === true ? "key" : "value"}`
  if (options.recordName === undefined) return undefined
  return strategy === "record" ? options.recordName : `${options.topic}-${options.recordName}`
}

/** The full name of a named Avro schema (`namespace.Name`), when it has one. */
export const fullNameOf = (schema: AvroSchema.Schema): string | undefined => {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return undefined
  const named = schema as { readonly name?: unknown; readonly namespace?: unknown }
  if (typeof named.name !== "string") return undefined
  if (named.name.includes(".") || typeof named.namespace !== "string" || named.namespace === "") return named.name
  return `${named.namespace}.${named.name}`
}

/** How to reach a registry. */
export interface Options {
  /** The base URL of its Confluent-compatible API, e.g. `http://127.0.0.1:8081` or `.../apis/ccompat/v7`. */
  readonly url: string
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** PEM certificates to trust for `https` (a private CA). */
  readonly ca?: string | undefined
  /** Per request (default 30 s). */
  readonly timeoutMs?: number | undefined
}

const contentType = "application/vnd.schemaregistry.v1+json"

interface Answer {
  readonly status: number
  readonly body: unknown
}

/** One HTTP request at the driver boundary: the answer's status and JSON body (undefined when it has none). */
const request = (base: URL, options: Options, method: "GET" | "POST", path: string, body: unknown): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const target = new URL(`${base.pathname.replace(/\/+$/, "")}${path}`, base)
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string> = { accept: contentType }
    if (payload !== undefined) headers["content-type"] = contentType
    if (options.username !== undefined) {
      const password = options.password === undefined ? "" : Redacted.value(options.password)
      headers.authorization = `Basic ${Buffer.from(`${options.username}:${password}`).toString("base64")}`
    }
    const send = target.protocol === "https:" ? https.request : http.request
    const req = send(
      target,
      {
        method,
        headers,
        timeout: options.timeoutMs ?? 30_000,
        ...(options.ca === undefined ? {} : { ca: options.ca })
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", reject)
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let parsed: unknown
          try {
            parsed = text === "" ? undefined : JSON.parse(text)
          } catch {
            parsed = text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
      }
    )
    req.on("timeout", () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms`)))
    req.on("error", reject)
    req.end(payload)
  })

/** The base URL without credentials, for messages. */
const publicUrl = (url: URL): string => `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`

/** A client over HTTP(S). Credentials in the URL itself are taken as `username` / `password`. */
export const make = (options: Options): Effect.Effect<Service, RegistryError> =>
  Effect.gen(function* () {
    const parsed = yield* Effect.try({
      try: () => new URL(options.url),
      catch: () =>
        new RegistryError({
          operation: "connect",
          url: "(invalid)",
          message: "The schema registry URL is not a valid http(s) URL",
          retryable: false
        })
    })
    const username = options.username ?? (parsed.username === "" ? undefined : decodeURIComponent(parsed.username))
    const password =
      options.password ?? (parsed.password === "" ? undefined : Redacted.make(decodeURIComponent(parsed.password)))
    parsed.username = ""
    parsed.password = ""
    const url = publicUrl(parsed)
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
      return yield* new RegistryError({
        operation: "connect",
        url,
        message: `The schema registry URL must be http or https, not ${parsed.protocol}`,
        retryable: false
      })
    const connection: Options = { ...options, username, password }
    const call = (operation: string, method: "GET" | "POST", path: string, body?: unknown) =>
      Effect.flatMap(
        Effect.tryPromise({
          try: () => request(parsed, connection, method, path, body),
          catch: (cause) =>
            new RegistryError({
              operation,
              url,
              message: `${operation}: ${url} cannot be reached: ${cause instanceof Error ? cause.message : String(cause)}`,
              retryable: true
            })
        }),
        (answer) => {
          if (answer.status >= 200 && answer.status < 300) return Effect.succeed(answer.body)
          const error = answer.body as { readonly error_code?: unknown; readonly message?: unknown } | undefined
          const said = typeof error?.message === "string" ? error.message : `HTTP ${answer.status}`
          return Effect.fail(
            new RegistryError({
              operation,
              url,
              status: answer.status,
              errorCode: typeof error?.error_code === "number" ? error.error_code : undefined,
              message: `${operation}: the schema registry at ${url} answered ${answer.status}: ${said}`,
              retryable: answer.status >= 500 || answer.status === 429
            })
          )
        }
      )
    const schemaOf = (operation: string, body: unknown) =>
      Effect.flatMap(
        Effect.try({
          try: () => JSON.parse((body as { readonly schema: string }).schema) as unknown,
          catch: () =>
            new RegistryError({
              operation,
              url,
              message: `${operation}: the schema registry at ${url} did not answer with a JSON schema`,
              retryable: false
            })
        }),
        (json) =>
          Effect.mapError(
            AvroSchema.validate(json),
            (e) =>
              new RegistryError({
                operation,
                url,
                message: `${operation}: not an Avro schema: ${e.message}`,
                retryable: false
              })
          )
      )
    const idOf = (operation: string, body: unknown) => {
      const id = (body as { readonly id?: unknown } | undefined)?.id
      return typeof id === "number"
        ? Effect.succeed(id)
        : Effect.fail(
            new RegistryError({
              operation,
              url,
              message: `${operation}: the schema registry at ${url} answered without a schema id`,
              retryable: false
            })
          )
    }
    const path = (subject: string) => `/subjects/${encodeURIComponent(subject)}`
    return yield* fromRequests(url, {
      schemaById: (id) => {
        const operation = `fetch schema ${id}`
        return Effect.flatMap(call(operation, "GET", `/schemas/ids/${id}`), (body) => schemaOf(operation, body))
      },
      register: (subject, schema) => {
        const operation = `register under ${subject}`
        return Effect.flatMap(
          call(operation, "POST", `${path(subject)}/versions`, { schema: JSON.stringify(schema) }),
          (body) => idOf(operation, body)
        )
      },
      lookup: (subject, schema) => {
        const operation = `look up under ${subject}`
        return Effect.flatMap(call(operation, "POST", path(subject), { schema: JSON.stringify(schema) }), (body) =>
          idOf(operation, body)
        )
      }
    })
  })

/**
 * Caches a registry's answers: each id once (concurrent lookups share one request; failures are not kept), each
 * subject and schema once.
 */
const fromRequests = (url: string, uncached: Omit<Service, "url">): Effect.Effect<Service> =>
  Effect.sync(() => {
    const byId = new Map<number, Deferred.Deferred<AvroSchema.Schema, RegistryError>>()
    const bySubject = new Map<string, Deferred.Deferred<number, RegistryError>>()
    const shared = <K, A>(
      cache: Map<K, Deferred.Deferred<A, RegistryError>>,
      key: K,
      ask: Effect.Effect<A, RegistryError>
    ): Effect.Effect<A, RegistryError> =>
      Effect.suspend(() => {
        const pending = cache.get(key)
        if (pending !== undefined) return Deferred.await(pending)
        return Effect.flatMap(Deferred.make<A, RegistryError>(), (deferred) => {
          cache.set(key, deferred)
          return Effect.flatMap(Effect.exit(ask), (exit) => {
            if (Exit.isFailure(exit)) cache.delete(key)
            return Effect.andThen(Deferred.done(deferred, exit), exit)
          })
        })
      })
    return {
      url,
      schemaById: (id) => shared(byId, id, uncached.schemaById(id)),
      register: (subject, schema) =>
        shared(bySubject, `register ${subject} ${JSON.stringify(schema)}`, uncached.register(subject, schema)),
      lookup: (subject, schema) =>
        shared(bySubject, `lookup ${subject} ${JSON.stringify(schema)}`, uncached.lookup(subject, schema))
    }
  })

/** A client of the registry at `options.url`. */
export const layer = (options: Options): Layer.Layer<RegistryClient, RegistryError> =>
  Layer.effect(RegistryClient, make(options))

/**
 * An in-memory registry for tests: ids are given in order of first registration (the same schema text keeps its id,
 * under any subject), every schema is compatible, and `lookup` finds what was registered under the subject.
 */
export const makeMemory = (): Effect.Effect<Service> => {
  const ids = new Map<string, number>()
  const schemas = new Map<number, AvroSchema.Schema>()
  const subjects = new Map<string, Set<number>>()
  const url = "memory"
  const notFound = (operation: string, errorCode: number, message: string) =>
    Effect.fail(new RegistryError({ operation, url, status: 404, errorCode, message, retryable: false }))
  return fromRequests(url, {
    schemaById: (id) =>
      Effect.suspend(() => {
        const schema = schemas.get(id)
        return schema === undefined
          ? notFound(`fetch schema ${id}`, 40403, `fetch schema ${id}: no schema with id ${id}`)
          : Effect.succeed(schema)
      }),
    register: (subject, schema) =>
      Effect.sync(() => {
        const text = JSON.stringify(schema)
        let id = ids.get(text)
        if (id === undefined) {
          id = ids.size + 1
          ids.set(text, id)
          schemas.set(id, schema)
        }
        const under = subjects.get(subject) ?? new Set<number>()
        under.add(id)
        subjects.set(subject, under)
        return id
      }),
    lookup: (subject, schema) =>
      Effect.suspend(() => {
        const id = ids.get(JSON.stringify(schema))
        const under = subjects.get(subject)
        if (under === undefined) return notFound(`look up under ${subject}`, 40401, `subject ${subject} not found`)
        return id === undefined || !under.has(id)
          ? notFound(`look up under ${subject}`, 40403, `the schema is not registered under ${subject}`)
          : Effect.succeed(id)
      })
  })
}

/** {@link makeMemory} as a layer. */
export const layerMemory = (): Layer.Layer<RegistryClient> => Layer.effect(RegistryClient, makeMemory())
