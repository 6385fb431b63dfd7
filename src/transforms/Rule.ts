/**
 * Business rules for `validate`: not null, range, pattern, one-of and custom predicates.
 *
 * Each rule says what to do with a record that breaks it (`onFail`):
 * - `reject` (default): the record goes to the dead letters with the rule's name and message, the run goes on;
 * - `fail`: the run stops with a `QualityError` naming the rule and the record;
 * - `warn`: the record passes on, the breach is counted and logged.
 */
import * as BigDecimal from "effect/BigDecimal"

/** What happens to a record that breaks a rule. */
export type OnFail = "reject" | "fail" | "warn"

/** A rule over records of type `A`. `check` returns `undefined` when the record is fine, else what is wrong. */
export interface Rule<in A> {
  readonly name: string
  readonly description: string
  readonly onFail: OnFail
  readonly check: (record: A) => string | undefined
}

/** Options every rule takes. */
export interface RuleOptions {
  /** Overrides the generated rule name (used as the dead-letter reason `rule:<name>`). */
  readonly name?: string
  readonly onFail?: OnFail
}

const show = (value: unknown): string => {
  if (value instanceof Date) return value.toISOString()
  if (BigDecimal.isBigDecimal(value)) return BigDecimal.format(value)
  const text = typeof value === "string" ? JSON.stringify(value) : String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/**
 * The field must be present and not null.
 *
 * @example
 * Rule.notNull("userId")
 */
export const notNull = <const K extends string>(
  field: K,
  options?: RuleOptions
): Rule<{ readonly [k in K]?: unknown }> => ({
  name: options?.name ?? `${field}-not-null`,
  description: `${field} is not null`,
  onFail: options?.onFail ?? "reject",
  check: (record) => {
    const value = (record as Record<string, unknown>)[field]
    return value === null || value === undefined ? `${field}: expected a value, got null` : undefined
  }
})

/** A value that can be compared by `range`. */
export type Comparable = number | bigint | BigDecimal.BigDecimal | Date

const toNumber = (value: Comparable): number =>
  typeof value === "number"
    ? value
    : typeof value === "bigint"
      ? Number(value)
      : value instanceof Date
        ? value.getTime()
        : Number(BigDecimal.format(value))

const toDecimal = (value: Comparable): BigDecimal.BigDecimal | undefined => {
  if (BigDecimal.isBigDecimal(value)) return value
  if (typeof value === "bigint") return BigDecimal.make(value, 0)
  const parsed = BigDecimal.fromNumber(toNumber(value))
  return parsed._tag === "Some" ? parsed.value : undefined
}

const compare = (a: Comparable, b: Comparable): number => {
  if (BigDecimal.isBigDecimal(a) || BigDecimal.isBigDecimal(b)) {
    const x = toDecimal(a)
    const y = toDecimal(b)
    if (x !== undefined && y !== undefined) return BigDecimal.Order(x, y)
  }
  const x = toNumber(a)
  const y = toNumber(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/**
 * The field must lie in a range. Bounds are inclusive unless `exclusiveMin`/`exclusiveMax`; nulls pass (combine with
 * `notNull` to forbid them).
 *
 * @example
 * Rule.range("amount", { min: 0, exclusiveMin: true, max: 1_000_000 })
 */
export const range = <const K extends string>(
  field: K,
  bounds: {
    readonly min?: Comparable
    readonly max?: Comparable
    readonly exclusiveMin?: boolean
    readonly exclusiveMax?: boolean
  },
  options?: RuleOptions
): Rule<{ readonly [k in K]?: Comparable | null }> => {
  const lower = bounds.min === undefined ? "" : `${bounds.exclusiveMin === true ? ">" : ">="} ${show(bounds.min)}`
  const upper = bounds.max === undefined ? "" : `${bounds.exclusiveMax === true ? "<" : "<="} ${show(bounds.max)}`
  const expected = [lower, upper].filter((s) => s !== "").join(" and ")
  return {
    name: options?.name ?? `${field}-range`,
    description: `${field} ${expected}`,
    onFail: options?.onFail ?? "reject",
    check: (record) => {
      const value = (record as Record<string, unknown>)[field] as Comparable | null | undefined
      if (value === null || value === undefined) return undefined
      if (typeof value === "number" && Number.isNaN(value)) return `${field}: expected a value ${expected}, got NaN`
      if (bounds.min !== undefined) {
        const c = compare(value, bounds.min)
        if (c < 0 || (c === 0 && bounds.exclusiveMin === true))
          return `${field}: expected a value ${expected}, got ${show(value)}`
      }
      if (bounds.max !== undefined) {
        const c = compare(value, bounds.max)
        if (c > 0 || (c === 0 && bounds.exclusiveMax === true))
          return `${field}: expected a value ${expected}, got ${show(value)}`
      }
      return undefined
    }
  }
}

/**
 * The (string) field must match a regular expression; nulls pass.
 *
 * @example
 * Rule.pattern("currency", /^[A-Z]{3}$/)
 */
export const pattern = <const K extends string>(
  field: K,
  regex: RegExp,
  options?: RuleOptions
): Rule<{ readonly [k in K]?: string | null }> => {
  // A global or sticky RegExp keeps state between calls to `test`; a copy without those flags does not.
  const re = new RegExp(regex.source, regex.flags.replace(/[gy]/g, ""))
  return {
    name: options?.name ?? `${field}-pattern`,
    description: `${field} matches /${regex.source}/${re.flags}`,
    onFail: options?.onFail ?? "reject",
    check: (record) => {
      const value = (record as Record<string, unknown>)[field]
      if (value === null || value === undefined) return undefined
      if (typeof value !== "string") return `${field}: expected a string matching /${regex.source}/, got ${show(value)}`
      return re.test(value) ? undefined : `${field}: expected a string matching /${regex.source}/, got ${show(value)}`
    }
  }
}

/**
 * The field must be one of the given values; nulls pass.
 *
 * @example
 * Rule.oneOf("currency", ["EUR", "USD", "GBP"])
 */
export const oneOf = <const K extends string, const V extends string | number | boolean>(
  field: K,
  values: ReadonlyArray<V>,
  options?: RuleOptions
): Rule<{ readonly [k in K]?: unknown }> => {
  const allowed = new Set<unknown>(values)
  const list = values.map((v) => JSON.stringify(v)).join(", ")
  return {
    name: options?.name ?? `${field}-one-of`,
    description: `${field} in [${list}]`,
    onFail: options?.onFail ?? "reject",
    check: (record) => {
      const value = (record as Record<string, unknown>)[field]
      if (value === null || value === undefined) return undefined
      return allowed.has(value) ? undefined : `${field}: expected one of ${list}, got ${show(value)}`
    }
  }
}

/**
 * A custom predicate over the whole record.
 *
 * @example
 * Rule.check("refund-has-reason", (t: Transaction) => t.status !== "refunded" || t.reason !== null, {
 *   message: "refunded transactions need a reason"
 * })
 */
export const check = <A>(
  name: string,
  predicate: (record: A) => boolean,
  options?: { readonly message?: string; readonly onFail?: OnFail }
): Rule<A> => ({
  name,
  description: options?.message ?? name,
  onFail: options?.onFail ?? "reject",
  check: (record) => (predicate(record) ? undefined : (options?.message ?? `rule ${name} failed`))
})
