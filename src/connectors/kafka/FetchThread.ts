/**
 * Fetching on a thread of its own. A busy consumer spends as much time parsing Fetch responses (the library's record
 * batches: varints, a `Buffer` per key and value) as the pipeline spends on its records; on a thread of its own the
 * parsing overlaps the pipeline's work. The fetch thread sends the same Fetch requests as the consumer would, with a
 * client of its own (no group: fetching needs none), and hands each partition's messages back packed — their keys'
 * and values' bytes in one buffer and their offsets, timestamps and slices in another, both transferred, never
 * cloned — which {@link unpack} turns into the consumer's messages.
 *
 * It is an accelerator, never a second source of truth: the consumer decides what to fetch, and a fetch the thread
 * cannot answer (any error, or the thread gone) is fetched again by the consumer itself, so errors are seen and handled
 * there, as without the thread.
 *
 * This module imports no Effect: the fetch thread loads it with the library only.
 */
import { Worker } from "node:worker_threads"
import type { BaseOptions, FetchOptions, RecordsBatch } from "@platformatic/kafka"

export type FetchRequestTopic = FetchOptions<Buffer, Buffer, Buffer, Buffer>["topics"][number]

/** Record batch attribute bits. */
export const LOG_APPEND_TIME = 0x08
export const CONTROL = 0x20

/**
 * Visits the messages of a partition's record batches at or after `from`, in order, with their offset and timestamp.
 * Control records (transaction markers) take offsets but are not messages. Returns how many were visited.
 */
export const eachMessage = (
  batches: ReadonlyArray<RecordsBatch>,
  from: bigint,
  visit: (record: RecordsBatch["records"][number], offset: number, timestamp: number) => void
): number => {
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
      visit(r, offset, logAppendTime >= 0 ? logAppendTime : firstTimestamp + Number(r.timestampDelta))
      n++
    }
  }
  return n
}

/** The offset of the last record of a partition's record batches (control records included). */
export const lastOffsetOf = (batches: ReadonlyArray<RecordsBatch>): bigint => {
  const last = batches[batches.length - 1]!
  return last.firstOffset + BigInt(last.lastOffsetDelta)
}

/** Numbers kept per message in {@link PackedPartition.index}. */
const SLOTS = 6

/** One partition of a Fetch response, packed by the fetch thread. */
export interface PackedPartition {
  readonly topic: string
  readonly partition: number
  /** The offset fetched from. */
  readonly from: bigint
  /** The offset after the last record of the response (control records included). */
  readonly next: bigint
  readonly highWatermark: bigint
  readonly count: number
  /** Per message: offset, timestamp, key start, key length, value start, value length (a length of -1: null). */
  readonly index: Float64Array
  /** The keys' and values' bytes. */
  readonly data: Uint8Array
  /** The headers of the messages that have any, by message number: name (UTF-8) and value pairs. */
  readonly headers: ReadonlyArray<readonly [number, ReadonlyArray<readonly [string, Uint8Array]>]>
}

/** Packs a partition's record batches from `from` on (`undefined` when the response held no record batch). */
export const pack = (
  topic: string,
  partition: number,
  batches: ReadonlyArray<RecordsBatch>,
  from: bigint,
  highWatermark: bigint
): PackedPartition | undefined => {
  if (batches.length === 0) return undefined
  // A record batch's length bounds the bytes of its keys and values, and its records count bounds its messages: one
  // pass fills buffers of those sizes.
  let bound = 0
  let records = 0
  for (let b = 0; b < batches.length; b++) {
    bound += batches[b]!.length
    records += batches[b]!.records.length
  }
  const index = new Float64Array(records * SLOTS)
  const data = new Uint8Array(bound)
  const headers: Array<readonly [number, ReadonlyArray<readonly [string, Uint8Array]>]> = []
  let pos = 0
  let at = 0
  const count = eachMessage(batches, from, (r, offset, timestamp) => {
    index[at] = offset
    index[at + 1] = timestamp
    index[at + 2] = pos
    const key = r.key
    if (key === null) index[at + 3] = -1
    else {
      data.set(key, pos)
      index[at + 3] = key.length
      pos += key.length
    }
    index[at + 4] = pos
    const value = r.value
    if (value === null) index[at + 5] = -1
    else {
      data.set(value, pos)
      index[at + 5] = value.length
      pos += value.length
    }
    if (r.headers.length > 0) {
      const pairs: Array<readonly [string, Uint8Array]> = []
      for (const [name, value] of r.headers)
        if (name !== null && value !== null) pairs.push([name.toString("utf8"), new Uint8Array(value)])
      headers.push([at / SLOTS, pairs])
    }
    at += SLOTS
  })
  return { topic, partition, from, next: lastOffsetOf(batches) + 1n, highWatermark, count, index, data, headers }
}

