/**
 * The Kafka connector: a source reading topics in whole fetched batches, and a sink producing keyed (upsert, for
 * compacted topics) or unkeyed (append) messages.
 *
 * - `source` resolves its topics (a list or a pattern), its start positions (earliest, latest, the group's committed
 *   offsets, a timestamp, or explicit offsets per partition) and — when `bounded` (the default, batch mode) — the end
 *   offsets at start, like Spark's `endingOffsets`: it stops once every partition reached them. Each fetched partition
 *   batch becomes one pipeline batch whose `ack` commits the next offset to the consumer group: offsets are committed
 *   only after the sink has durably written the batch; each batch names its partition (`Batch.part`), so that
 *   event-time stages keep a watermark per partition (a streaming read's partitions are open-ended: one that goes quiet
 *   stops holding the watermark back after the stage's idle timeout). A message that does not decode (or, with a
 *   schema, does not validate) becomes a dead letter with `origin: "topic/partition@offset"`; the rest of the batch
 *   flows on.
 *   With `envelope: true` records are {@link Envelope}s carrying key, headers, partition, offset and timestamp.
 *   An unbounded source ends its stream normally on the runtime's `StopSignal` (a graceful stop), staying in the group
 *   until the batches it emitted are acknowledged; each batch carries its oldest message timestamp
 *   (`Batch.sourceTimestamp`) for end-to-end latency. A bounded source tells its input size (end offsets minus start
 *   offsets); every fetched batch updates the partition's {@link consumerLag} gauge. A bounded source also splits
 *   (`split`, for split runs on a cluster): one part per partition with data, from its start to the end offset captured
 *   when the run is planned; a part reads its partition without joining the group and commits nothing, and the run
 *   commits the group's offsets to the parts' ends once its sink committed (`commitParts`).
 * - `sink` sends each written batch with acks=all through an idempotent producer, split into requests by size; with
 *   `linger` the runtime first gathers small batches until `batchSize` records or the linger time (see `Sink.Batching`).
 *   `upsert` keys messages by record fields; `append` sends them without a key; `overwrite` does not exist for a log.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as Batch from "../../core/Batch.ts"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import { ExtractError, type PipelineError, wrap } from "../../core/Errors.ts"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import * as Sink from "../../core/Sink.ts"
import * as Source from "../../core/Source.ts"
import type { SplitPart } from "../../core/Stage.ts"
import { StopSignal } from "../../core/Stop.ts"
import * as Payload from "../../formats/Payload.ts"
import { RegistryError } from "../../schema/RegistryClient.ts"
import * as Datasets from "../internal/Datasets.ts"
import {
  type Compression,
  type Drain,
  type FetchedBatch,
  isDrain,
  KafkaClient,
  type KafkaClientShape,
  type Message,
  type OutgoingMessage,
  type Position,
  type TopicPartition
} from "./KafkaClient.ts"
import { KafkaError, reasons } from "./KafkaError.ts"

/** Where a source starts reading each partition. */
export type StartPosition =
  | "earliest"
  | "latest"
  /** The group's committed offsets; partitions without one start at the earliest offset. */
  | "committed"
  | { readonly timestamp: number }
  /** topic → partition → offset; partitions not listed start at the committed offset (else earliest). */
  | { readonly offsets: Readonly<Record<string, Readonly<Record<number, string | number>>>> }

/** A message with its metadata, as records of an `envelope: true` source. */
export interface Envelope<V> {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  /** Milliseconds since the epoch. */
  readonly timestamp: number
  readonly key: unknown
  readonly headers: Readonly<Record<string, string>>
  readonly value: V
}

