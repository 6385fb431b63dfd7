/**
 * Avro schemas and records: the `.avsc` model and parser, the bridge to `effect/Schema` and avsc, the schema registry,
 * and the platform's contract schemas.
 */
export * as AvroBridge from "./AvroBridge.ts"
export * as AvroLogical from "./AvroLogical.ts"
export * as AvroSchema from "./AvroSchema.ts"
export * as Contracts from "./Contracts.ts"
export * as Records from "./Records.ts"
export * as SchemaRegistry from "./SchemaRegistry.ts"
