/**
 * The @platformatic/kafka driver of the Kafka client contract: the only file that imports @platformatic/kafka.
 *
 * A consumer joins its group through the library (classic protocol, eager round-robin assignment, heartbeats on the
 * library's timers) and reads with Fetch requests of its own, on a connection pool of its own, one request per
 * partition leader: each partition's fetched records become one {@link FetchedBatch} (with the fetch's high
 * watermark), handed to the stream through a small bounded buffer, so fetching waits while the pipeline is busy.
 * Positions come from the seeks given (once per partition), else the group's committed offsets, else the earliest
 * offset; a position out of range restarts at the earliest offset. Rebalances call `onRevoked` before the member
 * rejoins (the library's `protocolsMetadata` hook runs before every JoinGroup request) and `onAssigned` before the
 * new partitions are fetched. Consumers use static membership when given an instance id, and leave the group (a
 * LeaveGroup request) when closed; a consumer whose instance id another process took over fails with the
 * `FencedInstanceId` reason instead of taking it back. Producers are idempotent with acks=all, partition keyed
 * messages as the Java client does (murmur2) and compress with none, gzip, snappy, lz4 or zstd.
 * Failures are mapped to reasons in {@link classifyError}.
 */
import * as os from "node:os"
import {
  Admin,
  type BaseOptions,
  type ClusterMetadata,
  ConnectionPool,
  Consumer,
  consumerHeartbeatChannel,
  type FetchOptions,
  findErrorBy,
  type GroupAssignment,
  type GroupProtocolSubscription,
  murmur2,
  Producer,
  type RecordsBatch,
  type SASLOptions
} from "@platformatic/kafka"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import {
  type ConnectionOptions,
  type ConsumeOptions,
  type ConsumerEvent,
  type Drain,
  defaultSessionTimeout,
  type FetchedBatch,
  KafkaClient,
  type KafkaClientShape,
  type Message,
  type Position,
  type TopicPartition
} from "./KafkaClient.ts"
import { KafkaError, type KafkaErrorReason, reasons } from "./KafkaError.ts"

type FetchRequestTopic = FetchOptions<Buffer, Buffer, Buffer, Buffer>["topics"][number]
type FetchResponse = Awaited<ReturnType<Consumer["fetch"]>>

/** Whether a failure of the library is (or wraps) the protocol error `apiId`. */
const hasProtocolError = (error: unknown, apiId: string): boolean =>
  error instanceof Error && findErrorBy(error, "apiId", apiId) !== null

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/** Protocol errors a retry can get past: leadership or the group coordinator moving, a broker busy or away. */
const retriableProtocol: ReadonlySet<string> = new Set([
  "NOT_LEADER_OR_FOLLOWER",
  "LEADER_NOT_AVAILABLE",
  "NOT_COORDINATOR",
  "COORDINATOR_NOT_AVAILABLE",
  "COORDINATOR_LOAD_IN_PROGRESS",
  "NOT_ENOUGH_REPLICAS",
  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
  "UNKNOWN_LEADER_EPOCH",
  "FENCED_LEADER_EPOCH",
  "NETWORK_EXCEPTION",
  "KAFKA_STORAGE_ERROR",
  "UNSTABLE_OFFSET_COMMIT",
  "BROKER_NOT_AVAILABLE",
  "REPLICA_NOT_AVAILABLE",
  "OFFSET_NOT_AVAILABLE",
  "THROTTLING_QUOTA_EXCEEDED"
])

const protocolReasons: Readonly<Record<string, KafkaErrorReason>> = {
  UNKNOWN_TOPIC_OR_PARTITION: reasons.TopicNotFound,
  UNKNOWN_TOPIC_ID: reasons.TopicNotFound,
  TOPIC_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  GROUP_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  CLUSTER_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: reasons.AuthorizationError,
  SASL_AUTHENTICATION_FAILED: reasons.AuthenticationError,
  ILLEGAL_SASL_STATE: reasons.AuthenticationError,
  UNSUPPORTED_SASL_MECHANISM: reasons.AuthenticationError,
  MESSAGE_TOO_LARGE: reasons.MessageTooLarge,
  RECORD_LIST_TOO_LARGE: reasons.MessageTooLarge,
  OFFSET_OUT_OF_RANGE: reasons.OffsetOutOfRange,
  REBALANCE_IN_PROGRESS: reasons.RebalanceInProgress,
  ILLEGAL_GENERATION: reasons.RebalanceInProgress,
  UNKNOWN_MEMBER_ID: reasons.RebalanceInProgress,
  FENCED_INSTANCE_ID: reasons.FencedInstanceId,
  REQUEST_TIMED_OUT: reasons.Timeout,
  INVALID_TOPIC_EXCEPTION: reasons.InvalidRequest,
  INVALID_REQUIRED_ACKS: reasons.InvalidRequest,
  INVALID_PARTITIONS: reasons.InvalidRequest,
  INVALID_REPLICATION_FACTOR: reasons.InvalidRequest,
  INVALID_CONFIG: reasons.InvalidRequest,
  INVALID_SESSION_TIMEOUT: reasons.InvalidRequest,
  INVALID_GROUP_ID: reasons.InvalidRequest,
  INVALID_REQUEST: reasons.InvalidRequest,
  POLICY_VIOLATION: reasons.InvalidRequest,
  UNSUPPORTED_VERSION: reasons.InvalidRequest,
  UNSUPPORTED_COMPRESSION_TYPE: reasons.UnsupportedCompression
}

/** The fields of the library's errors that classification reads. */
interface DriverError {
  readonly name?: string
  readonly code?: string
  readonly apiId?: string
  readonly message?: string
  readonly errors?: ReadonlyArray<unknown>
  readonly cause?: unknown
}

