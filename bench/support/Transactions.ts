/**
 * The records of `schemas/transaction.avsc` in the benchmarks (`Tx`; `parquet.ts` makes its own, more varied ones),
 * and the transactions `kafka-s3.ts`, `s3-postgres.ts` and `avro.ts` read: the i-th from a fixed formula, so every
 * benchmark and every run sees the same data.
 */
import * as BigDecimal from "effect/BigDecimal"

/** A record of `schemas/transaction.avsc`. */
export interface Tx {
  readonly transactionId: string
  readonly userId: string
  readonly amount: BigDecimal.BigDecimal
  readonly currency: string
  readonly status: string
  readonly eventTime: Date
  readonly merchant: string | null
  readonly category: string | null
}

const statuses = ["pending", "settled", "failed", "refunded"] as const

/** The i-th transaction: a quarter of them settled, 5,000 users, 100 merchants (a third unknown), no categories. */
export const makeTx = (i: number): Tx => ({
  transactionId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
  userId: `user-${i % 5000}`,
  amount: BigDecimal.fromStringUnsafe(`${(i * 7919) % 100000}.${String(i % 100).padStart(2, "0")}`),
  currency: i % 10 === 0 ? "USD" : "EUR",
  status: statuses[i % 4]!,
  eventTime: new Date(Date.UTC(2026, 10, 1) + i * 1000),
  merchant: i % 3 === 0 ? null : `merchant-${i % 100}`,
  category: null
})
