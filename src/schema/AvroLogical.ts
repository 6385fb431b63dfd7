/**
 * The values of Avro's logical types in effect-etl's record representation, and their conversions to JSON and to
 * Avro's binary encoding. Every reader and writer of records (the `effect/Schema` codecs, the fast validator, the avsc
 * types, CSV and JSON formats) goes through these functions, so a decimal or a timestamp means the same everywhere.
 *
 * | Avro                          | record value            | JSON                                                  |
 * |-------------------------------|-------------------------|-------------------------------------------------------|
 * | `timestamp-millis` / `-micros` | `Date`                  | ISO-8601 string with a zone; epoch millis accepted    |
 * | `date`                        | `"YYYY-MM-DD"` string    | the same string                                       |
 * | `decimal(p, s)`               | `BigDecimal`            | decimal string with exactly `s` fraction digits; finite numbers accepted |
 * | `uuid`                        | string (8-4-4-4-12 hex) | the same string                                       |
 * | `bytes` / `fixed`             | `Uint8Array`            | base64 string                                         |
 *
 * Decoders return the value or an {@link Invalid} carrying a message such as
 * `Expected a decimal string with at most 2 fractional digits, got "1.234"`. Decimals are never rounded: too many
 * fraction digits or too many digits in total is an error. Timestamps keep millisecond precision, the precision of
 * `Date`: sub-millisecond digits of an ISO string, and the microseconds of `timestamp-micros`, are truncated.
 */
import * as BigDecimal from "effect/BigDecimal"

/** A value that failed to decode, with a message naming what was expected and what was found. */
export class Invalid {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

/** Renders a value for an error message: strings quoted and shortened, objects by kind. */
export const show = (u: unknown): string => {
  switch (typeof u) {
    case "string":
      return JSON.stringify(u.length > 60 ? `${u.slice(0, 57)}...` : u)
    case "number":
    case "boolean":
      return String(u)
    case "bigint":
      return `${u}n`
    case "undefined":
      return "nothing"
    case "object":
      if (u === null) return "null"
      if (Array.isArray(u)) return "an array"
      if (u instanceof Date) return `Date(${Number.isNaN(u.getTime()) ? "invalid" : u.toISOString()})`
      if (u instanceof Uint8Array) return `${u.length} bytes`
      if (BigDecimal.isBigDecimal(u)) return `BigDecimal(${BigDecimal.format(u)})`
      return "an object"
    default:
      return typeof u
  }
}

// -----------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, UTC)
// -----------------------------------------------------------------------------

const MS_PER_DAY = 86_400_000

/** Days since 1970-01-01 of a calendar date (any year, proleptic Gregorian). */
export const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146_097 + doe - 719_468
}

const isLeapYear = (year: number): boolean => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0