const reasonOf = (error: DriverError): KafkaErrorReason | undefined => {
  if (error instanceof KafkaError) return error.reason
  if (typeof error.apiId === "string") {
    const known = protocolReasons[error.apiId]
    if (known !== undefined) return known
    if (retriableProtocol.has(error.apiId)) return reasons.NotLeader
  }
  const message = error.message ?? ""
  switch (error.code) {
    case "PLT_KFK_UNSUPPORTED_COMPRESSION":
      return reasons.UnsupportedCompression
    case "PLT_KFK_AUTHENTICATION":
      return reasons.AuthenticationError
    case "PLT_KFK_NETWORK":
      // The library's TimeoutError carries the network code.
      return error.name === "TimeoutError" || /timed out/i.test(message) ? reasons.Timeout : reasons.ConnectionError
  }
  if (/ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN/.test(message))
    return reasons.ConnectionError
  return undefined
}

/**
 * Maps a @platformatic/kafka failure to a reason: a protocol error by its name (`apiId`), the library's own errors by
 * their code, searching the errors a retry or a multi-partition response gathered (the first one known wins).
 */
export const classifyReason = (error: unknown): KafkaErrorReason => {
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number): KafkaErrorReason | undefined => {
    if (e === null || typeof e !== "object" || seen.has(e) || depth > 6) return undefined
    seen.add(e)
    const current = e as DriverError
    const own = reasonOf(current)
    if (own !== undefined) return own
    for (const inner of current.errors ?? []) {
      const found = visit(inner, depth + 1)
      if (found !== undefined) return found
    }
    return visit(current.cause, depth + 1)
  }
  return visit(error, 0) ?? reasons.Unknown
}

/** The protocol error names in a failure (for messages), e.g. `UNKNOWN_TOPIC_OR_PARTITION`. */
const detailOf = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const names = new Set<string>()
  const collect = (e: unknown, depth: number): void => {
    if (e === null || typeof e !== "object" || depth > 6) return
    const current = e as DriverError
    if (typeof current.apiId === "string") names.add(current.apiId)
    for (const inner of current.errors ?? []) collect(inner, depth + 1)
    collect(current.cause, depth + 1)
  }
  collect(error, 0)
  return names.size === 0 ? error.message : `${error.message} (${[...names].join(", ")})`
}

/** Wraps a @platformatic/kafka failure into a KafkaError naming the operation and topic (a KafkaError passes as is). */
export const classifyError =
  (operation: string, topic?: string) =>
  (cause: unknown): KafkaError => {
    if (cause instanceof KafkaError) return cause
    const reason = classifyReason(cause)
    return new KafkaError({
      reason,
      operation,
      topic,
      message: `Kafka ${operation}${topic === undefined ? "" : ` on ${topic}`} failed (${reason._tag}): ${detailOf(cause)}`,
      cause
    })
  }

const attempt = <A>(operation: string, topic: string | undefined, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: classifyError(operation, topic) })

/** The error of a consumer whose static membership id another consumer of the group took over. */
const fencedError = (groupId: string, instanceId: string, topics: string, cause: unknown): KafkaError =>
  new KafkaError({
    reason: reasons.FencedInstanceId,
    operation: "consume",
    topic: topics,
    message:
      `Another consumer joined the Kafka group "${groupId}" with the instance id "${instanceId}", so this one was ` +
      `fenced out of the group. Every process reading a group needs its own instance id: set "instance_id" on the ` +
      `Kafka source (or the ETL_INSTANCE_ID environment variable) to a value unique to each process.`,
    cause
  })

// -----------------------------------------------------------------------------
// connection options
// -----------------------------------------------------------------------------

const saslOf = (options: ConnectionOptions): SASLOptions | undefined => {
  const s = options.sasl
  if (s === undefined) return undefined
  const password = Redacted.value(s.password) as string
  const mechanism =
    s.mechanism === "plain" ? "PLAIN" : s.mechanism === "scram-sha-256" ? "SCRAM-SHA-256" : "SCRAM-SHA-512"
  return { mechanism, username: s.username, password }
}

/** The options every client of a connection shares: brokers, TLS, SASL, timeouts and a few quick retries. */
const baseOptions = (options: ConnectionOptions) => {
  const sasl = saslOf(options)
  return {
    clientId: options.clientId ?? "effect-etl",
    bootstrapBrokers: [...options.brokers],
    connectTimeout: options.connectionTimeout ?? 10_000,
    requestTimeout: options.requestTimeout ?? 30_000,
    // A few quick retries inside the library for leader moves; longer outages are the runtime's retry policy.
    retries: 3,
    retryDelay: (_client: unknown, _operation: string, attempt: number) => Math.min(2_000, 100 * 2 ** attempt),
    ...(options.ssl === true ? { tls: {}, tlsServerName: true } : {}),
    ...(sasl === undefined ? {} : { sasl })
  } satisfies BaseOptions
}

// -----------------------------------------------------------------------------
// consumers
// -----------------------------------------------------------------------------

/**
 * The consumer's Fetch limits: bytes per partition (the consumer's `maxBytesPerPartition` when given), bytes per
 * request in all, and how long a Fetch waits on the broker for new records. Benchmarks' raw consumers use the same.
 * Fetches of 512 KiB a partition keep fewer records alive at once than 2 MiB did: in `bench/kafka-s3.ts` the pipeline
 * ran faster (less garbage collected) and its peak RSS fell by a third; the raw consumer was no slower.
 */
