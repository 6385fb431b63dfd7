/**
 * Writes schemas/pipeline-config.schema.json from the config Schema: `npm run gen:schema`.
 */
import * as fs from "node:fs"
import * as JsonSchema from "../src/config/JsonSchema.ts"

fs.writeFileSync(new URL("../schemas/pipeline-config.schema.json", import.meta.url), JsonSchema.text())
console.log("wrote schemas/pipeline-config.schema.json")
