/**
 * Avro schemas as data: TypeScript types for the JSON of an `.avsc` file, and a parser/validator that turns untrusted
 * text into a checked schema with errors a data engineer can act on ("which file, which field, what was expected").
 *
 * Validation is done twice: once by hand here, for readable messages that name the field, and once by `avsc`
 * (`Type.forSchema`), so that anything this module accepts is also accepted by the Avro library that encodes the
 * binary format. On top of the Avro specification it is strict about the logical types effect-etl maps
 * (`decimal`, `uuid`, `date`, `timestamp-millis`, `timestamp-micros`): a known logical type on the wrong underlying
 * type, or a decimal without a valid precision/scale, is an error instead of being silently ignored. Other logical
 * types (`time-millis`, `local-timestamp-millis`, ...) are accepted and read as their underlying type, as the
 * specification requires.
 *
 * @example
 * ```ts
 * import * as AvroSchema from "./AvroSchema.ts"
 * const avro = yield* AvroSchema.parse(text, { file: "schemas/transaction.avsc" })
 * AvroSchema.fullName(avro) // "com.effectetl.Transaction"
 * ```
 */
import avro from "avsc"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"

// -----------------------------------------------------------------------------
// Types
// -----------------------------------------------------------------------------

/** The eight Avro primitive type names. */
export type Primitive = "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string"

/** The primitive type names, as a list (in the order of the Avro specification). */
export const primitives: ReadonlyArray<Primitive> = [
  "null",
  "boolean",
  "int",
  "long",
  "float",
  "double",
  "bytes",
  "string"
]

/** Extra attributes that Avro allows on any schema object (`doc`, custom properties, ...). */
export interface Attributes {
  readonly [attribute: string]: unknown
}

/**
 * A primitive written as an object, optionally carrying a logical type:
 * `{ "type": "long", "logicalType": "timestamp-millis" }`, `{ "type": "bytes", "logicalType": "decimal",
 * "precision": 18, "scale": 2 }`, `{ "type": "string", "logicalType": "uuid" }`.
 */
export interface PrimitiveSchema extends Attributes {
  readonly type: Primitive
  readonly logicalType?: string
  readonly precision?: number
  readonly scale?: number
}

/** One field of a record. `default` is written in Avro's JSON encoding (for a union: a value of the first branch). */
export interface Field extends Attributes {
  readonly name: string
  readonly type: Schema
  readonly doc?: string
  readonly default?: unknown
  readonly order?: "ascending" | "descending" | "ignore"
  readonly aliases?: ReadonlyArray<string>
}

/** A record: a named list of fields. */
export interface RecordSchema extends Attributes {
  readonly type: "record"
  readonly name: string
  readonly namespace?: string
  readonly doc?: string
  readonly aliases?: ReadonlyArray<string>
  readonly fields: ReadonlyArray<Field>
}

/** An enum: a named set of symbols. */
export interface EnumSchema extends Attributes {
  readonly type: "enum"
  readonly name: string
  readonly namespace?: string
  readonly doc?: string
  readonly aliases?: ReadonlyArray<string>
  readonly symbols: ReadonlyArray<string>
  readonly default?: string
}

/** An array of items of one type. */
export interface ArraySchema extends Attributes {
  readonly type: "array"
  readonly items: Schema
}

/** A map from strings to values of one type. */
export interface MapSchema extends Attributes {
  readonly type: "map"
  readonly values: Schema
}

/** A fixed-size byte sequence, possibly carrying the `decimal` logical type. */
export interface FixedSchema extends Attributes {
  readonly type: "fixed"
  readonly name: string
  readonly namespace?: string
  readonly aliases?: ReadonlyArray<string>
  readonly size: number
  readonly logicalType?: string
  readonly precision?: number
  readonly scale?: number
}

/** A union, written as a JSON array of its branches: `["null", "string"]`. */
export type UnionSchema = ReadonlyArray<Schema>

/** A named type (record, enum or fixed). */
export type NamedSchema = RecordSchema | EnumSchema | FixedSchema

/**
 * Any Avro schema: a primitive name, a reference to a named type defined earlier (`"com.effectetl.Status"`), a schema
 * object, or a union.
 */
export type Schema =
  | Primitive
  | (string & {})
  | PrimitiveSchema
  | RecordSchema
  | EnumSchema
  | ArraySchema
  | MapSchema
  | FixedSchema
  | UnionSchema