const daysInMonth = (year: number, month: number): number =>
  month === 2 ? (isLeapYear(year) ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31

// -----------------------------------------------------------------------------
// Timestamps
// -----------------------------------------------------------------------------

const ISO_TIMESTAMP =
  /^([+-]\d{6}|\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d\d(?::?\d\d)?)$/

/** The largest distance from the epoch, in milliseconds, that a `Date` can represent. */
export const MAX_DATE_MS = 8.64e15

// Reads `count` decimal digits at `at`; -1 when one of them is not a digit.
const digits = (text: string, at: number, count: number): number => {
  let n = 0
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

const toMillis = (
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  millis: number,
  offsetMinutes: number
): number | undefined => {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  const ms =
    daysFromCivil(year, month, day) * MS_PER_DAY + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 + millis
  return Math.abs(ms) > MAX_DATE_MS ? undefined : ms
}

// The common shapes (`YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH[:MM])`), scanned without a regular expression; `null` hands
// the text over to the general parser.
const parseIsoFast = (text: string): number | undefined | null => {
  const length = text.length
  if (length < 17 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(13) !== 58) return null
  const separator = text.charCodeAt(10)
  if (separator !== 84 && separator !== 32 && separator !== 116) return null
  const year = digits(text, 0, 4)
  const month = digits(text, 5, 2)
  const day = digits(text, 8, 2)
  const hour = digits(text, 11, 2)
  const minute = digits(text, 14, 2)
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0) return undefined
  let i = 16
  let second = 0
  let millis = 0
  if (text.charCodeAt(i) === 58) {
    second = digits(text, i + 1, 2)
    if (second < 0) return undefined
    i += 3
    const dot = text.charCodeAt(i)
    if (dot === 46 || dot === 44) {
      i++
      let count = 0
      while (i < length) {
        const d = text.charCodeAt(i) - 48
        if (d < 0 || d > 9) break
        if (count < 3) millis = millis * 10 + d
        count++
        i++
      }
      if (count === 0 || count > 9) return undefined
      if (count < 3) millis *= count === 1 ? 100 : 10
    }
  }
  let offsetMinutes = 0
  const zone = text.charCodeAt(i)
  if (zone === 90 || zone === 122) {
    if (i + 1 !== length) return undefined
  } else if (zone === 43 || zone === 45) {
    const hours = digits(text, i + 1, 2)
    let end = i + 3
    let minutes = 0
    if (end < length) {
      if (text.charCodeAt(end) === 58) end++
      minutes = digits(text, end, 2)
      end += 2
    }
    if (hours < 0 || minutes < 0 || hours > 23 || minutes > 59 || end !== length) return undefined
    offsetMinutes = (zone === 45 ? -1 : 1) * (hours * 60 + minutes)
  } else {
    return undefined
  }
  return toMillis(year, month, day, hour, minute, second, millis, offsetMinutes)
}

/**
 * Parses an ISO-8601 timestamp that carries a time zone (`2024-05-01T12:00:00Z`, `2024-05-01 14:00:00.250+02:00`)
 * into epoch milliseconds; `undefined` when the text is not such a timestamp or names an impossible date or time.
 * Local times without a zone are rejected on purpose: their meaning depends on the machine that reads them.
 */
export const parseIsoMillis = (text: string): number | undefined => {
  const fast = parseIsoFast(text)
  if (fast !== null) return fast
  const m = ISO_TIMESTAMP.exec(text)
  if (m === null) return undefined
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = Number(m[4])
  const minute = Number(m[5])
  const second = m[6] === undefined ? 0 : Number(m[6])
  const fraction = m[7]
  const millis =
    fraction === undefined ? 0 : Number(fraction.length >= 3 ? fraction.slice(0, 3) : fraction.padEnd(3, "0"))
  const zone = m[8]!
  let offsetMinutes = 0
  if (zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1
    const digits = zone.slice(1).replace(":", "")
    const hours = Number(digits.slice(0, 2))
    const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0
    if (hours > 23 || minutes > 59) return undefined
    offsetMinutes = sign * (hours * 60 + minutes)
  }
  return toMillis(year, month, day, hour, minute, second, millis, offsetMinutes)
}

const TIMESTAMP_EXPECTED = `an ISO-8601 timestamp with a time zone (e.g. "2024-05-01T12:00:00Z") or epoch milliseconds`

/**
 * Decodes the JSON form of a timestamp: an ISO-8601 string with a time zone, or an integer number of epoch
 * milliseconds.
 */
export const decodeTimestamp = (input: unknown): Date | Invalid => {
  if (typeof input === "string") {
    const ms = parseIsoMillis(input)
    return ms === undefined ? new Invalid(`Expected ${TIMESTAMP_EXPECTED}, got ${show(input)}`) : new Date(ms)
  }
  if (typeof input === "number" && Number.isSafeInteger(input) && Math.abs(input) <= MAX_DATE_MS) {
    return new Date(input)
  }
  return new Invalid(`Expected ${TIMESTAMP_EXPECTED}, got ${show(input)}`)
}

/** True for a `Date` that holds a time (not `Invalid Date`). */
export const isValidDate = (u: unknown): u is Date => u instanceof Date && !Number.isNaN(u.getTime())

/** True for a valid `Date` whose microseconds since the epoch are a safe integer (about ±285 years around 1970). */
export const isMicrosDate = (u: unknown): u is Date => isValidDate(u) && Number.isSafeInteger(u.getTime() * 1000)

/** Encodes a timestamp to JSON: `Date.prototype.toISOString` (UTC, millisecond precision). */
export const encodeTimestamp = (date: Date): string => date.toISOString()

// -----------------------------------------------------------------------------
// Dates
// -----------------------------------------------------------------------------

const ISO_DATE = /^(\d{4})-(\d\d)-(\d\d)$/

/** Days since the epoch of a `"YYYY-MM-DD"` date string; `undefined` for anything else, or an impossible date. */
export const dateToDays = (text: string): number | undefined => {
  const m = ISO_DATE.exec(text)
  if (m === null) return undefined
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined
  return daysFromCivil(year, month, day)
}

/** The first and last day (since the epoch) that a `"YYYY-MM-DD"` string can express: 0000-01-01 and 9999-12-31. */
export const DATE_DAYS_RANGE = [daysFromCivil(0, 1, 1), daysFromCivil(9999, 12, 31)] as const

/** The `"YYYY-MM-DD"` string of a day since the epoch; `undefined` outside years 0000-9999 or for non-integers. */
export const daysToDate = (days: number): string | undefined =>
  Number.isInteger(days) && days >= DATE_DAYS_RANGE[0] && days <= DATE_DAYS_RANGE[1]
    ? new Date(days * MS_PER_DAY).toISOString().slice(0, 10)
    : undefined

/** True for a valid `"YYYY-MM-DD"` calendar date. */
export const isDateString = (u: unknown): u is string => typeof u === "string" && dateToDays(u) !== undefined

/** Decodes the JSON form of a `date`: a `"YYYY-MM-DD"` string naming a real calendar day. */
export const decodeDate = (input: unknown): string | Invalid =>
  isDateString(input) ? input : new Invalid(`Expected a date "YYYY-MM-DD", got ${show(input)}`)

// -----------------------------------------------------------------------------
// UUIDs
// -----------------------------------------------------------------------------

const HEX = new Uint8Array(128)
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1

/** True for a UUID in its canonical text form (8-4-4-4-12 hex digits, any version, either case). */
export const isUuid = (u: unknown): u is string => {
  if (typeof u !== "string" || u.length !== 36) return false
  for (let i = 0; i < 36; i++) {
    const c = u.charCodeAt(i)
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false
    } else if (c > 127 || HEX[c] === 0) {
      return false
    }
  }
  return true
}

