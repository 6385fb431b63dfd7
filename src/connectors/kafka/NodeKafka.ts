/**
 * The kafkajs driver of the Kafka client contract: the only file that imports kafkajs.
 *
 * Consumers use `eachBatch` and hand each fetched partition batch to the stream (backpressured: the fetch loop waits,
 * heartbeating, while the pipeline is busy). Start positions are seeks applied as soon as the group is joined.
 * Commits go through the consumer, which stays in the group (paused) after its stream ended until the source closes
 * it, so a bounded source's batches can be acknowledged after the sink committed them. Producers are idempotent with
 * acks=all.
 * kafkajs ships only GZIP: other codecs are rejected when configured, and reading a batch compressed with one fails
 * with the `UnsupportedCompression` reason. kafkajs failures are mapped to reasons in {@link classifyError}.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import {
  type Admin,
  CompressionTypes,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  logLevel,
  type SASLOptions
} from "kafkajs"
import {
  type ConnectionOptions,
  type FetchedBatch,
  KafkaClient,
  type KafkaClientShape,
  type Message,
  type Position
} from "./KafkaClient.ts"
import { KafkaError, type KafkaErrorReason, reasons } from "./KafkaError.ts"

const retriableProtocol: ReadonlySet<string> = new Set([
  "NOT_LEADER_FOR_PARTITION",
  "LEADER_NOT_AVAILABLE",
  "NOT_COORDINATOR_FOR_GROUP",
  "NOT_COORDINATOR",
  "COORDINATOR_NOT_AVAILABLE",
  "GROUP_COORDINATOR_NOT_AVAILABLE",
  "COORDINATOR_LOAD_IN_PROGRESS",
  "GROUP_LOAD_IN_PROGRESS",
  "NOT_ENOUGH_REPLICAS",
  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
  "UNKNOWN_LEADER_EPOCH",
  "FENCED_LEADER_EPOCH",
  "NETWORK_EXCEPTION",
  "KAFKA_STORAGE_ERROR",
  "UNSTABLE_OFFSET_COMMIT"
])

const protocolReasons: Readonly<Record<string, KafkaErrorReason>> = {
  UNKNOWN_TOPIC_OR_PARTITION: reasons.TopicNotFound,
  TOPIC_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  GROUP_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  CLUSTER_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  SASL_AUTHENTICATION_FAILED: reasons.AuthenticationError,
  MESSAGE_TOO_LARGE: reasons.MessageTooLarge,
  RECORD_LIST_TOO_LARGE: reasons.MessageTooLarge,
  OFFSET_OUT_OF_RANGE: reasons.OffsetOutOfRange,
  REBALANCE_IN_PROGRESS: reasons.RebalanceInProgress,
  ILLEGAL_GENERATION: reasons.RebalanceInProgress,
  UNKNOWN_MEMBER_ID: reasons.RebalanceInProgress,
  REQUEST_TIMED_OUT: reasons.Timeout,
  INVALID_TOPIC_EXCEPTION: reasons.InvalidRequest,
  INVALID_REQUIRED_ACKS: reasons.InvalidRequest,
  INVALID_PARTITIONS: reasons.InvalidRequest,
  INVALID_REPLICATION_FACTOR: reasons.InvalidRequest,
  INVALID_CONFIG: reasons.InvalidRequest,
  UNSUPPORTED_COMPRESSION_TYPE: reasons.UnsupportedCompression
}

interface DriverError {
  readonly name?: string
  readonly type?: string
  readonly message?: string
  readonly retriable?: boolean
  readonly originalError?: unknown
  readonly cause?: unknown
}

/** Maps a kafkajs failure (unwrapping retry wrappers) to a reason. */
export const classifyReason = (error: unknown): KafkaErrorReason => {
  let current = error as DriverError | undefined
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const name = current.name ?? ""
    const message = current.message ?? ""
    if (current.type !== undefined) {
      const known = protocolReasons[current.type]
      if (known !== undefined) return known
      if (retriableProtocol.has(current.type)) return reasons.NotLeader
    }
    if (/compression not implemented|codec.*not (?:implemented|supported)/i.test(message))
      return reasons.UnsupportedCompression
    if (name === "KafkaJSSASLAuthenticationError") return reasons.AuthenticationError
    if (name === "KafkaJSRequestTimeoutError" || name === "KafkaJSTimeout" || name === "KafkaJSLockTimeout")
      return reasons.Timeout
    if (
      name === "KafkaJSConnectionError" ||
      name === "KafkaJSConnectionClosedError" ||
      name === "KafkaJSBrokerNotFound" ||
      name === "KafkaJSNoBrokerAvailableError" ||
      /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH/.test(message)
    )
      return reasons.ConnectionError
    if (name === "KafkaJSTopicMetadataNotLoaded" || /does not host this topic-partition/.test(message))
      return reasons.TopicNotFound
    if (name === "KafkaJSOffsetOutOfRange") return reasons.OffsetOutOfRange
    const inner = current.originalError ?? current.cause
    if (inner === undefined || inner === current) break
    current = inner as DriverError
  }
  return reasons.Unknown
}

