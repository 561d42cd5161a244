-- steps: what a job does to an instance, one method each, for recipes to put in order
-- (recipes/update.lua). Each raises on failure (the job's rule) and says its progress
-- as "NAME: ..."; the instance's run context is inst.ctx. A method never takes the name
-- of an instance field (inst.migrate is the --migrate command: hence migrate_db).
local errors = require "tend.errors"
local Instance = require("tend.instance").Instance

local function say(inst)
  return function(fmt, ...) inst.ctx:info("%s: " .. fmt, inst.name, ...) end
end

-- preflight(): room for a backup, the host answering, the database letting us in.
function Instance:preflight()
  local cause = require("tend.preflight")(self.ctx, { self })
  if cause then errors.fail("%s", cause) end
end

-- backup(opts) -> the snapshot row, its summary in .summary.  opts: rehash.
function Instance:backup(opts)
  local id, summary = require("tend.backup").run(self.ctx, self,
    { progress = say(self), rehash = opts and opts.rehash })
  local snap = require("tend.snapshot").get(self.ctx:catalog(), self, id)
  snap.summary = summary
  return snap
end

-- restore(snap, opts): files and database as they were in snap, staged (tend.restore).
-- opts as restore.run's: overwrite_production, files_only, db_only, ...
function Instance:restore(snap, opts)
  local o = { progress = say(self) }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("tend.restore").run(self.ctx, self, snap, o)
end

-- maintenance_on(opts) -> page: the page up and seen over HTTP (exit 2 when it cannot be
-- seen, unless opts.without_page). maintenance_off(page): down again.
function Instance:maintenance_on(opts)
  return require("tend.maintenance").up(self.ctx, self,
    { say = say(self), without_page = opts and opts.without_page })
end

function Instance:maintenance_off(page)
  require("tend.maintenance").down(self, page, say(self))
end

-- update_plan(opts) -> plan {from, to, changed, newest}: tend.update.plan.
function Instance:update_plan(opts)
  return require("tend.update").plan(self, opts or {})
end

-- code_to(plan): the code moved where plan says (a checkout switched, a release unpacked).
function Instance:code_to(plan)
  require("tend.pause")(self.ctx, "update.code")
  say(self)("code: %s -> %s", plan.from, plan.to)
  plan.switch()
end

-- migrate_db(): the database migration after new code (--migrate, or the app's).
function Instance:migrate_db()
  local why = require("tend.update").migrate(self, say(self))
  if why then errors.fail("%s", why) end
end

-- http_check(): the site answers below 500 (when the instance has a URL).
function Instance:http_check()
  local why = require("tend.update").health(self)
  if why then errors.fail("the site is not well: %s", why) end
end

-- watch_accept(): the files as they are now become the watch baseline (after new code).
function Instance:watch_accept()
  require("tend.watch").rebaseline(self.ctx, self)
end

return Instance
