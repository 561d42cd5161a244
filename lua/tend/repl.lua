-- repl: Lua 5.4 with the engine loaded and the instances bound by name. A line is an
-- expression (its values printed) or a statement; input that is not complete yet asks
-- for more; an error is shown and the session goes on. History in $TEND_HOME.
--   prod:exec("uptime")   prod:backup()   prod:snapshots()   prod:restore(id)   tend.instances()
local core = require "tend.core"
local errors = require "tend.errors"
local instance = require "tend.instance"
local snapshot = require "tend.snapshot"

local M = {}

local Snapshot = { __name = "snapshot", __tostring = function(s)
  return ("snapshot %d of %s: %s, %d files, %s"):format(s.id, s.instance or "?",
    os.date("%Y-%m-%d %H:%M", s.started_at), s.files or 0,
    s.db_bytes and (s.db_bytes .. " bytes of database") or "no database")
end }

local function snapshot_of(inst, row)
  row.instance = inst.name
  return setmetatable(row, Snapshot)
end

-- Instances in the REPL: tend.instance's methods, and these on top.
local Methods = setmetatable({}, { __index = instance.Instance })
local Bound = { __index = Methods, __tostring = instance.Instance.__tostring, __name = "instance" }

-- inst:backup([opts]) -> snapshot (a killed restore is rolled back first, as the recipe does)
function Methods:backup(opts)
  require("tend.restore_journal").recover(self.ctx, self)
  local _, snap = require("tend.backup").run(self.ctx, self, opts)
  return snapshot_of(self, snap)
end

-- inst:snapshots() -> snapshots, newest first
function Methods:snapshots()
  local list = snapshot.list(self.ctx:catalog(), self)
  for _, s in ipairs(list) do snapshot_of(self, s) end
  return list
end

-- inst:restore([snap | id [, opts]]) -> summary; default the newest snapshot
function Methods:restore(snap, opts)
  local catalog = self.ctx:catalog()
  if snap == nil then snap = snapshot.latest(catalog, self)
  elseif type(snap) ~= "table" then snap = snapshot.get(catalog, self, snap) end
  if not snap then errors.fail("%s has no snapshots", self.name) end
  return require("tend.restore").run(self.ctx, self, snap, opts)
end

local function bind(ctx, inst)
  inst.ctx = ctx
  return setmetatable(inst, Bound)
end

-- env(ctx) -> the REPL's globals: Lua's own, `core`, `tend` (ctx, instances()), and every
-- instance by its name (looked up when used, so a new one is seen at once).
function M.env(ctx)
  local tend = { ctx = ctx, core = core }
  function tend.instances()
    local out = {}
    for i, inst in ipairs(instance.list(ctx:catalog())) do out[i] = bind(ctx, inst) end
    return out
  end
  local env = { tend = tend, core = core }
  return setmetatable(env, { __index = function(_, k)
    if _G[k] ~= nil then return _G[k] end
    if type(k) == "string" and k:match("^[%a_][%w_]*$") then
      local inst = instance.get(ctx:catalog(), k)
      if inst then return bind(ctx, inst) end
    end
  end })
end