/** The logical types that effect-etl maps to a dedicated representation (see `AvroBridge`). */
export type LogicalType = "decimal" | "uuid" | "date" | "timestamp-millis" | "timestamp-micros"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * An `.avsc` text that is not valid JSON or not a valid Avro schema. `file` is where it came from (a path, or a label
 * such as `memory:transaction`), `path` points at the offending part (`amount`, `items[].price`, `status.symbols`),
 * and `reason` says what was expected. `message` combines the three.
 */
export class AvroSchemaError extends Data.TaggedError("AvroSchemaError")<{
  readonly file: string | undefined
  readonly path: string
  readonly reason: string
  readonly message: string
}> {}

const makeError = (file: string | undefined, path: string, reason: string): AvroSchemaError =>
  new AvroSchemaError({
    file,
    path,
    reason,
    message: `Invalid Avro schema${file === undefined ? "" : ` in ${file}`}${path === "" ? "" : ` at ${path}`}: ${reason}`
  })

// -----------------------------------------------------------------------------
// Names
// -----------------------------------------------------------------------------

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const primitiveSet: ReadonlySet<string> = new Set(primitives)

/** True for the eight primitive type names. */
export const isPrimitive = (name: string): name is Primitive => primitiveSet.has(name)

/** True for a valid Avro name (`[A-Za-z_][A-Za-z0-9_]*`). */
export const isValidName = (name: string): boolean => NAME.test(name)

/**
 * The full name of a named type, given the namespace that encloses it: a dotted `name` is already full; otherwise
 * `namespace` (its own, or else the enclosing one) is prefixed.
 */
export const qualify = (name: string, namespace: string | undefined): string =>
  name.includes(".") || namespace === undefined || namespace === "" ? name : `${namespace}.${name}`

/** The namespace a named type defines for the types nested in it. */
export const namespaceOf = (schema: NamedSchema, enclosing: string | undefined): string | undefined => {
  if (schema.name.includes(".")) return schema.name.slice(0, schema.name.lastIndexOf("."))
  return schema.namespace ?? enclosing
}

/** The full name of a named schema (`com.effectetl.Transaction`), or `undefined` for other schemas. */
export const fullName = (schema: Schema, enclosingNamespace?: string): string | undefined => {
  if (typeof schema === "string" || isUnion(schema) || !isNamed(schema)) return undefined
  return qualify(schema.name, schema.namespace ?? enclosingNamespace)
}

/** True for unions (JSON arrays). */
export const isUnion = (schema: Schema): schema is UnionSchema => Array.isArray(schema)

/** True for records, enums and fixed types. */
export const isNamed = (schema: Exclude<Schema, string | UnionSchema>): schema is NamedSchema =>
  schema.type === "record" || schema.type === "enum" || schema.type === "fixed"

/** The last segment of a full name: `com.effectetl.Transaction` → `Transaction`. */
export const shortName = (name: string): string => name.slice(name.lastIndexOf(".") + 1)

// -----------------------------------------------------------------------------
// Validation
// -----------------------------------------------------------------------------

const isObject = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const show = (u: unknown): string => {
  if (u === undefined) return "nothing"
  const text = JSON.stringify(u)
  return text === undefined ? String(u) : text.length > 80 ? `${text.slice(0, 77)}...` : text
}

class Invalid {
  readonly path: string
  readonly reason: string
  constructor(path: string, reason: string) {
    this.path = path
    this.reason = reason
  }
}

const join = (path: string, segment: string): string => (path === "" ? segment : `${path}.${segment}`)

interface Scope {
  readonly namespace: string | undefined
  readonly defined: Map<string, Schema>
}

const LOGICAL_BASES: Record<LogicalType, string> = {
  decimal: "bytes or fixed",
  uuid: "string",
  date: "int",
  "timestamp-millis": "long",
  "timestamp-micros": "long"
}

const isLogicalType = (name: unknown): name is LogicalType =>
  name === "decimal" || name === "uuid" || name === "date" || name === "timestamp-millis" || name === "timestamp-micros"

/** Largest number of decimal digits that a two's complement number of `size` bytes can always hold. */
export const maxDecimalPrecision = (size: number): number => Math.floor(Math.log10(2) * (8 * size - 1))

