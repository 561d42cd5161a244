-- complete: what the shell may put where the cursor is (tend's bash completion calls
-- `tend __complete CWORD WORD...`). Commands and recipes, their subcommands, options
-- and values: instances, snapshots, jobs, secret names; files are the shell's own.
local recipe = require "tend.recipe"

local M = {}

-- The built-in command groups' words, and which of their words take an instance.
local SUB = {
  instance = { "add", "list", "show", "edit", "rm", "link" },
  secret = { "set", "get", "list", "rm" },
  host = { "list", "check", "trust" },
  store = { "verify", "gc", "cat", "encrypt" },
  schedule = { "add", "list", "rm", "sync", "run" },
  mail = { "config", "test" },
  log = { "show" },
}
local TAKES_INSTANCE = { status = true, ["instance show"] = true, ["instance edit"] = true, ["instance rm"] = true,
  ["instance link"] = true, ["host check"] = true, ["host trust"] = true, exec = true, log = true }
local GLOBAL = { "--home", "--recipes", "--json", "--quiet", "--debug", "--yes", "--version", "--help" }
local BUILTIN = { "instance", "secret", "host", "store", "schedule", "log", "mail", "exec", "repl",
  "recipes", "help", "run", "status" }

local function instance_names(ctx)
  local out = {}
  for i, inst in ipairs(ctx:instances()) do out[i] = inst.name end
  return out
end

local function snapshot_ids(ctx, name)
  local inst = require("tend.instance").get(ctx:catalog(), name or "")
  if not inst then return {} end
  local out = { "latest" }
  for _, s in ipairs(require("tend.snapshot").list(ctx:catalog(), inst)) do out[#out + 1] = tostring(s.id) end
  return out
end

local function recipe_names()
  local out = {}
  for _, r in ipairs(recipe.all()) do out[#out + 1] = r.name end
  return out
end

-- value_param(r, word) -> the param of r whose value follows word ("--to"), or nil
local function value_param(r, word)
  local name = word and word:match("^%-%-([%w-]+)$")
  for _, p in ipairs(r.params) do if name == p.name and p.type ~= "bool" then return p end end
end

-- for_recipe(ctx, r, words, cur) -> candidates for a recipe's argument (words: those
-- before the cursor, after the recipe's name)
local function for_recipe(ctx, r, words, cur)
  local opt = value_param(r, words[#words])
  if opt then return opt.choices or opt.type == "instance" and instance_names(ctx) or {} end
  if cur:sub(1, 1) == "-" then
    local out = {}
    for _, p in ipairs(r.params) do if not p.positional then out[#out + 1] = "--" .. p.name end end
    return out
  end
  local given = {} -- the positional words so far
  for i, w in ipairs(words) do
    if not w:match("^%-") and not value_param(r, words[i - 1]) then given[#given + 1] = w end
  end
  local n = 0
  for _, p in ipairs(r.params) do
    if p.positional then
      n = n + 1
      if n == #given + 1 or (p.list and n <= #given + 1) then
        if p.type == "instance" or p.name == "instance" then return instance_names(ctx) end
        if p.name == "snapshot" then return snapshot_ids(ctx, given[1]) end
        return p.choices or {}
      end
    end
  end
  return {}
end

-- candidates(ctx, words, cword) -> the words that may stand at position cword (words[1]
-- is "tend"), those that begin with what is typed there.
function M.candidates(ctx, words, cword)
  local cur = words[cword + 1] or ""
  local before = table.move(words, 2, cword, 1, {})
  while before[1] and before[1]:match("^%-%-") do -- global flags
    local flag = table.remove(before, 1)
    if (flag == "--home" or flag == "--recipes") and before[1] then table.remove(before, 1) end
  end
  local list
  if #before == 0 then
    if cur:sub(1, 1) == "-" then list = GLOBAL else
      list = recipe_names()
      for _, b in ipairs(BUILTIN) do list[#list + 1] = b end
    end
  else
    local cmd = before[1]
    if SUB[cmd] and #before == 1 then
      list = SUB[cmd]
      if TAKES_INSTANCE[cmd] then list = { table.unpack(list) }; for _, n in ipairs(instance_names(ctx)) do list[#list + 1] = n end end
    elseif cmd == "help" and #before == 1 then
      list = recipe_names()
    elseif (TAKES_INSTANCE[cmd .. " " .. (before[2] or "")] and #before == 2) or (TAKES_INSTANCE[cmd] and #before == 1) then
      list = instance_names(ctx)
    elseif cmd == "schedule" and (before[2] == "rm" or before[2] == "run") and #before == 2 then
      list = {}
      for _, j in ipairs(require("tend.schedule").list(ctx)) do list[#list + 1] = j.name end
    elseif cmd == "secret" and (before[2] == "get" or before[2] == "rm") and #before == 2 then
      list = {}
      for _, s in ipairs(ctx:vault():list()) do list[#list + 1] = s.name end
    elseif not SUB[cmd] then
      local src, origin = recipe.find(cmd)
      list = src and for_recipe(ctx, recipe.load(src, origin), table.move(before, 2, #before, 1, {}), cur) or {}
    end
  end
  local out = {}
  for _, w in ipairs(list or {}) do
    if w:sub(1, #cur) == cur then out[#out + 1] = w end
  end
  table.sort(out)
  return out
end

return M
