/**
 * Checks shared by every connector whose sources and sinks name a connection declared in a config's `connections`:
 * the name is declared, and it is a connection of the right system, each reported at the JSON path of the reference.
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as ConfigError from "../core/ConfigError.ts"
import type * as Sink from "../core/Sink.ts"
import type * as Source from "../core/Source.ts"

/** A declared connection, as far as these checks need it. */
export interface Declared {
  readonly type: string
}

const labels: Readonly<Record<string, string>> = {
  postgres: "PostgreSQL",
  mysql: "MySQL",
  kafka: "Kafka",
  s3: "S3",
  schema_registry: "schema registry"
}

/** "a" or "an" before a system's name or type, as it is read aloud ("an S3 connection", "a MySQL one"). */
const an = (word: string): string => `${/^(s3|S3|[aeiouAEIOU])/.test(word) ? "an" : "a"} ${word}`

/** The name people use for a connection type (`postgres` → PostgreSQL). */
export const label = (type: string): string => labels[type] ?? type

/**
 * Fails with a ConfigError at `<path>.connection` unless `name` is declared and is a `type` connection; `role` is
 * what refers to it ("source", "sink").
 */
export const check = <C extends Declared>(options: {
  readonly file: string
  readonly path: string
  readonly connections: Readonly<Record<string, C>>
  readonly name: string
  readonly type: string
  readonly role: string
}): Effect.Effect<C, ConfigError.ConfigError> => {
  const declared = Object.keys(options.connections)
  const connection = options.connections[options.name]
  if (connection === undefined)
    return Effect.fail(
      ConfigError.single(
        options.file,
        `${options.path}.connection`,
        `Unknown connection "${options.name}": declare it under "connections"${declared.length === 0 ? "" : ` (declared: ${declared.join(", ")})`}`
      )
    )
  if (connection.type !== options.type)
    return Effect.fail(
      ConfigError.single(
        options.file,
        `${options.path}.connection`,
        `Connection "${options.name}" is ${an(label(connection.type))} connection; ${an(options.type)} ${options.role} needs ${an(label(options.type))} one`
      )
    )
  return Effect.succeed(connection)
}

/**
 * A source whose connector service is taken, when it runs, from `client` (e.g. the reference a config's named
 * connection is provided under), so config pipelines do not name every connection in their type.
 */
export const sourceWith = <A, E, I, S>(
  source: Source.Source<A, E, I>,
  service: Context.Key<I, S>,
  client: Effect.Effect<S>
): Source.Source<A, E> => ({
  ...source,
  batches: (ctx) => Stream.unwrap(Effect.map(client, (c) => Stream.provideService(source.batches(ctx), service, c))),
  size:
    source.size === undefined
      ? undefined
      : Effect.flatMap(client, (c) => Effect.provideService(source.size!, service, c)),
  split:
    source.split === undefined
      ? undefined
      : (options) => Effect.flatMap(client, (c) => Effect.provideService(source.split!(options), service, c)),
  commitParts:
    source.commitParts === undefined
      ? undefined
      : (parts) => Effect.flatMap(client, (c) => Effect.provideService(source.commitParts!(parts), service, c)),
  readsRaw:
    source.readsRaw === undefined
      ? undefined
      : {
          format: source.readsRaw.format,
          offer: Effect.flatMap(client, (c) => Effect.provideService(source.readsRaw!.offer, service, c))
        }
})

/** A sink whose connector service is taken, when it opens, from `client` (see `sourceWith`). */
export const sinkWith = <A, E, I, S>(
  sink: Sink.Sink<A, E, I>,
  service: Context.Key<I, S>,
  client: Effect.Effect<S>
): Sink.Sink<A, E> => ({
  ...sink,
  open: Effect.flatMap(client, (c) => Effect.provideService(sink.open, service, c)),
  check:
    sink.check === undefined
      ? undefined
      : Effect.flatMap(client, (c) => Effect.provideService(sink.check!, service, c)),
  positions:
    sink.positions === undefined
      ? undefined
      : {
          where: sink.positions.where,
          load: (pipeline) =>
            Effect.flatMap(client, (c) => Effect.provideService(sink.positions!.load(pipeline), service, c))
        },
  staging: stagingWith(sink.staging, service, client),
  threadStaging: stagingWith(sink.threadStaging, service, client),
  writesRaw:
    sink.writesRaw === undefined
      ? undefined
      : {
          format: sink.writesRaw.format,
          accept: (offer) =>
            Effect.flatMap(client, (c) => Effect.provideService(sink.writesRaw!.accept(offer), service, c))
        }
})

