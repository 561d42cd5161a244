-- context: what a command or recipe runs with: the state dir, the catalog and vault
-- (opened on first use), output settings, and instance look-up.
local core = require "tend.core"
local errors = require "tend.errors"
local home = require "tend.home"
local Catalog = require "tend.catalog"
local Vault = require "tend.vault"
local instance = require "tend.instance"
local output = require "tend.output"

local Context = {}
Context.__index = Context

-- new{home=, json=, quiet=, debug=, yes=} -> Context
function Context.new(opts)
  local ctx = setmetatable({}, Context)
  for k, v in pairs(opts or {}) do ctx[k] = v end
  ctx.home = home.path(ctx.home)
  return ctx
end

function Context:catalog()
  if not self._catalog then
    home.ensure(self.home)
    self._catalog = Catalog.open(self.home)
  end
  return self._catalog
end

-- store() -> the object store ($TEND_HOME/store), one handle for the whole run: objects
-- packed by one step are found by the next even before they are indexed. An encrypted
-- store is opened with its key from the vault.
function Context:store()
  if not self._store then
    home.ensure(self.home)
    local dir, key = self.home .. "/store", nil
    if core.fs.stat(dir .. "/encryption") then key = errors.check(self:vault():get(Vault.STORE_KEY)) end
    self._store = errors.check(core.store.open(dir, nil, key))
  end
  return self._store
end

function Context:vault()
  if not self._vault then self._vault = Vault.open(self.home, self:catalog()) end
  return self._vault
end

-- instance(name) -> Instance, or a usage error naming the missing instance (exit 2).
function Context:instance(name)
  local inst = instance.must_get(self:catalog(), name)
  inst.ctx = self
  return inst
end

-- instances() -> every Instance, by name.
function Context:instances()
  local list = instance.list(self:catalog())
  for _, inst in ipairs(list) do inst.ctx = self end
  return list
end

-- info(fmt, ...): a progress or status line on stderr, silenced by --quiet.
function Context:info(fmt, ...)
  if not self.quiet then io.stderr:write((select("#", ...) > 0 and fmt:format(...) or fmt), "\n") end
end

function Context:warn(fmt, ...)
  io.stderr:write("tend: warning: ", (select("#", ...) > 0 and fmt:format(...) or fmt), "\n")
end

-- result(data, text): the command's answer: data as JSON with --json, else text.
function Context:result(data, text)
  self.answer = data -- for a parent tend that started this one (tend.child)
  if self.json then
    io.stdout:write(output.json(data), "\n")
  elseif text and text ~= "" then
    io.stdout:write(text, "\n")
  end
end

-- usage(fmt, ...): bad input; exit 2 with that line.
function Context:usage(fmt, ...) errors.usage(fmt, ...) end

-- step(name, fn, ...) -> what fn(...) returns.  One step of a job: a progress line
-- ("blog: backup" when the first argument is an instance), and a failure in fn raised
-- again with the step's name in front, its exit code kept.
function Context:step(name, fn, ...)
  local first = ...
  local label = type(first) == "table" and first.name and first.ctx == self and (first.name .. ": " .. name) or name
  self:info("%s", label)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then error(errors.within(r[2], label), 0) end
  return table.unpack(r, 2, r.n)
end

-- undo(label, fn): the way back from what the job has done so far. When the job fails
-- later, the undos run newest first; the first one that fails stops the rest (those
-- before it were counted on by it). label names the undo: "restore of snapshot 12".
function Context:undo(label, fn)
  self._undos = self._undos or {}
  table.insert(self._undos, { label = label, fn = fn })
end

-- rollback(err) -> a failure like err whose message also says what was undone, or
-- where undoing stopped and what was not done. The job runner calls it on a failure.
function Context:rollback(err)
  local undos, done = self._undos or {}, {}
  self._undos = nil
  local msg, code = errors.message(err), errors.is(err) and err.code or 1
  for i = #undos, 1, -1 do
    local u = undos[i]
    self:info("undoing: %s", u.label)
    local ok, why = pcall(u.fn)
    if not ok then
      local rest = {}
      for j = i - 1, 1, -1 do rest[#rest + 1] = undos[j].label end
      if #done > 0 then msg = msg .. "; undone: " .. table.concat(done, ", ") end
      msg = ("%s; undo failed: %s: %s"):format(msg, u.label, errors.message(why))
      if #rest > 0 then msg = msg .. "; not done: " .. table.concat(rest, ", ") end
      return errors.new(code, msg)
    end
    done[#done + 1] = u.label
  end
  if #done > 0 then msg = msg .. "; undone: " .. table.concat(done, ", ") end
  return errors.new(code, msg)
end

function Context:close()
  require("tend.ssh").close_all()
  if self._vault then self._vault:close() end
  if self._catalog then self._catalog:close() end
end

return Context
