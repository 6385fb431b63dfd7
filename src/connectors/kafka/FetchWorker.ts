/**
 * The fetch thread of a consumer (see `FetchThread`): sends the Fetch requests it is given with a client of its own
 * and answers with the partitions packed, or with nothing when the request failed (the consumer then sends it itself
 * and handles the error).
 */
import { parentPort, workerData } from "node:worker_threads"
import { Consumer } from "@platformatic/kafka"
import { type FetchClientOptions, type FetchJob, type FetchReply, type PackedPartition, pack } from "./FetchThread.ts"

const options = workerData as FetchClientOptions
const port = parentPort!

// A consumer that never joins a group: Fetch requests need none.
const consumer = new Consumer({
  ...options,
  groupId: `${options.clientId}-fetch-thread`,
  retries: 3,
  retryDelay: (_client: unknown, _operation: string, attempt: number) => Math.min(2_000, 100 * 2 ** attempt)
})

const tracked = new Set<string>()

port.on("message", (job: FetchJob) => {
  const names = new Map(job.names)
  for (const name of names.values())
    if (!tracked.has(name)) {
      tracked.add(name)
      consumer.topics.track(name)
    }
  const from = new Map<string, bigint>()
  for (const t of job.topics) for (const p of t.partitions) from.set(`${t.topicId}/${p.partition}`, p.fetchOffset)
  consumer.fetch(
    { node: job.node, topics: [...job.topics], maxWaitTime: job.maxWaitTime, maxBytes: job.maxBytes },
    (error, response) => {
      if (error !== null || response === undefined) {
        port.postMessage({ id: job.id, partitions: undefined } satisfies FetchReply)
        return
      }
      const partitions: Array<PackedPartition> = []
      const transfer: Array<ArrayBuffer> = []
      for (const t of response.responses)
        for (const p of t.partitions) {
          const start = from.get(`${t.topicId}/${p.partitionIndex}`)
          if (start === undefined) continue
          const packed = pack(
            names.get(t.topicId) ?? t.topicId,
            p.partitionIndex,
            p.records ?? [],
            start,
            p.highWatermark
          )
          if (packed === undefined) continue
          partitions.push(packed)
          transfer.push(packed.index.buffer as ArrayBuffer, packed.data.buffer as ArrayBuffer)
        }
      port.postMessage({ id: job.id, partitions } satisfies FetchReply, transfer)
    }
  )
})
