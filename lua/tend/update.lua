-- update: the mechanisms of new code for an instance: which version is next (a
-- checkout's tag or branch head: tend.vcs; a release tarball: tend.release), the code
-- moved there, the app's database migration, and whether the site is well afterwards.
-- The order of an update (backup, page, code, migration, ...) is the recipe's:
-- recipes/update.lua, upgrade.lua, pre-dogfood.lua.
local errors = require "tend.errors"
local apps = require "tend.apps"
local vcs = require "tend.vcs"

local M = {}

-- health(inst) -> nil | why the site is not well: its URL must answer below 500.
function M.health(inst)
  if not inst.url then return nil end
  local r, msg = require("tend.core").http.request({ url = inst.url .. "/", timeout = 60 })
  if not r then return msg end
  if r.status >= 500 then return ("%s answered %d"):format(inst.url, r.status) end
end

-- versions(inst) -> {current, versions = {v, ...} oldest first, source}: what versions
-- there are for inst: its repository's tags (a git checkout), or its --releases list.
function M.versions(inst)
  local t = inst:transport()
  local state = vcs.state(t, inst.path)
  if state and state.kind == "git" then
    return { current = state.tag or state.branch or state.commit, versions = vcs.tags(t, inst.path), source = "git tags" }
  end
  if inst.releases then
    local list, seen = {}, {}
    for _, e in ipairs(require("tend.release").list(inst.releases)) do
      if not seen[e.version] then list[#list + 1], seen[e.version] = e.version, true end
    end
    table.sort(list, function(a, b) return vcs.newer(b, a) end)
    local _, current = inst:detect()
    return { current = current, versions = list, source = inst.releases }
  end
  errors.usage("%s: %s is no git checkout and the instance has no --releases URL: tend knows no versions of it",
    inst.name, inst.path)
end

-- migrate(inst, say) -> nil | why: the instance's --migrate command, or its app's own.
function M.migrate(inst, say)
  local cmd = inst.migrate or apps.get(inst.app).migrate
  if not cmd then return nil end
  say("database migration: %s", cmd)
  local r, msg = inst:exec(cmd)
  if not r then return msg end
  if r.code ~= 0 then
    return ("the migration (%s) failed: %s"):format(cmd, r.stderr:match("%S") and require("tend.transport").why(r) or r.stdout:match("([^\n]+)\n?$") or ("exit " .. r.code))
  end
end

-- plan(inst, opts) -> {from, to, changed, newest, switch}: where the code is and
-- where an update takes it (to == from, changed false: nothing newer). switch() moves
-- it. opts: to (a version), latest (the newest of any major), upgrade (a new major is
-- the point; without it one is refused, exit 2), lag (seconds: only versions at least
-- that old count).
function M.plan(inst, opts)
  local t = inst:transport()
  local from, to, switch, newest, versions
  local before = opts.lag and os.time() - opts.lag
  local state = vcs.state(t, inst.path)
  if state then
    local rev = state.kind == "svn" and "r" or ""
    from = state.tag or (rev .. state.commit)
    local target = vcs.target(t, inst.path, state, { to = opts.to, latest = opts.latest, before = before })
    if target == state.tag then target = nil end
    versions = state.tag ~= nil -- only tags have majors; revisions and branch heads do not
    newest = state.tag and ("version " .. vcs.major(from) .. ".x") or state.branch and ("branch " .. state.branch)
      or "revision"
    to = target and (rev .. target)
    switch = function() vcs.switch(t, inst.path, state, target) end
  elseif inst.releases then
    if opts.lag then errors.usage("%s: releases carry no dates, so --lag cannot pick among them", inst.name) end
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
  if to and versions and not opts.upgrade and vcs.major(to) ~= vcs.major(from) then
    errors.usage("%s is a new major version (%s is at %s): that is an upgrade (tend upgrade %s --to %s)", to, inst.name, from, inst.name, to)
  end
  newest = opts.to and "the version asked for" or ("the newest of " .. newest)
    .. (opts.lag and (" at least " .. require("tend.duration").format(opts.lag) .. " old") or "")
  return { from = from, to = to or from, changed = to ~= nil, newest = newest,
    switch = switch }
end

return M
