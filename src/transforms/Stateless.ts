/**
 * Stateless transforms: each record is handled on its own, with a plain function, one batch at a time.
 *
 * All are data-last and typed: `select(["id"])` on a flow of `{ id: string; amount: number }` gives a flow of
 * `{ id: string }`, and selecting a field that does not exist does not compile.
 */
import * as BigDecimal from "effect/BigDecimal"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { type Flow, mapBatches } from "../core/Flow.ts"
import * as RecordSchema from "../core/RecordSchema.ts"

type Simplify<T> = { [K in keyof T]: T[K] } & {}

/**
 * Replaces each record with `f(record)`.
 *
 * @example
 * Pipeline.map((t: Transaction) => ({ ...t, amountCents: Math.round(t.amount * 100) }))
 */
export const map =
  <A, B>(f: (record: A) => B, options?: { readonly name?: string; readonly description?: string }) =>
  <E, R>(self: Flow<A, E, R>): Flow<B, E, R> =>
    mapBatches<A, B>(
      { name: options?.name ?? "map", description: options?.description ?? "map", cardinality: "one-to-one" },
      () => (records) => {
        const out = new Array<B>(records.length)
        for (let i = 0; i < records.length; i++) out[i] = f(records[i]!)
        return { records: out }
      }
    )(self)

/**
 * Keeps the records for which `predicate` is true; the others are counted as filtered.
 *
 * @example
 * Pipeline.filter((t: Transaction) => t.status === "settled")
 */
export const filter: {
  <A, B extends A>(
    refinement: (record: A) => record is B,
    options?: { readonly name?: string; readonly description?: string }
  ): <E, R>(self: Flow<A, E, R>) => Flow<B, E, R>
  <A>(
    predicate: (record: A) => boolean,
    options?: { readonly name?: string; readonly description?: string }
  ): <E, R>(self: Flow<A, E, R>) => Flow<A, E, R>
} =
  <A>(predicate: (record: A) => boolean, options?: { readonly name?: string; readonly description?: string }) =>
  <E, R>(self: Flow<A, E, R>): Flow<A, E, R> =>
    mapBatches<A, A>(
      { name: options?.name ?? "filter", description: options?.description ?? "filter", cardinality: "one-to-one" },
      () => (records) => {
        const out: Array<A> = []
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!
          if (predicate(r)) out.push(r)
        }
        return { records: out, filtered: records.length - out.length }
      }
    )(self)

/**
 * Keeps only the named fields, in that order.
 *
 * @example
 * Pipeline.select(["transactionId", "amount"])
 */
export const select =
  <const K extends string>(fields: ReadonlyArray<K>) =>
  <A extends { readonly [k in K]: unknown }, E, R>(self: Flow<A, E, R>): Flow<Simplify<Pick<A, K>>, E, R> =>
    mapBatches<A, Simplify<Pick<A, K>>>(
      { name: "select", description: `select ${fields.join(", ")}`, cardinality: "one-to-one" },
      () => (records) => {
        const out = new Array<Simplify<Pick<A, K>>>(records.length)
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!
          const o: Record<string, unknown> = {}
          for (let j = 0; j < fields.length; j++) o[fields[j]!] = r[fields[j]!]
          out[i] = o as Simplify<Pick<A, K>>
        }
        return { records: out }
      }
    )(self)

/** The record type after renaming fields per `M` (old name → new name). */
export type Renamed<A, M extends Readonly<Record<string, string>>> = Simplify<
  Omit<A, keyof M> & { [K in keyof M & keyof A as M[K]]: A[K] }
>

/**
 * Renames fields; the others are kept.
 *
 * @example
 * Pipeline.rename({ eventTime: "occurredAt" })
 */
