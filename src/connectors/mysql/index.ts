/** The MySQL/MariaDB connector (`effect-etl/mysql`): tables and queries, the client contract, memory and live layers. */
export * as Incremental from "../sql/Incremental.ts"
export * as SqlMemory from "../sql/SqlMemory.ts"
export * as Mysql from "./Mysql.ts"
export * as MysqlClient from "./MysqlClient.ts"
export * as NodeMysql from "./NodeMysql.ts"
