-- update: new code for an instance, behind its maintenance page, after a backup, with
-- the way back. Order: preflight; the target version (nothing to do when there is no
-- newer one); a backup; the page on; the code moved (tend.vcs for a checkout,
-- tend.release for release tarballs); the app's database
-- migration; the page off; an HTTP check of the site; the watch baseline moved. Any
-- failure after the backup restores it (files and database, staged), and says so.
local errors = require "tend.errors"
local apps = require "tend.apps"
local vcs = require "tend.vcs"
local maintenance = require "tend.maintenance"
local pause = require "tend.pause"

local M = {}

-- health(inst) -> nil | why the site is not well: its URL must answer below 500.
function M.health(inst)
  if not inst.url then return nil end
  local r, msg = require("tend.core").http.request({ url = inst.url .. "/", timeout = 60 })
  if not r then return msg end
  if r.status >= 500 then return ("%s answered %d"):format(inst.url, r.status) end
end

-- migrate(inst) -> nil | why: the instance's --migrate command, or its app's own.
local function migrate(inst, adapter, say)
  local cmd = inst.migrate or adapter.migrate
  if not cmd then return nil end
  say("database migration: %s", cmd)
  local r, msg = inst:exec(cmd)
  if not r then return msg end
  if r.code ~= 0 then
    return ("the migration (%s) failed: %s"):format(cmd, r.stderr:match("([^\n]+)\n?$") or r.stdout:match("([^\n]+)\n?$") or ("exit " .. r.code))
  end
end

-- run(ctx, inst, opts) -> {from, to, snapshot, changed}.  opts: to (a version: an
-- upgrade), latest (the newest version of any major), upgrade (a new major is the
-- point), progress.
function M.run(ctx, inst, opts)
  local say = opts.progress or function() end
  local t, adapter = inst:transport(), apps.get(inst.app)
  local cause = require("tend.preflight")(ctx, { inst })
  if cause then errors.fail("%s", cause) end
  local from, to, switch, newest, versions
  local state = vcs.state(t, inst.path)
  if state then
    local rev = state.kind == "svn" and "r" or ""
    from = state.tag or (rev .. state.commit)
    to = vcs.target(t, inst.path, state, opts.to, opts.latest)
    if to == state.tag then to = nil end
    versions = state.tag ~= nil -- only tags have majors; revisions and branch heads do not
    newest = state.tag and ("version " .. vcs.major(from) .. ".x") or state.branch and ("branch " .. state.branch)
      or "revision"
    local label = to and (rev .. to)
    local target = to
    switch = function() vcs.switch(t, inst.path, state, target) end
    to = label
  elseif inst.releases then
    local release = require "tend.release"
    local _, current = inst:detect()
    from = current or "an unknown version"
    local entry = release.target(release.list(inst.releases), current, opts.to, opts.latest)
    to, newest = entry and entry.version, current and ("version " .. vcs.major(current) .. ".x") or "release"
    versions = current ~= nil
    switch = function() release.install(t, inst.path, inst.releases, entry) end
  else
    errors.fail("%s: %s is no git or Subversion checkout and the instance has no --releases URL; "
      .. "tend updates those (or use pre-dogfood --update CMD)", inst.name, inst.path)
  end
  if not to then
    say("already at %s, the newest %s", from, opts.to and "" or ("of " .. newest))
    return { from = from, to = from, changed = false }
  end
  if versions and not opts.upgrade and vcs.major(to) ~= vcs.major(from) then
    errors.usage("%s is a new major version (%s is at %s): that is an upgrade (tend upgrade %s --to %s)", to, inst.name, from, inst.name, to)
  end

  require("tend.restore").recover(ctx, inst)
  say("backup before the %s", opts.upgrade and "upgrade" or "update")
  local id, snap = require("tend.backup").run(ctx, inst, { progress = function(fmt, ...) say("backup: " .. fmt, ...) end })
  local page = maintenance.up(ctx, inst, { say = say, without_page = opts.without_page })
  local ok, err = pcall(function()
    pause(ctx, "update.code")
    say("code: %s -> %s", from, to)
    switch()
    local why = migrate(inst, adapter, say)
    if why then errors.fail("%s", why) end
    maintenance.down(inst, page, say)
    why = M.health(inst)
    if why then errors.fail("the site is not well after the %s: %s", opts.upgrade and "upgrade" or "update", why) end
  end)
  if not ok then
    local msg = errors.message(err)
    say("%s; rolling back to snapshot %d", msg, id)
    local snaprow = require("tend.snapshot").get(ctx:catalog(), inst, id)
    local rok, rerr = pcall(require("tend.restore").run, ctx, inst, snaprow, { progress = say, overwrite_production = true })
    if not rok then
      errors.fail("%s; and the rollback to snapshot %d failed: %s (the maintenance page stays up)", msg, id, errors.message(rerr))
    end
    maintenance.down(inst, page) -- the backup was taken before the page went up; this is in case
    errors.fail("%s; rolled back to snapshot %d: files and database as before", msg, id)
  end
  require("tend.watch").rebaseline(ctx, inst)
  return { from = from, to = to, snapshot = id, changed = true, files = snap.files }
end

return M
