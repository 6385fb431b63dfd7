/**
 * effect-etl: typed Extract-Transform-Load pipelines on Effect.
 *
 * This entry point loads no database or messaging driver: it has the typed API, every transform, every connector's
 * facade, client contract and memory layer, and the local file system. A connector's live layer over its driver comes
 * from the connector's own entry point (`effect-etl/postgres`, `effect-etl/mysql`, `effect-etl/kafka`, `effect-etl/s3`);
 * the JSON config front door from `effect-etl/config`.
 */

export * as File from "./connectors/file/File.ts"
export * as FileStore from "./connectors/file/FileStore.ts"
export * as NodeFileStore from "./connectors/file/NodeFileStore.ts"
export * as Kafka from "./connectors/kafka/Kafka.ts"
export * as KafkaClient from "./connectors/kafka/KafkaClient.ts"
export * as Mysql from "./connectors/mysql/Mysql.ts"
export * as MysqlClient from "./connectors/mysql/MysqlClient.ts"
export * as Postgres from "./connectors/postgres/Postgres.ts"
export * as PostgresClient from "./connectors/postgres/PostgresClient.ts"
export * as S3 from "./connectors/s3/S3.ts"
export * as S3Client from "./connectors/s3/S3Client.ts"
export * as Incremental from "./connectors/sql/Incremental.ts"
export * as SqlMemory from "./connectors/sql/SqlMemory.ts"
export * as Batch from "./core/Batch.ts"
export * as ConfigError from "./core/ConfigError.ts"
export * as Cursor from "./core/Cursor.ts"
export * as DeadLetter from "./core/DeadLetter.ts"
export * as Errors from "./core/Errors.ts"
export * as RecordSchema from "./core/RecordSchema.ts"
export * as Retry from "./core/Retry.ts"
export * as RunReport from "./core/RunReport.ts"
export * as Sink from "./core/Sink.ts"
export * as Source from "./core/Source.ts"
export * as Stage from "./core/Stage.ts"
export * as Stop from "./core/Stop.ts"
export * as Expression from "./expr/Expression.ts"
export * as Format from "./formats/Format.ts"
export * as Lineage from "./observability/Lineage.ts"
export * as Logging from "./observability/Logging.ts"
export * as Pipeline from "./pipeline/Pipeline.ts"
export * as Observers from "./runtime/Observers.ts"
export * as Progress from "./runtime/Progress.ts"
export * as AvroBridge from "./schema/AvroBridge.ts"
export * as AvroSchema from "./schema/AvroSchema.ts"
export * as Contracts from "./schema/Contracts.ts"
export * as SchemaRegistry from "./schema/SchemaRegistry.ts"
export * as Aggregate from "./transforms/Aggregate.ts"
export * as Join from "./transforms/Join.ts"
export * as Rule from "./transforms/Rule.ts"
export * as Window from "./transforms/Window.ts"