/** Wraps a kafkajs failure into a KafkaError naming the operation and topic. */
export const classifyError =
  (operation: string, topic?: string) =>
  (cause: unknown): KafkaError => {
    const reason = classifyReason(cause)
    const text = cause instanceof Error ? cause.message : String(cause)
    return new KafkaError({
      reason,
      operation,
      topic,
      message: `Kafka ${operation}${topic === undefined ? "" : ` on ${topic}`} failed (${reason._tag}): ${text}`,
      cause
    })
  }

const attempt = <A>(operation: string, topic: string | undefined, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: classifyError(operation, topic) })

const toBytes = (value: Buffer | string | null | undefined): Uint8Array | null =>
  value === null || value === undefined ? null : typeof value === "string" ? Buffer.from(value) : value

const toHeaders = (headers: IHeaders | undefined): Record<string, Uint8Array> => {
  const out: Record<string, Uint8Array> = {}
  if (headers === undefined) return out
  for (const [name, value] of Object.entries(headers)) {
    const first = Array.isArray(value) ? value[0] : value
    const bytes = toBytes(first)
    if (bytes !== null) out[name] = bytes
  }
  return out
}

/** A bounded hand-off from kafkajs's fetch loop to a pull stream, with failure propagation. */
class Channel {
  private readonly items: Array<FetchedBatch> = []
  private failure: unknown
  private waitingTake: (() => void) | undefined
  private waitingPut: (() => void) | undefined
  private readonly capacity: number
  closed = false
  constructor(capacity: number) {
    this.capacity = capacity
  }

  async put(item: FetchedBatch, heartbeat: () => Promise<void>): Promise<void> {
    while (this.items.length >= this.capacity && !this.closed && this.failure === undefined) {
      await new Promise<void>((resolve) => {
        this.waitingPut = resolve
        setTimeout(resolve, 3000)
      })
      await heartbeat().catch(() => undefined)
    }
    if (this.closed) return
    this.items.push(item)
    this.wakeTake()
  }

  fail(error: unknown): void {
    this.failure = error
    this.wakeTake()
  }

  close(): void {
    this.closed = true
    this.waitingPut?.()
    this.wakeTake()
  }

  private wakeTake(): void {
    const wake = this.waitingTake
    this.waitingTake = undefined
    wake?.()
  }

  async take(): Promise<FetchedBatch | undefined> {
    while (this.items.length === 0) {
      if (this.failure !== undefined) throw this.failure
      if (this.closed) return undefined
      await new Promise<void>((resolve) => {
        this.waitingTake = resolve
      })
    }
    const item = this.items.shift()!
    const wake = this.waitingPut
    this.waitingPut = undefined
    wake?.()
    return item
  }
}

const convert = (batch: EachBatchPayload["batch"]): FetchedBatch => {
  const messages: Array<Message> = new Array(batch.messages.length)
  for (let i = 0; i < batch.messages.length; i++) {
    const m = batch.messages[i]!
    messages[i] = {
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      timestamp: Number(m.timestamp),
      key: m.key ?? null,
      value: m.value ?? null,
      headers: toHeaders(m.headers)
    }
  }
  return {
    topic: batch.topic,
    partition: batch.partition,
    messages,
    lastOffset: batch.lastOffset(),
    highWatermark: batch.highWatermark
  }
}