/** Options of a Kafka source. */
export interface SourceOptions<A> {
  /** Topic names, or a pattern matched against every topic of the cluster. */
  readonly topics: ReadonlyArray<string> | RegExp
  /** The consumer group whose offsets are committed. */
  readonly groupId: string
  readonly name?: string
  /** Default `committed`. */
  readonly start?: StartPosition
  /** `true` (default): stop at the end offsets captured at start. `false`: run until interrupted (streaming). */
  readonly bounded?: boolean
  /** The value format. */
  readonly value: Payload.PayloadFormat
  /** The key format (default `string`). */
  readonly key?: Payload.PayloadFormat
  /** Validates decoded JSON/string values; failures become dead letters. Avro values are typed by their schema. */
  readonly schema?: RecordSchema<A>
  /** Upper bound of the bytes fetched per partition per request (default 512 KiB; at most 16 MiB per request in all). */
  readonly maxBytesPerPartition?: number
  /**
   * The consumer's static group membership id (`group.instance.id`, KIP-345). A process restarted after a crash comes
   * back as the same member and gets its partitions back at once, instead of waiting for the dead member's session
   * timeout. Default: the client's — with the live client the `ETL_INSTANCE_ID` environment variable when set, else
   * `<groupId>-<hostname>`. `false`: dynamic membership. Two processes reading the group must not share an id: the
   * one that had it first fails with the `FencedInstanceId` reason, naming this option.
   */
  readonly instanceId?: string | false
  /**
   * How long the group waits for a member that stopped heartbeating (a crash) before giving its partitions to the
   * others (default 45 seconds, Kafka's own default; brokers accept 6 seconds to 30 minutes unless configured
   * otherwise). A member that leaves — a stop, a failed run — leaves at once.
   */
  readonly sessionTimeout?: Duration.Input
  /**
   * The cluster's bootstrap brokers (`host:port`), naming the dataset read for lineage (`kafka://host:port`): the
   * client layer connects, but a source names its dataset before it runs. Without them only span attributes are set.
   */
  readonly brokers?: ReadonlyArray<string>
}

const nextOffset = (offset: string): string => (BigInt(offset) + 1n).toString()
const isBefore = (a: string, b: string): boolean => BigInt(a) < BigInt(b)
const maxOffset = (a: string, b: string): string => (BigInt(a) >= BigInt(b) ? a : b)

const textDecoder = new TextDecoder()
const strictText = new TextDecoder("utf-8", { fatal: true })

/** A key as text, or as its bytes when it is not valid UTF-8 (nothing is replaced by U+FFFD). */
const keyOf = (key: Uint8Array): string | Uint8Array => {
  try {
    return strictText.decode(key)
  } catch {
    return key
  }
}

/** Where a message came from, as dead letters name it: `topic/partition@offset`. */
const originOf = (m: Message): string => `${m.topic}/${m.partition}@${m.offset}`

const rawOf = (m: Message): Readonly<Record<string, unknown>> => ({
  topic: m.topic,
  partition: m.partition,
  offset: m.offset,
  timestamp: m.timestamp,
  key: m.key === null ? null : keyOf(m.key),
  value: m.value === null ? null : Buffer.from(m.value).toString("base64")
})

const headersOf = (m: Message): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, bytes] of Object.entries(m.headers)) out[name] = textDecoder.decode(bytes)
  return out
}

interface Plan {
  readonly topics: ReadonlyArray<string>
  /** Explicit start positions to set on the group (none: start at the group's committed offsets). */
  readonly seeks: ReadonlyArray<Position>
  /** `topic/partition` → end offset, for bounded sources (partitions already at their end are left out). */
  readonly ends: Map<string, string>
  /** `topic/partition` → the offset the read starts at, for the partitions of `ends`. */
  readonly starts: Map<string, string>
}

