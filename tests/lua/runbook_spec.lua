-- A job's steps and undos (Context:step, :undo, :rollback): a failure names its step and
-- keeps its exit code; the undos run newest first, and the first that fails stops them.
local Context = require "tend.context"
local errors = require "tend.errors"

local function quiet() return Context.new({ home = os.tmpname() .. ".d", quiet = true }) end

describe("ctx:step", function()
  it("returns what the step returns", function()
    local a, b = quiet():step("add", function(x, y) return x + y, "two" end, 1, 2)
    assert.are.equal(3, a)
    assert.are.equal("two", b)
  end)
  it("names the failed step, and the instance it worked on", function()
    local ctx = quiet()
    local inst = { name = "blog", ctx = ctx }
    local ok, e = pcall(ctx.step, ctx, "migration", function() errors.fail("exit 3") end, inst)
    assert.is_false(ok)
    assert.are.equal("blog: migration: exit 3", e.msg)
    assert.are.equal(1, e.code)
    ok, e = pcall(ctx.step, ctx, "plan", function() errors.usage("no such version") end)
    assert.are.equal("plan: no such version", e.msg)
    assert.are.equal(2, e.code, "a usage error stays a usage error")
    ok, e = pcall(ctx.step, ctx, "code", function() error("a Lua error") end)
    assert.matches("^code: .*a Lua error", e.msg)
  end)
end)

describe("ctx:rollback", function()
  it("runs the undos newest first and says what was undone", function()
    local ctx, ran = quiet(), {}
    ctx:undo("page off", function() ran[#ran + 1] = "page" end)
    ctx:undo("restore of snapshot 3", function() ran[#ran + 1] = "restore" end)
    local e = ctx:rollback(errors.new(1, "migration: failed"))
    assert.are.same({ "restore", "page" }, ran)
    assert.are.equal("migration: failed; undone: restore of snapshot 3, page off", e.msg)
    assert.are.equal(1, e.code)
    assert.are.equal("again", ctx:rollback(errors.new(4, "again")).msg, "undos run once")
  end)
  it("stops at the first undo that fails, and says what was not done", function()
    local ctx, ran = quiet(), {}
    ctx:undo("page off", function() ran[#ran + 1] = "page" end)
    ctx:undo("restore of snapshot 3", function() error("disk full", 0) end)
    ctx:undo("drop the new table", function() ran[#ran + 1] = "drop" end)
    local e = ctx:rollback(errors.new(2, "boom"))
    assert.are.same({ "drop" }, ran, "the page stays up when the restore failed")
    assert.are.equal("boom; undone: drop the new table; undo failed: restore of snapshot 3: disk full; not done: page off", e.msg)
    assert.are.equal(2, e.code)
  end)
  it("leaves a failure alone when there is nothing to undo", function()
    assert.are.equal("plain", quiet():rollback("plain").msg)
  end)
end)