export const fetchLimits = {
  maxBytesPerPartition: 512 * 1024,
  maxBytesPerRequest: 16 * 1024 * 1024,
  maxWaitMs: 500
} as const
const maxBytesPerRequest = fetchLimits.maxBytesPerRequest
const maxWaitMs = fetchLimits.maxWaitMs
/** Fetched partition batches buffered ahead of the pipeline. */
const readAhead = 2
/** `timestamp` of a ListOffsets request asking for the earliest offset. */
const EARLIEST = -2n
/** Record batch attribute bits. */
const LOG_APPEND_TIME = 0x08
const CONTROL = 0x20

const emptyHeaders: Readonly<Record<string, Uint8Array>> = Object.freeze({})
const key = (topic: string, partition: number): string => `${topic}/${partition}`

const headersOf = (headers: ReadonlyArray<readonly [Buffer | null, Buffer | null]>): Record<string, Uint8Array> => {
  const out: Record<string, Uint8Array> = {}
  for (const [name, value] of headers) if (name !== null && value !== null) out[name.toString("utf8")] = value
  return out
}

/**
 * A fetched message. Its offset is kept as a number (offsets stay far below 2^53) and written out as the contract's
 * decimal string when read: a fetch makes hundreds of thousands of these a second.
 */
class FetchedMessage implements Message {
  readonly topic: string
  readonly partition: number
  readonly position: number
  readonly timestamp: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: Readonly<Record<string, Uint8Array>>
  constructor(
    topic: string,
    partition: number,
    position: number,
    timestamp: number,
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: Readonly<Record<string, Uint8Array>>
  ) {
    this.topic = topic
    this.partition = partition
    this.position = position
    this.timestamp = timestamp
    this.key = key
    this.value = value
    this.headers = headers
  }
  get offset(): string {
    return String(this.position)
  }
}

/** One fetched partition batch and the position it was fetched from (to rewind when it is dropped). */
interface Item {
  readonly batch: FetchedBatch
  readonly from: bigint
}

/** A drain handed to the stream in order with the batches, and how the rebalance waits for it. */
interface DrainItem {
  readonly drain: Drain
  readonly drained: Promise<void>
  readonly release: () => void
}

const isDrainItem = (item: Item | DrainItem): item is DrainItem => "drain" in item

/** Runs an effect of a hook (with the client layer's services). */
type HookRunner = <A>(effect: Effect.Effect<A, KafkaError>) => Promise<Exit.Exit<A, KafkaError>>

/**
 * A partition's messages as a {@link FetchedBatch}, from the record batches of a fetch response; `undefined` when it
 * holds no record at or after `from`. Control records (transaction markers) take offsets but are not messages.
 */
const toFetched = (
  topic: string,
  partition: number,
  batches: ReadonlyArray<RecordsBatch>,
  from: bigint,
  highWatermark: bigint
): { readonly batch: FetchedBatch | undefined; readonly next: bigint } | undefined => {
  if (batches.length === 0) return undefined
  let count = 0
  for (let b = 0; b < batches.length; b++) count += batches[b]!.records.length
  const messages: Array<Message> = new Array(count)
  let n = 0
  const start = Number(from)
  for (let b = 0; b < batches.length; b++) {
    const batch = batches[b]!
    if ((batch.attributes & CONTROL) !== 0) continue
    const base = Number(batch.firstOffset)
    const firstTimestamp = Number(batch.firstTimestamp)
    const logAppendTime = (batch.attributes & LOG_APPEND_TIME) !== 0 ? Number(batch.maxTimestamp) : -1
    const records = batch.records
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const offset = base + r.offsetDelta
      if (offset < start) continue
      messages[n++] = new FetchedMessage(
        topic,
        partition,
        offset,
        logAppendTime >= 0 ? logAppendTime : firstTimestamp + Number(r.timestampDelta),
        r.key,
        r.value,
        r.headers.length === 0 ? emptyHeaders : headersOf(r.headers)
      )
    }
  }
  messages.length = n
  const last = batches[batches.length - 1]!
  const lastOffset = last.firstOffset + BigInt(last.lastOffsetDelta)
  return {
    next: lastOffset + 1n,
    batch:
      messages.length === 0
        ? undefined
        : { topic, partition, messages, lastOffset: lastOffset.toString(), highWatermark: highWatermark.toString() }
  }
}

/**
 * The static membership id of a consumer given none: the `ETL_INSTANCE_ID` environment variable when
 * set, else `<groupId>-<hostname>`, with every character Kafka does not allow in an id replaced by `_` — so a process
 * restarted on the same machine comes back as the same member.
 */
export const defaultInstanceId = (
  groupId: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  hostname: string = os.hostname()
): string => {
  const given = env.ETL_INSTANCE_ID
  const id = given !== undefined && given !== "" ? given : `${groupId}-${hostname}`
  return id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 249)
}

/** Static membership ids held by the consumers of this process, by group: a second holder gets a numbered id. */
const heldInstanceIds = new Map<string, Set<string>>()

const holdInstanceId = (groupId: string, instanceId: string): string => {
  let held = heldInstanceIds.get(groupId)
  if (held === undefined) {
    held = new Set()
    heldInstanceIds.set(groupId, held)
  }
  let id = instanceId
  for (let n = 2; held.has(id); n++) id = `${instanceId}-${n}`
  held.add(id)
  return id
}

const releaseInstanceId = (groupId: string, instanceId: string): void => {
  const held = heldInstanceIds.get(groupId)
  held?.delete(instanceId)
  if (held?.size === 0) heldInstanceIds.delete(groupId)
}

