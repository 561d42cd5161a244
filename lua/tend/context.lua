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
  if self.json then
    io.stdout:write(output.json(data), "\n")
  elseif text and text ~= "" then
    io.stdout:write(text, "\n")
  end
end

function Context:close()
  require("tend.ssh").close_all()
  if self._vault then self._vault:close() end
  if self._catalog then self._catalog:close() end
end

return Context
