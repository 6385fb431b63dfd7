/**
 * Why a database operation failed, shared by the PostgreSQL and MySQL connectors.
 *
 * Each driver file maps its native codes (SQLSTATE, MySQL errno, Node socket errors) to one of these reasons in a
 * single `classifyError`; each reason knows whether retrying the whole attempt may succeed. The runtime, not the
 * connector, decides to retry (see `runtime/Retry.ts`).
 */

/** Why a database operation failed. */
export type SqlErrorReason =
  | { readonly _tag: "ConnectionLost"; readonly retryable: true }
  | { readonly _tag: "ConnectionRefused"; readonly retryable: true }
  | { readonly _tag: "TooManyConnections"; readonly retryable: true }
  | { readonly _tag: "Deadlock"; readonly retryable: true }
  | { readonly _tag: "SerializationFailure"; readonly retryable: true }
  | { readonly _tag: "LockTimeout"; readonly retryable: true }
  | { readonly _tag: "Timeout"; readonly retryable: true }
  | { readonly _tag: "PositionsMoved"; readonly retryable: true }
  | { readonly _tag: "AuthenticationFailed"; readonly retryable: false }
  | { readonly _tag: "PermissionDenied"; readonly retryable: false }
  | { readonly _tag: "UniqueViolation"; readonly retryable: false }
  | { readonly _tag: "ConstraintViolation"; readonly retryable: false }
  | { readonly _tag: "SyntaxError"; readonly retryable: false }
  | { readonly _tag: "UndefinedTable"; readonly retryable: false }
  | { readonly _tag: "UndefinedColumn"; readonly retryable: false }
  | { readonly _tag: "InvalidData"; readonly retryable: false }
  | { readonly _tag: "InvalidKeys"; readonly retryable: false }
  | { readonly _tag: "InvalidRequest"; readonly retryable: false }
  | { readonly _tag: "Unknown"; readonly retryable: false }

/** The reasons by tag, for building errors: `reasons.Deadlock`. */
export const reasons = {
  ConnectionLost: { _tag: "ConnectionLost", retryable: true },
  ConnectionRefused: { _tag: "ConnectionRefused", retryable: true },
  TooManyConnections: { _tag: "TooManyConnections", retryable: true },
  Deadlock: { _tag: "Deadlock", retryable: true },
  SerializationFailure: { _tag: "SerializationFailure", retryable: true },
  LockTimeout: { _tag: "LockTimeout", retryable: true },
  Timeout: { _tag: "Timeout", retryable: true },
  /**
   * A commit's source positions start before those another process stored meanwhile (a consumer-group rebalance moved
   * the partition): the commit is rolled back, and a new attempt reads from the stored positions.
   */
  PositionsMoved: { _tag: "PositionsMoved", retryable: true },
  AuthenticationFailed: { _tag: "AuthenticationFailed", retryable: false },
  PermissionDenied: { _tag: "PermissionDenied", retryable: false },
  UniqueViolation: { _tag: "UniqueViolation", retryable: false },
  ConstraintViolation: { _tag: "ConstraintViolation", retryable: false },
  SyntaxError: { _tag: "SyntaxError", retryable: false },
  UndefinedTable: { _tag: "UndefinedTable", retryable: false },
  UndefinedColumn: { _tag: "UndefinedColumn", retryable: false },
  InvalidData: { _tag: "InvalidData", retryable: false },
  InvalidKeys: { _tag: "InvalidKeys", retryable: false },
  InvalidRequest: { _tag: "InvalidRequest", retryable: false },
  Unknown: { _tag: "Unknown", retryable: false }
} as const satisfies { readonly [K in SqlErrorReason["_tag"]]: Extract<SqlErrorReason, { readonly _tag: K }> }

/** The fields every SQL connector error has. */
export interface SqlErrorFields {
  readonly reason: SqlErrorReason
  /** What was being done: `read orders`, `copy into orders`, `connect`. */
  readonly operation: string
  /** For a person; never contains credentials or row values. */
  readonly message: string
  /** The driver's code (SQLSTATE or errno), when there was one. */
  readonly code?: string
  readonly cause?: unknown
}

/** Reads the `code`, `errno` and `message` of a driver error without trusting its shape. */
export const driverFields = (
  cause: unknown
): { readonly code: string | undefined; readonly errno: number | undefined; readonly message: string } => {
  if (typeof cause !== "object" || cause === null) return { code: undefined, errno: undefined, message: String(cause) }
  const c = cause as { readonly code?: unknown; readonly errno?: unknown; readonly message?: unknown }
  return {
    code: typeof c.code === "string" ? c.code : undefined,
    errno: typeof c.errno === "number" ? c.errno : undefined,
    message: typeof c.message === "string" ? c.message : String(cause)
  }
}

/** Node.js socket error codes that mean the connection is gone or could not be made (retryable). */
export const socketReason = (code: string | undefined): SqlErrorReason | undefined => {
  switch (code) {
    case "ECONNRESET":
    case "EPIPE":
    case "ETIMEDOUT":
    case "PROTOCOL_CONNECTION_LOST":
    case "ERR_STREAM_PREMATURE_CLOSE":
    case "ERR_STREAM_DESTROYED":
      return reasons.ConnectionLost
    case "ECONNREFUSED":
    case "EHOSTUNREACH":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return reasons.ConnectionRefused
    default:
      return undefined
  }
}

/** Removes `user:password@` from any URL-looking text, so a driver message never leaks credentials. */
export const scrub = (text: string): string => text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, "$1***@")