-- show(v) -> text: scalars as Lua writes them, tables as an indented tree (sorted keys,
-- cycles and depth cut), objects with a __tostring as their string.
function M.show(v, indent, seen)
  indent, seen = indent or "", seen or {}
  local mt = getmetatable(v)
  if type(v) == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if type(v) ~= "table" or (mt and mt.__tostring) then return tostring(v) end
  if seen[v] then return "{...} (seen above)" end
  if #indent >= 12 then return "{...}" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then return "{}" end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) < type(b)
  end)
  local lines, inner = { "{" }, indent .. "  "
  for _, k in ipairs(keys) do
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and (k .. " = ")
      or (math.type(k) == "integer" and k >= 1 and k <= #v and "") -- a sequence's items, in order
      or ("[" .. M.show(k, inner, seen) .. "] = ")
    lines[#lines + 1] = inner .. key .. M.show(v[k], inner, seen) .. ","
  end
  lines[#lines + 1] = indent .. "}"
  seen[v] = nil
  return table.concat(lines, "\n")
end

-- eval(env, text [, run]) -> "ok", values... | "more" (incomplete) | "error", message.
-- run(fn) calls the chunk (the REPL's lineedit.run, so that Ctrl-C stops it).
function M.eval(env, text, run)
  local chunk, err = load("return " .. text, "=repl", "t", env)
  if not chunk then chunk, err = load(text, "=repl", "t", env) end
  if not chunk then
    if err:match("<eof>$") then return "more" end
    return "error", err
  end
  local r = table.pack(xpcall(function() if run then return run(chunk) end return chunk() end, function(e)
    if errors.is(e) then return e.msg end
    return tostring(e)
  end))
  if not r[1] then return "error", r[2] end
  return "ok", table.unpack(r, 2, r.n)
end

-- print_values(...): each value shown, tab-separated as Lua's print does.
local function print_values(...)
  local n = select("#", ...)
  if n == 0 then return end
  local out = {}
  for i = 1, n do out[i] = M.show((select(i, ...))) end
  io.stdout:write(table.concat(out, "\t"), "\n")
end

-- completions(ctx, env, word, before) -> candidates: fields and methods after "x." or "x:",
-- else globals, Lua's and tend's, and instance names.
function M.completions(ctx, env, word, before)
  local out, seen = {}, {}
  local function add(name)
    if type(name) == "string" and name:sub(1, #word) == word and not seen[name] then
      seen[name] = true
      out[#out + 1] = name
    end
  end
  local path, sep = before:match("([%a_][%w_%.]*)([%.:])$")
  if path then
    local ok, obj = pcall(load("return " .. path, "=complete", "t", env))
    local t, depth = ok and obj, 0
    while type(t) == "table" and depth < 5 do -- the object, then its __index tables
      for k, v in pairs(t) do
        if (sep == "." or type(v) == "function") and not (type(k) == "string" and k:match("^__")) then add(k) end
      end
      local mt = getmetatable(t)
      t, depth = mt and mt.__index, depth + 1
    end
  else
    for k in pairs(env) do add(k) end
    for k in pairs(_G) do add(k) end
    for _, inst in ipairs(instance.list(ctx:catalog())) do add(inst.name) end
  end
  table.sort(out)
  return out
end

-- run(ctx, opts) -> exit code.  opts.expr: evaluate it, print, exit (1 on error).
function M.run(ctx, opts)
  local env = M.env(ctx)
  if opts.expr then
    local r = table.pack(M.eval(env, opts.expr))
    if r[1] == "ok" then print_values(table.unpack(r, 2, r.n)) return 0 end
    io.stderr:write("tend: ", r[1] == "more" and "the expression is not complete" or r[2], "\n")
    return r[1] == "more" and 2 or 1
  end
  local le = core.lineedit
  local history = ctx.home .. "/repl_history"
  require("tend.home").ensure(ctx.home)
  le.history_load(history)
  le.complete(function(word, before) return M.completions(ctx, env, word, before) end)
  local terminal = core.fs.isatty(0) -- piped lines are evaluated without the greeting
  if terminal then
    io.stdout:write(("tend %s REPL: Lua 5.4 with your instances by name (%s:exec(\"uptime\")); Ctrl-D leaves\n")
      :format(core.version, (instance.list(ctx:catalog())[1] or { name = "prod" }).name))
  end
  local buffer
  while true do
    local line, interrupted = le.read(buffer and ">> " or "tend> ")
    if interrupted then -- Ctrl-C: the line (and any unfinished input) is dropped
      io.stdout:write("\n")
      buffer, line = nil, ""
    elseif not line then
      if terminal then io.stdout:write("\n") end
      break
    end
    buffer = buffer and (buffer .. "\n" .. line) or line
    if buffer:match("%S") then
      local r = table.pack(M.eval(env, buffer, le.run))
      if r[1] ~= "more" then
        le.history_add(buffer)
        le.history_save(history) -- now, not at exit: a REPL killed keeps its history too
        if r[1] == "ok" then print_values(table.unpack(r, 2, r.n))
        elseif tostring(r[2]):match("interrupted$") then io.stdout:write("interrupted\n") -- Ctrl-C
        else io.stdout:write("error: ", r[2], "\n") end
        buffer = nil
      end
    else
      buffer = nil
    end
  end
  return 0
end

return M
