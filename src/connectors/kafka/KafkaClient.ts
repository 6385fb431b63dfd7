/**
 * The Kafka client contract: what the Kafka connector needs from a Kafka client, with no driver import.
 *
 * `NodeKafka.ts` implements it over @platformatic/kafka; {@link layerMemory} keeps topics in memory (deterministic,
 * for users' tests). Offsets are decimal strings (they are int64 in Kafka).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import { KafkaError, reasons } from "./KafkaError.ts"

/** A message as read from a partition. */
export interface Message {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  /** Milliseconds since the epoch (create or log-append time). */
  readonly timestamp: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: Readonly<Record<string, Uint8Array>>
}

/** The messages of one partition fetched together. */
export interface FetchedBatch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<Message>
  /** The offset of the last record of the fetched batch (may be past the last message: control records). */
  readonly lastOffset: string
  /** The partition's end offset (next offset to be written) as the broker told it with this fetch, when it did. */
  readonly highWatermark?: string | undefined
}

/**
 * Partitions are about to be revoked (a rebalance), asked for with `ConsumeOptions.drain`: it comes after every batch of
 * those partitions the stream emitted, and the consumer rejoins the group only once `done` ran (or the rebalance timeout
 * passed), so a pipeline can commit what it read from them before another member gets them.
 */
export interface Drain {
  readonly _tag: "Drain"
  readonly partitions: ReadonlyArray<TopicPartition>
  /** Tells the consumer that what was read from the partitions is committed (idempotent). */
  readonly done: Effect.Effect<void>
}

/** What a consumer's stream emits: fetched batches and, when asked for, drains. */
export type ConsumerEvent = FetchedBatch | Drain

/** True for a {@link Drain}. */
export const isDrain = (event: ConsumerEvent): event is Drain => "_tag" in event && event._tag === "Drain"

/** The fetched batches of a consumer's stream (its drains, if any, left out). */
export const fetchedOnly = <E, R>(events: Stream.Stream<ConsumerEvent, E, R>): Stream.Stream<FetchedBatch, E, R> =>
  Stream.filter(events, (event): event is FetchedBatch => !isDrain(event))

/** A message to produce. */
export interface OutgoingMessage {
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers?: Readonly<Record<string, Uint8Array>>
}

/** Offsets of one partition: `low` is the earliest available, `high` the next offset to be written (end). */
export interface PartitionOffsets {
  readonly partition: number
  readonly low: string
  readonly high: string
}

/** A partition of a topic. */
export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