/** Heartbeat failures by consumer: how a consumer learns, before the library rejoins, that it was fenced. */
const heartbeatWatchers = new Map<object, (error: unknown) => void>()
let watchingHeartbeats = false
const watchHeartbeats = (consumer: object, onError: (error: unknown) => void): void => {
  if (!watchingHeartbeats) {
    watchingHeartbeats = true
    // The tracing channel's `error` event runs before the library's own callback (which rejoins the group).
    const ignore = () => undefined
    consumerHeartbeatChannel.subscribe({
      start: ignore,
      end: ignore,
      asyncStart: ignore,
      asyncEnd: ignore,
      error: (context) => {
        const { client, error } = context as { readonly client?: object; readonly error?: unknown }
        if (client !== undefined) heartbeatWatchers.get(client)?.(error)
      }
    })
  }
  heartbeatWatchers.set(consumer, onError)
}

/**
 * A consumer in a group: the library keeps the membership, this class fetches the assigned partitions into a bounded
 * buffer the stream takes from.
 */
class GroupReader {
  readonly consumer: Consumer
  private readonly pool: ConnectionPool
  private readonly options: ConsumeOptions
  private readonly instanceId: string | undefined
  private readonly maxBytesPerPartition: number
  private readonly runHook: HookRunner
  /** Partitions assigned and their next offset to fetch (`undefined`: to look up). */
  private owned = new Map<string, { readonly topic: string; readonly partition: number; next: bigint | undefined }>()
  /** Positions as a rebalance started, kept if the same member gets the partitions back in the next generation. */
  private kept:
    | { readonly memberId: string | null; readonly generationId: number; readonly positions: Map<string, bigint> }
    | undefined
  /** Partitions whose seek was applied (a seek applies to the first assignment of its partition only). */
  private readonly sought = new Set<string>()
  private readonly seeks: ReadonlyMap<string, bigint>
  /** Bumped when the assignment changes: fetches begun before are dropped. */
  private version = 0
  private rebalancing = false
  private assignedPending: ReadonlyArray<TopicPartition> | undefined
  private readonly buffer: Array<Item | DrainItem> = []
  /** Drains handed out and not done yet: released when the consumer stops. */
  private readonly drains = new Set<DrainItem>()
  private readonly rebalanceTimeout: number
  private failure: KafkaError | undefined
  private stopped = false
  private wakeLoop: (() => void) | undefined
  private wakeTake: (() => void) | undefined
  private wakePut: (() => void) | undefined
  private closing: Promise<void> | undefined
  fenced: KafkaError | undefined
  /** True from the join until the consumer closes or is fenced: commits go through the member. */
  member = false
  readonly topicsText: string

  constructor(client: ReturnType<typeof baseOptions>, options: ConsumeOptions, runHook: HookRunner) {
    this.options = options
    this.runHook = runHook
    this.topicsText = options.topics.join(",")
    this.maxBytesPerPartition = options.maxBytesPerPartition ?? fetchLimits.maxBytesPerPartition
    this.seeks = new Map(options.seeks.map((s) => [key(s.topic, s.partition), BigInt(s.offset)]))
    this.instanceId =
      options.instanceId === false || options.assigned !== undefined
        ? undefined
        : holdInstanceId(options.groupId, options.instanceId ?? defaultInstanceId(options.groupId))
    const sessionTimeout = options.sessionTimeout ?? defaultSessionTimeout
    // How long the group waits for its members to rejoin during a rebalance (an `onRevoked` hook included).
    const rebalanceTimeout = Math.max(60_000, sessionTimeout)
    this.rebalanceTimeout = rebalanceTimeout
    this.consumer = new Consumer({
      ...client,
      // A JoinGroup request is answered when every member rejoined: it may take the whole rebalance timeout.
      requestTimeout: Math.max(client.requestTimeout, rebalanceTimeout + 5_000),
      groupId: options.groupId,
      ...(this.instanceId === undefined ? {} : { groupInstanceId: this.instanceId }),
      sessionTimeout,
      rebalanceTimeout,
      heartbeatInterval: Math.max(100, Math.min(3_000, Math.floor(sessionTimeout / 3))),
      autocommit: false,
      maxWaitTime: maxWaitMs,
      maxBytes: maxBytesPerRequest,
      protocols: [{ name: "roundrobin", version: 1 }],
      protocolsMetadata: (protocols: Array<GroupProtocolSubscription>) => this.beforeJoin(protocols)
    })
    this.pool = new ConnectionPool(client.clientId, client)
    this.consumer.on("consumer:group:join", (payload) => this.joined(payload))
    // A rejoin that fails in the background (the coordinator went away, the consumer closed meanwhile) is reported as
    // an `error` event, which would crash the process without a listener: it fails the read, unless it is ending.
    this.consumer.on("error", (error: unknown) => {
      if (this.stopped || this.closing !== undefined) return
      this.fail(classifyError("consume", this.topicsText)(error))
    })
    if (this.instanceId !== undefined) {
      const instanceId = this.instanceId
      watchHeartbeats(this.consumer, (error) => {
        if (this.fenced !== undefined || !hasProtocolError(error, "FENCED_INSTANCE_ID")) return
        this.fenced = fencedError(options.groupId, instanceId, this.topicsText, error)
        this.member = false
        this.fail(this.fenced)
        // Closing now cancels the library's rejoin, which would take the id back from the other consumer.
        void this.close()
      })
    }
  }

  /**
   * Joins the group (resolves once the first assignment is known) and starts fetching; with `assigned`, fetches those
   * partitions from their offsets without joining.
   */
  async start(): Promise<void> {
    const assigned = this.options.assigned
    if (assigned !== undefined) {
      for (const p of assigned)
        this.owned.set(key(p.topic, p.partition), { topic: p.topic, partition: p.partition, next: BigInt(p.offset) })
      this.version++
      void this.loop()
      return
    }
    for (const topic of this.options.topics) this.consumer.topics.track(topic)
    await this.consumer.joinGroup({})
    this.member = this.fenced === undefined
    void this.loop()
  }

