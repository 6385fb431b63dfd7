/**
 * How typed record values are written to text formats (JSON Lines, CSV): `Date` as an ISO-8601 UTC string,
 * `BigDecimal` as its plain decimal string, `Uint8Array` as base64, `bigint` as a decimal string; `undefined` keys are
 * omitted and nested objects and arrays are converted recursively.
 *
 * Conversion copies an object only when one of its values changes, so records made of strings, numbers, booleans and
 * nulls go to `JSON.stringify` untouched.
 *
 * @since 0.1.0
 */
import * as BigDecimal from "effect/BigDecimal"

const DAY_MS = 86_400_000
let cachedDay = Number.NaN
let cachedPrefix = ""

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`)
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`)

/**
 * Formats a date like `Date.prototype.toISOString` (`2024-05-01T12:00:00.000Z`), about 5x faster on runs of dates
 * from the same day; `null` for an invalid date.
 *
 * @since 0.1.0
 */
export const isoString = (date: Date): string | null => {
  const time = date.getTime()
  if (Number.isNaN(time)) return null
  const day = Math.floor(time / DAY_MS)
  if (day !== cachedDay) {
    const full = date.toISOString()
    cachedDay = day
    // Everything up to and including the "T"; years outside 0000-9999 have a longer, signed prefix.
    cachedPrefix = full.slice(0, full.length - 13)
  }
  let ms = time - day * DAY_MS
  const hours = Math.floor(ms / 3_600_000)
  ms -= hours * 3_600_000
  const minutes = Math.floor(ms / 60_000)
  ms -= minutes * 60_000
  const seconds = Math.floor(ms / 1000)
  ms -= seconds * 1000
  return `${cachedPrefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(ms)}Z`
}

/**
 * Encodes bytes as standard base64 (with padding).
 *
 * @since 0.1.0
 */
export const base64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

const needsConversion = (value: unknown): boolean =>
  (typeof value === "object" && value !== null) || typeof value === "bigint"

/**
 * A decimal as plain text with the digits of its scale kept (`12.50` stays `12.50`, as a `decimal(18,2)` column
 * holds it); `BigDecimal.format` would drop trailing zeros. A negative scale is written in full (`1200`).
 *
 * @since 0.1.0
 */
export const decimalText = (value: BigDecimal.BigDecimal): string => {
  if (value.scale <= 0) return BigDecimal.format(value)
  const negative = value.value < 0n
  const digits = (negative ? -value.value : value.value).toString().padStart(value.scale + 1, "0")
  return `${negative ? "-" : ""}${digits.slice(0, -value.scale)}.${digits.slice(-value.scale)}`
}

/**
 * Converts a typed value to a JSON-compatible one (see the module description); returns the same reference when
 * nothing needs converting.
 *
 * @example
 * ```ts
 * JsonValue.toJson({ at: new Date(0), n: 1n }) // { at: "1970-01-01T00:00:00.000Z", n: "1" }
 * ```
 *
 * @since 0.1.0
 */
export const toJson = (value: unknown): unknown => convert(value, 0)

// Past this depth values are left as they are, so that cycles reach JSON.stringify, which names them.
const maxDepth = 200

const convert = (value: unknown, depth: number): unknown => {
  switch (typeof value) {
    case "bigint":
      return value.toString()
    case "object": {
      if (value === null) return null
      if (value instanceof Date) return isoString(value)
      if (value instanceof Uint8Array) return base64(value)
      if (BigDecimal.isBigDecimal(value)) return decimalText(value)
      if (depth >= maxDepth) return value
      if (Array.isArray(value)) return convertArray(value, depth + 1)
      return convertObject(value as Record<string, unknown>, depth + 1)
    }
    default:
      return value
  }
}

const convertArray = (array: ReadonlyArray<unknown>, depth: number): ReadonlyArray<unknown> => {
  let copy: Array<unknown> | undefined
  for (let i = 0; i < array.length; i++) {
    const item = array[i]
    if (needsConversion(item)) {
      const converted = convert(item, depth)
      if (converted !== item) {
        copy ??= array.slice()
        copy[i] = converted
      }
    }
  }
  return copy ?? array
}