/** Decodes a `uuid`: the string itself, when it is a UUID. */
export const decodeUuid = (input: unknown): string | Invalid =>
  isUuid(input) ? input : new Invalid(`Expected a UUID (8-4-4-4-12 hex digits), got ${show(input)}`)

// -----------------------------------------------------------------------------
// Decimals
// -----------------------------------------------------------------------------

/** The parameters of a `decimal` logical type. */
export interface DecimalSpec {
  /** Total number of significant digits. */
  readonly precision: number
  /** Number of digits after the decimal point. */
  readonly scale: number
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/
const ZEROS = /^0+/
const TRAILING_ZEROS = /0+$/

const POW10: Array<bigint> = []
const pow10 = (n: number): bigint => (POW10[n] ??= 10n ** BigInt(n))

const decimalKind = (input: unknown): string =>
  typeof input === "string" ? "decimal string" : typeof input === "number" ? "decimal number" : "decimal"

const tooManyFractionDigits = (spec: DecimalSpec, input: unknown): Invalid =>
  new Invalid(`Expected a ${decimalKind(input)} with at most ${spec.scale} fractional digits, got ${show(input)}`)

const tooManyDigits = (spec: DecimalSpec, input: unknown): Invalid =>
  new Invalid(
    `Expected a decimal with at most ${spec.precision} digits (${spec.precision - spec.scale} before the decimal point), got ${show(input)}`
  )

/**
 * Decodes the JSON form of a decimal: a decimal string (`"12.30"`, `"-0.5"`, `"1e3"`) or a finite number, to a
 * `BigDecimal` whose scale is the schema's scale. A value with more fractional digits than the scale, or more digits
 * than the precision, is an error; trailing zeros beyond the scale are fine (`"1.2300"` fits scale 2).
 */
export const decodeDecimal = (input: unknown, spec: DecimalSpec): BigDecimal.BigDecimal | Invalid => {
  let text: string
  if (typeof input === "string") text = input
  else if (typeof input === "number" && Number.isFinite(input)) text = String(input)
  else return new Invalid(`Expected a decimal string or a finite number, got ${show(input)}`)
  const fast = decodePlainDecimal(text, input, spec)
  if (fast !== null) return fast
  const m = DECIMAL.exec(text)
  if (m === null || (m[2] === "" && (m[3] === undefined || m[3] === ""))) {
    return new Invalid(`Expected a decimal string or a finite number, got ${show(input)}`)
  }
  let integer = m[2]!
  let fraction = m[3] ?? ""
  if (m[4] !== undefined) {
    const exponent = Number(m[4])
    const digits = integer + fraction
    const point = integer.length + exponent
    if (point <= 0) {
      integer = ""
      fraction = "0".repeat(-point) + digits
    } else if (point >= digits.length) {
      integer = digits + "0".repeat(point - digits.length)
      fraction = ""
    } else {
      integer = digits.slice(0, point)
      fraction = digits.slice(point)
    }
  }
  integer = integer.replace(ZEROS, "")
  fraction = fraction.replace(TRAILING_ZEROS, "")
  if (fraction.length > spec.scale) return tooManyFractionDigits(spec, input)
  if (integer.length > spec.precision - spec.scale) return tooManyDigits(spec, input)
  const digits = integer + fraction.padEnd(spec.scale, "0")
  const unscaled = digits === "" ? 0n : BigInt(digits)
  return BigDecimal.make(m[1] === "-" ? -unscaled : unscaled, spec.scale)
}

// `-123.4500`-shaped text, scanned without a regular expression; `null` hands other shapes (exponents, odd input) to
// the general parser. Small values are accumulated in a double (exact below 2^53) to avoid parsing a bigint string.
const decodePlainDecimal = (
  text: string,
  input: unknown,
  spec: DecimalSpec
): BigDecimal.BigDecimal | Invalid | null => {
  const length = text.length
  let i = 0
  const first = text.charCodeAt(0)
  const negative = first === 45
  if (negative || first === 43) i = 1
  while (i < length && text.charCodeAt(i) === 48) i++
  const intStart = i
  while (i < length) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) break
    i++
  }
  const intEnd = i
  let fracStart = i
  let fracEnd = i
  if (i < length) {
    if (text.charCodeAt(i) !== 46) return null
    fracStart = ++i
    while (i < length) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) return null
      i++
    }
    fracEnd = i
    if (fracEnd === fracStart && intEnd === (negative || first === 43 ? 1 : 0)) return null
    while (fracEnd > fracStart && text.charCodeAt(fracEnd - 1) === 48) fracEnd--
  } else if (intEnd === (negative || first === 43 ? 1 : 0)) {
    return null
  }
  const fracLength = fracEnd - fracStart
  const intLength = intEnd - intStart
  if (fracLength > spec.scale) return tooManyFractionDigits(spec, input)
  if (intLength > spec.precision - spec.scale) return tooManyDigits(spec, input)
  let unscaled: bigint
  if (intLength + spec.scale <= 15) {
    let n = 0
    for (let j = intStart; j < intEnd; j++) n = n * 10 + (text.charCodeAt(j) - 48)
    for (let j = fracStart; j < fracEnd; j++) n = n * 10 + (text.charCodeAt(j) - 48)
    for (let j = fracLength; j < spec.scale; j++) n *= 10
    unscaled = BigInt(n)
  } else {
    const digits = text.slice(intStart, intEnd) + text.slice(fracStart, fracEnd).padEnd(spec.scale, "0")
    unscaled = digits === "" ? 0n : BigInt(digits)
  }
  return BigDecimal.make(negative ? -unscaled : unscaled, spec.scale)
}

