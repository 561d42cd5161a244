-- context: what a command or recipe runs with: the state dir, the catalog and vault
-- (opened on first use), output settings, and instance look-up.
local core = require "tend.core"
local errors = require "tend.errors"
local home = require "tend.home"
local Catalog = require "tend.catalog"
local Vault = require "tend.vault"
local instance = require "tend.instance"
local db = require "tend.db"
local output = require "tend.output"

-- A fan-out's child gets its share of the instances here (names, one a line), beside
-- TEND_RESULT_FILE (tend.child): --all in that child means those.
local BATCH = "TEND_BATCH"

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

-- add_instance(name, fields) -> the new Instance, registered (tend instance add's
-- fields); a usage error for a name in use or a bad field.
function Context:add_instance(name, fields)
  local inst = instance.add(self:catalog(), name, fields, {})
  inst.ctx = self
  return inst
end

-- call(name, argv) -> what that recipe's run returns: one recipe run from another, with
-- this run's context.
function Context:call(name, argv) return require("tend.recipe").call(self, name, argv) end

-- mail(to, subject, body) -> true | nil, msg: a mail through tend's mail settings
-- (tend mail config).
function Context:mail(to, subject, body) return require("tend.notify").send(self, to, subject, body) end

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

-- confirm(word, what): a destructive job goes on only when the global --yes was given,
-- or the operator types word at a terminal; elsewhere a usage error, nothing done.
function Context:confirm(word, what)
  if self.yes then return end
  if not (core.fs.isatty(0) and core.fs.isatty(2)) then
    errors.usage("%s: not confirmed (run it at a terminal, or add the global --yes); nothing was changed", what)
  end
  io.stderr:write(("About to %s. Type %s to go on: "):format(what, word))
  io.stderr:flush()
  if io.read("l") ~= word then errors.usage("%s: not confirmed; nothing was changed", what) end
end

-- database_account(url [, secret]) -> settings: a database account given on the command
-- line (blank's and destroy's --admin), its password from the vault secret; a usage
-- error for a URL that is not mysql://.
function Context:database_account(url, secret)
  local s, why = db.parse_url(url)
  if not s or s.driver ~= "mysql" then errors.usage("--admin: %s", why or "a mysql:// URL") end
  if secret then s.password = errors.check(self:vault():get(secret)) end
  return s
end

-- usage(fmt, ...): bad input; exit 2 with that line.
function Context:usage(fmt, ...) errors.usage(fmt, ...) end

-- step(name, fn, ...) -> what fn(...) returns.  One step of a job: a progress line
-- ("blog: backup" when the first argument is an instance, or a job on one: job.inst),
-- and a failure in fn raised again with the step's name in front, its exit code kept.
function Context:step(name, fn, ...)
  local first = ...
  local inst = type(first) == "table" and (first.ctx == self and first.name and first or first.inst)
  local label = type(inst) == "table" and inst.name and (inst.name .. ": " .. name) or name
  self:info("%s", label)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then
    local msg, code = errors.message(r[2]), errors.is(r[2]) and r[2].code or 1
    if label ~= name then -- "instance blog: x" and "blog: x" become "blog: step: x"
      local quoted = inst.name:gsub("%p", "%%%0")
      msg = msg:gsub("^instance " .. quoted .. ": ", ""):gsub("^" .. quoted .. ": ", "")
    end
    -- and "database: database mysql:..." says it once
    if msg:sub(1, #name + 1) == name .. " " then msg = msg:sub(#name + 2) end
    error(errors.within(errors.new(code, msg), label), 0)
  end
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

-- targets(args) -> instances: the one args.instance names, or every one with args.all
-- (a recipe's `instance` and `all` params); a usage error for neither or both.
function Context:targets(args)
  if args.all then
    if args.instance then self:usage("give an instance or --all, not both") end
    local batch = os.getenv(BATCH)
    if not batch or batch == "" then return self:instances() end
    local list = {} -- a fan-out's child: its share
    for name in batch:gmatch("[^\n]+") do list[#list + 1] = self:instance(name) end
    return list
  end
  if not args.instance then self:usage("say which instance (or --all): tend %s NAME", self.recipe and self.recipe.name or "RECIPE") end
  return { type(args.instance) == "table" and args.instance or self:instance(args.instance) }
end

-- batch_env(names) -> the environment that makes a child tend's --all mean those
-- instances; batch_child() -> whether this run is such a child.
function Context:batch_env(names) return { [BATCH] = table.concat(names, "\n") } end
function Context:batch_child() return (os.getenv(BATCH) or "") ~= "" end

-- each(instances, fn, opts) -> entries: fn(inst) for each instance, what it returns as
-- that instance's entry, the list being the job's answer (ctx:result). One instance: fn
-- runs here and its failure is the job's. Several: a failure is a warning and the entry
-- {instance, error, code}, and the job fails at the end naming them. opts.jobs > 1: that
-- many child tends at a time, each running this recipe over its share of the instances
-- in turn (tend.fanout.batches: one connection and one login shell per host and child),
-- handing back each one's entry or failure (message and exit code) as data (tend.child).
-- opts.report(entry) says each success; opts.what names the runs ("backups").
function Context:each(list, fn, opts)
  opts = opts or {}
  local report = opts.report or function() end
  if #list == 1 then
    local entry = fn(list[1])
    report(entry)
    self:result({ entry })
    return { entry }
  end
  local entries, failed = {}, {}
  local function ended(inst, entry, msg, code)
    if entry then
      report(entry)
    else
      failed[#failed + 1] = inst.name
      msg = msg:gsub("^" .. inst.name:gsub("%p", "%%%0") .. ": ", "") -- named once, here
      self:warn("%s %s: %s", self.recipe and self.recipe.name or "job", inst.name, msg)
      entry = { instance = inst.name, error = msg, code = code or 1 }
    end
    entries[#entries + 1] = entry
  end
  if (opts.jobs or 1) > 1 then
    local recipe, fanout = require "tend.recipe", require "tend.fanout"
    local args = {}
    for k, v in pairs(self.args) do args[k] = v end
    args.all, args.jobs, args.instance = true, nil, nil
    local argv = { "--json", "--quiet", self.recipe.name, table.unpack(recipe.argv(self.recipe, args)) }
    fanout.shared(self, list, opts.jobs, argv, function(inst, e, msg, code)
      if e and not e.error then ended(inst, e) else ended(inst, nil, e and e.error or msg, e and e.code or code) end
    end)
    local order = {}
    for i, inst in ipairs(list) do order[inst.name] = i end
    table.sort(entries, function(a, b) return order[a.instance] < order[b.instance] end)
  else
    for _, inst in ipairs(list) do
      local ok, entry = pcall(fn, inst)
      if ok then ended(inst, entry) else ended(inst, nil, errors.message(entry), errors.is(entry) and entry.code) end
    end
  end
  self:result(entries)
  if #failed > 0 then
    errors.fail("%d of %d %s failed: %s", #failed, #list, opts.what or "runs", table.concat(failed, ", "))
  end
  return entries
end

function Context:close()
  require("tend.transport").close_all()
  if self._store then self._store:close() end
  if self._vault then self._vault:close() end
  if self._catalog then self._catalog:close() end
end

return Context
