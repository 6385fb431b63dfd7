/**
 * Building blocks of config schemas shared by the connectors and transforms: strict objects, durations, names, and
 * numbers with sane bounds. A value that would harm data or the machine (a negative duration, a batch of 10^12
 * records, 10^9 retry attempts) is rejected with its JSON path and the bound it crossed; the JSON Schema generated
 * from these carries the same syntax (duration pattern, integer ranges).
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/** A non-empty string. */
export const NonEmpty = Schema.String.check(Schema.isMinLength(1, { message: "Expected a non-empty string" }))

/**
 * The syntax of durations in configs: a non-negative number and a unit. It is what the config Schema accepts and the
 * pattern of the generated JSON Schema (Effect's own parser also takes negatives and `"Infinity"`, which no setting
 * of a pipeline should get).
 */
export const durationPattern = /^\d+(?:\.\d+)?\s+(?:nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)$/u

const durationSyntax = 'Expected a duration like "5 seconds", "500 millis" or "2 minutes"'

/** The milliseconds of a duration string the config Schema accepted. */
export const millisOf = (text: string): number => Duration.toMillis(Duration.fromInputUnsafe(text as Duration.Input))

/**
 * A duration written for people (`"5 seconds"`, `"500 millis"`, `"1 minute"`), at most `max` (and above zero when
 * `positive`). The message of a value out of range states the range.
 */
export const durationString = (options: { readonly max: string; readonly positive?: boolean }) => {
  const maxMillis = millisOf(options.max)
  return Schema.String.check(
    Schema.makeFilter(
      (s: string) => {
        if (/^\s*-/.test(s)) return 'Expected a duration that is not negative, like "5 seconds"'
        if (!durationPattern.test(s)) return durationSyntax
        const ms = millisOf(s)
        if (options.positive === true && ms <= 0) return "Expected a duration above zero"
        if (ms > maxMillis) return `Expected a duration of at most ${options.max}`
        return undefined
      },
      // The pattern is exact; the range is the loader's alone, so the JSON Schema is a looser approximation.
      { toJsonSchema: () => [{ pattern: durationPattern.source }, true] }
    )
  ).annotate({
    description: `A duration such as "5 seconds", "500 millis" or "2 minutes" (${options.positive === true ? "above zero, " : ""}at most ${options.max})`
  })
}

/** A duration of zero or more, up to a year. */
export const DurationString = durationString({ max: "366 days" })

/**
 * An integer from `min` to `max`; a value above `max` is told the bound and why it exists (`why`, e.g. "records of a
 * batch are held in memory").
 */
export const intBetween = (min: number, max: number, why: string) =>
  Schema.Int.check(
    Schema.isGreaterThanOrEqualTo(min),
    Schema.isLessThanOrEqualTo(max, { message: `Expected at most ${max} (${why})` })
  )

/** A positive integer, at most 10^9 (a count no setting needs more of). */
export const PositiveInt = intBetween(1, 1_000_000_000, "no count in a pipeline needs more")

/** Records per batch: a batch is held in memory. */
export const BatchSize = intBetween(1, 1_000_000, "a batch is held in memory")

/** How many parts are read at once. */
export const Concurrency = intBetween(1, 256, "each part read at once holds a connection and a buffer")

/** What a source does with record fields its `schema` does not name (see `RecordSchema.withUnknownFields`). */
export const UnknownFields = Schema.Literals(["drop", "keep", "reject"]).annotate({
  description:
    'Fields of a record that the schema does not name: "drop" them (default), "keep" them as read, or "reject" the record to the dead letters'
})

/** A stage name: letters, digits, `-`, `_` and `.`. */
export const StageName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/u, {
    message: "Expected a name of letters, digits, '-', '_' or '.'"
  })
)
