/**
 * The S3 connector's error, with tagged reasons that know whether retrying can help. Messages never contain
 * credentials.
 */
import * as Data from "effect/Data"

/** Why an S3 operation failed. */
export type S3ErrorReason =
  | { readonly _tag: "Throttled"; readonly retryable: true }
  | { readonly _tag: "ServerError"; readonly retryable: true }
  | { readonly _tag: "Timeout"; readonly retryable: true }
  | { readonly _tag: "ConnectionError"; readonly retryable: true }
  | { readonly _tag: "NoSuchBucket"; readonly retryable: false }
  | { readonly _tag: "NoSuchKey"; readonly retryable: false }
  | { readonly _tag: "AccessDenied"; readonly retryable: false }
  | { readonly _tag: "InvalidArgument"; readonly retryable: false }
  | { readonly _tag: "Unknown"; readonly retryable: false }

/** The reasons by tag, for building errors: `reasons.NoSuchBucket`. */
export const reasons = {
  Throttled: { _tag: "Throttled", retryable: true },
  ServerError: { _tag: "ServerError", retryable: true },
  Timeout: { _tag: "Timeout", retryable: true },
  ConnectionError: { _tag: "ConnectionError", retryable: true },
  NoSuchBucket: { _tag: "NoSuchBucket", retryable: false },
  NoSuchKey: { _tag: "NoSuchKey", retryable: false },
  AccessDenied: { _tag: "AccessDenied", retryable: false },
  InvalidArgument: { _tag: "InvalidArgument", retryable: false },
  Unknown: { _tag: "Unknown", retryable: false }
} as const satisfies Record<S3ErrorReason["_tag"], S3ErrorReason>

/** A failed S3 operation: what was being done, on which bucket and key, and why. */
export class S3Error extends Data.TaggedError("S3Error")<{
  readonly reason: S3ErrorReason
  readonly operation: string
  readonly bucket: string
  readonly key?: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {
  /** Whether retrying the operation may succeed. */
  get retryable(): boolean {
    return this.reason.retryable
  }
}

/** Maps an HTTP status and an S3 error code to a reason (the SDK-independent part of classification). */
export const reasonOf = (options: {
  readonly status?: number | undefined
  readonly code?: string | undefined
  readonly errno?: string | undefined
}): S3ErrorReason => {
  const code = options.code ?? ""
  switch (code) {
    case "NoSuchBucket":
      return reasons.NoSuchBucket
    case "NoSuchKey":
    case "NotFound":
    case "NoSuchUpload":
      return reasons.NoSuchKey
    case "AccessDenied":
    case "InvalidAccessKeyId":
    case "SignatureDoesNotMatch":
    case "AllAccessDisabled":
    case "Forbidden":
      return reasons.AccessDenied
    case "InvalidArgument":
    case "InvalidBucketName":
    case "InvalidRange":
    case "EntityTooSmall":
    case "EntityTooLarge":
    case "InvalidPart":
    case "InvalidPartOrder":
    case "MalformedXML":
    case "KeyTooLongError":
    case "NotImplemented":
      return reasons.InvalidArgument
    case "SlowDown":
    case "Throttling":
    case "ThrottlingException":
    case "TooManyRequests":
    case "RequestLimitExceeded":
    case "TooManyRequestsException":
      return reasons.Throttled
    case "RequestTimeout":
    case "RequestTimeoutException":
    case "TimeoutError":
      return reasons.Timeout
    case "InternalError":
    case "ServiceUnavailable":
      return reasons.ServerError
  }
  switch (options.errno) {
    case "ECONNRESET":
    case "ECONNREFUSED":
    case "EPIPE":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ECONNABORTED":
      return reasons.ConnectionError
    case "ETIMEDOUT":
    case "ESOCKETTIMEDOUT":
      return reasons.Timeout
  }
  const status = options.status
  if (status === 429 || status === 503) return reasons.Throttled
  if (status !== undefined && status >= 500) return reasons.ServerError
  if (status === 403) return reasons.AccessDenied
  if (status === 404) return reasons.NoSuchKey
  if (status === 400) return reasons.InvalidArgument
  return reasons.Unknown
}