/** A message of a packed partition, as {@link unpack} hands it to the consumer. */
export interface UnpackedMessage {
  readonly offset: number
  readonly timestamp: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Readonly<Record<string, Uint8Array>> | undefined
}

/** The messages of a packed partition: keys and values are views of its data, never copies. */
export const unpack = <M>(
  packed: PackedPartition,
  make: (offset: number, timestamp: number, key: Buffer | null, value: Buffer | null, headers: number) => M,
  withHeaders: (message: M, headers: Readonly<Record<string, Uint8Array>>) => M
): Array<M> => {
  const { index, data, count } = packed
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const out: Array<M> = new Array(count)
  for (let n = 0; n < count; n++) {
    const at = n * SLOTS
    const keyLength = index[at + 3]!
    const valueLength = index[at + 5]!
    const keyStart = index[at + 2]!
    const valueStart = index[at + 4]!
    out[n] = make(
      index[at]!,
      index[at + 1]!,
      keyLength < 0 ? null : buffer.subarray(keyStart, keyStart + keyLength),
      valueLength < 0 ? null : buffer.subarray(valueStart, valueStart + valueLength),
      n
    )
  }
  for (const [n, pairs] of packed.headers) {
    const record: Record<string, Uint8Array> = {}
    for (const [name, value] of pairs) record[name] = value
    out[n] = withHeaders(out[n]!, record)
  }
  return out
}

/** What the consumer asks the fetch thread: a Fetch request to one broker. */
export interface FetchJob {
  readonly id: number
  readonly node: number
  readonly topics: ReadonlyArray<FetchRequestTopic>
  /** Topic names by topic id. */
  readonly names: ReadonlyArray<readonly [string, string]>
  readonly maxWaitTime: number
  readonly maxBytes: number
}

/** The fetch thread's answer: the partitions packed, or `undefined` when the consumer should fetch itself. */
export interface FetchReply {
  readonly id: number
  readonly partitions: ReadonlyArray<PackedPartition> | undefined
}

/** How the fetch thread connects: the consumer's client options that can cross threads (no functions). */
export type FetchClientOptions = Omit<BaseOptions, "retryDelay">

/** The fetch thread's script (the compiled `.js` beside this file, or the `.ts` file from sources). */
const script = new URL(import.meta.url.endsWith(".ts") ? "./FetchWorker.ts" : "./FetchWorker.js", import.meta.url)

/** A running fetch thread. */
export class FetchThread {
  private readonly worker: Worker
  private readonly pending = new Map<number, (partitions: ReadonlyArray<PackedPartition> | undefined) => void>()
  private next = 0
  /** Set once the thread failed or ended: every fetch is then the consumer's own. */
  private broken = false

  constructor(options: FetchClientOptions) {
    this.worker = new Worker(script, { workerData: options, stdout: false, stderr: false })
    // The thread never keeps the process alive: the consumer ends it when it closes.
    this.worker.unref()
    this.worker.on("message", (reply: FetchReply) => {
      const resolve = this.pending.get(reply.id)
      this.pending.delete(reply.id)
      resolve?.(reply.partitions)
    })
    const end = () => {
      this.broken = true
      for (const resolve of this.pending.values()) resolve(undefined)
      this.pending.clear()
    }
    this.worker.on("error", end)
    this.worker.on("exit", end)
  }

  /** Whether fetches may still go to the thread. */
  get usable(): boolean {
    return !this.broken
  }

  /** Sends one Fetch request through the thread; `undefined`: the consumer fetches it itself. */
  fetch(job: Omit<FetchJob, "id">): Promise<ReadonlyArray<PackedPartition> | undefined> {
    if (this.broken) return Promise.resolve(undefined)
    const id = this.next++
    return new Promise((resolve) => {
      this.pending.set(id, resolve)
      this.worker.postMessage({ ...job, id } satisfies FetchJob)
    })
  }

  /** Ends the thread (its client's connections go with it). */
  async close(): Promise<void> {
    this.broken = true
    await this.worker.terminate().catch(() => undefined)
  }
}