const checkLogical = (schema: { readonly [key: string]: unknown }, base: string, path: string): Invalid | undefined => {
  const logical = schema.logicalType
  if (logical === undefined) return undefined
  if (typeof logical !== "string") return new Invalid(path, `"logicalType" must be a string, got ${show(logical)}`)
  if (!isLogicalType(logical)) return undefined
  const expected = LOGICAL_BASES[logical]
  if (!expected.split(" or ").includes(base)) {
    return new Invalid(path, `logical type "${logical}" must annotate ${expected}, not ${base}`)
  }
  if (logical !== "decimal") return undefined
  const precision = schema.precision
  if (typeof precision !== "number" || !Number.isInteger(precision) || precision < 1) {
    return new Invalid(path, `decimal needs "precision", an integer of at least 1, got ${show(precision)}`)
  }
  const scale = schema.scale ?? 0
  if (typeof scale !== "number" || !Number.isInteger(scale) || scale < 0 || scale > precision) {
    return new Invalid(
      path,
      `decimal "scale" must be an integer between 0 and the precision (${precision}), got ${show(scale)}`
    )
  }
  if (base === "fixed") {
    const size = schema.size as number
    const max = maxDecimalPrecision(size)
    if (precision > max) {
      return new Invalid(
        path,
        `decimal precision ${precision} does not fit in fixed(${size}), which holds ${max} digits`
      )
    }
  }
  return undefined
}

const checkName = (value: unknown, what: string, path: string): Invalid | undefined => {
  if (typeof value !== "string") return new Invalid(path, `${what} must be a string, got ${show(value)}`)
  return value.split(".").every(isValidName)
    ? undefined
    : new Invalid(
        path,
        `${what} ${show(value)} is not a valid Avro name (letters, digits and _, not starting with a digit)`
      )
}

const checkNamed = (
  schema: { readonly [key: string]: unknown },
  scope: Scope,
  path: string
): Invalid | { readonly full: string; readonly inner: Scope } => {
  const problem = checkName(schema.name, `"name"`, path)
  if (problem !== undefined) return problem
  const namespace = schema.namespace
  if (namespace !== undefined && typeof namespace !== "string") {
    return new Invalid(path, `"namespace" must be a string, got ${show(namespace)}`)
  }
  if (namespace !== undefined && namespace !== "") {
    const bad = checkName(namespace, `"namespace"`, path)
    if (bad !== undefined) return bad
  }
  const full = qualify(schema.name as string, namespace ?? scope.namespace)
  if (isPrimitive(full)) return new Invalid(path, `a named type cannot be called "${full}", a primitive type name`)
  if (scope.defined.has(full)) return new Invalid(path, `the type name "${full}" is defined twice`)
  if (schema.aliases !== undefined) {
    if (!Array.isArray(schema.aliases)) return new Invalid(path, `"aliases" must be an array of names`)
    for (const alias of schema.aliases) {
      const bad = checkName(alias, "alias", path)
      if (bad !== undefined) return bad
    }
  }
  if (schema.doc !== undefined && typeof schema.doc !== "string") {
    return new Invalid(path, `"doc" must be a string, got ${show(schema.doc)}`)
  }
  const dot = full.lastIndexOf(".")
  return { full, inner: { namespace: dot === -1 ? undefined : full.slice(0, dot), defined: scope.defined } }
}

const resolveName = (name: string, scope: Scope, path: string): Schema | Invalid => {
  const found = scope.defined.get(qualify(name, scope.namespace)) ?? scope.defined.get(name)
  if (found !== undefined) return found
  const known = [...scope.defined.keys()]
  return new Invalid(
    path,
    `unknown type ${show(name)}; expected a primitive (${primitives.join(", ")})${
      known.length === 0 ? "" : ` or a named type defined earlier (${known.join(", ")})`
    }`
  )
}

const unionBranchKey = (branch: unknown, scope: Scope): string => {
  if (typeof branch === "string") return isPrimitive(branch) ? branch : qualify(branch, scope.namespace)
  if (!isObject(branch)) return "?"
  const type = branch.type
  if (type === "record" || type === "enum" || type === "fixed") {
    return qualify(String(branch.name), (branch.namespace as string | undefined) ?? scope.namespace)
  }
  return String(type)
}

