/**
 * Avro datum decoding and encoding, the bridge's avsc type (`AvroBridge.toAvroType`) against its fast codec
 * (`AvroFast.of`), on N (default 1M) `schemas/transaction.avsc` records made as `bench/kafka-s3.ts` makes them:
 *
 * - decode: one payload per record, `type.fromBuffer(payload)` against `fast.decode(payload, cursor)` (as AvroWire);
 * - encode: into 64 KiB blocks, `type.isValid(record)` + `type.encode(record, buf, pos)` against `fast.encode(record,
 *   buf, pos)` (as AvroFile's block writer).
 *
 * Each case is run a few rounds, alternating, and the best round is reported (ms per N and records/s), with the ratio.
 *
 *   node bench/avro.ts
 *   BENCH_RECORDS=200000 BENCH_ROUNDS=5 node bench/avro.ts
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import * as AvroFast from "../src/schema/AvroFast.ts"
import type * as AvroSchema from "../src/schema/AvroSchema.ts"
import { makeTx } from "./support/Transactions.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const avsc = JSON.parse(
  fs.readFileSync(nodePath.join(root, "schemas", "transaction.avsc"), "utf8")
) as AvroSchema.Schema
const type = AvroBridge.toAvroType(avsc)
const fast = AvroFast.of(type)
if (fast === undefined) throw new Error("transaction.avsc has no fast codec")

const txs = Array.from({ length: records }, (_, i) => makeTx(i))
const payloads = txs.map((tx) => type.toBuffer(tx))

let sink = 0

const decodeBridge = (): void => {
  for (const payload of payloads) if (type.fromBuffer(payload) !== undefined) sink++
}

const decodeFast = (): void => {
  const cursor = { pos: 0 }
  for (const payload of payloads) {
    cursor.pos = 0
    const value = fast.decode(payload, cursor)
    if (value === AvroFast.BAIL || cursor.pos !== payload.length) throw new Error("the fast decoder bailed")
    sink++
  }
}

const BLOCK = 64 * 1024
const block = Buffer.allocUnsafe(BLOCK + 1024)

const encodeBridge = (): void => {
  let pos = 0
  for (const tx of txs) {
    if (!type.isValid(tx)) throw new Error("invalid record")
    pos = type.encode(tx, block, pos)
    if (pos >= BLOCK) pos = 0
  }
  sink += pos
}

const encodeFast = (): void => {
  let pos = 0
  for (const tx of txs) {
    const next = fast.encode(tx, block, pos)
    if (next === AvroFast.BAIL || next < 0) throw new Error("the fast encoder bailed")
    pos = next >= BLOCK ? 0 : next
  }
  sink += pos
}

const time = (f: () => void): number => {
  const started = performance.now()
  f()
  return performance.now() - started
}

const cases = { decodeBridge, decodeFast, encodeBridge, encodeFast }
const best: Record<string, number> = {}
for (let round = 0; round < rounds; round++) {
  for (const [name, f] of Object.entries(cases)) best[name] = Math.min(best[name] ?? Infinity, time(f))
}

const perMillion = (ms: number): string => `${((ms * 1_000_000) / records).toFixed(0)} ms per 1M`
const rate = (ms: number): string => `${Math.round((records / ms) * 1000).toLocaleString("en")} records/s`
const report = (label: string, bridge: number, fastMs: number): void => {
  console.log(
    `${label}: bridge ${perMillion(bridge)} (${rate(bridge)}), fast ${perMillion(fastMs)} (${rate(fastMs)}): ${(bridge / fastMs).toFixed(2)}x`
  )
}
console.log(`${records.toLocaleString("en")} records of schemas/transaction.avsc, best of ${rounds} rounds`)
report("decode (fromBuffer)", best.decodeBridge!, best.decodeFast!)
report("encode (isValid + encode)", best.encodeBridge!, best.encodeFast!)
if (sink < 0) console.log(sink)
