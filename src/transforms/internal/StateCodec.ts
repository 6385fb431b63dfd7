/** Record values as JSON: see `core/ValueCodec.ts`. */
export { decode, encode, type Json } from "../../core/ValueCodec.ts"