const checkRecord = (schema: { readonly [key: string]: unknown }, scope: Scope, path: string): Invalid | undefined => {
  const named = checkNamed(schema, scope, path)
  if (named instanceof Invalid) return named
  const { full, inner } = named
  // Registered before the fields so that a field can refer to its own record (recursive types).
  scope.defined.set(full, schema as unknown as Schema)
  if (!Array.isArray(schema.fields)) {
    return new Invalid(path, `record ${full} needs "fields", an array, got ${show(schema.fields)}`)
  }
  const names = new Set<string>()
  for (const [index, field] of (schema.fields as ReadonlyArray<unknown>).entries()) {
    if (!isObject(field))
      return new Invalid(join(path, `fields[${index}]`), `expected a field object, got ${show(field)}`)
    const fieldName = field.name
    if (typeof fieldName !== "string" || !isValidName(fieldName)) {
      return new Invalid(
        join(path, `fields[${index}]`),
        `field "name" must be a valid Avro name, got ${show(fieldName)}`
      )
    }
    const fieldPath = join(path, fieldName)
    if (names.has(fieldName)) return new Invalid(fieldPath, `record ${full} has two fields named "${fieldName}"`)
    names.add(fieldName)
    if (!("type" in field)) return new Invalid(fieldPath, `field "${fieldName}" needs a "type"`)
    if (field.doc !== undefined && typeof field.doc !== "string") {
      return new Invalid(fieldPath, `"doc" must be a string, got ${show(field.doc)}`)
    }
    if (
      field.order !== undefined &&
      field.order !== "ascending" &&
      field.order !== "descending" &&
      field.order !== "ignore"
    ) {
      return new Invalid(fieldPath, `"order" must be "ascending", "descending" or "ignore", got ${show(field.order)}`)
    }
    const problem = checkSchema(field.type, inner, fieldPath)
    if (problem !== undefined) return problem
    if ("default" in field) {
      const bad = checkDefault(field.type as Schema, field.default, inner, fieldPath)
      if (bad !== undefined) {
        return new Invalid(fieldPath, `the default ${show(field.default)} does not match the field type: ${bad}`)
      }
    }
  }
  return undefined
}

const checkEnum = (schema: { readonly [key: string]: unknown }, scope: Scope, path: string): Invalid | undefined => {
  const named = checkNamed(schema, scope, path)
  if (named instanceof Invalid) return named
  const { full } = named
  if (!Array.isArray(schema.symbols) || schema.symbols.length === 0) {
    return new Invalid(path, `enum ${full} needs "symbols", a non-empty array of names, got ${show(schema.symbols)}`)
  }
  const symbols = new Set<string>()
  for (const symbol of schema.symbols as ReadonlyArray<unknown>) {
    if (typeof symbol !== "string" || !isValidName(symbol)) {
      return new Invalid(path, `enum ${full} has an invalid symbol ${show(symbol)}; symbols must be valid Avro names`)
    }
    if (symbols.has(symbol)) return new Invalid(path, `enum ${full} lists the symbol "${symbol}" twice`)
    symbols.add(symbol)
  }
  if (schema.default !== undefined && !symbols.has(schema.default as string)) {
    return new Invalid(path, `enum ${full} has a default ${show(schema.default)} that is not one of its symbols`)
  }
  scope.defined.set(full, schema as unknown as Schema)
  return undefined
}

const checkFixed = (schema: { readonly [key: string]: unknown }, scope: Scope, path: string): Invalid | undefined => {
  const named = checkNamed(schema, scope, path)
  if (named instanceof Invalid) return named
  const size = schema.size
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
    return new Invalid(path, `fixed ${named.full} needs "size", a non-negative integer, got ${show(size)}`)
  }
  const problem = checkLogical(schema, "fixed", path)
  if (problem !== undefined) return problem
  scope.defined.set(named.full, schema as unknown as Schema)
  return undefined
}

const checkUnion = (schema: ReadonlyArray<unknown>, scope: Scope, path: string): Invalid | undefined => {
  if (schema.length === 0) return new Invalid(path, "a union needs at least one branch")
  const seen = new Set<string>()
  for (const [index, branch] of schema.entries()) {
    const branchPath = `${path}<branch ${index}>`
    if (Array.isArray(branch)) return new Invalid(branchPath, "a union cannot directly contain another union")
    const key = unionBranchKey(branch, scope)
    if (seen.has(key)) return new Invalid(path, `a union cannot contain two branches of type "${key}"`)
    seen.add(key)
    const problem = checkSchema(branch, scope, branchPath)
    if (problem !== undefined) return problem
  }
  return undefined
}

