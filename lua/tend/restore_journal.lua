-- restore_journal: how a restore that was cut short is put back. While a restore has a
-- staging tree, has swapped files or touched the database, a file in $TEND_HOME/journal/
-- says how to put that half back, so that a restore killed at any point is rolled back
-- by the next run (recover). One journal per half ("files", "db"): the database half
-- may run in a helper process. A restore holds its target's lock (hold) meanwhile.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local cjson = require "cjson"
local db_load = require "tend.db_load"

local M = {}

-- What a message says when a rollback failed (as_was leaves such a message alone).
M.UNRECOVERED = "could not be put back"

local function journal_path(ctx, target, half)
  return ("%s/journal/restore-%d-%s.json"):format(ctx.home, target.id, half)
end

-- write(ctx, target, half, j): the journal of one half, on disk before the change it covers.
function M.write(ctx, target, half, j)
  errors.check(core.fs.mkdir_p(ctx.home .. "/journal", 448))
  errors.check(core.fs.write_atomic(journal_path(ctx, target, half), cjson.encode(j), 384))
end

-- clear(ctx, target, half): that half is done; nothing to put back.
function M.clear(ctx, target, half) core.fs.remove(journal_path(ctx, target, half)) end

-- commit(ctx, target, olds): the restore is done, both halves at once: the "done" journal
-- (the old trees to delete) is written before the halves' journals go, so that a kill
-- between two removals never leaves one half to roll back without the other. Cleared
-- (clear(ctx, target, "done")) once the old trees are gone; until then any run finishes it.
function M.commit(ctx, target, olds)
  M.write(ctx, target, "done", { started_at = os.time(), olds = olds })
  M.clear(ctx, target, "db")
  M.clear(ctx, target, "files")
end

-- exists(t, path) -> whether path is there; raises when the host cannot say (a lost
-- connection is not an absent file).
function M.exists(t, path)
  local st, msg, code = t:stat(path)
  if st then return true end
  if code == "enoent" then return false end
  errors.fail("%s", msg)
end

local remove_tree = require("tend.transport").remove_tree

-- hold(ctx, target) -> lock: while a restore of target runs it holds this lock, so that
-- no other run takes its journals for those of a killed restore. Raises (exit 4) when
-- a live restore holds it.
function M.hold(ctx, target)
  errors.check(core.fs.mkdir_p(ctx.home .. "/locks", 448))
  local lock, msg, code = core.fs.lock(("%s/locks/restore-%d.lock"):format(ctx.home, target.id), "exclusive", false)
  if lock then return lock end
  if code == "locked" then errors.raise(4, "%s: a restore of it is running; try again when it ends", target.name) end
  errors.fail("%s", msg)
end

-- recover(ctx, target [, opts]): roll back a restore of target that was interrupted
-- (killed, power cut, or failed) by what its journals say: the old tree back, the
-- staging tree gone, the database back from the safety dump. opts: held (the caller
-- holds the lock: a restore, or the one that wrote the journals), own (that one: no
-- warning), half (one journal only). Returns whether there was anything to do; raises
-- (exit 4) while another restore of target runs.
function M.recover(ctx, target, opts)
  opts = opts or {}
  local in_process, half = opts.own, opts.half
  local names = {}
  for _, name in ipairs(core.fs.list(ctx.home .. "/journal") or {}) do
    local h = name:match("^restore%-" .. target.id .. "%-(%a+)%.json$")
      or (name == ("restore-%d.json"):format(target.id) and "both") -- written by tend before 0.3
    if h and (not half or h == half) then names[#names + 1] = name end
  end
  if #names == 0 then return false end
  -- journals: a killed restore's only when no live restore holds the lock
  local held <close> = not opts.held and M.hold(ctx, target) or nil
  local t, st = target:transport(), snapshot.store(ctx)
  local done = journal_path(ctx, target, "done")
  if core.fs.stat(done) then -- it had finished: only its old trees to delete
    local j = cjson.decode(core.fs.read(done) or "{}")
    for _, old in ipairs(j.olds or {}) do
      local ok, err = pcall(function() if M.exists(t, old) then remove_tree(t, old) end end)
      if not ok then errors.fail("%s: the old tree %s of a finished restore is not deleted yet (%s); the next tend job on %s "
        .. "finishes it", target.name, old, errors.message(err), target.name) end
    end
    for _, name in ipairs(names) do core.fs.remove(ctx.home .. "/journal/" .. name) end
    return true
  end
  table.sort(names, function(a, b) return a:find("files", 1, true) and not b:find("files", 1, true) end)
  for i, name in ipairs(names) do
    local path = ctx.home .. "/journal/" .. name
    local j = cjson.decode(core.fs.read(path) or "{}")
    if i == 1 and not in_process then
      ctx:warn("%s: a restore was interrupted (%s); putting the instance back as it was", target.name,
        os.date("!%Y-%m-%d %H:%M UTC", j.started_at or 0))
    end
    -- A step that cannot be done now (the host unreachable) keeps the journal for the next run.
    local ok, err = pcall(function()
      if j.old and M.exists(t, j.old) then
        local root = j.root or target.path -- the real folder, when the web root is a symlink
        if M.exists(t, root) then remove_tree(t, root) end
        errors.check(t:rename(j.old, root))
      end
      if j.staging and M.exists(t, j.staging) then remove_tree(t, j.staging) end
      for _, o in ipairs(j.outside or {}) do -- the folders of data outside the web root
        if o.old and M.exists(t, o.old) then
          if M.exists(t, o.root) then remove_tree(t, o.root) end
          errors.check(t:rename(o.old, o.root))
        elseif o.fresh and o.swapping and not M.exists(t, o.staging) and M.exists(t, o.root) then
          remove_tree(t, o.root) -- made by the restore, where there was none
        end
        if M.exists(t, o.staging) then remove_tree(t, o.staging) end
      end
    end)
    if not ok then
      errors.fail("%s: the files " .. M.UNRECOVERED .. " yet (%s); the next tend job on %s finishes it (journal %s)",
        target.name, errors.message(err), target.name, path)
    end
    if j.safety then
      local settings = errors.check(target:db_settings(ctx:vault()))
      local ok, msg = st:verify(j.safety)
      if ok then ok, msg = db_load.load_db(t, st, settings, j.safety) end
      if not ok then
        errors.fail("%s: the database " .. M.UNRECOVERED .. " from its safety dump (%s): %s; fix that and run "
          .. "any tend job on %s to try again, or remove %s to keep the database as it is now",
          target.name, j.safety:sub(1, 12), msg, target.name, path)
      end
    end
    core.fs.remove(path)
  end
  return true
end

-- pinned(ctx) -> {hex = true}: the objects that journals name (safety dumps of restores
-- that were interrupted and not rolled back yet). gc keeps them.
function M.pinned(ctx)
  local out = {}
  for _, name in ipairs(core.fs.list(ctx.home .. "/journal") or {}) do
    local text = core.fs.read(ctx.home .. "/journal/" .. name)
    local ok, j = pcall(cjson.decode, text or "")
    if ok and type(j) == "table" and type(j.safety) == "string" then out[j.safety] = true end
  end
  return out
end

-- as_was(msg) -> msg, saying the instance is as it was unless a rollback failed (then msg
-- already says what is not back, and what to do).
function M.as_was(msg)
  if msg:find(M.UNRECOVERED, 1, true) then return msg end
  return msg .. " (the instance is as it was)"
end

return M
