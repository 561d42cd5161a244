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

-- recover(): a restore of this instance that was killed midway is rolled back (its
-- journal says how); nothing when none was.
function Instance:recover()
  require("tend.restore_journal").recover(self.ctx, self)
end

-- backup_start(opts) -> job: a backup in steps (tend.backup: job:files(),
-- job:database(), job:record()), to be closed: `local job <close> = ...`.
-- opts: rehash, exclude.
function Instance:backup_start(opts)
  local o = { progress = say(self) }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("tend.backup").start(self.ctx, self, o)
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

-- snapshot(id) -> the snapshot of this instance with that id, or its newest without one;
-- a usage error when there is none.
function Instance:snapshot(id)
  local snapshot, catalog = require "tend.snapshot", self.ctx:catalog()
  if id then return snapshot.get(catalog, self, id) end
  return snapshot.latest(catalog, self) or errors.usage("%s has no snapshots (tend backup %s)", self.name, self.name)
end

-- restore_start(snap, opts) -> job: a restore into this instance in steps (tend.restore:
-- job:stage(), job:database(), job:swap(), job:finish(), or job:database_only()), to be
-- closed: `local job <close> = ...`. opts.from: the instance snap is of (default this
-- one: a copy when it is another); the rest as restore.run's.
function Instance:restore_start(snap, opts)
  local o = { progress = say(self), target = self }
  for k, v in pairs(opts or {}) do o[k] = v end
  o.from = nil
  return require("tend.restore").start(self.ctx, opts and opts.from or self, snap, o)
end

-- command(argv) -> its stdout: argv run in the web root (a shell line when a string),
-- which must succeed; raises its last line of stderr (or "exit N") when it fails.
function Instance:command(argv)
  local r, msg = self:exec(argv)
  if not r then error(msg, 0) end
  if r.code ~= 0 then error(require("tend.transport").why(r), 0) end
  return r.stdout
end

-- unregister(): out of tend's catalog; its files and database untouched.
function Instance:unregister()
  require("tend.instance").rm(self.ctx:catalog(), self.name)
end

-- check_empty(): its web root is missing or empty (where a new instance may go).
function Instance:check_empty()
  local t = self:transport()
  if t:stat(self.path) and #(t:list(self.path) or {}) > 0 then errors.fail("%s is not empty", self.path) end
end

-- db_driver() -> "mysql", "sqlite" or nil: what its --db names (nil: none given).
function Instance:db_driver()
  local s = self.db and require("tend.db").parse_url(self.db)
  return s and s.driver
end

-- install(opts): its code put in its web root: opts.repo cloned at opts.version (a tag),
-- or that version's tarball of opts.releases checked against SHA256SUMS and unpacked.
function Instance:install(opts)
  local t = self:transport()
  if opts.repo then
    say(self)("cloning %s at %s", opts.repo, opts.version)
    -- a tag, a branch or a commit: cloned, then checked out (git clone --branch takes no commit)
    local r, msg = t:exec({ "git", "clone", "--quiet", "--no-checkout", "--", opts.repo, self.path }, { timeout = 1800 })
    if not r or r.code ~= 0 then errors.fail("git clone: %s", msg or require("tend.transport").why(r)) end
    r, msg = t:exec({ "git", "-C", self.path, "checkout", "--quiet", opts.version, "--" }, { timeout = 600 })
    if not r or r.code ~= 0 then errors.fail("git checkout %s: %s", opts.version, msg or require("tend.transport").why(r)) end
    return
  end
  local release = require "tend.release"
  local entry = release.target(release.list(opts.releases), nil, opts.version)
  say(self)("unpacking %s", entry.file)
  errors.check(t:mkdir_p(self.path, 493))
  release.install(t, self.path, opts.releases, entry)
end

-- copy_check(src, opts, snap) -> plan, lines: every refusal of a copy of src onto this
-- instance, made before anything is done on either side (tend.copy.check_target); the
-- plan of its config files, and what it changes in them, one line each (passwords as
-- ********). opts: overwrite_production, db_only.
function Instance:copy_check(src, opts, snap)
  local plan = require("tend.copy").check_target(self.ctx, src, self, opts or {}, snap)
  return plan, require("tend.copy_config").changes(plan)