export const rename =
  <const M extends Readonly<Record<string, string>>>(mapping: M) =>
  <A extends { readonly [k in keyof M]: unknown }, E, R>(self: Flow<A, E, R>): Flow<Renamed<A, M>, E, R> => {
    const pairs = Object.entries(mapping)
    return mapBatches<A, Renamed<A, M>>(
      {
        name: "rename",
        description: `rename ${pairs.map(([from, to]) => `${from} → ${to}`).join(", ")}`,
        cardinality: "one-to-one"
      },
      () => (records) => {
        const out = new Array<Renamed<A, M>>(records.length)
        for (let i = 0; i < records.length; i++) {
          const o: Record<string, unknown> = { ...(records[i] as object) }
          for (let j = 0; j < pairs.length; j++) {
            const [from, to] = pairs[j]!
            const value = o[from]
            delete o[from]
            o[to] = value
          }
          out[i] = o as Renamed<A, M>
        }
        return { records: out }
      }
    )(self)
  }

/** The record type after adding the fields computed by `F`. */
export type Derived<A, F> = Simplify<
  Omit<A, keyof F> & { [K in keyof F]: F[K] extends (record: never) => infer V ? V : never }
>

/**
 * Adds (or replaces) fields computed from each record.
 *
 * @example
 * Pipeline.derive({ amountWithTax: (t: Transaction) => t.amount * 1.2 })
 */
export const derive =
  <A, const F extends Readonly<Record<string, (record: A) => unknown>>>(
    fields: F,
    options?: { readonly name?: string; readonly description?: string }
  ) =>
  <E, R>(self: Flow<A, E, R>): Flow<Derived<A, F>, E, R> => {
    const entries = Object.entries(fields) as Array<[string, (record: A) => unknown]>
    return mapBatches<A, Derived<A, F>>(
      {
        name: options?.name ?? "derive",
        description: options?.description ?? `derive ${entries.map(([k]) => k).join(", ")}`,
        cardinality: "one-to-one"
      },
      () => (records) => {
        const out = new Array<Derived<A, F>>(records.length)
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!
          const o: Record<string, unknown> = { ...(r as object) }
          for (let j = 0; j < entries.length; j++) {
            const [k, f] = entries[j]!
            o[k] = f(r)
          }
          out[i] = o as Derived<A, F>
        }
        return { records: out }
      }
    )(self)
  }

/** The types a field can be cast to. */
export type CastTarget = "string" | "number" | "integer" | "boolean" | "timestamp" | "decimal"

/** The TypeScript type of a cast target. */
export interface CastTypes {
  readonly string: string
  readonly number: number
  readonly integer: number
  readonly boolean: boolean
  readonly timestamp: Date
  readonly decimal: BigDecimal.BigDecimal
}

/** The record type after casting the fields in `C`; nulls stay null. */
export type Casted<A, C extends Readonly<Record<string, CastTarget>>> = Simplify<
  Omit<A, keyof C> & { [K in keyof C]: CastTypes[C[K]] | (K extends keyof A ? Extract<A[K], null | undefined> : never) }
>

type CastResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly expected: string }