/**
 * The unscaled integer of a `BigDecimal` at the schema's scale (`12.3` at scale 2 is `1230n`), or an `Invalid` when
 * that would need rounding or exceed the precision.
 */
export const toUnscaled = (value: BigDecimal.BigDecimal, spec: DecimalSpec): bigint | Invalid => {
  let unscaled: bigint
  if (value.scale === spec.scale) unscaled = value.value
  else if (value.scale < spec.scale) unscaled = value.value * pow10(spec.scale - value.scale)
  else {
    const factor = pow10(value.scale - spec.scale)
    if (value.value % factor !== 0n) return tooManyFractionDigits(spec, value)
    unscaled = value.value / factor
  }
  const limit = pow10(spec.precision)
  return unscaled >= limit || unscaled <= -limit ? tooManyDigits(spec, value) : unscaled
}

/** True for a `BigDecimal` that fits the precision and scale exactly (without rounding). */
export const isDecimal = (u: unknown, spec: DecimalSpec): u is BigDecimal.BigDecimal =>
  BigDecimal.isBigDecimal(u) && !(toUnscaled(u, spec) instanceof Invalid)

/** Formats an unscaled integer as a decimal string with exactly `scale` fractional digits: `(1230n, 2)` → `"12.30"`. */
export const formatUnscaled = (unscaled: bigint, scale: number): string => {
  const negative = unscaled < 0n
  const digits = (negative ? -unscaled : unscaled).toString()
  if (scale === 0) return negative ? `-${digits}` : digits
  const padded = digits.padStart(scale + 1, "0")
  const text = `${padded.slice(0, padded.length - scale)}.${padded.slice(padded.length - scale)}`
  return negative ? `-${text}` : text
}

