/**
 * Value semantics shared by the stateful transforms: SQL-like equality for grouping and join keys, a total order for
 * `min`/`max`, and event times.
 *
 * Records are plain objects whose values may be strings, numbers, booleans, bigints, `Date`s (timestamps) and
 * `BigDecimal`s (exact decimals). Grouping and joining need a hashable key with SQL equality (two `Date`s at the same
 * instant are equal, `1.50` equals `1.5`); `keyOf` maps a value to one.
 */
import * as BigDecimal from "effect/BigDecimal"

/** True for `null` and `undefined`: both are SQL NULL here. */
export const isNullish = (value: unknown): value is null | undefined => value === null || value === undefined

/** The key of NULL in a grouping (SQL groups all NULLs together). Join keys never use it: NULL matches nothing. */
export const NULL_KEY: unique symbol = Symbol.for("effect-etl/transforms/NULL")

/**
 * A Map key with SQL equality for one value. Strings, numbers, booleans and bigints are their own key (a `Map` compares
 * them by value and keeps types apart); a `Date` becomes its instant, a `BigDecimal` its normalized digits.
 */
export const keyOf = (value: unknown): unknown => {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "bigint":
      return value
    case "undefined":
      return NULL_KEY
  }
  if (value === null) return NULL_KEY
  if (value instanceof Date) return `\u0000d${value.getTime()}`
  if (BigDecimal.isBigDecimal(value)) {
    const n = BigDecimal.normalize(value)
    return `\u0000n${n.value}e${n.scale}`
  }
  return `\u0000j${stringify(value)}`
}

const stringify = (value: unknown): string => {
  try {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) ?? String(value)
  } catch {
    return String(value)
  }
}

const tagOf = (key: unknown): string => {
  switch (typeof key) {
    case "string":
      return "s"
    case "number":
      return "n"
    case "boolean":
      return "b"
    case "bigint":
      return "i"
    default:
      return "z"
  }
}

/**
 * The key of several fields of a record. One field: its `keyOf`; several: an unambiguous string (each part carries its
 * type and length), so `("a|b", "c")` and `("a", "b|c")` never collide.
 */
export const compositeKey = (record: Readonly<Record<string, unknown>>, fields: ReadonlyArray<string>): unknown => {
  if (fields.length === 1) return keyOf(record[fields[0]!])
  let out = ""
  for (let i = 0; i < fields.length; i++) {
    const value = record[fields[i]!]
    // A string is its own key (the usual case, without a call).
    if (typeof value === "string") {
      out += `s${value.length}:${value}`
      continue
    }
    const key = keyOf(value)
    const text = key === NULL_KEY ? "" : String(key)
    out += `${tagOf(key)}${text.length}:${text}`
  }
  return out
}

/** True when any of the fields is NULL (such a join key matches nothing). */
export const anyNullish = (record: Readonly<Record<string, unknown>>, fields: ReadonlyArray<string>): boolean => {
  for (let i = 0; i < fields.length; i++) if (isNullish(record[fields[i]!])) return true
  return false
}

const rankOf = (value: unknown): number => {
  switch (typeof value) {
    case "boolean":
      return 0
    case "number":
    case "bigint":
      return 1
    case "string":
      return 2
  }
  if (BigDecimal.isBigDecimal(value)) return 1
  if (value instanceof Date) return 3
  return 4
}

const toDecimal = (value: unknown): BigDecimal.BigDecimal | undefined => {
  if (BigDecimal.isBigDecimal(value)) return value
  if (typeof value === "bigint") return BigDecimal.fromBigInt(value)
  if (typeof value === "number") {
    const parsed = BigDecimal.fromNumber(value)
    return parsed._tag === "Some" ? parsed.value : undefined
  }
  return undefined
}

const compareNumbers = (a: number, b: number): number => {
  // NaN sorts above every number, as in PostgreSQL.
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1
  if (Number.isNaN(b)) return -1
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * A total order over record values, for `min` and `max`: numbers, bigints and decimals compare by value; strings by
 * UTF-16 code units (PostgreSQL's `COLLATE "C"` for ASCII); `Date`s by instant; booleans `false < true`. Values of
 * different kinds order as boolean < number < string < Date < anything else.
 */
export const compare = (a: unknown, b: unknown): number => {
  if (typeof a === "number" && typeof b === "number") return compareNumbers(a, b)
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0
  if (a instanceof Date && b instanceof Date) return compareNumbers(a.getTime(), b.getTime())
  const ra = rankOf(a)
  const rb = rankOf(b)
  if (ra !== rb) return ra < rb ? -1 : 1
  if (ra === 1) {
    if (typeof a !== "object" && typeof b !== "object") return a! < b! ? -1 : a! > b! ? 1 : 0
    const x = toDecimal(a)
    const y = toDecimal(b)
    if (x !== undefined && y !== undefined) return BigDecimal.Order(x, y)
    return compareNumbers(Number(a), Number(b))
  }
  if (ra === 0) return a === b ? 0 : a === false ? -1 : 1
  const x = stringify(a)
  const y = stringify(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Milliseconds since the epoch of an event-time value (`Date` or epoch milliseconds); `undefined` when it is neither. */
export const timeOf = (value: unknown): number | undefined => {
  if (value instanceof Date) {
    const t = value.getTime()
    return Number.isNaN(t) ? undefined : t
  }
  if (typeof value === "number" && Number.isFinite(value)) return value
  return undefined
}

/** A short, readable rendering of a value for messages. */
export const show = (value: unknown): string => {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()
  if (BigDecimal.isBigDecimal(value)) return BigDecimal.format(value)
  const text =
    typeof value === "string" ? JSON.stringify(value) : typeof value === "bigint" ? `${value}n` : String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** An instant (epoch milliseconds) as ISO-8601, or `-∞` before any event was seen. */
export const showTime = (t: number): string =>
  Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? new Date(t).toISOString() : t < 0 ? "-∞" : "+∞"