const planRead = (
  client: KafkaClientShape,
  options: SourceOptions<unknown>,
  bounded: boolean,
  /** `topic/partition` → the next offset, as a sink stored it with its data: these partitions start there. */
  resume?: ReadonlyMap<string, string>
): Effect.Effect<Plan, KafkaError> =>
  Effect.gen(function* () {
    const all = options.topics instanceof RegExp ? yield* client.listTopics : undefined
    const pattern = options.topics instanceof RegExp ? options.topics : undefined
    const topics =
      all !== undefined && pattern !== undefined
        ? all.filter((t) => !t.startsWith("__") && pattern.test(t)).sort()
        : [...(options.topics as ReadonlyArray<string>)]
    if (topics.length === 0)
      return yield* new KafkaError({
        reason: reasons.TopicNotFound,
        operation: "source",
        topic: String(options.topics),
        message: `No topic matches ${String(options.topics)}`
      })
    const start = options.start ?? "committed"
    const seeks: Array<Position> = []
    const ends = new Map<string, string>()
    const starts = new Map<string, string>()
    for (const topic of topics) {
      const offsets = yield* client.partitionOffsets(topic)
      const committed =
        start === "committed" || (typeof start === "object" && "offsets" in start)
          ? yield* client.committedOffsets(options.groupId, topic)
          : []
      const byTime =
        typeof start === "object" && "timestamp" in start
          ? yield* client.offsetsForTimestamp(topic, start.timestamp)
          : []
      for (const p of offsets) {
        const fromGroup = committed.find((c) => c.partition === p.partition)?.offset
        let from: string
        let explicit = true
        if (start === "earliest") from = p.low
        else if (start === "latest") from = p.high
        else if (start === "committed") {
          from = fromGroup ?? p.low
          explicit = false
        } else if ("timestamp" in start) from = byTime.find((b) => b.partition === p.partition)?.offset ?? p.high
        else {
          const given = start.offsets[topic]?.[p.partition]
          explicit = given !== undefined
          from = given === undefined ? (fromGroup ?? p.low) : String(given)
        }
        const stored = resume?.get(`${topic}/${p.partition}`)
        if (stored !== undefined) {
          from = stored
          explicit = true
        }
        from = maxOffset(from, p.low)
        if (explicit) seeks.push({ topic, partition: p.partition, offset: from })
        if (bounded && isBefore(from, p.high)) {
          ends.set(`${topic}/${p.partition}`, p.high)
          starts.set(`${topic}/${p.partition}`, from)
        }
      }
    }
    return { topics, seeks, ends, starts }
  })

/** A part of a split bounded read (`SplitPart.spec`): one partition's offsets `[from, to)`. */
interface PartSpec {
  readonly topic: string
  readonly partition: number
  readonly from: string
  readonly to: string
}

/** The read of a split run's part: its partitions, from their starts, to their ends. */
const planOfParts = (parts: ReadonlyArray<PartSpec>): Plan => {
  const ends = new Map<string, string>()
  const starts = new Map<string, string>()
  for (const p of parts)
    if (isBefore(p.from, p.to)) {
      ends.set(`${p.topic}/${p.partition}`, p.to)
      starts.set(`${p.topic}/${p.partition}`, p.from)
    }
  return { topics: Array.from(new Set(parts.map((p) => p.topic))), seeks: [], ends, starts }
}

/** The fields of a payload's records, when its format or record schema tells them. */
const payloadFields = (
  value: Payload.PayloadFormat,
  schema: RecordSchema<unknown> | undefined
): Datasets.Fields | undefined =>
  Datasets.fieldsOf(schema) ??
  (value.type === "avro" || value.type === "registry" ? Datasets.fieldsOfAvro(value.schema) : undefined)

/**
 * The dataset of a topic (namespace `kafka://host:port` of the first bootstrap broker, name the topic) when the
 * brokers are known, and the span attributes of the messaging semantic conventions.
 */
const kafkaLineage = (
  topic: string,
  brokers: ReadonlyArray<string> | undefined,
  fields: Datasets.Fields | undefined,
  extra: Readonly<Record<string, string>> = {}
) => {
  const server = brokers?.[0] === undefined ? undefined : Datasets.serverOf(brokers[0], 9092)
  return {
    ...(server === undefined ? {} : { dataset: Datasets.make(Datasets.namespaceOf("kafka", server), topic, fields) }),
    attributes: {
      "messaging.system": "kafka",
      "messaging.destination.name": topic,
      ...extra,
      ...(server === undefined ? {} : { "server.address": server.host, "server.port": server.port })
    }
  }
}

