/**
 * Record values as JSON, for the states that stateful stages save at checkpoints (see `core/State.ts`) and the
 * batches a split run stages between its phases.
 *
 * JSON has no timestamps, exact decimals, bigints, bytes, NaN or infinities, and no way to tell a `Map` key that is a
 * number from one that is a string. Such values become one-key objects tagged with `$`: `{"$date": 1700000000000}`,
 * `{"$dec": ["12345", 2]}` (unscaled digits and scale), `{"$big": "123"}`, `{"$bytes": "base64"}`,
 * `{"$num": "NaN"}` (and `"-0"`), `{"$null": 1}` for the grouping key of NULL. A plain object whose only key starts with `$` is
 * wrapped (`{"$obj": {...}}`) so it never reads back as one of them. `decode(encode(v))` gives `v` back, with the
 * same SQL key (`keyOf`) for every value the stages group or join by.
 */
import * as BigDecimal from "effect/BigDecimal"

/** The grouping key of NULL (the transforms' `Values.NULL_KEY`: one symbol, from the global registry). */
const NULL_KEY: unique symbol = Symbol.for("effect-etl/transforms/NULL")

/** A JSON value. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const isTagged = (o: Readonly<Record<string, unknown>>): boolean => {
  const keys = Object.keys(o)
  return keys.length === 1 && keys[0]!.startsWith("$")
}

/** A value as JSON (see the module comment). */
export const encode = (value: unknown): Json => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value
    case "number":
      return Object.is(value, -0) ? { $num: "-0" } : Number.isFinite(value) ? value : { $num: String(value) }
    case "bigint":
      return { $big: value.toString() }
    case "undefined":
      return null
    case "symbol":
      return value === NULL_KEY ? { $null: 1 } : null
  }
  if (value === null) return null
  if (value instanceof Date) return { $date: value.getTime() }
  if (BigDecimal.isBigDecimal(value)) return { $dec: [value.value.toString(), value.scale] }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") }
  if (Array.isArray(value)) return value.map(encode)
  if (typeof value === "object") {
    const out: Record<string, Json> = {}
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) setField(out, k, encode(v))
    return isTagged(out) ? { $obj: out } : out
  }
  return null
}

/** The value `encode` gave `json` for. */
export const decode = (json: unknown): unknown => {
  if (json === null || typeof json !== "object") return json
  if (Array.isArray(json)) return json.map(decode)
  const o = json as Readonly<Record<string, unknown>>
  if (isTagged(o)) {
    if ("$date" in o) return new Date(o.$date as number)
    if ("$dec" in o) {
      const [digits, scale] = o.$dec as [string, number]
      return BigDecimal.make(BigInt(digits), scale)
    }
    if ("$big" in o) return BigInt(o.$big as string)
    if ("$bytes" in o) return new Uint8Array(Buffer.from(o.$bytes as string, "base64"))
    if ("$num" in o) return Number(o.$num)
    if ("$null" in o) return NULL_KEY
    if ("$obj" in o) return decodeFields(o.$obj as Readonly<Record<string, unknown>>)
  }
  return decodeFields(o)
}

const decodeFields = (o: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) setField(out, k, decode(v))
  return out
}

/**
 * Sets a field of a plain object. A field named `__proto__` (JSON.parse makes one from `{"__proto__": ...}` data)
 * is defined as an own field: assigned, it would set the object's prototype and the field would be lost.
 */
const setField = (o: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__")
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
  else o[key] = value
}
