-- recipe: find, load, validate and run recipes.
-- A recipe file returns { name, summary, params, run [, description] }; it runs in an
-- environment of its own (below): the tend API, a short list of modules, strict
-- globals (reading or setting an undeclared global is an error, so typos are caught).
-- Search path: the folders of --recipes DIR and $TEND_RECIPE_PATH, then
-- $XDG_CONFIG_HOME/tend/recipes (~/.config/tend/recipes), then the bundled set; the
-- first file of a name wins, so a user copy overrides a bundled one. Never the working
-- directory unless it is put on the path: a recipes/ folder wherever root or cron
-- happens to run tend is not code to run.
local core = require "tend.core"
local errors = require "tend.errors"
local duration = require "tend.duration"
local fs = core.fs

local M = {}

local FIELDS = { name = "string", summary = "string", params = "table", run = "function",
  description = "string" }
local REQUIRED = { "name", "summary", "run" }
local PARAM_FIELDS = { name = "string", type = "string", help = "string", default = true,
  required = "boolean", positional = "boolean", short = "string", list = "boolean", choices = "table" }
local TYPES = { instance = true, string = true, int = true, bool = true, duration = true, path = true }

M.extra = {} -- folders from --recipes DIR (cli), searched first

function M.path()
  local dirs = {}
  for _, d in ipairs(M.extra) do dirs[#dirs + 1] = d end
  for d in (os.getenv("TEND_RECIPE_PATH") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = d end
  local config = os.getenv("XDG_CONFIG_HOME")
  if not config or config == "" then config = (os.getenv("HOME") or "") .. "/.config" end
  dirs[#dirs + 1] = config .. "/tend/recipes"
  return dirs
end

-- What a recipe sees as globals: Lua's basic functions and safe libraries, `tend` (the
-- recipe API, tend.api), a part of os, and a require that hands out cjson and the
-- library's modules but not the engine (tend.core) or Lua's own io/os/debug/package.
local SAFE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "select",
  "tonumber", "tostring", "type", "xpcall", "rawequal", "rawget", "rawlen", "rawset",
  "setmetatable", "getmetatable", "string", "table", "math", "utf8", "coroutine" }
local OS = { time = true, date = true, clock = true, getenv = true, difftime = true }
local WHY = "recipes work on instances through tend's API (docs/recipes.md)"
local NOT_ALLOWED = { io = true, load = true, loadfile = true, dofile = true, package = true,
  debug = true, collectgarbage = true }

-- allowed(name) -> whether a recipe may require that module.
function M.allowed(name)
  if name == "cjson" then return true end
  return name:match("^tend%.[%w_.]+$") ~= nil and name ~= "tend.core" and not name:match("^tend%.core%.")
end

local function strict_env(label)
  local env = {}
  for _, k in ipairs(SAFE) do env[k] = _G[k] end
  env.os = setmetatable({}, {
    __index = function(_, k)
      if OS[k] then return os[k] end
      error(("%s: os.%s is not allowed in a recipe; %s"):format(label, tostring(k), WHY), 2)
    end,
    __newindex = function() error(label .. ": os is read-only", 2) end })
  env.tend = require "tend.api"
  env.require = function(name)
    if type(name) ~= "string" or not M.allowed(name) then
      error(("%s: require %q is not allowed in a recipe (it may require cjson and tend.* but tend.core); %s")
        :format(label, tostring(name), WHY), 2)
    end
    return require(name)
  end
  return setmetatable(env, {
    __index = function(_, k)
      if NOT_ALLOWED[k] then error(("%s: %s is not allowed in a recipe; %s"):format(label, tostring(k), WHY), 2) end
      error(("%s: undefined global '%s'"):format(label, tostring(k)), 2)
    end,
    __newindex = function(_, k) error(("%s: assignment to undeclared global '%s' (use local)"):format(label, tostring(k)), 2) end,
  })
end

local function validate_param(label, i, p)
  if type(p) ~= "table" then errors.fail("%s: params[%d] must be a table", label, i) end
  for k, v in pairs(p) do
    local want = PARAM_FIELDS[k]
    if not want then errors.fail("%s: params[%d]: unknown key '%s'", label, i, tostring(k)) end
    if want ~= true and type(v) ~= want then
      errors.fail("%s: params[%d].%s must be a %s", label, i, k, want)
    end
  end
  if not p.name or not p.name:match("^[%a][%w-]*$") then errors.fail("%s: params[%d] needs a name", label, i) end
  p.type = p.type or "string"
  if not TYPES[p.type] then errors.fail("%s: param %s: unknown type '%s'", label, p.name, p.type) end
end

-- validate(r, label) -> r: every field known and of its type; raises a job failure.
function M.validate(r, label)
  if type(r) ~= "table" then errors.fail("%s: a recipe must return a table", label) end
  for k, v in pairs(r) do
    local want = FIELDS[k]
    if not want then errors.fail("%s: unknown key '%s'", label, tostring(k)) end
    if type(v) ~= want then errors.fail("%s: '%s' must be a %s", label, k, want) end
  end
  for _, k in ipairs(REQUIRED) do
    if r[k] == nil then errors.fail("%s: missing '%s'", label, k) end
  end
  r.params = r.params or {}
  for i, p in ipairs(r.params) do validate_param(label, i, p) end
  return r
end

-- load(source, origin) -> recipe (validated)
function M.load(source, origin)
  local label = "recipe " .. origin
  local chunk, msg = load(source, "@" .. origin, "t", strict_env(label))
  if not chunk then errors.fail("%s: %s", label, msg) end
  local ok, r = pcall(chunk)
  if not ok then errors.fail("%s: %s", label, errors.message(r)) end
  r = M.validate(r, label)
  r.origin = origin
  return r
end

local function bundled_files()
  if core.lua_dir then
    local dir = core.lua_dir .. "/../recipes"
    local out = {}
    for _, f in ipairs(fs.list(dir) or {}) do
      if f:match("%.lua$") then out["recipes/" .. f] = assert(fs.read(dir .. "/" .. f)) end
    end
    return out
  end
  return core.embedded
end

-- find(name) -> source, origin | nil
function M.find(name)
  if not name:match("^[%w][%w_-]*$") then return nil end
  for _, dir in ipairs(M.path()) do
    local file = dir .. "/" .. name .. ".lua"
    local src = fs.read(file)
    if src then return src, file end
  end
  local src = bundled_files()["recipes/" .. name .. ".lua"]
  if src then return src, "bundled:" .. name end
end

-- all() -> { {name=, summary=, origin=}, ... } sorted; the first of each name wins.
function M.all()
  local seen, out = {}, {}
  local function add(name, src, origin)
    if seen[name] then return end
    seen[name] = true
    local ok, r = pcall(M.load, src, origin)
    out[#out + 1] = { name = name, origin = origin,
      summary = ok and r.summary or ("(broken: " .. (errors.message(r)) .. ")") }
  end
  for _, dir in ipairs(M.path()) do
    for _, f in ipairs(fs.list(dir) or {}) do
      local name = f:match("^([%w][%w_-]*)%.lua$")
      if name then add(name, assert(fs.read(dir .. "/" .. f)), dir .. "/" .. f) end
    end
  end
  local bundled, names = bundled_files(), {}
  for path in pairs(bundled) do names[#names + 1] = path end
  table.sort(names)
  for _, path in ipairs(names) do
    local name = path:match("^recipes/(.+)%.lua$")
    if name then add(name, bundled[path], "bundled:" .. name) end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- Convert one argument's text to its parameter's type.
local function convert(ctx, p, text)
  local t = p.type
  if p.choices then
    for _, c in ipairs(p.choices) do if c == text then return text end end
    local list = table.concat(p.choices, ", ", 1, #p.choices - 1) .. " or " .. p.choices[#p.choices]
    errors.usage("%s: say %s, not %q", p.positional and p.name:upper() or "--" .. p.name, list, tostring(text))
  end
  if t == "string" then return text end
  if t == "int" then
    local n = math.tointeger(tonumber(text))
    if not n then errors.usage("--%s: %q is not a whole number", p.name, text) end
    return n
  end
  if t == "bool" then
    if text == true or text == "true" or text == "yes" or text == "1" then return true end
    if text == false or text == "false" or text == "no" or text == "0" then return false end
    errors.usage("--%s: %q is not true or false", p.name, tostring(text))
  end
  if t == "duration" then
    local s, msg = duration.parse(text)
    if not s then errors.usage("--%s: %s", p.name, msg) end
    return s
  end
  if t == "path" then
    if text:sub(1, 1) == "/" then return text end
    return (os.getenv("PWD") or ".") .. "/" .. text
  end
  if t == "instance" then return ctx:instance(text) end
end

local function by_option(params, word)
  local long = word:match("^%-%-([%w-]+)$")
  local short = word:match("^%-(%a)$")
  for _, p in ipairs(params) do
    if (long and p.name == long) or (short and p.short == short) then return p end
  end
  local negated = word:match("^%-%-no%-([%w-]+)$")
  for _, p in ipairs(params) do
    if negated and p.name == negated and p.type == "bool" then return p, false end
  end
end

-- parse_args(ctx, r, argv) -> args.  Options --name VALUE (or --name=VALUE), bools as
-- --name / --no-name (or --name=false), positionals in the order the positional params
-- are declared, everything after -- positional. The one parser: built-in commands
-- declare their options as params too (cli's getopts; r.builtin: no `tend help` hint).
function M.parse_args(ctx, r, argv)
  local raw, positionals, i = {}, {}, 1 -- raw[p] = {text, ...}: converted once all is read
  local function give(p, text)
    raw[p] = raw[p] or {}
    table.insert(raw[p], text)
  end
  while i <= #argv do
    local word = argv[i]
    local name, inline = word:match("^(%-%-[%w-]+)=(.*)$")
    if word == "--" then
      table.move(argv, i + 1, #argv, #positionals + 1, positionals)
      break
    elseif word:sub(1, 1) == "-" and #word > 1 and not tonumber(word) then
      local p, value = by_option(r.params, name or word)
      if not p then
        local known = {}
        for _, q in ipairs(r.params) do if not q.positional then known[#known + 1] = "--" .. q.name end end
        errors.usage("%s: unknown option %s%s%s", r.name, name or word, require("tend.suggest").hint(name or word, known),
          r.builtin and "" or (" (tend help " .. r.name .. ")"))
      end
      if p.type == "bool" and not inline then
        give(p, value == nil and true or value)
      else
        local text = inline or argv[i + 1]
        if text == nil then errors.usage("%s: %s needs a value", r.name, word) end
        if not inline then i = i + 1 end
        give(p, text)
      end
    else
      positionals[#positionals + 1] = word
    end
    i = i + 1
  end
  local slot = 1
  for _, p in ipairs(r.params) do
    while p.positional and positionals[slot] ~= nil and (p.list or not raw[p]) do
      give(p, positionals[slot])
      slot = slot + 1
    end
  end
  if positionals[slot] ~= nil then
    errors.usage("%s: unexpected argument %q (tend help %s)", r.name, positionals[slot], r.name)
  end
  local args = {}
  for _, p in ipairs(r.params) do
    if raw[p] then
      if p.list then
        args[p.name] = {}
        for k, text in ipairs(raw[p]) do args[p.name][k] = convert(ctx, p, text) end
      else
        args[p.name] = convert(ctx, p, raw[p][#raw[p]])
      end
    elseif p.default ~= nil then
      args[p.name] = type(p.default) == "string" and convert(ctx, p, p.default) or p.default
    elseif p.required then
      errors.usage("%s: missing %s (tend help %s)", r.name, p.positional and p.name:upper() or "--" .. p.name, r.name)
    end
  end
  return args
end

-- getopts(argv, spec, what) -> opts, positionals.  spec: {name = "value"|"bool"|"list"}:
-- a built-in command's options, parsed as a recipe's params are (parse_args), so
-- --name=VALUE, --no-name and -- behave the same everywhere.
function M.getopts(argv, spec, what)
  local params = {}
  for name, kind in pairs(spec) do
    params[#params + 1] = { name = name, type = kind == "bool" and "bool" or "string", list = kind == "list" or nil,
      short = #name == 1 and name or nil }
  end
  table.sort(params, function(a, b) return a.name < b.name end)
  params[#params + 1] = { name = " words", type = "string", positional = true, list = true }
  local opts = M.parse_args(nil, { name = what, params = params, builtin = true }, argv)
  local pos = opts[" words"] or {}
  opts[" words"] = nil
  return opts, pos
end

-- argv(r, args) -> the words that parse back into args: a child tend running the same
-- recipe (ctx:each). Instances by name, durations in seconds, nil args left out.
function M.argv(r, args)
  local words, positionals = {}, {}
  for _, p in ipairs(r.params) do
    local v = args[p.name]
    for _, x in ipairs(v == nil and {} or (p.list and v or { v })) do
      local text = type(x) == "table" and x.name or tostring(x)
      if p.positional then positionals[#positionals + 1] = text
      elseif p.type == "bool" then words[#words + 1] = (x and "--" or "--no-") .. p.name
      else words[#words + 1] = ("--%s=%s"):format(p.name, text) end
    end
  end
  words[#words + 1] = "--"
  return table.move(positionals, 1, #positionals, #words + 1, words)
end

-- call(ctx, name, argv) -> what the recipe's run returns: one recipe run from another.
function M.call(ctx, name, argv)
  local src, origin = M.find(name)
  if not src then errors.fail("no recipe named %s", name) end
  local r = M.load(src, origin)
  return r.run(ctx, M.parse_args(ctx, r, argv))
end

-- usage(r) -> the text of `tend help RECIPE`.
function M.usage(r)
  local synopsis, lines = { "tend " .. r.name }, {}
  for _, p in ipairs(r.params) do
    local word = p.positional and p.name:upper() or ("--" .. p.name .. (p.type == "bool" and "" or " " .. p.type:upper()))
    synopsis[#synopsis + 1] = p.required and word or "[" .. word .. "]"
    local flag = p.positional and p.name:upper() or "--" .. p.name .. (p.short and ", -" .. p.short or "")
    local default = p.default ~= nil and (" (default: " .. tostring(p.default) .. ")") or ""
    lines[#lines + 1] = ("  %-22s %-9s %s%s"):format(flag, p.type, p.help or "", default)
  end
  local out = { table.concat(synopsis, " "), "", r.summary }
  if r.description then out[#out + 1] = ""; out[#out + 1] = r.description end
  if #lines > 0 then
    out[#out + 1] = ""; out[#out + 1] = "Parameters:"
    for _, l in ipairs(lines) do out[#out + 1] = l end
  end
  out[#out + 1] = ""; out[#out + 1] = "From: " .. r.origin
  return table.concat(out, "\n")
end

return M