/** A topic-partition position. */
export interface Position {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

/** Compression of produced batches (the codecs Kafka itself knows). */
export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd"

/** The session timeout of a consumer when none is given: Kafka's own default (`session.timeout.ms`) since 3.0. */
export const defaultSessionTimeout = 45_000

/** What a consumer reads. */
export interface ConsumeOptions {
  readonly groupId: string
  readonly topics: ReadonlyArray<string>
  /** Where to start each partition; partitions without a seek start at the group's committed offset, else earliest. */
  readonly seeks: ReadonlyArray<Position>
  /** Upper bound of the bytes fetched per partition per request. */
  readonly maxBytesPerPartition?: number
  /**
   * The consumer's static group membership id (`group.instance.id`, KIP-345): a member that comes back with the same
   * id after a crash takes its partitions back at once, instead of waiting for the dead member's session to expire.
   * Two live consumers of a group must not share one: the newer one takes the id over and the older one fails with
   * the `FencedInstanceId` reason. Absent: the client's default (the live client's is `ETL_INSTANCE_ID`, else
   * `<groupId>-<hostname>`: see `NodeKafka.defaultInstanceId`); `false`: dynamic membership.
   */
  readonly instanceId?: string | false
  /**
   * How long the group waits for a member that stopped heartbeating before giving its partitions to others, in
   * milliseconds (default {@link defaultSessionTimeout}; brokers accept 6 s to 30 min unless configured otherwise).
   */
  readonly sessionTimeout?: number
  /**
   * Runs when partitions are taken away (a rebalance starts, or the consumer closes), and is awaited before the
   * consumer rejoins the group, so no other member gets them until it is done (like Kafka's
   * `ConsumerRebalanceListener.onPartitionsRevoked`, eager protocol: every owned partition is revoked). Batches of
   * those partitions fetched but not yet emitted are dropped; they are read again by the next owner.
   */
  readonly onRevoked?: (partitions: ReadonlyArray<TopicPartition>) => Effect.Effect<void>
  /** Runs when partitions are assigned (every assignment, the first one included), before any of them is fetched. */
  readonly onAssigned?: (partitions: ReadonlyArray<TopicPartition>) => Effect.Effect<void>
  /**
   * Where assigned partitions start, asked on every assignment (the first one included; with it, a member that keeps
   * a partition through a rebalance does not keep its own position either): positions returned take precedence over
   * `seeks` and the group's committed offsets. A sink that stores its source positions with its data answers it, so a partition that
   * moves between members resumes where its data ends, not where the group's offsets (committed later) say.
   */
  readonly startAt?: (partitions: ReadonlyArray<TopicPartition>) => Effect.Effect<ReadonlyArray<Position>, KafkaError>
  /** Emit a {@link Drain} before partitions are revoked and wait for it to be done before rejoining the group. */
  readonly drain?: boolean
  /**
   * Read exactly these partitions, each from its offset, without joining the group (a split run's part, whose offsets
   * the run commits for the group once its sink committed, with {@link KafkaClientShape.commitOffsets}): no
   * rebalances, no hooks, and `seeks`, `instanceId`, `sessionTimeout` and `drain` do not apply. `commit` is not used.
   */
  readonly assigned?: ReadonlyArray<Position> | undefined
}

/** An open consumer. */
export interface ConsumerHandle {
  /** Fetched batches, and {@link Drain}s when `ConsumeOptions.drain` asked for them. */
  readonly batches: Stream.Stream<ConsumerEvent, KafkaError>
  readonly commit: (positions: ReadonlyArray<Position>) => Effect.Effect<void, KafkaError>
  readonly stop: Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

/** An open producer. */
export interface Producer {
  /** Sends messages to a topic and waits until every in-sync replica has them (acks=all). */
  readonly send: (topic: string, messages: ReadonlyArray<OutgoingMessage>) => Effect.Effect<void, KafkaError>
}

/** What the Kafka connector needs from a Kafka client. */
export interface KafkaClientShape {
  readonly listTopics: Effect.Effect<ReadonlyArray<string>, KafkaError>
  readonly createTopic: (
    topic: string,
    options?: { readonly partitions?: number; readonly config?: Readonly<Record<string, string>> }
  ) => Effect.Effect<void, KafkaError>
  readonly partitionOffsets: (topic: string) => Effect.Effect<ReadonlyArray<PartitionOffsets>, KafkaError>
  /** The first offset of each partition at or after `timestamp` (the end offset when there is none). */
  readonly offsetsForTimestamp: (
    topic: string,
    timestamp: number
  ) => Effect.Effect<ReadonlyArray<{ readonly partition: number; readonly offset: string }>, KafkaError>
  /** The group's committed offsets of a topic's partitions; `undefined` where nothing was committed. */
  readonly committedOffsets: (
    groupId: string,
    topic: string
  ) => Effect.Effect<ReadonlyArray<{ readonly partition: number; readonly offset: string | undefined }>, KafkaError>
  /**
   * Joins the group and streams fetched batches. `commit` commits positions (the next offset to read) for the group
   * through this consumer. `stop` stops fetching but stays in the group, so batches already emitted can still be
   * acknowledged; `close` leaves the group. A consumer not closed is closed when the next consumer of its group
   * starts, or when the client's layer is released.
   */
  readonly consume: (options: ConsumeOptions) => Effect.Effect<ConsumerHandle, KafkaError>
  /**
   * Commits positions (the next offset to read) for a group from outside it: what a split run does once its sink
   * committed the records its parts read (the broker takes them while the group has no member). Idempotent.
   */
  readonly commitOffsets: (groupId: string, positions: ReadonlyArray<Position>) => Effect.Effect<void, KafkaError>
  /** Opens an idempotent producer (acks=all) for the Scope. */
  readonly producer: (options: {
    readonly compression: Compression
  }) => Effect.Effect<Producer, KafkaError, Scope.Scope>
}

/** The Kafka client service. */
export class KafkaClient extends Context.Service<KafkaClient, KafkaClientShape>()(
  "effect-etl/connectors/kafka/KafkaClient"
) {}

/** The identifier of the client service of a named Kafka connection (a config's `connections`). */
export interface KafkaConnection<out Name extends string = string> {
  readonly "~effect-etl/KafkaConnection": Name
}

/**
 * The service key of the client of the named connection `name`: one client per declared connection, shared by every
 * source and sink naming it (see `KafkaBuild.connectionLayer` in config/).
 */
export const connection = <const Name extends string>(
  name: Name
): Context.Service<KafkaConnection<Name>, KafkaClientShape> =>
  Context.Service<KafkaConnection<Name>, KafkaClientShape>(`effect-etl/connectors/kafka/KafkaClient/${name}`)

/**
 * A client that opens the one `acquire` gives on first use, in the Scope of the caller of `lazy` (a connection
 * layer), and keeps it until that Scope closes. A failed open is a failure of the operation that needed it, so the
 * runtime's retry policy applies to it, and the next operation tries again.
 */
export const lazy = (
  acquire: Effect.Effect<KafkaClientShape, KafkaError, Scope.Scope>
): Effect.Effect<KafkaClientShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const lock = Semaphore.makeUnsafe(1)
    let opened: KafkaClientShape | undefined
    const get = Semaphore.withPermit(lock)(
      Effect.suspend(() =>
        opened !== undefined
          ? Effect.succeed(opened)
          : Effect.tap(Scope.provide(scope)(acquire), (client) =>
              Effect.sync(() => {
                opened = client
              })
            )
      )
    )
    const client: KafkaClientShape = {
      listTopics: Effect.flatMap(get, (c) => c.listTopics),
      createTopic: (topic, options) => Effect.flatMap(get, (c) => c.createTopic(topic, options)),
      partitionOffsets: (topic) => Effect.flatMap(get, (c) => c.partitionOffsets(topic)),
      offsetsForTimestamp: (topic, timestamp) => Effect.flatMap(get, (c) => c.offsetsForTimestamp(topic, timestamp)),
      committedOffsets: (groupId, topic) => Effect.flatMap(get, (c) => c.committedOffsets(groupId, topic)),
      consume: (options) => Effect.flatMap(get, (c) => c.consume(options)),
      commitOffsets: (groupId, positions) => Effect.flatMap(get, (c) => c.commitOffsets(groupId, positions)),
      producer: (options) => Effect.flatMap(get, (c) => c.producer(options))
    }
    return client
  })