/**
 * The consumer lag of a partition read by a Kafka source, in messages: the partition's end offset (high watermark)
 * minus the next offset to read, updated from every fetched batch. Attributes `topic` and `partition`; the runtime adds
 * `pipeline` and `run_id`.
 */
export const consumerLag: Metric.Gauge<number> = Metric.gauge("etl_kafka_consumer_lag", {
  // The same text as the runtime's metric catalog (runtime/Metrics.ts), which the connectors cannot import.
  description: "Kafka sources: messages between the partition's high watermark and the next offset to read"
})

/** Sets the lag gauge of the fetched batch's partition, when the fetch told the partition's end offset. */
const updateLag = (fetched: FetchedBatch): Effect.Effect<void> => {
  if (fetched.highWatermark === undefined) return Effect.void
  const lag = BigInt(fetched.highWatermark) - BigInt(nextOffset(fetched.lastOffset))
  return Metric.update(
    Metric.withAttributes(consumerLag, { topic: fetched.topic, partition: String(fetched.partition) }),
    Number(lag > 0n ? lag : 0n)
  )
}

/**
 * A rebalance is about to take partitions away: a checkpoint barrier, so the runtime commits everything read before
 * it (through every stage, in order) and only then lets the consumer give the partitions up.
 */
const drained = <A>(drain: Drain): Batch.Batch<A> => ({
  ...Batch.barrier(
    DRAIN_BARRIER,
    drain.partitions.map((p) => `${p.topic}/${p.partition}`)
  ),
  ack: drain.done
})

/** The id of the barriers of rebalances (the runtime's own checkpoints count from 1, a graceful stop's is 0). */
const DRAIN_BARRIER = -1

/**
 * Where gained partitions start: the positions their sink stores (or their state's checkpoint, when stages keep state
 * per partition), loaded when they are assigned.
 */