const castValue = (target: CastTarget, value: unknown): CastResult => {
  switch (target) {
    case "string":
      if (typeof value === "string") return { ok: true, value }
      if (value instanceof Date) return { ok: true, value: value.toISOString() }
      if (BigDecimal.isBigDecimal(value)) return { ok: true, value: BigDecimal.format(value) }
      if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
        return { ok: true, value: String(value) }
      return { ok: false, expected: "a string, number or boolean" }
    case "number":
    case "integer": {
      const n =
        typeof value === "number"
          ? value
          : typeof value === "string" && value.trim() !== ""
            ? Number(value)
            : typeof value === "bigint"
              ? Number(value)
              : BigDecimal.isBigDecimal(value)
                ? Number(BigDecimal.format(value))
                : Number.NaN
      if (!Number.isFinite(n)) return { ok: false, expected: target === "integer" ? "an integer" : "a finite number" }
      if (target === "integer" && !Number.isSafeInteger(n)) return { ok: false, expected: "a safe integer" }
      return { ok: true, value: n }
    }
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value }
      if (value === "true" || value === 1 || value === "1") return { ok: true, value: true }
      if (value === "false" || value === 0 || value === "0") return { ok: true, value: false }
      return { ok: false, expected: 'a boolean ("true"/"false", 1/0)' }
    case "timestamp": {
      const d =
        value instanceof Date
          ? value
          : typeof value === "string" || typeof value === "number"
            ? new Date(value)
            : new Date(Number.NaN)
      if (Number.isNaN(d.getTime())) return { ok: false, expected: "an ISO-8601 timestamp or epoch milliseconds" }
      return { ok: true, value: d }
    }
    case "decimal": {
      if (BigDecimal.isBigDecimal(value)) return { ok: true, value }
      const parsed =
        typeof value === "string"
          ? BigDecimal.fromString(value.trim())
          : typeof value === "number"
            ? BigDecimal.fromNumber(value)
            : Option.none()
      return Option.isSome(parsed) ? { ok: true, value: parsed.value } : { ok: false, expected: "a decimal number" }
    }
  }
}

const preview = (value: unknown): string => {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/**
 * Converts fields to other types. A value that cannot be converted rejects its record to the dead letters, with the
 * field and what was expected; nulls stay null.
 *
 * @example
 * Pipeline.cast({ amount: "decimal", eventTime: "timestamp" })
 */
export const cast =
  <const C extends Readonly<Record<string, CastTarget>>>(spec: C) =>
  <A extends { readonly [k in keyof C]?: unknown }, E, R>(self: Flow<A, E, R>): Flow<Casted<A, C>, E, R> => {
    const entries = Object.entries(spec)
    return mapBatches<A, Casted<A, C>>(
      {
        name: "cast",
        description: `cast ${entries.map(([k, t]) => `${k}: ${t}`).join(", ")}`,
        cardinality: "one-to-one"
      },
      () => (records, stage) => {
        const out: Array<Casted<A, C>> = []
        const deadLetters: Array<DeadLetter.DeadLetter> = []
        for (let i = 0; i < records.length; i++) {
          const r = records[i] as Record<string, unknown>
          const o: Record<string, unknown> = { ...r }
          let failed: string | undefined
          for (let j = 0; j < entries.length; j++) {
            const [field, target] = entries[j]!
            const value = r[field]
            if (value === null || value === undefined) continue
            const result = castValue(target, value)
            if (result.ok) o[field] = result.value
            else {
              failed = `${field}: expected ${result.expected}, got ${preview(value)}`
              break
            }
          }
          if (failed === undefined) out.push(o as Casted<A, C>)
          else deadLetters.push({ stage, reason: "cast-failed", message: failed, record: r })
        }
        return { records: out, deadLetters }
      }
    )(self)
  }

/**
 * Decodes each record with an `effect/Schema` codec (from its encoded, JSON-like form to its typed form). Records
 * that do not decode are rejected to the dead letters with the path of every problem.
 *
 * @example
 * Pipeline.decode(Transaction)
 */
export const decode =
  <S extends Schema.Top>(schema: S, options?: { readonly name?: string }) =>
  <A, E, R>(self: Flow<A, E, R>): Flow<S["Type"], E, R> => {
    const validate = RecordSchema.fromSchema(schema).validate
    return mapBatches<A, S["Type"]>(
      { name: options?.name ?? "decode", description: "decode records with a Schema", cardinality: "one-to-one" },
      () => (records, stage) => {
        const out: Array<S["Type"]> = []
        const deadLetters: Array<DeadLetter.DeadLetter> = []
        for (let i = 0; i < records.length; i++) {
          const result = validate(records[i])
          if (result.ok) out.push(result.value)
          else deadLetters.push({ stage, reason: "invalid-record", message: result.message, record: records[i] })
        }
        return { records: out, deadLetters }
      }
    )(self)
  }