end

-- copy_from(src, snap, opts) -> summary: this instance made a copy of src as in snap,
-- behind its maintenance page (tend.copy.clone). opts: plan (copy_check's), files_only,
-- db_only, redact, overwrite_production, without_page, keep_maintenance.
function Instance:copy_from(src, snap, opts)
  local o = { progress = say(self) }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("tend.copy").clone(self.ctx, src, self, snap, o)
end

-- data_from(src, snap, opts) -> summary: src's database and data folders as in snap,
-- this instance's code and config untouched (tend.copy.migrate_data).
function Instance:data_from(src, snap, opts)
  local o = { progress = say(self) }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("tend.copy").migrate_data(self.ctx, src, self, snap, o)
end

-- source(kind) -> the instance this one is kind of ("mirror-of", "pre-dogfood-of"), and
-- the lag; a usage error when it is linked to none.
function Instance:source(kind)
  return require("tend.copy").source_of(self.ctx, self, kind)
end

-- snapshot_aged(lag, now) -> its newest snapshot at least lag seconds old at now.
function Instance:snapshot_aged(lag, now)
  local snap, why = require("tend.copy").mirror_pick(self.ctx, self, lag, now or os.time())
  if not snap then errors.fail("%s", why) end
  return snap
end

-- copy_of() -> {source_id, snapshot_id, kind, at} | nil: what tend last copied here.
function Instance:copy_of()
  return require("tend.copy").copy_of(self.ctx, self)
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

-- check_updatable(src): a copy of src here could be updated by tend: src's web root is
-- a git or Subversion checkout (the copy gets it), or this instance has --releases.
-- Read only; a usage error otherwise, before anything is done.
function Instance:check_updatable(src)
  if self.releases or require("tend.vcs").state(src:transport(), src.path) then return end
  errors.usage("%s's web root is no git or Subversion checkout and %s has no --releases URL, so tend could not "
    .. "update a copy of it (--update CMD runs a command of yours instead); nothing was changed", src.name, self.name)
end

-- versions() -> {current, versions, source}: the versions there are (its repository's
-- tags, or its --releases), oldest first, and where it is now.
function Instance:versions()
  return require("tend.update").versions(self)
end

-- code_changes() -> {path, ...}: the tracked files of its checkout changed on the host
-- (untracked ones, its config and uploads, are no change of the code); a usage error
-- when its web root is no git or Subversion checkout.
function Instance:code_changes()
  local list = require("tend.vcs").changes(self:transport(), self.path)
  if not list then errors.usage("%s: %s is no git or Subversion checkout: tend cannot tell its changes", self.name, self.path) end
  return list
end

-- revert_code(): the tracked files back as the checkout's commit has them.
function Instance:revert_code()
  require("tend.vcs").revert(self:transport(), self.path)
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

-- shell() -> exit code: its SSH user's login shell in its web root, for a person at a
-- terminal (or fed from our stdin), over tend's own connection and host-key check.
function Instance:shell()
  local code, why, kind = self:transport():interactive(self.path)
  if not code then errors.fail("%s", why or kind) end
  return code
end

-- chore(name, ...) -> what it gives: a chore its app's adapter knows how to do on its
-- host (Tiki: fix_permissions, scheduler, temporary_user), in its web root.
function Instance:chore(name, ...)
  local adapter = require("tend.apps").get(self.app)
  if type(adapter[name]) ~= "function" then
    errors.usage("%s is a %s instance, and tend knows no %s for %s", self.name, self.app, (name:gsub("_", " ")), self.app)
  end
  local out, why = adapter[name](self:transport(), self.path, ...)
  if out == nil then errors.fail("%s", why) end
  return out
end

-- patches() -> {{id, name, source, added_at}, ...}; patch_add(source) -> row, was_in;
-- patch_remove(id) -> row: the fixes kept on its code (tend.patch).
function Instance:patches() return require("tend.patch").list(self.ctx, self) end
function Instance:patch_add(source) return require("tend.patch").add(self.ctx, self, source) end
function Instance:patch_remove(id) return require("tend.patch").remove(self.ctx, self, id) end

-- unpatch() -> n: its patches taken off, so its code is its version's and can move;
-- patch() -> n: put back on (one that no longer applies fails, naming it).
function Instance:unpatch()
  local n = require("tend.patch").off(self.ctx, self)
  if n > 0 then say(self)("%d patches taken off", n) end
  return n
end

function Instance:patch()
  local n = require("tend.patch").on(self.ctx, self)
  if n > 0 then say(self)("%d patches applied", n) end
  return n
end

-- patches_from(src): a copy keeps src's patches (its later updates put them back) and
-- its code has them.
function Instance:patches_from(src)
  require("tend.patch").copy(self.ctx, src, self)
  return self:patch()
end

-- bisect_check(), bisect_start(good, bad, snap) -> at, bisect_mark(verdict) -> at,
-- bisect_settle() -> seconds, bisect_test(cmd, settle) -> verdict, bisect_go(commit),
-- bisect_reset() -> snapshot id:
-- git bisect on its checkout (tend.bisect).
function Instance:bisect_check() require("tend.bisect").check(self.ctx, self) end
function Instance:bisect_start(good, bad, snap) return require("tend.bisect").start(self.ctx, self, good, bad, snap) end
function Instance:bisect_mark(verdict) return require("tend.bisect").mark(self.ctx, self, verdict) end
function Instance:bisect_test(cmd, settle) return require("tend.bisect").test(self, cmd, settle) end
function Instance:bisect_settle() return require("tend.bisect").settle(self.ctx, self) end
function Instance:bisect_go(commit) require("tend.bisect").go(self, commit) end
function Instance:bisect_reset() return require("tend.bisect").reset(self.ctx, self) end

-- watch_scan() -> {path = entry}: every file of it hashed on its host (and its
-- --watch-path entries), by content.
function Instance:watch_scan()
  return require("tend.watch").scan(self.ctx, self)
end

-- watch_baseline() -> {path = entry}, accepted_at | nil: the accepted baseline and when.
function Instance:watch_baseline()
  local before = require("tend.watch").baseline(self.ctx, self)
  return before, before and tonumber(self.ctx:catalog():meta("watch.accepted." .. self.id))
end

-- watch_set(now, paths): the baseline becomes now (watch_scan's), whole or for paths.
function Instance:watch_set(now, paths)
  require("tend.watch").accept(self.ctx, self, now, paths)
end

-- watch_accept(): the files as they are now become the watch baseline (after new code).
function Instance:watch_accept()
  require("tend.watch").rebaseline(self.ctx, self)
end

-- destroy_plan(admin) -> plan: what destroy would remove (tend.destroy.plan), found
-- before anything is done; plan.lines says it. admin: who drops a MySQL database.
function Instance:destroy_plan(admin)
  return require("tend.destroy").plan(self.ctx, self, admin)
end

-- archive(snap, file) -> file: snap exported to file and read back whole (the way back
-- after destroy: tend import).
function Instance:archive(snap, file)
  return require("tend.destroy").archive(self.ctx, self, snap, file)
end

-- destroy_journal(plan, file): a destroy committed (a stopped one is finished by the next
-- run); destroy_begun(admin) -> plan | nil: such a stopped one's plan and archive.
function Instance:destroy_journal(plan, file) require("tend.destroy").journal(self.ctx, self, plan, file) end
function Instance:destroy_begun(admin) return require("tend.destroy").begun(self.ctx, self, admin) end

-- drop_database(plan), remove_files(plan), forget(plan): destroy's removals, in that order.
function Instance:drop_database(plan)
  require("tend.destroy").drop_database(self.ctx, self, plan)
  require("tend.pause")(self.ctx, "destroy.dropped")
end
function Instance:remove_files(plan)
  require("tend.destroy").remove_trees(self, plan)
  require("tend.pause")(self.ctx, "destroy.removed")
end
function Instance:forget(plan) require("tend.destroy").forget(self.ctx, self, plan) end

return Instance
