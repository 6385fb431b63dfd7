/**
 * Schema registry connections of configs: the layer of a named `schema_registry` connection (one client, so one cache
 * of schemas, per run), and the client a Kafka payload format holds, which reaches that connection's client by name
 * when it runs and names the connection in every error (the registry's own message kept).
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Semaphore from "effect/Semaphore"
import * as ConfigError from "../core/ConfigError.ts"
import * as RegistryClient from "../schema/RegistryClient.ts"
import type * as Connections from "./Connections.ts"
import * as RegistryConfig from "./RegistryConfig.ts"

/** The CA PEM text of a connection: its `ca` as is, or read from the file it names. */
const caOf = (
  name: string,
  config: RegistryConfig.ConnectionConfig
): Effect.Effect<string | undefined, RegistryClient.RegistryError> => {
  const ca = config.ca
  if (ca === undefined || RegistryConfig.isPem(ca)) return Effect.succeed(ca)
  return Effect.tryPromise({
    try: () => fs.readFile(ca, "utf8"),
    catch: (cause) =>
      new RegistryClient.RegistryError({
        operation: "connect",
        url: RegistryClient.publicUrlOf(config.url),
        message: `The CA file of the schema registry connection "${name}" (connections.${name}.ca) cannot be read: ${
          (cause as NodeJS.ErrnoException).code ?? String(cause)
        } ${JSON.stringify(ca)}`,
        retryable: false
      })
  })
}

/**
 * The client of a named connection: made on first use (its CA file read then), kept for the run. A failure to make it
 * fails the operation that needed it, and the next one tries again.
 */
const lazyClient = (name: string, config: RegistryConfig.ConnectionConfig): RegistryClient.Service => {
  const lock = Semaphore.makeUnsafe(1)
  let made: RegistryClient.Service | undefined
  const get = Semaphore.withPermit(lock)(
    Effect.suspend(() =>
      made !== undefined
        ? Effect.succeed(made)
        : caOf(name, config).pipe(
            Effect.flatMap((ca) => RegistryClient.make(RegistryConfig.clientOptions(config, ca))),
            Effect.tap((client) =>
              Effect.sync(() => {
                made = client
              })
            )
          )
    )
  )
  return {
    url: RegistryClient.publicUrlOf(config.url),
    schemaById: (id) => Effect.flatMap(get, (c) => c.schemaById(id)),
    register: (subject, schema) => Effect.flatMap(get, (c) => c.register(subject, schema)),
    lookup: (subject, schema) => Effect.flatMap(get, (c) => c.lookup(subject, schema))
  }
}

/** The layer of a named schema registry connection: one client per run, shared by every payload naming it. */
export const connectionLayer = <const Name extends string>(
  name: Name,
  config: RegistryConfig.ConnectionConfig
): Layer.Layer<RegistryClient.RegistryConnection<Name>> =>
  Layer.sync(RegistryClient.connection(name), () => lazyClient(name, config))

/** A client whose every operation fails: it stands for a connection nobody provided. */
const missingClient = (name: string): RegistryClient.Service => {
  const fail = Effect.suspend(() =>
    Effect.fail(
      new RegistryClient.RegistryError({
        operation: `use connection ${name}`,
        url: "(not provided)",
        message: `The schema registry connection "${name}" is not provided: provide Build.connections(config) (the CLI does) or RegistryBuild.connectionLayer("${name}", config)`,
        retryable: false
      })
    )
  )
  return { url: "(not provided)", schemaById: () => fail, register: () => fail, lookup: () => fail }
}

const named = (name: string): Context.Key<never, RegistryClient.Service> =>
  Context.Reference<RegistryClient.Service>(RegistryClient.connection(name).key, {
    defaultValue: () => missingClient(name)
  })

/**
 * The client a Kafka payload format of a config holds: each operation uses the client of the connection `name` that
 * the run provides, and its errors name the connection. With `autoRegister: false`, a schema the registry does not
 * have under the subject is told how to fix it.
 */
export const payloadClient = (
  name: string,
  config: RegistryConfig.ConnectionConfig,
  options: { readonly autoRegister: boolean }
): RegistryClient.Service => {
  const named_ = named(name)
  const withName =
    (hint: (e: RegistryClient.RegistryError) => string) =>
    <A>(effect: Effect.Effect<A, RegistryClient.RegistryError>) =>
      Effect.mapError(
        effect,
        (e) =>
          new RegistryClient.RegistryError({
            operation: e.operation,
            url: e.url,
            status: e.status,
            errorCode: e.errorCode,
            retryable: e.retryable,
            message: `Schema registry connection "${name}": ${e.message}${hint(e)}`
          })
      )
  const plain = withName(() => "")
  const lookupHint = withName((e) =>
    !options.autoRegister && (e.errorCode === 40401 || e.errorCode === 40403 || e.status === 404)
      ? ' ("auto_register" is false, so the sink only looks its schema up: register it under the subject first, or set "auto_register": true)'
      : ""
  )
  return {
    url: RegistryClient.publicUrlOf(config.url),
    schemaById: (id) => plain(Effect.flatMap(Effect.service(named_), (c) => c.schemaById(id))),
    register: (subject, schema) => plain(Effect.flatMap(Effect.service(named_), (c) => c.register(subject, schema))),
    lookup: (subject, schema) => lookupHint(Effect.flatMap(Effect.service(named_), (c) => c.lookup(subject, schema)))
  }
}

/**
 * The schema registry connection a payload's `registry` names, or a ConfigError at `<path>.registry` when it is not
 * declared or is a connection of another system.
 */
export const declared = (options: {
  readonly file: string
  readonly path: string
  readonly connections: Readonly<Record<string, Connections.Declared>> | undefined
  readonly name: string
}): Effect.Effect<RegistryConfig.ConnectionConfig, ConfigError.ConfigError> => {
  const connections = options.connections ?? {}
  const registries = Object.entries(connections)
    .filter(([, c]) => c.type === "schema_registry")
    .map(([n]) => n)
  const known = registries.length === 0 ? "" : ` (schema registries declared: ${registries.join(", ")})`
  const connection = connections[options.name]
  if (connection === undefined)
    return Effect.fail(
      ConfigError.single(
        options.file,
        `${options.path}.registry`,
        `Unknown connection "${options.name}": declare it under "connections" with "type": "schema_registry"${known}`
      )
    )
  if (connection.type !== "schema_registry")
    return Effect.fail(
      ConfigError.single(
        options.file,
        `${options.path}.registry`,
        `Connection "${options.name}" is a ${connection.type} connection; "registry" needs a schema_registry one${known}`
      )
    )
  return Effect.succeed(connection as RegistryConfig.ConnectionConfig)
}