/** How to reach a cluster. */
export interface ConnectionOptions {
  readonly brokers: ReadonlyArray<string>
  readonly clientId?: string
  readonly ssl?: boolean
  readonly sasl?: {
    readonly mechanism: "plain" | "scram-sha-256" | "scram-sha-512"
    readonly username: string
    readonly password: Redacted.Redacted
  }
  /** Connection and request timeouts in milliseconds (default 10 s / 30 s). */
  readonly connectionTimeout?: number
  readonly requestTimeout?: number
}

// -----------------------------------------------------------------------------
// memory
// -----------------------------------------------------------------------------

/** A message held by the memory cluster. */
export interface StoredMessage extends Message {}

/** The state of a memory cluster, for assertions in tests. */
export interface MemoryCluster {
  /** topic → partitions → messages, offsets are the array indexes. */
  readonly topics: Map<string, Array<Array<StoredMessage>>>
  /** group → `topic/partition` → committed next offset. */
  readonly committed: Map<string, Map<string, string>>
  /** Every commit, in order, for assertions (`group topic/partition@offset`). */
  readonly commitLog: Array<string>
  /** Messages fetched per batch (default 500). */
  readonly fetchSize: number
}

/** A memory cluster, optionally with topics and their partition counts. */
export const memory = (
  topics?: Readonly<Record<string, number>>,
  options?: { readonly fetchSize?: number }
): MemoryCluster => {
  const map = new Map<string, Array<Array<StoredMessage>>>()
  for (const [name, partitions] of Object.entries(topics ?? {}))
    map.set(
      name,
      Array.from({ length: partitions }, () => [])
    )
  return { topics: map, committed: new Map(), commitLog: [], fetchSize: options?.fetchSize ?? 500 }
}