  /** Runs before every JoinGroup request: the eager protocol revokes every owned partition. */
  private beforeJoin(_protocols: Array<GroupProtocolSubscription>): Buffer | Promise<Buffer> {
    const userData = Buffer.alloc(0)
    this.rebalancing = true
    this.version++
    const positions = new Map<string, bigint>()
    for (const [k, p] of this.owned) if (p.next !== undefined) positions.set(k, p.next)
    // Fetched batches nobody took yet are dropped: the partitions may go to another member.
    for (const item of this.buffer.splice(0)) {
      if (isDrainItem(item)) {
        item.release()
        continue
      }
      const k = key(item.batch.topic, item.batch.partition)
      const at = positions.get(k)
      if (at === undefined || item.from < at) positions.set(k, item.from)
    }
    this.wakePut?.()
    this.kept = { memberId: this.consumer.memberId, generationId: this.consumer.generationId, positions }
    const revoked = [...this.owned.values()].map((p) => ({ topic: p.topic, partition: p.partition }))
    this.owned = new Map()
    this.assignedPending = undefined
    if (revoked.length === 0) return userData
    const drained = this.options.drain === true ? this.drain(revoked) : Promise.resolve()
    return drained.then(() =>
      this.options.onRevoked === undefined
        ? userData
        : this.hook(this.options.onRevoked(revoked), "onRevoked").then(() => userData)
    )
  }

  /**
   * Hands a drain to the stream, after the batches it took, and waits until it is done, the consumer stops, or most of
   * the rebalance timeout passed (the group would drop this member otherwise).
   */
  private drain(partitions: ReadonlyArray<TopicPartition>): Promise<void> {
    if (this.stopped || this.failure !== undefined) return Promise.resolve()
    let release = () => {}
    const drained = new Promise<void>((resolve) => {
      release = resolve
    })
    const timer = setTimeout(release, Math.max(1_000, this.rebalanceTimeout - 5_000))
    const item: DrainItem = {
      drain: { _tag: "Drain", partitions, done: Effect.sync(() => item.release()) },
      drained,
      release: () => {
        clearTimeout(timer)
        this.drains.delete(item)
        release()
      }
    }
    this.drains.add(item)
    this.buffer.push(item)
    this.notifyTake()
    return drained
  }

  /** The group's assignment arrived (after every join). */
  private joined(payload: {
    readonly memberId: string
    readonly generationId?: number
    readonly assignments?: Array<GroupAssignment>
  }): void {
    const kept = this.kept
    // With `startAt`, every assignment asks it (what was read before the rebalance was drained into the sink, and the
    // stages' states of the partitions went with it).
    const continues =
      kept !== undefined &&
      this.options.startAt === undefined &&
      kept.memberId === payload.memberId &&
      payload.generationId === kept.generationId + 1
    const owned = new Map<string, { readonly topic: string; readonly partition: number; next: bigint | undefined }>()
    for (const assignment of payload.assignments ?? [])
      for (const partition of assignment.partitions) {
        const k = key(assignment.topic, partition)
        owned.set(k, { topic: assignment.topic, partition, next: continues ? kept.positions.get(k) : undefined })
      }
    this.owned = owned
    this.kept = undefined
    this.rebalancing = false
    this.version++
    this.assignedPending = [...owned.values()].map((p) => ({ topic: p.topic, partition: p.partition }))
    this.wakeLoop?.()
  }

  private async hook(effect: Effect.Effect<void>, name: string): Promise<void> {
    const exit = await this.runHook(effect)
    if (Exit.isFailure(exit))
      this.fail(
        new KafkaError({
          reason: reasons.Unknown,
          operation: name,
          topic: this.topicsText,
          message: `The Kafka consumer's ${name} hook failed`,
          cause: exit.cause
        })
      )
  }