const checkSchema = (schema: unknown, scope: Scope, path: string): Invalid | undefined => {
  if (typeof schema === "string") {
    if (isPrimitive(schema)) return undefined
    const found = resolveName(schema, scope, path)
    return found instanceof Invalid ? found : undefined
  }
  if (Array.isArray(schema)) return checkUnion(schema, scope, path)
  if (!isObject(schema)) {
    return new Invalid(path, `expected a type name, a schema object or a union array, got ${show(schema)}`)
  }
  const type = schema.type
  switch (type) {
    case "null":
    case "boolean":
    case "int":
    case "long":
    case "float":
    case "double":
    case "bytes":
    case "string":
      return checkLogical(schema, type, path)
    case "record":
      return checkRecord(schema, scope, path)
    case "enum":
      return checkEnum(schema, scope, path)
    case "fixed":
      return checkFixed(schema, scope, path)
    case "array":
      return "items" in schema
        ? checkSchema(schema.items, scope, `${path}[]`)
        : new Invalid(path, `an array needs "items"`)
    case "map":
      return "values" in schema
        ? checkSchema(schema.values, scope, `${path}{}`)
        : new Invalid(path, `a map needs "values"`)
    case "error":
      return new Invalid(path, `"error" types are only allowed in Avro protocols; use "record"`)
    default:
      return new Invalid(
        path,
        `unknown "type" ${show(type)}; expected a primitive, "record", "enum", "array", "map" or "fixed" ` +
          `(a named type is referred to by its name as a plain string, without an object around it)`
      )
  }
}

// Avro writes bytes defaults as strings of code points 0-255.
const isByteString = (value: unknown): value is string => {
  if (typeof value !== "string") return false
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return false
  return true
}

/**
 * Checks a default value written in Avro's JSON encoding against a type; returns a description of the first problem.
 * Unions take defaults of their first branch; bytes and fixed take strings of code points 0-255.
 */
const checkDefault = (schema: Schema, value: unknown, scope: Scope, path: string): string | undefined => {
  if (typeof schema === "string") {
    switch (schema) {
      case "null":
        return value === null ? undefined : "expected null"
      case "boolean":
        return typeof value === "boolean" ? undefined : "expected a boolean"
      case "int":
        return Number.isInteger(value) && (value as number) >= -2147483648 && (value as number) <= 2147483647
          ? undefined
          : "expected a 32-bit integer"
      case "long":
        return Number.isSafeInteger(value) ? undefined : "expected an integer"
      case "float":
      case "double":
        return typeof value === "number" ? undefined : "expected a number"
      case "bytes":
        return isByteString(value)
          ? undefined
          : "expected a string of code points 0-255 (Avro's JSON encoding of bytes)"
      case "string":
        return typeof value === "string" ? undefined : "expected a string"
      default: {
        const found = resolveName(schema, scope, path)
        return found instanceof Invalid ? found.reason : checkDefault(found, value, scope, path)
      }
    }
  }
  if (Array.isArray(schema)) {
    return checkDefault(schema[0] as Schema, value, scope, path) === undefined
      ? undefined
      : `a union's default must be a value of its first branch (${show(schema[0])})`
  }
  const object = schema as { readonly [key: string]: unknown }
  const type = object.type as string
  switch (type) {
    case "record": {
      if (!isObject(value)) return "expected an object"
      const inner: Scope = {
        namespace: namespaceOf(object as unknown as RecordSchema, scope.namespace),
        defined: scope.defined
      }
      for (const field of object.fields as ReadonlyArray<Field>) {
        if (field.name in value) {
          const problem = checkDefault(field.type, value[field.name], inner, path)
          if (problem !== undefined) return `field "${field.name}": ${problem}`
        } else if (!("default" in field)) {
          return `field "${field.name}" is missing and has no default`
        }
      }
      return undefined
    }
    case "enum":
      return (object.symbols as ReadonlyArray<string>).includes(value as string)
        ? undefined
        : `expected one of ${(object.symbols as ReadonlyArray<string>).join(", ")}`
    case "fixed":
      return isByteString(value) && value.length === object.size
        ? undefined
        : `expected a string of ${String(object.size)} code points 0-255 (Avro's JSON encoding of fixed)`
    case "array":
      if (!Array.isArray(value)) return "expected an array"
      for (const item of value) {
        const problem = checkDefault(object.items as Schema, item, scope, path)
        if (problem !== undefined) return `array item: ${problem}`
      }
      return undefined
    case "map":
      if (!isObject(value)) return "expected an object (map)"
      for (const [key, item] of Object.entries(value)) {
        const problem = checkDefault(object.values as Schema, item, scope, path)
        if (problem !== undefined) return `map value "${key}": ${problem}`
      }
      return undefined
    default:
      return checkDefault(type, value, scope, path)
  }
}