const hashKey = (key: Uint8Array): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193)
  return h >>> 0
}

/**
 * Appends messages to a memory topic (partition by key hash, round-robin without a key), stamped with `timestamp`.
 * For seeding tests.
 */
export const appendMemory = (
  cluster: MemoryCluster,
  topic: string,
  messages: ReadonlyArray<OutgoingMessage & { readonly partition?: number }>,
  timestamp: number
): void => {
  const partitions = cluster.topics.get(topic)
  if (partitions === undefined) throw new Error(`memory Kafka: no topic ${topic}`)
  let next = 0
  for (const m of messages) {
    const p = m.partition ?? (m.key === null ? next++ % partitions.length : hashKey(m.key) % partitions.length)
    const log = partitions[p]!
    log.push({
      topic,
      partition: p,
      offset: String(log.length),
      timestamp,
      key: m.key,
      value: m.value,
      headers: m.headers ?? {}
    })
  }
}

const notFound = (operation: string, topic: string) =>
  new KafkaError({
    reason: reasons.TopicNotFound,
    operation,
    topic,
    message: `Topic ${topic} does not exist`
  })

/**
 * A deterministic in-memory Kafka client over `cluster`: produced messages are stamped with the `Clock`'s time, a
 * consumer reads each partition in `fetchSize` batches, round-robin over partitions, and stops at the end of the data
 * (a memory consumer does not wait for new messages). A consumer is its group's only member: it is assigned every
 * partition of its topics when it starts (`onAssigned`, then `startAt`) and they are revoked when it closes (`onRevoked`;
 * never drained); instance ids and session timeouts have no effect.
 */
