-- Output: what --json prints.
local output = require "tend.output"
local cjson = require "cjson"

describe("output.json", function()
  it("gives an empty table as an empty list, and nothing as one", function()
    assert.are.equal('{"a":[]}', output.json({ a = {} }))
    assert.are.equal("[]", output.json(nil))
  end)
  it("keeps an empty map marked as an object", function()
    assert.are.equal('{"tags":{}}', output.json({ tags = output.object({}) }))
  end)
  it("does not escape slashes", function()
    assert.are.equal('["ssh://u@h:22/x"]', output.json({ "ssh://u@h:22/x" }))
  end)
  it("writes a child's null as null; what JSON cannot hold becomes a note", function()
    assert.are.equal('{"e":null}', output.json({ e = cjson.null }))
    assert.matches('^{"f":"<type \'function\' is not supported', output.json({ f = function() end }))
    assert.are.equal("[1,2]", output.json({ 1, 2 }))
  end)
  it("gives times in UTC, saying so", function()
    assert.are.equal("1970-01-02T00:00:00Z", output.time(86400))
    assert.is_nil(output.time(nil))
  end)
end)

describe("suggest", function()
  local suggest = require "tend.suggest"
  it("names the closest known word when it is close", function()
    assert.are.equal("backup", suggest.closest("bakup", { "backup", "blank", "check" }))
    assert.are.equal("--rehash", suggest.closest("--rehsh", { "--all", "--rehash" }))
    assert.are.equal("blog", suggest.closest("bolg", { "blog", "wiki" })) -- letters swapped
  end)
  it("says nothing for a word far from all", function()
    assert.is_nil(suggest.closest("zzzzzz", { "backup", "restore" }))
    assert.are.equal("", suggest.hint("x", {}))
  end)
end)