const startAtStored =
  (
    reload: (parts: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, string>, PipelineError>,
    topics: string
  ) =>
  (partitions: ReadonlyArray<TopicPartition>): Effect.Effect<ReadonlyArray<Position>, KafkaError> =>
    Effect.map(
      Effect.mapError(
        reload(partitions.map((p) => `${p.topic}/${p.partition}`)),
        (error) =>
          new KafkaError({
            reason: reasons.Unknown,
            operation: "consume",
            topic: topics,
            message: `Loading the sink's stored positions of the partitions assigned by a rebalance failed: ${error.message}`,
            cause: error
          })
      ),
      (stored) =>
        partitions.flatMap((p) => {
          const offset = stored.get(`${p.topic}/${p.partition}`)
          return offset === undefined ? [] : [{ topic: p.topic, partition: p.partition, offset }]
        })
    )

/**
 * A source over Kafka topics.
 *
 * @example
 * Kafka.source({ topics: ["transactions"], groupId: "etl", start: "earliest", value: { type: "avro", schema: avsc } })
 */
export function source<A = Readonly<Record<string, unknown>>>(
  options: SourceOptions<A> & { readonly envelope: true }
): Source.Source<Envelope<A>, KafkaError, KafkaClient>
export function source<A = Readonly<Record<string, unknown>>>(
  options: SourceOptions<A> & { readonly envelope?: false }
): Source.Source<A, KafkaError, KafkaClient>
export function source<A>(
  options: SourceOptions<A> & { readonly envelope?: boolean }
): Source.Source<A | Envelope<A>, KafkaError, KafkaClient> {
  const name = options.name ?? "kafka"
  const bounded = options.bounded ?? true
  const envelope = options.envelope === true
  const topicsText = options.topics instanceof RegExp ? `/${options.topics.source}/` : options.topics.join(", ")
  return Source.make({
    name,
    type: "kafka",
    description: `kafka topics ${topicsText} (${Payload.describe(options.value)}, group ${options.groupId}, ${bounded ? "bounded" : "streaming"})`,
    bounded,
    ...kafkaLineage(
      options.topics instanceof RegExp ? options.topics.source : options.topics.join(","),
      options.brokers,
      payloadFields(options.value, options.schema),
      { "messaging.consumer.group.name": options.groupId }
    ),
    resumable: true,
    batches: (ctx) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const client = yield* KafkaClient
          const valueCodec = yield* compileOrFail(options.value, "source")
          const keyCodec = yield* compileOrFail(options.key ?? { type: "string" }, "source")
          // A split run's part: its partitions' offset ranges, read outside the group (the run commits the group's
          // offsets once its sink committed everything: `commitParts`).
          const assigned = ctx.parts?.map((part) => part.spec as PartSpec)
          const plan =
            assigned === undefined
              ? yield* planRead(client, options as SourceOptions<unknown>, bounded, ctx.resume)
              : planOfParts(assigned)
          if (bounded && plan.ends.size === 0) return Stream.empty
          const consumer = yield* client.consume({
            groupId: options.groupId,
            topics: plan.topics,
            seeks: plan.seeks,
            ...(assigned === undefined
              ? {}
              : { assigned: assigned.map((a) => ({ topic: a.topic, partition: a.partition, offset: a.from })) }),
            ...(options.maxBytesPerPartition === undefined
              ? {}
              : { maxBytesPerPartition: options.maxBytesPerPartition }),
            ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
            ...(options.sessionTimeout === undefined
              ? {}
              : { sessionTimeout: Duration.toMillis(Duration.fromInputUnsafe(options.sessionTimeout)) }),
            // A streaming read commits what it read from partitions a rebalance takes away before they go (a drain),
            // and a partition it gains starts where the sink's data of it ends.
            ...(bounded ? {} : { drain: true }),
            ...(bounded || ctx.reloadPositions === undefined
              ? {}
              : { startAt: startAtStored(ctx.reloadPositions, plan.topics.join(",")) })
          })
          const remaining = plan.ends
          // Each batch names its partition, so that event-time stages keep a watermark per partition. A bounded read
          // knows its partitions (`of`); a streaming read's are open-ended (rebalances move them), and one that goes
          // quiet stops holding the watermark back after the stage's idle timeout. It tells how many partitions its
          // topics had at its start (`known`), so that the stages do not wait an idle timeout for more at the start.
          const partitions = remaining.size
          const known = bounded
            ? 0
            : (yield* Effect.forEach(plan.topics, (topic) => client.partitionOffsets(topic))).reduce(
                (n, offsets) => n + offsets.length,
                0
              )
          const schema = options.schema
          const toBatch = (fetched: {
            readonly topic: string
            readonly partition: number
            readonly messages: ReadonlyArray<Message>
            readonly lastOffset: string
          }): Batch.Batch<A | Envelope<A>> | undefined => {
            const tp = `${fetched.topic}/${fetched.partition}`
            const end = remaining.get(tp)
            // Offsets stay far below 2^53: comparing numbers spares two BigInt parses per message.
            const endAt = end === undefined ? Number.POSITIVE_INFINITY : Number(end)
            if (bounded && end === undefined) return undefined
            const records: Array<A | Envelope<A>> = []
            const deadLetters: Array<DeadLetter.DeadLetter> = []
            let sourceTimestamp: number | undefined
            const messages = fetched.messages
            // The messages read: those before the end of a bounded read (offsets ascend within a partition batch).
            let count = messages.length
            if (endAt !== Number.POSITIVE_INFINITY)
              while (count > 0 && Number(messages[count - 1]!.offset) >= endAt) count--
            if (count === 0) return undefined
            const last = messages[count - 1]!.offset
            for (let i = 0; i < count; i++) {
              const m = messages[i]!
              if (sourceTimestamp === undefined || m.timestamp < sourceTimestamp) sourceTimestamp = m.timestamp
              const decoded = m.value === null ? { ok: true as const, value: null } : valueCodec.decode(m.value)
              if (!decoded.ok) {
                const origin = originOf(m)
                deadLetters.push({
                  stage: name,
                  reason: "decode-error",
                  message: `${origin}: ${decoded.message}`,
                  record: rawOf(m),
                  origin
                })
                continue
              }
              let value = decoded.value as A
              if (
                schema !== undefined &&
                options.value.type !== "avro" &&
                options.value.type !== "confluent" &&
                options.value.type !== "registry"
              ) {
                const checked = schema.validate(decoded.value)
                if (!checked.ok) {
                  const origin = originOf(m)
                  deadLetters.push({
                    stage: name,
                    reason: "invalid-record",
                    message: `${origin}: ${checked.message}`,
                    record: decoded.value,
                    origin
                  })
                  continue
                }
                value = checked.value
              }
              if (!envelope) {
                records.push(value)
                continue
              }
              const key = m.key === null ? { ok: true as const, value: null } : keyCodec.decode(m.key)
              if (!key.ok) {
                const origin = originOf(m)
                deadLetters.push({
                  stage: name,
                  reason: "decode-error",
                  message: `${origin}: key: ${key.message}`,
                  record: rawOf(m),
                  origin
                })
                continue
              }
              records.push({
                topic: m.topic,
                partition: m.partition,
                offset: m.offset,
                timestamp: m.timestamp,
                key: key.value,
                headers: headersOf(m),
                value
              })
            }
            let done = false
            if (end !== undefined) {
              // Control records (transactions) take offsets too: the fetched batch's last offset counts as read.
              if (!isBefore(nextOffset(last), end) || !isBefore(nextOffset(fetched.lastOffset), end)) {
                remaining.delete(tp)
                done = true
              }
            }
            const commitAt: Position = { topic: fetched.topic, partition: fetched.partition, offset: nextOffset(last) }
            if (assigned === undefined) outstanding++
            return Batch.make(records, {
              deadLetters,
              sourceTimestamp,
              positions: [{ part: tp, from: fetched.messages[0]!.offset, to: commitAt.offset }],
              part: !bounded ? { id: tp, known } : partitions > 1 ? { id: tp, of: partitions, done } : undefined,
              ack:
                assigned !== undefined
                  ? Effect.void
                  : Effect.mapError(
                      Effect.suspend(() => {
                        outstanding--
                        if (!ended) return consumer.commit([commitAt])
                        // After the stream ended the runtime acknowledges the remaining batches in a row (the sink committed
                        // them together): commit their positions once, with the last one, then leave the group.
                        deferred.set(`${commitAt.topic}/${commitAt.partition}`, commitAt)
                        if (outstanding > 0) return Effect.void
                        const positions = [...deferred.values()]
                        deferred.clear()
                        return Effect.andThen(consumer.commit(positions), consumer.close)
                      }),
                      wrap(ExtractError, name)
                    )
            })
          }
          // The consumer stays in the group (paused) after the stream ended until the last emitted batch is
          // acknowledged; a failed stream closes it at once, and its unacknowledged batches are never committed.
          let outstanding = 0
          let ended = false
          const deferred = new Map<string, Position>()
          // A graceful stop ends the stream normally (so the consumer stays in the group until the batches read so far
          // are acknowledged), even while it waits for new messages.
          const stop = yield* StopSignal
          const batches = (bounded ? consumer.batches : Stream.interruptWhen(consumer.batches, stop)).pipe(
            Stream.tap((event) =>
              isDrain(event)
                ? Effect.logInfo(
                    `rebalance: committing what was read from ${event.partitions.length} partitions before giving them up`
                  ).pipe(Effect.annotateLogs({ partitions: event.partitions.map((p) => `${p.topic}/${p.partition}`) }))
                : updateLag(event)
            ),
            Stream.mapEffect((event) => {
              if (isDrain(event)) return Effect.succeed(drained<A | Envelope<A>>(event))
              const values = valueCodec.prefetch
              // Keys are read only into envelopes.
              const keys = envelope ? keyCodec.prefetch : undefined
              if (values === undefined && keys === undefined) return Effect.succeed(toBatch(event))
              return Effect.all([
                values === undefined ? Effect.void : values(event.messages.map((m) => m.value)),
                keys === undefined ? Effect.void : keys(event.messages.map((m) => m.key))
              ]).pipe(
                Effect.mapError(registryError("consume", event.topic)),
                Effect.map(() => toBatch(event))
              )
            }),
            Stream.filter((b): b is Batch.Batch<A | Envelope<A>> => b !== undefined)
          )
          return (bounded ? Stream.takeUntil(batches, () => remaining.size === 0) : batches).pipe(
            Stream.onExit((exit) =>
              Effect.suspend(() => {
                ended = true
                return exit._tag === "Success" && outstanding > 0 ? consumer.stop : consumer.close
              })
            )
          )
        })
      ),
    // A bounded read is split by partition: each part reads one partition's offsets from its start to the end captured
    // when the run was planned, and the run commits the group's offsets to those ends once its sink committed.
    ...(bounded
      ? {
          split: () =>
            Effect.gen(function* () {
              const plan = yield* planRead(yield* KafkaClient, options as SourceOptions<unknown>, true)
              return Array.from(plan.ends, ([tp, to]) => {
                const from = plan.starts.get(tp) ?? to
                const slash = tp.lastIndexOf("/")
                const spec: PartSpec = { topic: tp.slice(0, slash), partition: Number(tp.slice(slash + 1)), from, to }
                return {
                  id: tp,
                  description: `${tp} offsets ${from} to ${to}`,
                  size: { records: Number(BigInt(to) - BigInt(from)) },
                  spec
                }
              })
            }),
          commitParts: (parts: ReadonlyArray<SplitPart>) =>
            Effect.flatMap(KafkaClient, (client) =>
              client.commitOffsets(
                options.groupId,
                parts.map((part) => {
                  const spec = part.spec as PartSpec
                  return { topic: spec.topic, partition: spec.partition, offset: spec.to }
                })
              )
            )
        }
      : {}),
    // A bounded read knows what it will read: from each partition's start to the end offset captured at start.
    size: bounded
      ? Effect.gen(function* () {
          const plan = yield* planRead(yield* KafkaClient, options as SourceOptions<unknown>, true)
          let records = 0n
          for (const [tp, end] of plan.ends) records += BigInt(end) - BigInt(plan.starts.get(tp) ?? end)
          return { records: Number(records) }
        })
      : undefined
  })
}

