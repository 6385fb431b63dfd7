/**
 * Building blocks of config schemas shared by the connectors and transforms: strict objects, durations, names.
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/** A non-empty string. */
export const NonEmpty = Schema.String.check(Schema.isMinLength(1, { message: "Expected a non-empty string" }))

/** A duration written for people: `"5 seconds"`, `"500 millis"`, `"1 minute"`. */
export const DurationString = Schema.String.check(
  Schema.makeFilter((s: string) =>
    Duration.fromInput(s as Duration.Input)._tag === "Some"
      ? undefined
      : `Expected a duration like "5 seconds", "500 millis" or "2 minutes", got ${JSON.stringify(s)}`
  )
).annotate({ description: 'A duration such as "5 seconds", "500 millis" or "2 minutes"' })

/** A positive integer. */
export const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** A stage name: letters, digits, `-`, `_` and `.`. */
export const StageName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/u, {
    message: "Expected a name of letters, digits, '-', '_' or '.'"
  })
)
