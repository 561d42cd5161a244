-- Recipes: validation on load, strict globals, typed argument parsing, usage text.
local recipe = require "tend.recipe"
local errors = require "tend.errors"

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  assert.is_true(errors.is(err), "expected a tend error, got " .. tostring(err))
  assert.matches(pattern, err.msg)
  return err
end

local model = [[
return {
  name = "demo", summary = "a demo",
  params = {
    { name = "instance", type = "string", positional = true, required = true },
    { name = "jobs", type = "int", short = "j", default = 1 },
    { name = "every", type = "duration", default = "1d" },
    { name = "dry-run", type = "bool" },
    { name = "exclude", list = true },
  },
  run = function(ctx, args) return args end,
}]]

describe("recipe loading", function()
  it("loads and validates a good recipe", function()
    local r = recipe.load(model, "test:demo")
    assert.are.equal("demo", r.name)
    assert.are.equal("test:demo", r.origin)
    assert.are.equal("string", r.params[5].type) -- type defaults to string
  end)
  it("refuses unknown keys, wrong types and missing fields", function()
    raises("unknown key 'colour'", recipe.load, "return { name='x', summary='y', run=function() end, colour='red' }", "t")
    raises("'summary' must be a string", recipe.load, "return { name='x', summary=1, run=function() end }", "t")
    raises("missing 'run'", recipe.load, "return { name='x', summary='y' }", "t")
    raises("params%[1%]: unknown key 'flag'", recipe.load,
      "return { name='x', summary='y', run=function() end, params={{name='a', flag=true}} }", "t")
    raises("unknown type 'float'", recipe.load,
      "return { name='x', summary='y', run=function() end, params={{name='a', type='float'}} }", "t")
    raises("must return a table", recipe.load, "return 42", "t")
  end)
  it("runs the recipe with strict globals", function()
    local r = recipe.load("return { name='x', summary='y', run=function() return undefined_name end }", "t")
    local ok, err = pcall(r.run)
    assert.is_false(ok)
    assert.matches("undefined global 'undefined_name'", err)
    raises("assignment to undeclared global 'oops'", recipe.load, "oops = 1", "t")
  end)
  it("gives recipes the tend API, and refuses io, os.execute, the engine and Lua's modules", function()
    local r = recipe.load("return { name='x', summary='y', run=function() return tend.version, os.time() end }", "t")
    local version, now = r.run()
    assert.are.equal(require("tend").version, version)
    assert.is_number(now)
    local function refused(code, what)
      local rr = recipe.load("return { name='x', summary='y', run=function() return " .. code .. " end }", "t")
      local ok, err = pcall(rr.run)
      assert.is_false(ok, code)
      assert.matches(what, err, 1, true)
      assert.matches("recipes work on instances through tend's API", err, 1, true)
    end
    refused("io.open('/etc/passwd')", "io is not allowed in a recipe")
    refused("os.execute('true')", "os.execute is not allowed in a recipe")
    refused("require 'os'", 'require "os" is not allowed in a recipe')
    refused("require 'io'", 'require "io" is not allowed in a recipe')
    refused("require 'tend.core'", 'require "tend.core" is not allowed in a recipe')
    refused("require 'tend'", 'require "tend" is not allowed in a recipe')
    refused("load('return 1')", "load is not allowed in a recipe")
    refused("package.loaded", "package is not allowed in a recipe")
    refused("tend.core", "tend.core") -- the API holds no engine
    assert.is_table(recipe.load("return { name='x', summary='y', run=function() return require 'tend.snapshot' end }", "t").run())
    assert.is_table(recipe.load("return { name='x', summary='y', run=function() return require 'cjson' end }", "t").run())
  end)
end)

describe("argument parsing", function()
  local r = recipe.load(model, "t")
  local ctx = {}
  it("applies defaults and types", function()
    local a = recipe.parse_args(ctx, r, { "prod" })
    assert.are.same({ instance = "prod", jobs = 1, every = 86400 }, a)
  end)
  it("reads options in every spelling", function()
    local a = recipe.parse_args(ctx, r, { "--jobs=4", "prod", "--every", "12h", "--dry-run", "--exclude", "a", "--exclude", "b" })
    assert.are.same({ instance = "prod", jobs = 4, every = 43200, ["dry-run"] = true, exclude = { "a", "b" } }, a)
    assert.are.equal(3, recipe.parse_args(ctx, r, { "-j", "3", "prod" }).jobs)
    assert.are.equal(false, recipe.parse_args(ctx, r, { "prod", "--no-dry-run" })["dry-run"])
  end)
  it("says what is wrong, as a usage error", function()
    assert.are.equal(2, raises("missing INSTANCE", recipe.parse_args, ctx, r, {}).code)
    raises("unknown option %-%-nope", recipe.parse_args, ctx, r, { "prod", "--nope" })
    raises("%-%-jobs: \"x\" is not a whole number", recipe.parse_args, ctx, r, { "prod", "--jobs", "x" })
    raises("%-%-every: bad duration", recipe.parse_args, ctx, r, { "prod", "--every", "soon" })
    raises("unexpected argument \"extra\"", recipe.parse_args, ctx, r, { "prod", "extra" })
    raises("%-%-jobs needs a value", recipe.parse_args, ctx, r, { "prod", "--jobs" })
  end)
  it("takes only the words a parameter with choices names", function()
    local pick = recipe.load([[return { name = "pick", summary = "s", run = function() end, params = {
      { name = "state", positional = true, required = true, choices = { "on", "off" } },
      { name = "mode", choices = { "a", "b", "c" } } } }]], "t")
    assert.are.same({ state = "off", mode = "c" }, recipe.parse_args(ctx, pick, { "off", "--mode", "c" }))
    assert.are.equal(2, raises('STATE: say on or off, not "sideways"', recipe.parse_args, ctx, pick, { "sideways" }).code)
    raises('%-%-mode: say a, b or c, not "d"', recipe.parse_args, ctx, pick, { "on", "--mode=d" })
  end)
  it("shows usage with every parameter", function()
    local text = recipe.usage(r)
    assert.matches("^tend demo INSTANCE %[%-%-jobs INT%]", text)
    assert.matches("%-%-jobs, %-j +int +%(default: 1%)", text)
    assert.matches("%-%-every +duration +%(default: 1d%)", text)
  end)
end)