/** The registry's failure as the connector's: a refusal stays final, an unreachable registry may be retried. */
const registryError = (operation: string, topic: string | undefined) => (e: RegistryError) =>
  new KafkaError({
    reason: e.retryable ? reasons.ConnectionError : reasons.InvalidRequest,
    operation,
    topic,
    message: e.message,
    cause: e
  })

const compileOrFail = (
  format: Payload.PayloadFormat,
  operation: "source" | "sink",
  topic?: string
): Effect.Effect<Payload.PreparedCodec, KafkaError> =>
  Payload.prepare(format, operation).pipe(
    Effect.mapError((cause) =>
      cause instanceof RegistryError
        ? registryError(operation, topic)(cause)
        : new KafkaError({
            reason: reasons.InvalidRequest,
            operation,
            message: `Invalid ${format.type} payload format: ${cause.message}`,
            cause
          })
    )
  )

/** Options of a Kafka sink. */
export interface SinkOptions {
  readonly topic: string
  readonly name?: string
  /** `append` (default): messages without a key. `upsert`: keyed by `key` fields (for compacted topics). */
  readonly mode?: "append" | "upsert"
  /** Record fields forming the message key (required for upsert); several fields give a JSON array key. */
  readonly key?: ReadonlyArray<string>
  readonly value: Payload.PayloadFormat
  /** Compression of produced batches: `gzip`, `snappy`, `lz4` or `zstd` (default `none`). */
  readonly compression?: Compression
  /** Bytes per produce request (default 1 MiB); a batch larger than this is sent in several requests. */
  readonly maxRequestBytes?: number
  /**
   * How long to wait for more records before producing (e.g. `"5 millis"`), like Kafka's `linger.ms`: pipeline batches
   * are gathered until they hold `batchSize` records or `linger` passed since the first of them, then produced
   * together; their source positions are acknowledged only after the produce succeeded. Absent (default): every
   * pipeline batch is produced as it comes.
   */
  readonly linger?: Duration.Input
  /** Records gathered before producing without waiting for `linger` (default 10000; only with `linger`). */
  readonly batchSize?: number
  /** The cluster's bootstrap brokers (`host:port`), naming the dataset written for lineage (see `SourceOptions`). */
  readonly brokers?: ReadonlyArray<string>
}