const validateResult = (json: unknown, file: string | undefined): Result.Result<Schema, AvroSchemaError> => {
  const problem = checkSchema(json, { namespace: undefined, defined: new Map() }, "")
  if (problem !== undefined) return Result.fail(makeError(file, problem.path, problem.reason))
  const rejected = avscRejects(json)
  return rejected === undefined
    ? Result.succeed(json as Schema)
    : Result.fail(makeError(file, "", `rejected by avsc: ${rejected}`))
}

// The avsc boundary: it reports invalid schemas by throwing.
const avscRejects = (json: unknown): string | undefined => {
  try {
    avro.Type.forSchema(json as avro.Schema, { wrapUnions: "auto" })
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

const describeJsonError = (text: string, error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  const match = /position (\d+)/.exec(message)
  if (match === null) return message
  const position = Number(match[1])
  const before = text.slice(0, position)
  const line = before.split("\n").length
  const column = position - before.lastIndexOf("\n")
  return `${message.replace(/ in JSON at position \d+.*$/, "")} (line ${line}, column ${column})`
}

const parseResult = (text: string, file: string | undefined): Result.Result<Schema, AvroSchemaError> => {
  const json = parseJson(text)
  return json instanceof Invalid ? Result.fail(makeError(file, "", json.reason)) : validateResult(json.value, file)
}

// JSON.parse reports syntax errors by throwing.
const parseJson = (text: string): { readonly value: unknown } | Invalid => {
  try {
    return { value: JSON.parse(text) as unknown }
  } catch (error) {
    return new Invalid("", `not valid JSON: ${describeJsonError(text, error)}`)
  }
}

/** Where a schema came from, used in error messages. */
export interface SourceOptions {
  /** A path or label (`schemas/transaction.avsc`, `memory:transaction`) shown in errors. */
  readonly file?: string | undefined
}

/**
 * Parses and validates the text of an `.avsc` file.
 *
 * @example
 * ```ts
 * const avro = yield* AvroSchema.parse('{"type":"record","name":"T","fields":[{"name":"id","type":"string"}]}')
 * ```
 */
export const parse = (text: string, options?: SourceOptions): Effect.Effect<Schema, AvroSchemaError> =>
  Effect.suspend(() => Effect.fromResult(parseResult(text, options?.file)))

/** Validates an already JSON-decoded Avro schema. */
export const validate = (json: unknown, options?: SourceOptions): Effect.Effect<Schema, AvroSchemaError> =>
  Effect.suspend(() => Effect.fromResult(validateResult(json, options?.file)))

/** Validates an Avro schema outside of Effect; returns a `Result`. */
export const validateSync = (json: unknown, options?: SourceOptions): Result.Result<Schema, AvroSchemaError> =>
  validateResult(json, options?.file)

/**
 * Validates an Avro schema written in code, and throws the `AvroSchemaError` if it is invalid. Meant for module-level
 * constants whose validity is a programming matter, not for data read at run time (use {@link parse} there).
 */
export const makeUnsafe = <const S extends Schema>(json: S, options?: SourceOptions): S => {
  const result = validateResult(json, options?.file)
  if (Result.isFailure(result)) throw result.failure
  return json
}

/**
 * Writes a primitive given as an object without a logical type as its plain name: `{ "type": "string" }` becomes
 * `"string"`. Everything else is returned as is.
 */
export const unwrap = (schema: Schema): Schema => {
  if (typeof schema === "string" || isUnion(schema)) return schema
  return isPrimitive(schema.type) && (schema as PrimitiveSchema).logicalType === undefined ? schema.type : schema
}