export const makeMemory = (cluster: MemoryCluster): KafkaClientShape => {
  const topicOf = (operation: string, topic: string) => {
    const partitions = cluster.topics.get(topic)
    return partitions === undefined ? Effect.fail(notFound(operation, topic)) : Effect.succeed(partitions)
  }
  const commitMemory = (groupId: string, positions: ReadonlyArray<Position>) =>
    Effect.sync(() => {
      let group = cluster.committed.get(groupId)
      if (group === undefined) {
        group = new Map()
        cluster.committed.set(groupId, group)
      }
      for (const p of positions) {
        group.set(`${p.topic}/${p.partition}`, p.offset)
        cluster.commitLog.push(`${groupId} ${p.topic}/${p.partition}@${p.offset}`)
      }
    })
  return {
    listTopics: Effect.sync(() => [...cluster.topics.keys()].sort()),
    createTopic: (topic, options) =>
      Effect.sync(() => {
        if (!cluster.topics.has(topic))
          cluster.topics.set(
            topic,
            Array.from({ length: options?.partitions ?? 1 }, () => [])
          )
      }),
    partitionOffsets: (topic) =>
      Effect.map(topicOf("partitionOffsets", topic), (partitions) =>
        partitions.map((log, partition) => ({ partition, low: "0", high: String(log.length) }))
      ),
    offsetsForTimestamp: (topic, timestamp) =>
      Effect.map(topicOf("offsetsForTimestamp", topic), (partitions) =>
        partitions.map((log, partition) => {
          const i = log.findIndex((m) => m.timestamp >= timestamp)
          return { partition, offset: String(i === -1 ? log.length : i) }
        })
      ),
    committedOffsets: (groupId, topic) =>
      Effect.map(topicOf("committedOffsets", topic), (partitions) =>
        partitions.map((_, partition) => ({
          partition,
          offset: cluster.committed.get(groupId)?.get(`${topic}/${partition}`)
        }))
      ),
    consume: (options) =>
      Effect.gen(function* () {
        const cursors: Array<{ topic: string; partition: number; next: number; log: Array<StoredMessage> }> = []
        // Assigned partitions (a split run's part): only these, from their offsets, outside the group.
        for (const at of options.assigned ?? []) {
          const log = (yield* topicOf("consume", at.topic))[at.partition]
          if (log !== undefined)
            cursors.push({ topic: at.topic, partition: at.partition, next: Number(at.offset), log })
        }
        if (options.assigned === undefined)
          for (const topic of options.topics) {
            const partitions = yield* topicOf("consume", topic)
            partitions.forEach((log, partition) => {
              const seek = options.seeks.find((s) => s.topic === topic && s.partition === partition)
              const committed = cluster.committed.get(options.groupId)?.get(`${topic}/${partition}`)
              cursors.push({ topic, partition, next: Number(seek?.offset ?? committed ?? 0), log })
            })
          }
        const pull = Effect.sync(() => {
          for (const cursor of cursors) {
            if (cursor.next >= cursor.log.length) continue
            const messages = cursor.log.slice(cursor.next, cursor.next + cluster.fetchSize)
            cursor.next += messages.length
            return [
              {
                topic: cursor.topic,
                partition: cursor.partition,
                messages,
                lastOffset: messages[messages.length - 1]!.offset,
                highWatermark: String(cursor.log.length)
              }
            ] as const
          }
          return [] as const
        })
        const owned: ReadonlyArray<TopicPartition> = cursors.map((c) => ({ topic: c.topic, partition: c.partition }))
        const member = options.assigned === undefined
        if (member && options.onAssigned !== undefined) yield* options.onAssigned(owned)
        if (member && options.startAt !== undefined)
          for (const at of yield* options.startAt(owned)) {
            const cursor = cursors.find((c) => c.topic === at.topic && c.partition === at.partition)
            if (cursor !== undefined) cursor.next = Number(at.offset)
          }
        let revoked = false
        const batches = Stream.fromPull(
          Effect.succeed(
            Effect.flatMap(pull, (out) => (out.length === 0 ? Effect.fail(undefined) : Effect.succeed(out)))
          )
        )
        return {
          stop: Effect.void,
          // The memory consumer is the group's only member: its partitions are revoked when it closes, once.
          close: Effect.suspend(() => {
            if (revoked || !member || options.onRevoked === undefined) return Effect.void
            revoked = true
            return options.onRevoked(owned)
          }),
          batches: Stream.catch(batches as Stream.Stream<FetchedBatch, undefined>, () => Stream.empty),
          commit: (positions) => commitMemory(options.groupId, positions)
        }
      }),
    commitOffsets: (groupId, positions) => commitMemory(groupId, positions),
    producer: () =>
      Effect.succeed({
        send: (topic, messages) =>
          Effect.flatMap(topicOf("send", topic), () =>
            Effect.flatMap(
              Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe())),
              (now) => Effect.sync(() => appendMemory(cluster, topic, messages, now))
            )
          )
      })
  }
}

/**
 * The memory Kafka client as a layer.
 *
 * @example
 * const cluster = KafkaClient.memory({ orders: 2 })
 * program.pipe(Effect.provide(KafkaClient.layerMemory(cluster)))
 */
export const layerMemory = (cluster: MemoryCluster = memory()): Layer.Layer<KafkaClient> =>
  Layer.succeed(KafkaClient, makeMemory(cluster))
