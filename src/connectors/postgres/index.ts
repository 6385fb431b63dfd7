/** The PostgreSQL connector (`effect-etl/postgres`): tables and queries, the client contract, memory and live layers. */
export * as Incremental from "../sql/Incremental.ts"
export * as SqlMemory from "../sql/SqlMemory.ts"
export * as NodePostgres from "./NodePostgres.ts"
export * as Postgres from "./Postgres.ts"
export * as PostgresClient from "./PostgresClient.ts"
