/**
 * The Kafka connector's error, with tagged reasons that know whether retrying can help.
 */
import * as Data from "effect/Data"

/** Why a Kafka operation failed. */
export type KafkaErrorReason =
  | { readonly _tag: "ConnectionError"; readonly retryable: true }
  | { readonly _tag: "Timeout"; readonly retryable: true }
  | { readonly _tag: "NotLeader"; readonly retryable: true }
  | { readonly _tag: "RebalanceInProgress"; readonly retryable: true }
  | { readonly _tag: "TopicNotFound"; readonly retryable: false }
  | { readonly _tag: "AuthenticationError"; readonly retryable: false }
  | { readonly _tag: "AuthorizationError"; readonly retryable: false }
  | { readonly _tag: "MessageTooLarge"; readonly retryable: false }
  | { readonly _tag: "UnsupportedCompression"; readonly retryable: false }
  | { readonly _tag: "OffsetOutOfRange"; readonly retryable: false }
  | { readonly _tag: "FencedInstanceId"; readonly retryable: false }
  | { readonly _tag: "InvalidRequest"; readonly retryable: false }
  | { readonly _tag: "EncodeError"; readonly retryable: false }
  | { readonly _tag: "Unknown"; readonly retryable: false }

/** The reasons by tag, for building errors: `reasons.TopicNotFound`. */
export const reasons = {
  ConnectionError: { _tag: "ConnectionError", retryable: true },
  Timeout: { _tag: "Timeout", retryable: true },
  NotLeader: { _tag: "NotLeader", retryable: true },
  RebalanceInProgress: { _tag: "RebalanceInProgress", retryable: true },
  TopicNotFound: { _tag: "TopicNotFound", retryable: false },
  AuthenticationError: { _tag: "AuthenticationError", retryable: false },
  AuthorizationError: { _tag: "AuthorizationError", retryable: false },
  MessageTooLarge: { _tag: "MessageTooLarge", retryable: false },
  UnsupportedCompression: { _tag: "UnsupportedCompression", retryable: false },
  OffsetOutOfRange: { _tag: "OffsetOutOfRange", retryable: false },
  /** Another consumer of the group took over this one's static membership id (`group.instance.id`). */
  FencedInstanceId: { _tag: "FencedInstanceId", retryable: false },
  InvalidRequest: { _tag: "InvalidRequest", retryable: false },
  EncodeError: { _tag: "EncodeError", retryable: false },
  Unknown: { _tag: "Unknown", retryable: false }
} as const satisfies Record<KafkaErrorReason["_tag"], KafkaErrorReason>

/** A failed Kafka operation: what was being done, on which topic, and why. */
export class KafkaError extends Data.TaggedError("KafkaError")<{
  readonly reason: KafkaErrorReason
  readonly operation: string
  readonly topic?: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {
  /** Whether retrying the operation may succeed. */
  get retryable(): boolean {
    return this.reason.retryable
  }
}