const textEncoder = new TextEncoder()

/**
 * A sink producing to a Kafka topic. Every `write` is durable when it returns (acks=all), so the source's position is
 * acknowledged batch by batch.
 *
 * @example
 * Kafka.sink({ topic: "tx-by-user", mode: "upsert", key: ["userId"], value: { type: "json" } })
 */
export const sink = <A>(options: SinkOptions): Sink.Sink<A, KafkaError, KafkaClient> => {
  const name = options.name ?? "kafka"
  const mode = options.mode ?? "append"
  const keyFields = options.key ?? []
  const maxBytes = options.maxRequestBytes ?? 1024 * 1024
  return Sink.make<A, KafkaError, KafkaClient>({
    name,
    type: "kafka",
    description: `kafka topic ${options.topic} (${Payload.describe(options.value)}${keyFields.length > 0 ? `, key ${keyFields.join(", ")}` : ""})`,
    mode,
    ...kafkaLineage(options.topic, options.brokers, payloadFields(options.value, undefined)),
    durability: "per-write",
    batching: options.linger === undefined ? undefined : { size: options.batchSize ?? 10_000, linger: options.linger },
    open: Effect.gen(function* () {
      if (mode === "upsert" && keyFields.length === 0)
        return yield* new KafkaError({
          reason: reasons.InvalidRequest,
          operation: "sink",
          topic: options.topic,
          message: `An upsert Kafka sink needs the record fields of the message key ("key"), e.g. ["userId"]`
        })
      const client = yield* KafkaClient
      const codec = yield* compileOrFail(options.value, "sink", options.topic)
      const producer = yield* client.producer({ compression: options.compression ?? "none" })
      let written = 0
      const keyOf = (record: Readonly<Record<string, unknown>>): Uint8Array | null => {
        if (keyFields.length === 0) return null
        if (keyFields.length === 1) return textEncoder.encode(Payload.keyText(record[keyFields[0]!]))
        return textEncoder.encode(JSON.stringify(keyFields.map((f) => Payload.keyText(record[f]))))
      }
      return {
        write: (records: ReadonlyArray<A>) =>
          Effect.gen(function* () {
            const requests: Array<Array<OutgoingMessage>> = []
            let current: Array<OutgoingMessage> = []
            let bytes = 0
            for (let i = 0; i < records.length; i++) {
              const record = records[i] as Readonly<Record<string, unknown>>
              const encoded = codec.encode(record)
              if (!encoded.ok)
                return yield* new KafkaError({
                  reason: reasons.EncodeError,
                  operation: "send",
                  topic: options.topic,
                  message: `Cannot encode record ${i + 1} of the batch for ${options.topic}: ${encoded.message}`
                })
              const key = keyOf(record)
              const size = encoded.bytes.length + (key?.length ?? 0) + 64
              if (bytes + size > maxBytes && current.length > 0) {
                requests.push(current)
                current = []
                bytes = 0
              }
              current.push({ key, value: encoded.bytes })
              bytes += size
            }
            if (current.length > 0) requests.push(current)
            for (const request of requests) yield* producer.send(options.topic, request)
            written += records.length
          }),
        commit: Effect.sync(() => ({ written, location: `kafka:${options.topic}` }))
      }
    })
  })
}