const convertObject = (object: Record<string, unknown>, depth: number): Record<string, unknown> => {
  let copy: Record<string, unknown> | undefined
  const keys = Object.keys(object)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const item = object[key]
    if (needsConversion(item)) {
      const converted = convert(item, depth)
      if (converted !== item) {
        copy ??= { ...object }
        copy[key] = converted
      }
    }
  }
  return copy ?? object
}

/**
 * `JSON.stringify` after {@link toJson}. Throws like `JSON.stringify` on cycles; callers at the codec boundary catch.
 *
 * @since 0.1.0
 */
export const stringify = (value: unknown): string => {
  const text = JSON.stringify(toJson(value))
  // JSON.stringify returns undefined for undefined, functions and symbols.
  return text === undefined ? "null" : text
}

/**
 * Whether some object key in a JSON text contains an escape sequence. Texts without a backslash answer in one native
 * `indexOf`; otherwise the string tokens are visited with `indexOf` hops.
 */
const hasEscapedKey = (text: string): boolean => {
  if (text.indexOf("\\") === -1) return false
  const n = text.length
  let p = 0
  for (;;) {
    const start = text.indexOf('"', p)
    if (start === -1) return false
    let end = start + 1
    for (;;) {
      end = text.indexOf('"', end)
      if (end === -1) return false
      let backslashes = 0
      while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++
      if (backslashes % 2 === 0) break
      end++
    }
    const backslash = text.indexOf("\\", start)
    if (backslash !== -1 && backslash < end) {
      let m = end + 1
      while (m < n) {
        const c = text.charCodeAt(m)
        if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break
        m++
      }
      if (text.charCodeAt(m) === 58) return true
    }
    p = end + 1
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

/**
 * A JSON parser for the texts `JSON.parse` can get wrong (see {@link parse}): it walks the structure itself and
 * leaves strings to `JSON.parse`, which decodes string values correctly.
 */
class StrictParser {
  readonly text: string
  pos = 0

  constructor(text: string) {
    this.text = text
  }

  fail(): never {
    throw new SyntaxError(`Unexpected token in JSON at position ${this.pos}`)
  }

  skip(): void {
    const text = this.text
    for (;;) {
      const c = text.charCodeAt(this.pos)
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return
      this.pos++
    }
  }

  string(): string {
    const text = this.text
    let end = this.pos + 1
    for (;;) {
      end = text.indexOf('"', end)
      if (end === -1) this.fail()
      let backslashes = 0
      while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++
      if (backslashes % 2 === 0) break
      end++
    }
    const value = JSON.parse(text.slice(this.pos, end + 1)) as string
    this.pos = end + 1
    return value
  }

  value(): unknown {
    this.skip()
    const text = this.text
    const c = text.charCodeAt(this.pos)
    if (c === 34) return this.string()
    if (c === 123) {
      this.pos++
      const object: Record<string, unknown> = {}
      this.skip()
      if (text.charCodeAt(this.pos) === 125) {
        this.pos++
        return object
      }
      for (;;) {
        this.skip()
        if (text.charCodeAt(this.pos) !== 34) this.fail()
        const key = this.string()
        this.skip()
        if (text.charCodeAt(this.pos) !== 58) this.fail()
        this.pos++
        const item = this.value()
        Object.defineProperty(object, key, { value: item, enumerable: true, writable: true, configurable: true })
        this.skip()
        const next = text.charCodeAt(this.pos++)
        if (next === 125) return object
        if (next !== 44) this.fail()
      }
    }
    if (c === 91) {
      this.pos++
      const array: Array<unknown> = []
      this.skip()
      if (text.charCodeAt(this.pos) === 93) {
        this.pos++
        return array
      }
      for (;;) {
        array.push(this.value())
        this.skip()
        const next = text.charCodeAt(this.pos++)
        if (next === 93) return array
        if (next !== 44) this.fail()
      }
    }
    for (const [word, literal] of LITERALS) {
      if (text.startsWith(word, this.pos)) {
        this.pos += word.length
        return literal
      }
    }
    NUMBER.lastIndex = this.pos
    const match = NUMBER.exec(text)
    if (match === null) this.fail()
    this.pos += match[0].length
    return Number(match[0])
  }
}

const LITERALS: ReadonlyArray<readonly [string, unknown]> = [
  ["true", true],
  ["false", false],
  ["null", null]
]

/**
 * `JSON.parse`, safe from a V8 bug (nodejs/node#63785, open on Node 24 and 26): once some object key ending in a
 * backslash has been parsed, a later escaped key such as `"a\""` can come back as `a\`. Texts with an escaped key
 * (rare; found without parsing) are parsed by a small structural parser instead. Throws `SyntaxError` like
 * `JSON.parse`; callers at the codec boundary catch.
 *
 * @since 0.1.0
 */
export const parse = (text: string): unknown => {
  if (!hasEscapedKey(text)) return JSON.parse(text)
  // Invalid texts fail in JSON.parse first, for its familiar messages.
  JSON.parse(text)
  const parser = new StrictParser(text)
  const value = parser.value()
  parser.skip()
  if (parser.pos < text.length) parser.fail()
  return value
}

/**
 * The default limit on how deeply objects and arrays may nest in a decoded record (JSON Lines, JSON columns of CSV,
 * Kafka JSON payloads): 100 levels, as deep as real data goes and far below what `JSON.stringify` and recursive
 * code can handle.
 *
 * @since 0.1.0
 */
export const defaultMaxDepth = 100

/** The exact nesting depth check of {@link exceedsDepth}: brackets outside of strings. */
const scanDepth = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

/** How many times `c` occurs in `text`, counted with native `indexOf` hops up to `max + 1`. */
const countAbove = (text: string, c: string, max: number): number => {
  let count = 0
  let at = text.indexOf(c)
  while (at !== -1 && count <= max) {
    count++
    at = text.indexOf(c, at + 1)
  }
  return count
}

/**
 * Whether the objects and arrays of a valid JSON text nest deeper than `max` levels (`{"a":[1]}` has depth 2).
 * Texts shorter than `2 * max + 2` characters answer at once, texts with at most `max` brackets in all, nearly every
 * record, after a few native `indexOf` calls; the others are scanned once. Meant to be asked before parsing, so
 * hostile input never reaches recursive code.
 *
 * @example
 * ```ts
 * JsonValue.exceedsDepth("[[[1]]]", 2) // true
 * ```
 *
 * @since 0.1.0
 */
export const exceedsDepth = (text: string, max: number): boolean => {
  // Valid JSON nested deeper than `max` has more than `max` opening and as many closing brackets; an invalid text
  // fails in the (iterative) JSON.parse before anything recursive sees it.
  if (text.length < 2 * max + 2) return false
  const objects = countAbove(text, "{", max)
  if (objects > max) return scanDepth(text, max)
  return objects + countAbove(text, "[", max - objects) > max && scanDepth(text, max)
}

const isLeafObject = (value: object): boolean =>
  value instanceof Date || ArrayBuffer.isView(value) || BigDecimal.isBigDecimal(value)

/**
 * Whether the objects and arrays of a value nest deeper than `max` levels, visiting at most `maxNodes` objects (more
 * counts as too deep). Iterative: any depth, and cycles (which are infinitely deep), answer `true` without
 * overflowing the stack. Dates, byte arrays and decimals are leaves.
 *
 * @since 0.1.0
 */
export const valueExceedsDepth = (value: unknown, max: number, maxNodes = 1_000_000): boolean => {
  if (typeof value !== "object" || value === null) return false
  const stack: Array<unknown> = [value]
  const depths: Array<number> = [1]
  let visited = 0
  while (stack.length > 0) {
    const current = stack.pop() as object
    const depth = depths.pop()!
    if (isLeafObject(current)) continue
    if (depth > max || ++visited > maxNodes) return true
    const items = Array.isArray(current) ? current : Object.values(current)
    for (let i = 0; i < items.length; i++) {
      const item: unknown = items[i]
      if (typeof item === "object" && item !== null) {
        stack.push(item)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

/**
 * JSON text of any value, converted as {@link toJson} does, that never throws: nesting of any depth is written
 * without recursion, a reference back to an enclosing object is written as the string `"[Circular]"`, values
 * `JSON.stringify` drops are `null` in arrays and left out of objects, and a value whose properties cannot be read
 * is described instead. The text stops with `…` after about `maxLength` characters.
 *
 * @example
 * ```ts
 * const deep = JSON.parse("[".repeat(5000) + "]".repeat(5000))
 * JsonValue.stringifySafe(deep).length // 10000
 * ```
 *
 * @since 0.1.0
 */
export const stringifySafe = (value: unknown, maxLength = 64 * 1024 * 1024): string => {
  try {
    return writeSafe(value, maxLength)
  } catch (cause) {
    return JSON.stringify(`[a value that cannot be written: ${cause instanceof Error ? cause.message : typeof value}]`)
  }
}

const leafText = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      return Number.isFinite(value) ? `${value}` : "null"
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return JSON.stringify(value.toString())
    case "object": {
      if (value === null) return "null"
      if (value instanceof Date) return JSON.stringify(isoString(value))
      if (value instanceof Uint8Array) return JSON.stringify(base64(value))
      if (BigDecimal.isBigDecimal(value)) return JSON.stringify(decimalText(value))
      return typeof (value as { toJSON?: unknown }).toJSON === "function"
        ? (JSON.stringify((value as { toJSON: () => unknown }).toJSON()) ?? "null")
        : undefined
    }
    default:
      return undefined
  }
}

interface Frame {
  readonly value: object
  readonly keys: ReadonlyArray<string> | undefined
  index: number
  wrote: boolean
}

const writeSafe = (root: unknown, maxLength: number): string => {
  const parts: Array<string> = []
  let length = 0
  const put = (text: string) => {
    parts.push(text)
    length += text.length
  }
  const frames: Array<Frame> = []
  const open = new Set<object>()
  // Writes a value, or opens a frame for an object or array; false when the value is dropped (undefined, functions).
  const start = (value: unknown): boolean => {
    const leaf = leafText(value)
    if (leaf !== undefined) {
      put(leaf)
      return true
    }
    if (typeof value !== "object" || value === null) return false
    if (open.has(value)) {
      put('"[Circular]"')
      return true
    }
    open.add(value)
    const isArray = Array.isArray(value)
    put(isArray ? "[" : "{")
    frames.push({ value, keys: isArray ? undefined : Object.keys(value), index: 0, wrote: false })
    return true
  }
  if (!start(root)) return "null"
  while (frames.length > 0) {
    if (length > maxLength) {
      put("…")
      break
    }
    const frame = frames[frames.length - 1]!
    if (frame.keys === undefined) {
      const array = frame.value as ReadonlyArray<unknown>
      if (frame.index >= array.length) {
        put("]")
        open.delete(frames.pop()!.value)
        continue
      }
      if (frame.index++ > 0) put(",")
      if (!start(array[frame.index - 1])) put("null")
      continue
    }
    if (frame.index >= frame.keys.length) {
      put("}")
      open.delete(frames.pop()!.value)
      continue
    }
    const key = frame.keys[frame.index++]!
    const item = (frame.value as Record<string, unknown>)[key]
    if (item === undefined || typeof item === "function" || typeof item === "symbol") continue
    put(`${frame.wrote ? "," : ""}${JSON.stringify(key)}:`)
    frame.wrote = true
    start(item)
  }
  return parts.join("")
}
