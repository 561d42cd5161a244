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

describe("ctx:step naming the instance", function()
  it("says the instance once when the failure names it already", function()
    local ctx = quiet()
    local inst = { name = "my.blog", ctx = ctx }
    local _, e = pcall(ctx.step, ctx, "files", function() errors.fail("instance my.blog: /srv not found") end, inst)
    assert.are.equal("my.blog: files: /srv not found", e.msg)
    _, e = pcall(ctx.step, ctx, "files", function() errors.fail("my.blog: tar: lost") end, { inst = inst })
    assert.are.equal("my.blog: files: tar: lost", e.msg, "a job on the instance (job.inst) names it too")
    _, e = pcall(ctx.step, ctx, "files", function() errors.fail("myXblog: other") end, inst)
    assert.are.equal("my.blog: files: myXblog: other", e.msg, "the name is matched as it is, not as a pattern")
  end)
end)

describe("ctx:each", function()
  local function fleet(ctx, names)
    local list = {}
    for i, n in ipairs(names) do list[i] = { name = n, ctx = ctx } end
    return list
  end
  it("one instance: its entry is the answer and its failure the job's", function()
    local ctx = quiet()
    local entries = ctx:each(fleet(ctx, { "a" }), function(inst) return { instance = inst.name, n = 1 } end)
    assert.are.same({ { instance = "a", n = 1 } }, entries)
    assert.are.same(entries, ctx.answer)
    local ok, e = pcall(ctx.each, ctx, fleet(ctx, { "a" }), function() errors.raise(4, "locked") end)
    assert.is_false(ok)
    assert.are.equal(4, e.code)
    assert.are.equal("locked", e.msg)
  end)
  it("several: every one runs, the failures are entries, and the job fails naming them", function()
    local ctx, ran, said = quiet(), {}, {}
    local ok, e = pcall(ctx.each, ctx, fleet(ctx, { "a", "b", "c" }), function(inst)
      ran[#ran + 1] = inst.name
      if inst.name == "b" then errors.raise(4, "the store is in use") end
      return { instance = inst.name }
    end, { what = "backups", report = function(entry) said[#said + 1] = entry.instance end })
    assert.is_false(ok)
    assert.are.same({ "a", "b", "c" }, ran)
    assert.are.same({ "a", "c" }, said)
    assert.are.equal("1 of 3 backups failed: b", e.msg)
    assert.are.equal(1, e.code)
    assert.are.same({ instance = "b", error = "the store is in use", code = 4 }, ctx.answer[2])
  end)
end)

describe("recipe.argv", function()
  local recipe = require "tend.recipe"
  it("gives the words that parse back into the same args", function()
    local r = recipe.validate({ name = "x", summary = "x", run = function() end, params = {
      { name = "instance", positional = true },
      { name = "rehash", type = "bool" },
      { name = "keep", type = "bool", default = true },
      { name = "exclude", list = true },
      { name = "jobs", type = "int", short = "j", default = 1 },
      { name = "every", type = "duration" } } }, "x")
    local args = { instance = "-odd", rehash = true, keep = false, exclude = { "a b", "--c" }, jobs = 3, every = 90 }
    local words = recipe.argv(r, args)
    assert.are.same({ "--rehash", "--no-keep", "--exclude=a b", "--exclude=--c", "--jobs=3", "--every=90", "--", "-odd" }, words)
    assert.are.same(args, recipe.parse_args(quiet(), r, words))
  end)
end)
