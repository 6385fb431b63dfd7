import { assert, describe, it } from "@effect/vitest"
import * as Redaction from "../../src/secrets/Redaction.ts"

describe("Redaction", () => {
  const scrub = Redaction.scrubber(["test", "!pw!", "hunter2", "alice", "postgres://bob:s%C3%A9cret@db/app"])

  it("scrubs a value wherever it stands as itself: quoted, in a URL, in a derived identifier", () => {
    assert.strictEqual(scrub('role "alice" does not exist'), 'role "<redacted>" does not exist')
    assert.strictEqual(scrub("alice__etl_1a2b"), "<redacted>__etl_1a2b")
    assert.strictEqual(scrub("connect postgres://u:hunter2@h:5432"), "connect postgres://u:<redacted>@h:5432")
    assert.strictEqual(scrub("x!pw!y"), "x<redacted>y")
  })

  it("scrubs the user and password of a recorded URL, escaped or not", () => {
    assert.strictEqual(
      scrub('password authentication failed for user "bob"'),
      'password authentication failed for user "<redacted>"'
    )
    assert.strictEqual(scrub("secret is sécret"), "secret is <redacted>")
    assert.strictEqual(scrub("raw s%C3%A9cret"), "raw <redacted>")
  })

  it("leaves a value inside a longer word alone, and short values everywhere", () => {
    assert.strictEqual(scrub("the latest tests"), "the latest tests")
    assert.strictEqual(scrub("test"), "<redacted>")
    assert.strictEqual(Redaction.scrubber(["ab"])("ab cd"), "ab cd")
  })
})
