-- repl: evaluation (expressions, statements, incomplete input, errors), the tree
-- printer, and completion over an environment with real instances in a catalog.
local repl = require "tend.repl"
local Context = require "tend.context"
local instance = require "tend.instance"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end

describe("repl.eval", function()
  local env = setmetatable({}, { __index = _G })

  it("returns an expression's values", function()
    assert.are.same({ "ok", 42, "x" }, { repl.eval(env, "6 * 7, 'x'") })
  end)
  it("runs statements, which keep their globals", function()
    assert.are.same({ "ok" }, { repl.eval(env, "answer = 41 + 1") })
    assert.are.same({ "ok", 42 }, { repl.eval(env, "answer") })
  end)
  it("asks for more while the input is not complete", function()
    assert.are.equal("more", repl.eval(env, "function f(x)"))
    assert.are.equal("more", repl.eval(env, "t = {"))
    assert.are.same({ "ok", 9 }, { repl.eval(env, "function f(x) return x * x end return f(3)") })
  end)
  it("turns syntax and run-time errors into messages", function()
    local status, msg = repl.eval(env, "1 +* 2")
    assert.are.equal("error", status)
    assert.matches("unexpected symbol", msg)
    status, msg = repl.eval(env, "nosuch.field")
    assert.are.equal("error", status)
    assert.matches("attempt to index a nil value %(global 'nosuch'%)", msg)
  end)
end)

describe("repl.show", function()
  it("writes scalars as Lua does, strings quoted", function()
    assert.are.equal("42", repl.show(42))
    assert.are.equal('"a\\nb"', repl.show("a\nb"))
    assert.are.equal("nil", repl.show(nil))
  end)
  it("writes tables as indented trees: sequence items first, keys sorted", function()
    assert.are.equal('{\n  "a",\n  "b",\n  x = 1,\n  y = {\n    z = true,\n  },\n}',
      repl.show({ "a", "b", y = { z = true }, x = 1 }))
    assert.are.equal("{}", repl.show({}))
  end)
  it("cuts cycles and uses __tostring", function()
    local t = {}
    t.self = t
    assert.are.equal("{\n  self = {...} (seen above),\n}", repl.show(t))
    assert.are.equal("thing", repl.show(setmetatable({}, { __tostring = function() return "thing" end })))
  end)
end)

describe("repl.completions", function()
  local ctx, env
  setup(function()
    ctx = Context.new({ home = tmpdir(), quiet = true })
    instance.add(ctx:catalog(), "prodsite", { app = "generic", path = "/srv/a" }, {})
    instance.add(ctx:catalog(), "prodcopy", { app = "generic", path = "/srv/b" }, {})
    env = repl.env(ctx)
  end)
  teardown(function() ctx:close(); os.execute("rm -rf " .. ctx.home) end)

  it("offers instance names and globals", function()
    assert.are.same({ "prodcopy", "prodsite" }, repl.completions(ctx, env, "prod", ""))
    assert.are.same({ "tostring" }, repl.completions(ctx, env, "tostr", "x = "))
  end)
  it("offers an instance's methods after ':', its own and tend.instance's", function()
    local got = repl.completions(ctx, env, "", "prodsite:")
    for _, want in ipairs({ "backup", "snapshots", "restore", "exec", "detect", "describe" }) do
      assert.truthy(table.concat(got, " "):find("%f[%w]" .. want .. "%f[^%w]"), want .. " in " .. table.concat(got, " "))
    end
    assert.are.same({ "backup" }, repl.completions(ctx, env, "ba", "prodsite:"))
  end)
  it("offers a table's fields after '.'", function()
    assert.are.same({ "path" }, repl.completions(ctx, env, "pa", "prodsite."))
    assert.are.same({ "insert" }, repl.completions(ctx, env, "ins", "table."))
  end)
  it("binds instances by name, with a readable form", function()
    assert.are.same({ "ok", "/srv/a" }, { repl.eval(env, "prodsite.path") })
    assert.are.equal("instance prodsite (generic at local:/srv/a)", tostring(select(2, repl.eval(env, "prodsite"))))
    assert.are.same({ "ok", 2 }, { repl.eval(env, "#tend.instances()") })
  end)
end)
