/**
 * The file connector's error, with tagged reasons that know whether retrying can help.
 */
import * as Data from "effect/Data"

/** Why a file operation failed. */
export type FileErrorReason =
  | { readonly _tag: "NotFound"; readonly retryable: false }
  | { readonly _tag: "PermissionDenied"; readonly retryable: false }
  | { readonly _tag: "AlreadyExists"; readonly retryable: false }
  | { readonly _tag: "NotADirectory"; readonly retryable: false }
  | { readonly _tag: "IsADirectory"; readonly retryable: false }
  | { readonly _tag: "NoSpace"; readonly retryable: false }
  | { readonly _tag: "Busy"; readonly retryable: true }
  | { readonly _tag: "TooManyOpenFiles"; readonly retryable: true }
  | { readonly _tag: "Interrupted"; readonly retryable: true }
  | { readonly _tag: "PositionsMoved"; readonly retryable: true }
  | { readonly _tag: "Unknown"; readonly retryable: false }

/** The reasons by tag, for building errors: `FileError.reasons.NotFound`. */
export const reasons = {
  NotFound: { _tag: "NotFound", retryable: false },
  PermissionDenied: { _tag: "PermissionDenied", retryable: false },
  AlreadyExists: { _tag: "AlreadyExists", retryable: false },
  NotADirectory: { _tag: "NotADirectory", retryable: false },
  IsADirectory: { _tag: "IsADirectory", retryable: false },
  NoSpace: { _tag: "NoSpace", retryable: false },
  Busy: { _tag: "Busy", retryable: true },
  TooManyOpenFiles: { _tag: "TooManyOpenFiles", retryable: true },
  Interrupted: { _tag: "Interrupted", retryable: true },
  /** A segment's source positions start before those another process stored meanwhile (see `Checkpoint.moved`). */
  PositionsMoved: { _tag: "PositionsMoved", retryable: true },
  Unknown: { _tag: "Unknown", retryable: false }
} as const satisfies Record<FileErrorReason["_tag"], FileErrorReason>

/** A failed file operation: what was being done, on which path, and why. */
export class FileError extends Data.TaggedError("FileError")<{
  readonly reason: FileErrorReason
  readonly operation: string
  readonly path: string
  readonly message: string
  readonly cause?: unknown
}> {
  /** Whether retrying the operation may succeed. */
  get retryable(): boolean {
    return this.reason.retryable
  }
}
