/**
 * The bytes and the parser states of the CSV reader, shared by the reader (`Csv.ts`) and the cutter that finds where
 * records begin in a big file (`LineRanges.ts`): both must follow a file the same way.
 */

export const QUOTE = 34
export const LF = 10
export const CR = 13

// Parser states.
export const FIELD_START = 0
export const UNQUOTED = 1
export const QUOTED = 2
/** A quote inside a quoted field: either the first half of `""` or the closing quote. */
export const QUOTE_SEEN = 3
/** A CR ended a record; a following LF belongs to it. */
export const AFTER_CR = 4
