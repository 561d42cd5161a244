-- restore: put a snapshot back. Files are built in a staging directory beside the
-- target and swapped in by rename (tend.restore_tree); the database gets a safety dump
-- first, then the snapshot's dump is loaded (tend.db_load); any failure puts both back as
-- they were, by what the journals say (tend.restore_journal).
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local backup = require "tend.backup"
local db = require "tend.db"
local pause = require "tend.pause"
local copy_config = require "tend.copy_config"
local outside = require "tend.outside"
local child = require "tend.child"
local journal = require "tend.restore_journal"
local tree = require "tend.restore_tree"
local db_load = require "tend.db_load"
local written = require "tend.written"

local M = {}

-- copy(): tend.copy (it uses this module: required when first needed)
local function copy() return require "tend.copy" end

-- safety_dump(ctx, target, settings, snap, say) -> object | nil: the database as it is
-- now, into the store, and the "db" journal that names it (kept for the caller to clear).
local function safety_dump(ctx, target, settings, snap, say)
  local t, st = target:transport(), snapshot.store(ctx)
  local safety
  -- An absent SQLite file has nothing to protect; any other database gets a safety dump.
  if settings.driver ~= "sqlite" or t:stat(settings.path) then
    say("safety dump of %s", db.describe(settings))
    local dumped = errors.check(backup.dump_db(t, settings, st, backup.previous_db(ctx, target)))
    safety = dumped.object
    errors.check(st:sync()) -- a later run must find it, even after a kill
    -- read back whole: nothing is dropped on the strength of a copy that would not load
    -- (an unchanged database's object, taken again, was read back by dump_db already)
    local ok, msg = dumped.same or st:verify(safety)
    if not ok then errors.fail("the safety dump of %s does not read back: %s; nothing changed", db.describe(settings), msg) end
  end
  journal.write(ctx, target, "db", { started_at = os.time(), snapshot = snap.id, safety = safety })
  return safety
end

-- load_snapshot_db(ctx, target, settings, snap, say): the snapshot's dump loaded; on
-- failure the database goes back to its safety dump, and this raises.
local function load_snapshot_db(ctx, target, settings, snap, say, rewrites)
  say(#rewrites > 0 and "loading the snapshot's database, rewritten for %s" or "loading the snapshot's database", target.name)
  local ok, msg = db_load.load_db(target:transport(), snapshot.store(ctx), settings, snap.db_object, ctx, rewrites)
  if not ok then
    local rok, rerr = pcall(journal.recover, ctx, target, { held = true, own = true, half = "db" })
    if not rok then errors.fail("%s; %s", msg, errors.message(rerr)) end
    errors.fail("%s", msg)
  end
end


-- restore_db(...) -> summary part: the steps, for --db-only and for the helper (the
-- snapshot's dump read back by the job's plan).
local function restore_db(ctx, target, settings, snap, say, rewrites)
  local safety = safety_dump(ctx, target, settings, snap, say)
  load_snapshot_db(ctx, target, settings, snap, say, rewrites)
  return { safety_object = safety, db_bytes = snap.db_bytes }
end

-- The database half of a restore that has both halves runs in a helper process (its own
-- SSH session) while this one builds the files: `tend helper restore-db` (M.db_helper),
-- which keeps its journal for us to clear, and dies if we do.
local function start_helper(ctx, inst, snap, target)
  return child.spawn(ctx, { "--json", "--quiet", "helper", "restore-db", inst.name, tostring(snap.id),
    target.name, tostring(core.proc.pid()) })
end

-- db_helper(ctx, inst, snap, target, parent_pid) -> summary part: the database half of
-- the parent's restore of snap into target (whose lock the parent holds).
function M.db_helper(ctx, inst, snap, target, parent_pid)
  core.proc.die_with_parent(parent_pid)
  target:transport():prepare_streams() -- the safety dump and the load stream
  local lock <close> = snapshot.lock_store(ctx, "shared")
  local mapping = outside.mapping(ctx, inst, target, outside.roots(snapshot.manifest(ctx:catalog(), snap)))
  local rewrites = target.id ~= inst.id and copy().copy_pairs(inst, target, mapping) or {}
  return restore_db(ctx, target, errors.check(target:db_settings(ctx:vault())), snap, function() end, rewrites)
end

-- finish_helper(helper) -> summary part | nil, message: its result, as the helper said it.
local function finish_helper(helper)
  local o = child.finish(helper)
  if o.code == 0 and type(o.result) == "table" then
    return { safety_object = o.result.safety_object, db_bytes = math.tointeger(o.result.db_bytes) }
  end
  return nil, o.error or "the database half gave no result"
end
-- confirm_production(target, snap): an in-place restore of a production instance goes on
-- only when the operator types its name at a terminal; elsewhere (cron, a pipe) it
-- needs --yes-overwrite-production. Raises a usage error otherwise, before any change.
local function confirm_production(target, snap)
  local flag = "add --yes-overwrite-production to restore over it"
  if not (core.fs.isatty(0) and core.fs.isatty(2)) then
    errors.usage("%s is tagged production: %s", target.name, flag)
  end
  io.stderr:write(("%s is tagged production. Restoring snapshot %d replaces its files and database.\n"
    .. "Type %s to go on: "):format(target.name, snap.id, target.name))
  io.stderr:flush()
  local answer = io.read("l")
  if answer ~= target.name then errors.usage("%s: not confirmed; nothing restored (or %s)", target.name, flag) end
end

-- A restore in steps, for a recipe to put in order (recipes/restore.lua):
--   local job <close> = restore.start(ctx, inst, snap, opts) -- planned, nothing changed
--   job:stage()     -- the snapshot's trees built beside the live ones (database half beside)
--   job:database()  -- safety dump, then the snapshot's dump loaded
--   job:swap()      -- each staging tree renamed in
--   local summary = job:finish()
-- or, for the database alone, job:database_only(). A step that fails puts back what the
-- job changed (its journals say how) and raises saying so; a job closed unfinished for
-- any other reason is put back too. A restore killed at any point is rolled back by the
-- next job on that instance (recover).
-- Into another instance it is a copy: the target keeps its own config file, its
-- database gets the snapshot's rewritten for its URL and path (copy_pairs), and the
-- catalog records which snapshot of which instance it holds (tend.copy's copy_of).
local Job = {}
Job.__index = Job
Job.__close = function(job) job:close() end

-- plan(job): what the restore will do, known (or refused) before any change; the store
-- and the target held; a killed restore of the target rolled back first.
local function plan(job)
  local ctx, inst, target, opts = job.ctx, job.inst, job.target, job.opts
  job.manifest = snapshot.manifest(ctx:catalog(), job.snap)
  job.roots = outside.roots(job.manifest)
  -- its data outside the web root: where each folder goes (a copy's own)
  job.mapping = opts.mapping or outside.mapping(ctx, inst, target, job.roots)
  -- what the copy's config files will hold
  job.plan = job.copy and not opts.db_only
    and (opts.config_plan or copy_config.plan(ctx, inst, target, job.snap, job.mapping)) or nil
  -- gc (exclusive) must not collect the snapshot's objects or the safety dump meanwhile
  job.lock = snapshot.lock_store(ctx, "shared")
  job.held = journal.hold(ctx, target) -- its journals are this run's
  if target:is_production() and not opts.overwrite_production then
    if job.copy then
      errors.usage("%s is tagged production: add --yes-overwrite-production to overwrite it with %s's data", target.name, inst.name)
    end
    confirm_production(target, job.snap)
  end
  journal.recover(ctx, target, { held = true })
  job.rewrites = job.copy and copy().copy_pairs(inst, target, job.mapping) or {}
  job.settings = not opts.files_only and job.snap.db_object and errors.check(target:db_settings(ctx:vault())) or nil
  if job.settings then -- the dump that will replace the database reads back whole, or nothing is touched
    local ok, msg = job.st:verify(job.snap.db_object)
    if not ok then errors.fail("snapshot %d: its database dump does not read back (%s) (the instance is as it was)", job.snap.id, msg) end
  end
end

-- start(ctx, inst, snap, opts) -> job.  opts: files_only, db_only, target (an Instance,
-- default inst), progress(fmt, ...), overwrite_production, kind (of copy: "copy",
-- "data"), mapping (tend.outside.mapping of the snapshot's folders outside the web root,
-- when the caller has it), config_plan, prepare(t, staging) (a hook for the new tree
-- before it goes live: clone puts its maintenance page there).
function M.start(ctx, inst, snap, opts)
  opts = opts or {}
  local target = opts.target or inst
  local job = setmetatable({ ctx = ctx, inst = inst, snap = snap, opts = opts, target = target,
    say = opts.progress or function() end, t = target:transport(), st = snapshot.store(ctx),
    copy = target.id ~= inst.id, summary = { snapshot = snap.id, instance = inst.name, target = target.name } }, Job)
  job.t:prepare_streams()
  local ok, err = pcall(plan, job)
  if not ok then job:close(); error(err, 0) end
  return job
end

-- fail(msg): stop the helper, put back whatever was changed, and raise.
function Job:fail(msg)
  self.failed = true
  self.say("restore failed; putting the instance back")
  if self.helper then child.close(self.helper); self.helper = nil end
  local rok, rerr = pcall(journal.recover, self.ctx, self.target, { held = true, own = true })
  if not rok then errors.fail("%s; %s", msg, errors.message(rerr)) end
  errors.fail("%s", journal.as_was(msg))
end

-- close(): an unfinished job's changes put back (it failed outside a step, or was
-- abandoned), the helper stopped, the target and the store let go.
function Job:close()
  if self.helper then child.close(self.helper); self.helper = nil end
  if self.held and self.changed and not self.done and not self.failed then
    self.failed = true
    local ok, err = pcall(journal.recover, self.ctx, self.target, { held = true, own = true })
    if not ok then self.ctx:warn("%s", errors.message(err)) end
  end
  if self.held then self.held:release(); self.held = nil end
  if self.lock then self.lock:release(); self.lock = nil end
end

-- guarded(job, fn, ...): fn's failure is the job's (put back, and raised).
local function guarded(job, fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then job:fail(errors.message(err)) end
end

-- database_only(): the database as the snapshot's (after a safety dump); a copy records
-- what it now holds.
function Job:database_only()
  if self.settings then
    self.changed = true
    local ok, part = pcall(restore_db, self.ctx, self.target, self.settings, self.snap, self.say, self.rewrites)
    if not ok then self.failed = true; errors.fail("%s", journal.as_was(errors.message(part))) end
    for k, v in pairs(part) do self.summary[k] = v end
    journal.clear(self.ctx, self.target, "db")
  end
  if self.copy then copy().record_copy(self.ctx, self.inst, self.target, self.snap, self.opts.kind or "data") end
  self.done = true
  return self.summary
end

-- journal_files(job, swapping): the files journal: how to put the trees back.
local function journal_files(job, swapping)
  local out = {}
  for i, tr in ipairs(job.trees) do
    out[i] = { root = tr.root, staging = tr.staging, fresh = tr.fresh, old = swapping and tr.old or nil,
      swapping = swapping or nil }
  end
  journal.write(job.ctx, job.target, "files", { started_at = os.time(), snapshot = job.snap.id, staging = job.staging,
    old = swapping and job.old or nil, root = job.root, outside = out })
end

-- trees(job) -> web rows: where each tree is built; raises on an unsafe snapshot.
-- A web root that is a symlink (current -> releases/r1) stays one: the tree is built
-- and swapped beside the folder it points to; each folder outside the web root beside
-- itself.
local function trees(job)
  local t = job.t
  job.root = tree.real_path(t, job.target.path)
  local parent, base = tree.split(job.root)
  local tag = ("%d-%d"):format(os.time(), math.random(1, 1 << 30))
  job.staging = ("%s/.tend-restore-%s-%s"):format(parent, base, tag)
  job.old = ("%s/.tend-old-%s-%s"):format(parent, base, tag)
  local bad, why = snapshot.unsafe(job.manifest)
  if bad then errors.fail("snapshot %d: unsafe path %q (%s); nothing restored", job.snap.id, bad, why) end
  local web, under, own = outside.split(job.manifest, job.roots)
  job.trees = {}
  for i, m in ipairs(job.mapping) do
    local p, b = tree.split(m.to)
    job.trees[i] = { root = m.to, rows = under[m.from], fresh = not journal.exists(t, m.to),
      staging = ("%s/.tend-restore-%s-%s"):format(p, b, tag), old = ("%s/.tend-old-%s-%s"):format(p, b, tag),
      attrs = outside.root_attrs(own[m.from] or {}) }
  end
  return web
end

-- stage(): the snapshot's trees built in staging folders beside the live ones, reusing
-- what is in place; a copy's own config and settings written there. The database half
-- runs meanwhile in a helper; a SQLite file (it may live in the web root) is loaded
-- after the swap, into the new tree, its safety dump taken here first.
function Job:stage()
  local ctx, t, target, summary, say = self.ctx, self.t, self.target, self.summary, self.say
  local web = trees(self)
  local keep = {} -- a copy keeps its own config files (copy_config.write rewrites them)
  if self.copy then for _, f in ipairs(target:config_paths()) do keep[f] = true end end
  local sqlite = self.settings and self.settings.driver == "sqlite"
  self.sqlite = sqlite
  if sqlite then
    self.changed = true
    summary.safety_object = safety_dump(ctx, target, self.settings, self.snap, say)
  end
  self.helper = self.settings and not sqlite and start_helper(ctx, self.inst, self.snap, target) or nil
  self.changed = true
  journal_files(self, false)
  say("building %d entries in %s", #web, self.staging)
  local function progress(files, bytes) return require("tend.progress").new(ctx, target.name, files, bytes) end
  self.web, self.keep = web, keep
  -- a clone onto the same host (and login) copies its source's files there, not over the link
  local sibling = self.copy and self.inst:transport().spec == t.spec
    and { root = tree.real_path(t, self.inst.path), since = self.snap.listed_at } or nil
  local built, msg = tree.build(t, self.st, web, self.staging, self.root, keep, progress,
    written.trusted(ctx, target, self.root), sibling)
  if not built then self:fail(msg) end
  for _, tr in ipairs(self.trees) do
    say("building %d entries of %s in %s", #tr.rows, tr.root, tr.staging)
    local part, omsg = tree.build(t, self.st, tr.rows, tr.staging, tr.root, {}, progress)
    if not part then self:fail(omsg) end
    for _, k in ipairs({ "files", "sent_files", "sent_bytes", "reused_files", "known_files", "hashed_files",
      "copied_files", "copied_hashed_files" }) do
      built[k] = built[k] + part[k]
    end
    for _, u in ipairs(part.unmade) do built.unmade[#built.unmade + 1] = tr.root .. "/" .. u end
    tree.finish_root(t, tr.staging, tr.attrs, tr.root)
  end
  for k, v in pairs(built) do summary[k] = v end
  say("%d files sent, %d taken from the tree in place (%d read by sha256sum on the host, %d known unread as "
    .. "tend wrote them)%s", built.sent_files, built.reused_files, built.hashed_files, built.known_files,
    built.copied_files > 0 and (", %d copied on the host from %s (%d of them read by sha256sum)"):format(built.copied_files,
      self.inst.name, built.copied_hashed_files) or "")
  if #built.unmade > 0 then
    ctx:warn("%s: %d sockets or device nodes of the snapshot were not made (tar cannot carry them): %s",
      target.name, #built.unmade, table.concat(built.unmade, ", "))
  end
  tree.finish_root(t, self.staging, self.snap, self.root)
  guarded(self, function()
    if self.copy then copy().prepare_copy(target, t, self.staging, self.plan) end
    if self.opts.prepare then self.opts.prepare(t, self.staging) end
  end)
end

-- database(): the database half's outcome (the helper's, or done here when none could
-- start); a SQLite file waits for the swap.
function Job:database()
  if self.helper then
    self.say("waiting for the database")
    local part, herr = finish_helper(self.helper)
    self.helper = nil
    if not part then self:fail(herr) end
    self.summary.safety_object, self.summary.db_bytes = part.safety_object, part.db_bytes
  elseif self.settings and not self.sqlite then
    local ok, part = pcall(restore_db, self.ctx, self.target, self.settings, self.snap, self.say, self.rewrites)
    if not ok then self:fail(errors.message(part)) end
    for k, v in pairs(part) do self.summary[k] = v end
  end
end

-- swap(): each staging tree renamed in, the live one aside (the journal says both);
-- then a SQLite database loaded into the new tree.
function Job:swap()
  local t = self.t
  journal_files(self, true)
  guarded(self, function()
    if t:stat(self.root) then errors.check(t:rename(self.root, self.old)) end
    errors.check(t:rename(self.staging, self.root))
    for _, tr in ipairs(self.trees) do
      pause(self.ctx, "restore.outside-swap")
      if t:stat(tr.root) then errors.check(t:rename(tr.root, tr.old)) end
      errors.check(t:rename(tr.staging, tr.root))
    end
  end)
  if self.sqlite then
    guarded(self, load_snapshot_db, self.ctx, self.target, self.settings, self.snap, self.say, self.rewrites)
    self.summary.db_bytes = self.snap.db_bytes
  end
end

-- finish() -> summary: a copy read back (it keeps its data in folders of its own), the
-- restore committed (one journal replaces both), the old trees deleted, what was written
-- recorded, a copy recorded.
function Job:finish()
  local ctx, t, target = self.ctx, self.t, self.target
  if self.copy and #self.mapping > 0 then
    local now = outside.folders(ctx, target, nil, true)
    local f, r = outside.shared(now, self.roots)
    if f then self:fail(("%s keeps data in %s after the copy, which is %s's %s"):format(target.name, f, self.inst.name, r)) end
  end
  pause(ctx, "restore.swapped")
  local olds = { self.old }
  for _, tr in ipairs(self.trees) do olds[#olds + 1] = tr.old end
  journal.commit(ctx, target, olds) -- from here a kill leaves the restore done, its old trees for the next run
  self.done = true
  pause(ctx, "restore.committed")
  -- the old trees go before the new one is recorded: unlinking their names of the reused
  -- files moves those files' ctime, which must not read as a write after the record
  local r = self.web and t:exec({ "rm", "-rf", "--", table.unpack(olds) })
  local removed = r and r.code == 0
  if removed then journal.clear(ctx, target, "done")
  else t:exec({ "sh", "-c", 'rm -rf -- "$@" </dev/null >/dev/null 2>&1 &', "sh", table.unpack(olds) }) end
  -- the record only saves the next copy some reading: it never fails a restore that is done
  local rok, rerr = pcall(written.record, ctx, target, t, self.root, removed and self.web or nil, self.keep)
  if not rok then ctx:warn("%s: what this restore wrote is not recorded: %s", target.name, errors.message(rerr)) end
  if self.copy then
    copy().record_copy(ctx, self.inst, target, self.snap, self.opts.kind or "copy")
    outside.declare(ctx, target, self.mapping, self.say)
  end
  return self.summary
end

-- run(ctx, inst, snap, opts) -> summary: the steps at once (an update's undo, a clone, the
-- REPL). Raises on failure, with the target as it was.
function M.run(ctx, inst, snap, opts)
  local job <close> = M.start(ctx, inst, snap, opts)
  if job.opts.db_only then return job:database_only() end
  job:stage()
  job:database()
  job:swap()
  return job:finish()
end


return M