const stagingWith = <E, I, S>(
  staging: Sink.PartStaging<E, I> | undefined,
  service: Context.Key<I, S>,
  client: Effect.Effect<S>
): Sink.PartStaging<E> | undefined =>
  staging === undefined
    ? undefined
    : {
        description: staging.description,
        part: (run, part) => Effect.flatMap(client, (c) => Effect.provideService(staging.part(run, part), service, c)),
        finish: (run, parts) =>
          Effect.flatMap(client, (c) => Effect.provideService(staging.finish(run, parts), service, c)),
        clear: (run, parts) =>
          Effect.flatMap(client, (c) => Effect.provideService(staging.clear(run, parts), service, c))
      }

/** Gives a source its own client from `layer`, opened when its stream starts and closed when it ends. */
export const sourceWithLayer = <A, E, I, LE>(
  source: Source.Source<A, E, I>,
  layer: Layer.Layer<I, LE>
): Source.Source<A, E | LE> => ({
  ...source,
  batches: (ctx) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
        return Stream.provideContext(source.batches(ctx), context)
      })
    ),
  size:
    source.size === undefined
      ? undefined
      : Effect.scoped(Effect.flatMap(Layer.build(layer), (context) => Effect.provideContext(source.size!, context))),
  split:
    source.split === undefined
      ? undefined
      : (options) =>
          Effect.scoped(
            Effect.flatMap(Layer.build(layer), (context) => Effect.provideContext(source.split!(options), context))
          ),
  commitParts:
    source.commitParts === undefined ? undefined : (parts) => Effect.provide(source.commitParts!(parts), layer),
  readsRaw:
    source.readsRaw === undefined
      ? undefined
      : { format: source.readsRaw.format, offer: Effect.provide(source.readsRaw.offer, layer) }
})

/** Gives a sink its own client from `layer`, open as long as the sink's writer (or its check). */
export const sinkWithLayer = <A, E, I, LE>(
  sink: Sink.Sink<A, E, I>,
  layer: Layer.Layer<I, LE>
): Sink.Sink<A, E | LE> => ({
  ...sink,
  open: Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
    return yield* Effect.provideContext(sink.open, context)
  }),
  check: sink.check === undefined ? undefined : Effect.provide(sink.check, layer),
  positions:
    sink.positions === undefined
      ? undefined
      : { where: sink.positions.where, load: (pipeline) => Effect.provide(sink.positions!.load(pipeline), layer) },
  staging: stagingWithLayer(sink.staging, layer),
  threadStaging: stagingWithLayer(sink.threadStaging, layer),
  writesRaw:
    sink.writesRaw === undefined
      ? undefined
      : { format: sink.writesRaw.format, accept: (offer) => Effect.provide(sink.writesRaw!.accept(offer), layer) }
})

const stagingWithLayer = <E, I, LE>(
  staging: Sink.PartStaging<E, I> | undefined,
  layer: Layer.Layer<I, LE>
): Sink.PartStaging<E | LE> | undefined =>
  staging === undefined
    ? undefined
    : {
        description: staging.description,
        part: (run, part) =>
          Effect.gen(function* () {
            const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
            return yield* Effect.provideContext(staging.part(run, part), context)
          }),
        finish: (run, parts) =>
          Effect.gen(function* () {
            const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
            return yield* Effect.provideContext(staging.finish(run, parts), context)
          }),
        clear: (run, parts) => Effect.provide(staging.clear(run, parts), layer)
      }

/**
 * Checks that an optional `connection` of a source or sink names a declared connection of `type`; nothing to check
 * when the stage carries its connection fields inline.
 */
export const checkOptional = (
  name: string | undefined,
  type: string,
  role: string,
  env: {
    readonly file: string
    readonly path: string
    readonly connections?: Readonly<Record<string, Declared>> | undefined
  }
): Effect.Effect<void, ConfigError.ConfigError> =>
  name === undefined
    ? Effect.void
    : Effect.asVoid(check({ file: env.file, path: env.path, connections: env.connections ?? {}, name, type, role }))