/**
 * Encodes a decimal to JSON: a string with exactly `scale` fractional digits (`"12.30"`). Values that do not fit the
 * spec are formatted as they are (they are rejected when validated, never rounded here).
 */
export const encodeDecimal = (value: BigDecimal.BigDecimal, spec: DecimalSpec): string => {
  const unscaled = toUnscaled(value, spec)
  return unscaled instanceof Invalid ? BigDecimal.format(value) : formatUnscaled(unscaled, spec.scale)
}

// Magnitudes below 2^47 fit in 6 bytes and are handled with exact double arithmetic instead of bigints.
const SMALL = 2n ** 47n

/** The number of bytes of the shortest big-endian two's complement form of an integer. */
export const twosComplementLength = (n: bigint): number => {
  let length = 1
  if (n < SMALL && n >= -SMALL) {
    const m = Number(n)
    while (m >= 2 ** (8 * length - 1) || m < -(2 ** (8 * length - 1))) length++
    return length
  }
  while (n >= 1n << BigInt(8 * length - 1) || n < -(1n << BigInt(8 * length - 1))) length++
  return length
}

/**
 * Writes an integer as `length` bytes of big-endian two's complement into `target` at `offset` (sign-extended; the
 * caller makes sure it fits, see {@link twosComplementLength}).
 */
export const writeTwosComplement = (n: bigint, target: Uint8Array, offset: number, length: number): void => {
  if (n < SMALL && n >= -SMALL) {
    const m = Number(n)
    // Sign extension beyond 6 bytes: 0x00 or 0xff.
    const fill = m < 0 ? 0xff : 0
    const low = Math.min(length, 6)
    for (let i = 0; i < length - low; i++) target[offset + i] = fill
    let v = m < 0 ? m + 2 ** (8 * low) : m
    for (let i = offset + length - 1; i >= offset + length - low; i--) {
      target[i] = v % 256
      v = Math.floor(v / 256)
    }
    return
  }
  let v = BigInt.asUintN(8 * length, n)
  for (let i = offset + length - 1; i >= offset; i--) {
    target[i] = Number(v & 0xffn)
    v >>= 8n
  }
}

/**
 * The big-endian two's complement bytes of an integer, as Avro stores decimals: the shortest form, or exactly `size`
 * bytes (sign-extended) for `fixed`. `undefined` when it does not fit in `size` bytes.
 */
export const bigintToBytes = (n: bigint, size?: number): Uint8Array | undefined => {
  const shortest = twosComplementLength(n)
  if (size !== undefined && shortest > size) return undefined
  const length = size ?? shortest
  const bytes = new Uint8Array(length)
  writeTwosComplement(n, bytes, 0, length)
  return bytes
}

/** The integer stored in big-endian two's complement bytes (`length` bytes of `bytes` from `offset`). */
export const bytesToBigint = (bytes: Uint8Array, offset = 0, length = bytes.length - offset): bigint => {
  if (length === 0) return 0n
  const negative = (bytes[offset]! & 0x80) !== 0
  if (length <= 6) {
    let n = 0
    for (let i = offset; i < offset + length; i++) n = n * 256 + bytes[i]!
    return BigInt(negative ? n - 2 ** (8 * length) : n)
  }
  let v = 0n
  for (let i = offset; i < offset + length; i++) v = (v << 8n) | BigInt(bytes[i]!)
  return negative ? v - (1n << BigInt(8 * length)) : v
}

// -----------------------------------------------------------------------------
// Bytes
// -----------------------------------------------------------------------------

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Decodes standard, padded base64 to bytes. */
export const decodeBase64 = (input: unknown): Uint8Array | Invalid => {
  if (typeof input !== "string" || !BASE64.test(input)) {
    return new Invalid(`Expected a base64 string, got ${show(input)}`)
  }
  return new Uint8Array(Buffer.from(input, "base64"))
}

/** Encodes bytes as standard, padded base64. */
export const encodeBase64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** Bytes from Avro's JSON encoding of `bytes`/`fixed` (used by schema defaults): one code point (0-255) per byte. */
export const bytesFromCodePoints = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))

/** Avro's JSON encoding of `bytes`/`fixed` (used by schema defaults): one code point (0-255) per byte. */
export const bytesToCodePoints = (bytes: Uint8Array): string => String.fromCharCode(...bytes)
