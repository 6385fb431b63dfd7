/** The S3 connector (`effect-etl/s3`): objects as sources and sinks, the client contract, memory and live layers. */
export * as NodeS3 from "./NodeS3.ts"
export * as S3 from "./S3.ts"
export * as S3Client from "./S3Client.ts"
export * as S3Error from "./S3Error.ts"