  /** The fetch loop: resolves positions, fetches from each leader, hands partition batches to the buffer. */
  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        if (this.rebalancing || this.owned.size === 0) {
          await new Promise<void>((resolve) => {
            this.wakeLoop = resolve
          })
          this.wakeLoop = undefined
          continue
        }
        const version = this.version
        const unresolved = [...this.owned.values()].filter((p) => p.next === undefined)
        if (unresolved.length > 0) await this.resolve(unresolved)
        if (version !== this.version) continue
        const assigned = this.assignedPending
        if (assigned !== undefined) {
          this.assignedPending = undefined
          if (this.options.onAssigned !== undefined) await this.hook(this.options.onAssigned(assigned), "onAssigned")
          if (version !== this.version) continue
        }
        const metadata = await this.consumer.metadata({ topics: [...this.options.topics] })
        const results = await Promise.all(
          [...this.requests(metadata)].map(([node, topics]) => this.fetchFrom(node, topics, metadata))
        )
        if (version !== this.version || this.stopped) continue
        for (const items of results)
          for (const item of items) {
            const owned = this.owned.get(key(item.topic, item.partition))
            if (owned === undefined) continue
            if (item.batch === undefined) {
              owned.next = item.next
              continue
            }
            // The position moves past the batch only as it enters the buffer: a rebalance meanwhile drops it, and
            // a member that keeps the partition fetches it again.
            await this.put({ batch: item.batch, from: item.from }, () => {
              owned.next = item.next
            })
            if (version !== this.version || this.stopped) break
          }
      }
    } catch (error) {
      if (!this.stopped) this.fail(classifyError("consume", this.topicsText)(error))
    }
  }

  /** The Fetch requests of the owned partitions, by leader. */
  private requests(metadata: ClusterMetadata): Map<number, Array<FetchRequestTopic>> {
    const byNode = new Map<number, Map<string, FetchRequestTopic>>()
    for (const p of this.owned.values()) {
      const topic = metadata.topics.get(p.topic)
      const leader = topic?.partitions[p.partition]?.leader
      if (topic === undefined || leader === undefined || leader < 0 || p.next === undefined) continue
      let topics = byNode.get(leader)
      if (topics === undefined) {
        topics = new Map()
        byNode.set(leader, topics)
      }
      let request = topics.get(topic.id)
      if (request === undefined) {
        request = { topicId: topic.id, partitions: [] }
        topics.set(topic.id, request)
      }
      request.partitions.push({
        partition: p.partition,
        fetchOffset: p.next,
        partitionMaxBytes: this.maxBytesPerPartition,
        currentLeaderEpoch: -1,
        lastFetchedEpoch: -1
      })
    }
    return new Map([...byNode].map(([node, topics]) => [node, [...topics.values()]]))
  }

  private async fetchFrom(node: number, topics: Array<FetchRequestTopic>, metadata: ClusterMetadata) {
    const names = new Map<string, string>()
    for (const [name, topic] of metadata.topics) names.set(topic.id, name)
    const from = new Map<string, bigint>()
    for (const t of topics)
      for (const p of t.partitions) from.set(key(names.get(t.topicId) ?? t.topicId, p.partition), p.fetchOffset)
    let response: FetchResponse
    try {
      response = await this.consumer.fetch({
        node,
        topics,
        connectionPool: this.pool,
        maxWaitTime: maxWaitMs,
        maxBytes: maxBytesPerRequest
      })
    } catch (error) {
      if (hasProtocolError(error, "OFFSET_OUT_OF_RANGE")) {
        await this.outOfRange(error, names)
        return []
      }
      throw error
    }
    const out: Array<{
      readonly topic: string
      readonly partition: number
      readonly from: bigint
      readonly next: bigint
      readonly batch: FetchedBatch | undefined
    }> = []
    for (const t of response.responses) {
      const topic = names.get(t.topicId) ?? t.topicId
      for (const p of t.partitions) {
        const start = from.get(key(topic, p.partitionIndex))
        if (start === undefined) continue
        const fetched = toFetched(topic, p.partitionIndex, p.records ?? [], start, p.highWatermark)
        if (fetched !== undefined) out.push({ topic, partition: p.partitionIndex, from: start, ...fetched })
      }
    }
    return out
  }

  /** Positions out of range (retention deleted them, or a seek went past the end) restart at the earliest offset. */
  private async outOfRange(error: unknown, names: ReadonlyMap<string, string>): Promise<void> {
    const response = (error as { readonly response?: FetchResponse }).response
    const lookup: Array<{ readonly topic: string; readonly partition: number }> = []
    for (const t of response?.responses ?? [])
      for (const p of t.partitions) {
        if (p.errorCode !== 1) continue
        const owned = this.owned.get(key(names.get(t.topicId) ?? t.topicId, p.partitionIndex))
        if (owned === undefined) continue
        if (p.logStartOffset >= 0n) owned.next = p.logStartOffset
        else lookup.push(owned)
      }
    if (response === undefined) throw error
    if (lookup.length > 0) await this.earliest(lookup)
  }

  /** Looks up the next offset of newly assigned partitions: a seek, else the committed offset, else the earliest. */
  private async resolve(
    partitions: ReadonlyArray<{ readonly topic: string; readonly partition: number; next: bigint | undefined }>
  ): Promise<void> {
    const given = new Map<string, bigint>()
    if (this.options.startAt !== undefined) {
      const exit = await this.runHook(
        this.options.startAt(partitions.map((p) => ({ topic: p.topic, partition: p.partition })))
      )
      if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
      for (const at of exit.value) given.set(key(at.topic, at.partition), BigInt(at.offset))
    }
    const rest: Array<(typeof partitions)[number]> = []
    for (const p of partitions) {
      const k = key(p.topic, p.partition)
      const seek = this.seeks.get(k)
      const start = given.get(k)
      if (start !== undefined) {
        this.sought.add(k)
        p.next = start
      } else if (seek !== undefined && !this.sought.has(k)) {
        this.sought.add(k)
        p.next = seek
      } else rest.push(p)
    }
    if (rest.length === 0) return
    const byTopic = new Map<string, Array<number>>()
    for (const p of rest) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition])
    const committed = await this.consumer.listCommittedOffsets({
      topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions }))
    })
    const none: Array<(typeof partitions)[number]> = []
    for (const p of rest) {
      const offset = committed.get(p.topic)?.[p.partition]
      if (offset !== undefined && offset >= 0n) p.next = offset
      else none.push(p)
    }
    if (none.length > 0) await this.earliest(none)
  }

  private async earliest(
    partitions: ReadonlyArray<{ readonly topic: string; readonly partition: number; next?: bigint | undefined }>
  ): Promise<void> {
    const byTopic: Record<string, Array<number>> = {}
    for (const p of partitions) byTopic[p.topic] = [...(byTopic[p.topic] ?? []), p.partition]
    const offsets = await this.consumer.listOffsets({
      topics: Object.keys(byTopic),
      partitions: byTopic,
      timestamp: EARLIEST
    })
    for (const p of partitions) {
      const offset = offsets.get(p.topic)?.[p.partition]
      if (offset === undefined) throw new Error(`No earliest offset for ${key(p.topic, p.partition)}`)
      p.next = offset
    }
  }

  /** Waits for room in the buffer, then adds the batch and runs `entered`; a batch of an older assignment is dropped. */
  private async put(item: Item, entered: () => void): Promise<void> {
    const version = this.version
    while (this.buffer.length >= readAhead && !this.stopped && version === this.version)
      await new Promise<void>((resolve) => {
        this.wakePut = resolve
      })
    if (this.stopped || version !== this.version) return
    this.buffer.push(item)
    entered()
    this.notifyTake()
  }

  private notifyTake(): void {
    const wake = this.wakeTake
    this.wakeTake = undefined
    wake?.()
  }

  private fail(error: KafkaError): void {
    this.failure ??= error
    for (const item of [...this.drains]) item.release()
    this.notifyTake()
  }

  /** The next fetched batch or drain; `undefined` once stopped. */
  async take(): Promise<ConsumerEvent | undefined> {
    while (this.buffer.length === 0) {
      if (this.failure !== undefined) throw this.failure
      if (this.stopped) return undefined
      await new Promise<void>((resolve) => {
        this.wakeTake = resolve
      })
    }
    const item = this.buffer.shift()!
    const wake = this.wakePut
    this.wakePut = undefined
    wake?.()
    return isDrainItem(item) ? item.drain : item.batch
  }

  /** Stops fetching: the stream ends, the consumer stays in the group (commits still go through it). */
  stop(): void {
    this.stopped = true
    this.buffer.length = 0
    for (const item of [...this.drains]) item.release()
    this.wakeLoop?.()
    this.wakePut?.()
    this.notifyTake()
  }

  /** Stops fetching, revokes the partitions (`onRevoked`) and leaves the group; at most once. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.stop()
      const revoked = [...this.owned.values()].map((p) => ({ topic: p.topic, partition: p.partition }))
      this.owned = new Map()
      this.closing = (async () => {
        if (revoked.length > 0 && this.options.onRevoked !== undefined && this.fenced === undefined)
          await this.hook(this.options.onRevoked(revoked), "onRevoked")
        this.member = false
        // A LeaveGroup request: the group rebalances at once instead of waiting for the session to expire.
        await this.consumer.close().catch(() => this.consumer.close(true).catch(() => undefined))
        await this.pool.close().catch(() => undefined)
        heartbeatWatchers.delete(this.consumer)
        if (this.instanceId !== undefined) releaseInstanceId(this.options.groupId, this.instanceId)
      })()
    }
    return this.closing
  }
}

// -----------------------------------------------------------------------------
// the client
// -----------------------------------------------------------------------------

/** Java's partitioner for keyed messages (murmur2, positive), so keys land where other Kafka clients put them. */
const partitionerOf = () => {
  let next = 0
  return (_message: unknown, key: Buffer | undefined): number =>
    key === undefined ? next++ : murmur2(key) & 0x7fffffff
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Builds the client: one admin client for the Scope (connected at once), consumers and producers on demand. */
export const make = Effect.fn("NodeKafka.make")(function* (options: ConnectionOptions) {
  const client = baseOptions(options)
  const admin = yield* Effect.acquireRelease(
    attempt("connect", undefined, async () => {
      const a = new Admin(client)
      try {
        await a.metadata({ topics: [] })
      } catch (cause) {
        await a.close().catch(() => undefined)
        throw cause
      }
      return a
    }),
    (a) => Effect.promise(() => a.close().catch(() => undefined))
  )
  const services = yield* Effect.context<never>()
  const runHook: HookRunner = (effect) => Effect.runPromiseExitWith(services)(effect)

  // Consumers not yet closed, by group: closed before another consumer of the group starts, and with the layer.
  const open = new Map<string, GroupReader>()
  yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([...open.values()].map((r) => r.close()))))

  const partitionCount = async (topic: string): Promise<number> => {
    const metadata = await admin.metadata({ topics: [topic] })
    return metadata.topics.get(topic)?.partitionsCount ?? 0
  }

  const listOffsets = async (topic: string, timestamp: bigint) => {
    const count = await partitionCount(topic)
    const [listed] = await admin.listOffsets({
      topics: [
        {
          name: topic,
          partitions: Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp }))
        }
      ]
    })
    const byPartition = new Map<number, bigint>()
    for (const p of listed?.partitions ?? []) byPartition.set(p.partitionIndex, p.offset)
    return Array.from({ length: count }, (_, partition) => ({ partition, offset: byPartition.get(partition) ?? -1n }))
  }

  /** Commits positions for a group from outside it (the broker takes them while the group has no member). */
  const commitOffsets = (groupId: string, positions: ReadonlyArray<Position>, topicsText: string) => {
    const byTopic = new Map<string, Array<{ partition: number; offset: bigint }>>()
    for (const p of positions)
      byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), { partition: p.partition, offset: BigInt(p.offset) }])
    return attempt("commit", topicsText, () =>
      admin.alterConsumerGroupOffsets({
        groupId,
        topics: [...byTopic].map(([name, partitionOffsets]) => ({ name, partitionOffsets }))
      })
    )
  }

  const kafkaClient: KafkaClientShape = {
    commitOffsets: (groupId, positions) =>
      positions.length === 0
        ? Effect.void
        : commitOffsets(groupId, positions, Array.from(new Set(positions.map((p) => p.topic))).join(",")),
    listTopics: attempt("listTopics", undefined, () => admin.listTopics({ includeInternals: true })),
    createTopic: (topic, topicOptions) =>
      attempt("createTopic", topic, async () => {
        const partitions = topicOptions?.partitions ?? 1
        try {
          await admin.createTopics({
            topics: [topic],
            partitions,
            replicas: 1,
            configs: Object.entries(topicOptions?.config ?? {}).map(([name, value]) => ({ name, value }))
          })
        } catch (cause) {
          if (!hasProtocolError(cause, "TOPIC_ALREADY_EXISTS")) throw cause
          return
        }
        // Like kafkajs's `waitForLeaders`: the topic is usable when every partition has a leader.
        for (let tries = 0; tries < 100; tries++) {
          const metadata = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined)
          const t = metadata?.topics.get(topic)
          if (t !== undefined && t.partitionsCount === partitions && t.partitions.every((p) => p.leader >= 0)) return
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }),
    partitionOffsets: (topic) =>
      attempt("partitionOffsets", topic, async () => {
        const [low, high] = await Promise.all([listOffsets(topic, EARLIEST), listOffsets(topic, -1n)])
        return low.map((l) => ({
          partition: l.partition,
          low: l.offset.toString(),
          high: (high.find((h) => h.partition === l.partition)?.offset ?? l.offset).toString()
        }))
      }),
    offsetsForTimestamp: (topic, timestamp) =>
      attempt("offsetsForTimestamp", topic, async () => {
        const [found, ends] = await Promise.all([listOffsets(topic, BigInt(timestamp)), listOffsets(topic, -1n)])
        return found.map((p) => ({
          partition: p.partition,
          offset: (p.offset < 0n
            ? (ends.find((e) => e.partition === p.partition)?.offset ?? p.offset)
            : p.offset
          ).toString()
        }))
      }),
    committedOffsets: (groupId, topic) =>
      attempt("committedOffsets", topic, async () => {
        const count = await partitionCount(topic)
        if (count === 0)
          throw Object.assign(new Error(`Topic ${topic} does not exist`), { apiId: "UNKNOWN_TOPIC_OR_PARTITION" })
        const [group] = await admin.listConsumerGroupOffsets({
          groups: [{ groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: count }, (_, i) => i) }] }]
        })
        const committed = new Map<number, bigint>()
        for (const t of group?.topics ?? [])
          if (t.name === topic) for (const p of t.partitions) committed.set(p.partitionIndex, p.committedOffset)
        return Array.from({ length: count }, (_, partition) => {
          const offset = committed.get(partition)
          return { partition, offset: offset === undefined || offset < 0n ? undefined : offset.toString() }
        })
      }),
    consume: (consumeOptions) =>
      Effect.gen(function* () {
        const topicsText = consumeOptions.topics.join(",")
        // A reader of assigned partitions is no member of the group: several read at once (the parts of a split run).
        const slot =
          consumeOptions.assigned === undefined ? consumeOptions.groupId : `${crypto.randomUUID()} (assigned)`
        const lingering = open.get(slot)
        if (lingering !== undefined) yield* Effect.promise(() => lingering.close())
        const reader = yield* attempt("consume", topicsText, async () => {
          const r = new GroupReader(client, consumeOptions, runHook)
          try {
            await r.start()
          } catch (cause) {
            await r.close()
            throw r.fenced ?? cause
          }
          return r
        })
        open.set(slot, reader)
        const closeNow = () =>
          reader.close().then(() => {
            if (open.get(slot) === reader) open.delete(slot)
          })
        const batches = Stream.fromPull(
          Effect.succeed(
            Effect.flatMap(
              Effect.tryPromise({ try: () => reader.take(), catch: classifyError("consume", topicsText) }),
              (batch) => (batch === undefined ? Effect.fail(undefined) : Effect.succeed([batch] as const))
            )
          )
        )
        return {
          batches: Stream.catch(batches, (e) => (e === undefined ? Stream.empty : Stream.fail(e))),
          commit: (positions: ReadonlyArray<Position>) =>
            Effect.suspend(() => {
              if (reader.fenced !== undefined) return Effect.fail(reader.fenced)
              if (reader.member)
                return attempt("commit", topicsText, () =>
                  reader.consumer.commit({
                    offsets: positions.map((p) => ({
                      topic: p.topic,
                      partition: p.partition,
                      offset: BigInt(p.offset),
                      leaderEpoch: -1
                    }))
                  })
                )
              // The consumer already left the group: the offsets are committed for the group as a whole (the broker
              // takes them while the group has no member).
              return commitOffsets(consumeOptions.groupId, positions, topicsText)
            }),
          stop: Effect.sync(() => reader.stop()),
          close: Effect.promise(closeNow)
        }
      }),
    producer: (producerOptions) =>
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(
            () =>
              new Producer({
                ...client,
                idempotent: true,
                acks: -1,
                compression: producerOptions.compression,
                autocreateTopics: false,
                partitioner: partitionerOf()
              })
          ),
          (p) => Effect.promise(() => p.close().catch(() => undefined))
        ),
        (producer) => ({
          send: (topic, messages) =>
            attempt("send", topic, () =>
              producer.send({
                messages: messages.map((m) => ({
                  topic,
                  ...(m.key === null ? {} : { key: toBuffer(m.key) }),
                  // A tombstone (null value) is written as a null value.
                  value: (m.value === null ? null : toBuffer(m.value)) as Buffer,
                  ...(m.headers === undefined
                    ? {}
                    : {
                        headers: new Map(
                          Object.entries(m.headers).map(([k, v]) => [Buffer.from(k, "utf8"), toBuffer(v)] as const)
                        )
                      })
                }))
              })
            ).pipe(Effect.asVoid)
        })
      )
  }
  return kafkaClient
})

/**
 * The @platformatic/kafka client as a layer: one admin client for the layer's lifetime; consumers and producers are
 * opened per source and sink.
 *
 * @example
 * program.pipe(Effect.provide(NodeKafka.layer({ brokers: ["127.0.0.1:9092"] })))
 */
export const layer = (options: ConnectionOptions): Layer.Layer<KafkaClient, KafkaError> =>
  Layer.effect(KafkaClient, make(options))