const sasl = (options: ConnectionOptions): SASLOptions | undefined => {
  const s = options.sasl
  if (s === undefined) return undefined
  const password = Redacted.value(s.password) as string
  switch (s.mechanism) {
    case "plain":
      return { mechanism: "plain", username: s.username, password }
    case "scram-sha-256":
      return { mechanism: "scram-sha-256", username: s.username, password }
    case "scram-sha-512":
      return { mechanism: "scram-sha-512", username: s.username, password }
  }
}

/** Builds the client over a kafkajs `Kafka` instance; the admin client is opened for the Scope. */
export const make = Effect.fn("NodeKafka.make")(function* (options: ConnectionOptions) {
  const saslOptions = sasl(options)
  const kafka = new Kafka({
    clientId: options.clientId ?? "effect-etl",
    brokers: [...options.brokers],
    ...(options.ssl === true ? { ssl: true } : {}),
    ...(saslOptions === undefined ? {} : { sasl: saslOptions }),
    connectionTimeout: options.connectionTimeout ?? 10_000,
    requestTimeout: options.requestTimeout ?? 30_000,
    logLevel: logLevel.NOTHING,
    // A few quick retries inside kafkajs for leader moves; longer outages are the runtime's retry policy.
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 }
  })
  const admin: Admin = yield* Effect.acquireRelease(
    attempt("connect", undefined, async () => {
      const a = kafka.admin()
      await a.connect()
      return a
    }),
    (a) => Effect.promise(() => a.disconnect().catch(() => undefined))
  )

  // Consumers not yet closed, by group: closed before another consumer of the group starts, and with the layer.
  const open = new Map<string, () => Promise<void>>()
  yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([...open.values()].map((close) => close()))))

  const commitAsNewMember = async (
    groupId: string,
    topics: ReadonlyArray<string>,
    positions: ReadonlyArray<Position>
  ): Promise<void> => {
    const c = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      retry: { retries: 5, initialRetryTime: 100 }
    })
    await c.connect()
    try {
      await c.subscribe({ topics: [...topics] })
      await c.run({ autoCommit: false, eachBatch: async () => undefined })
      c.pause(topics.map((topic) => ({ topic })))
      await c.commitOffsets(positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset })))
    } finally {
      await c.disconnect().catch(() => undefined)
    }
  }

  const client: KafkaClientShape = {
    listTopics: attempt("listTopics", undefined, () => admin.listTopics()),
    createTopic: (topic, topicOptions) =>
      attempt("createTopic", topic, async () => {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic,
              numPartitions: topicOptions?.partitions ?? 1,
              replicationFactor: 1,
              configEntries: Object.entries(topicOptions?.config ?? {}).map(([name, value]) => ({ name, value }))
            }
          ]
        })
      }),
    partitionOffsets: (topic) =>
      attempt("partitionOffsets", topic, async () =>
        (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: p.low, high: p.high }))
      ),
    offsetsForTimestamp: (topic, timestamp) =>
      attempt("offsetsForTimestamp", topic, async () => {
        const [found, ends] = await Promise.all([
          admin.fetchTopicOffsetsByTimestamp(topic, timestamp),
          admin.fetchTopicOffsets(topic)
        ])
        return found.map((p) => ({
          partition: p.partition,
          offset: p.offset === "-1" ? (ends.find((e) => e.partition === p.partition)?.high ?? p.offset) : p.offset
        }))
      }),
    committedOffsets: (groupId, topic) =>
      attempt("committedOffsets", topic, async () => {
        const [result] = await admin.fetchOffsets({ groupId, topics: [topic] })
        return (result?.partitions ?? []).map((p) => ({
          partition: p.partition,
          offset: p.offset === "-1" || p.offset === "" ? undefined : p.offset
        }))
      }),
    consume: (consumeOptions) =>
      Effect.gen(function* () {
        const topicsText = consumeOptions.topics.join(",")
        const lingering = open.get(consumeOptions.groupId)
        if (lingering !== undefined) yield* Effect.promise(lingering)
        const channel = new Channel(2)
        let live = false
        let restarts = 0
        const consumer: Consumer = yield* attempt("consume", topicsText, async () => {
          const c = kafka.consumer({
            groupId: consumeOptions.groupId,
            allowAutoTopicCreation: false,
            maxBytesPerPartition: consumeOptions.maxBytesPerPartition ?? 2 * 1024 * 1024,
            maxBytes: 16 * 1024 * 1024,
            maxWaitTimeInMs: 500,
            retry: {
              retries: 5,
              initialRetryTime: 100,
              maxRetryTime: 2_000,
              // A coordinator that is loading or moving is worth a few restarts; anything else fails the stream.
              restartOnFailure: async (error) => classifyReason(error).retryable && restarts++ < 5
            }
          })
          c.on(c.events.CRASH, (event) => {
            if (!event.payload.restart) {
              live = false
              channel.fail(event.payload.error)
            }
          })
          c.on(c.events.STOP, () => {
            live = false
          })
          await c.connect()
          try {
            await c.subscribe({ topics: [...consumeOptions.topics], fromBeginning: true })
            await c.run({
              autoCommit: false,
              eachBatchAutoResolve: true,
              eachBatch: async ({ batch, heartbeat }) => {
                if (batch.messages.length === 0 || channel.closed) return
                await channel.put(convert(batch), heartbeat)
              }
            })
            // `run` returns once the group is joined and before the first fetch completes: seeks apply from the start.
            for (const seek of consumeOptions.seeks) c.seek(seek)
          } catch (cause) {
            await c.disconnect().catch(() => undefined)
            throw cause
          }
          live = true
          return c
        })
        let closing: Promise<void> | undefined
        const closeNow = (): Promise<void> => {
          if (closing === undefined) {
            channel.close()
            closing = consumer.disconnect().catch(() => undefined)
            closing.then(() => {
              live = false
              if (open.get(consumeOptions.groupId) === closeNow) open.delete(consumeOptions.groupId)
            })
          }
          return closing
        }
        open.set(consumeOptions.groupId, closeNow)
        const batches = Stream.fromPull(
          Effect.succeed(
            Effect.flatMap(
              Effect.tryPromise({ try: () => channel.take(), catch: classifyError("consume", topicsText) }),
              (batch) => (batch === undefined ? Effect.fail(undefined) : Effect.succeed([batch] as const))
            )
          )
        )
        return {
          batches: Stream.catch(batches, (e) => (e === undefined ? Stream.empty : Stream.fail(e))),
          commit: (positions: ReadonlyArray<Position>) =>
            Effect.suspend(() =>
              live
                ? attempt("commit", topicsText, () =>
                    consumer.commitOffsets(
                      positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset }))
                    )
                  )
                : // The consumer already left (its client was released with the stream): a short-lived member of
                  // the group commits instead.
                  attempt("commit", topicsText, () =>
                    commitAsNewMember(consumeOptions.groupId, consumeOptions.topics, positions)
                  )
            ),
          stop: Effect.sync(() => {
            channel.close()
            consumer.pause(consumeOptions.topics.map((topic) => ({ topic })))
          }),
          close: Effect.promise(closeNow)
        }
      }),
    producer: (producerOptions) =>
      Effect.map(
        Effect.acquireRelease(
          attempt("producer", undefined, async () => {
            const p = kafka.producer({
              idempotent: true,
              maxInFlightRequests: 1,
              allowAutoTopicCreation: false,
              retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 }
            })
            await p.connect()
            return p
          }),
          (p) => Effect.promise(() => p.disconnect().catch(() => undefined))
        ),
        (producer) => ({
          send: (topic, messages) =>
            attempt("send", topic, () =>
              producer.send({
                topic,
                acks: -1,
                compression: producerOptions.compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None,
                messages: messages.map((m) => ({
                  key: m.key === null ? null : Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength),
                  value: m.value === null ? null : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength),
                  ...(m.headers === undefined
                    ? {}
                    : {
                        headers: Object.fromEntries(
                          Object.entries(m.headers).map(([k, v]) => [
                            k,
                            Buffer.from(v.buffer, v.byteOffset, v.byteLength)
                          ])
                        )
                      })
                }))
              })
            ).pipe(Effect.asVoid)
        })
      )
  }
  return client
})

/**
 * The kafkajs client as a layer: one admin connection for the layer's lifetime; consumers and producers are opened
 * per source and sink.
 *
 * @example
 * program.pipe(Effect.provide(NodeKafka.layer({ brokers: ["127.0.0.1:9092"] })))
 */
export const layer = (options: ConnectionOptions): Layer.Layer<KafkaClient, KafkaError> =>
  Layer.effect(KafkaClient, make(options))
