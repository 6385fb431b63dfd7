/** The local file connector (`effect-etl/file`): files as sources and sinks, the file store, memory and live layers. */
export * as File from "./File.ts"
export * as FileError from "./FileError.ts"
export * as FileStore from "./FileStore.ts"
export * as NodeFileState from "./NodeFileState.ts"
export * as NodeFileStore from "./NodeFileStore.ts"
