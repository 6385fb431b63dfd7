/**
 * Deterministic generator of transaction records (the contract of schemas/transaction.avsc) as JSON Lines, for the
 * quickstart data set and the benchmarks. A small share of records is deliberately bad (negative amounts, lower-case
 * currencies, a malformed line) so that validation and dead letters have something to do.
 *
 *   node scripts/transactions.ts <count> <file> [--clean]
 */
import * as fs from "node:fs"

const statuses = ["settled", "settled", "settled", "pending", "failed", "refunded"] as const
const currencies = ["EUR", "USD", "GBP", "CHF", "JPY"] as const
const merchants = ["Acme Books", "Blue Bottle", "Cinema Nova", "Delta Air", "Eataly", null] as const
const categories = ["books", "coffee", "entertainment", "travel", "food"] as const

/** A small, fast, seeded PRNG (mulberry32), so the same seed always gives the same data. */
const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const hex = (next: () => number, n: number) => {
  let s = ""
  for (let i = 0; i < n; i++) s += Math.floor(next() * 16).toString(16)
  return s
}

/** The JSON text of transaction number `i`; `clean` leaves out the deliberately bad ones. */
export const makeLines = function* (count: number, options?: { readonly seed?: number; readonly clean?: boolean }) {
  const next = random(options?.seed ?? 42)
  const start = Date.UTC(2026, 10, 1)
  for (let i = 0; i < count; i++) {
    const bad = options?.clean === true ? 1 : next()
    if (bad < 0.002) {
      yield '{"transactionId": "truncated'
      continue
    }
    const cents = Math.floor(next() * 250_000) + 1
    const amount = bad < 0.01 ? -cents / 100 : cents / 100
    const currency = bad >= 0.01 && bad < 0.015 ? "eur" : currencies[Math.floor(next() * currencies.length)]!
    const merchant = merchants[Math.floor(next() * merchants.length)]!
    yield JSON.stringify({
      transactionId: `${hex(next, 8)}-${hex(next, 4)}-4${hex(next, 3)}-a${hex(next, 3)}-${hex(next, 12)}`,
      userId: `u${Math.floor(next() * 10_000)}`,
      amount: amount.toFixed(2),
      currency,
      status: statuses[Math.floor(next() * statuses.length)]!,
      eventTime: new Date(start + i * 1000 + Math.floor(next() * 60_000)).toISOString(),
      merchant,
      category: categories[Math.floor(next() * categories.length)]!
    })
  }
}

/** Writes `count` transactions as JSON Lines to `file`, in chunks. */
export const writeFile = (
  file: string,
  count: number,
  options?: { readonly seed?: number; readonly clean?: boolean }
) => {
  const fd = fs.openSync(file, "w")
  let chunk: Array<string> = []
  for (const line of makeLines(count, options)) {
    chunk.push(line)
    if (chunk.length === 10_000) {
      fs.writeSync(fd, `${chunk.join("\n")}\n`)
      chunk = []
    }
  }
  if (chunk.length > 0) fs.writeSync(fd, `${chunk.join("\n")}\n`)
  fs.closeSync(fd)
}

if (import.meta.main) {
  const [count, file] = process.argv.slice(2)
  if (count === undefined || file === undefined) {
    console.error("usage: node scripts/transactions.ts <count> <file> [--clean]")
    process.exit(2)
  }
  writeFile(file, Number(count), { clean: process.argv.includes("--clean") })
}
