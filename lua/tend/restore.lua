-- restore: put a snapshot back. Files are built in a staging directory beside the
-- target and swapped in by rename; the database gets a safety dump first, then the
-- snapshot's dump is loaded; any failure puts both back as they were.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local backup = require "tend.backup"
local db = require "tend.db"
local pause = require "tend.pause"
local cjson = require "cjson"

local M = {}

-- The journal: while a restore has swapped files or touched the database, a file in
-- $TEND_HOME/journal/ says how to put the instance back, so that a restore killed at any
-- point is rolled back by the next run (M.recover).
local function journal_path(ctx, target) return ("%s/journal/restore-%d.json"):format(ctx.home, target.id) end

local function journal_write(ctx, target, j)
  errors.check(core.fs.mkdir_p(ctx.home .. "/journal", 448))
  errors.check(core.fs.write_atomic(journal_path(ctx, target), cjson.encode(j), 384))
end

local function journal_clear(ctx, target) core.fs.remove(journal_path(ctx, target)) end

local function split(path)
  local parent, base = path:match("^(.*)/([^/]+)$")
  return parent ~= "" and parent or "/", base
end

local function rm_rf(t, path) return t:exec({ "rm", "-rf", "--", path }) end

-- build(t, st, manifest, dir [, progress]): the snapshot's tree extracted into dir (created).
local function build(t, st, manifest, dir, progress)
  errors.check(t:mkdir_p(dir, 448))
  local stream, omsg, ocode = t:open({ "tar", "-xpf", "-", "--no-same-owner", "-C", dir }, { stdin_pipe = true })
  if not stream then return nil, omsg, ocode end
  local files, msg, code = core.archive.write_tar(stream, st, manifest, { progress = progress })
  local status = stream:wait()
  if not files then return nil, msg, code end
  if status == nil then return nil, "tar on the host: the stream broke", "stream" end
  if status ~= 0 then
    return nil, ("tar on the host could not extract: %s"):format(stream:stderr():match("[^\n]+") or ("exit " .. status)), "remote"
  end
  return files
end

-- run_sql(t, s, sql): through the host's client, password in a 0600 option file.
local function client_run(t, s, argv_tail, feed)
  local client = t:which({ "mariadb", "mysql" })
  if not client then return nil, ("no mariadb or mysql client on %s"):format(tostring(t)), "enoent" end
  return t:with_temp(function(optfile)
    local ok, msg, code = t:write(optfile, db.option_file(s), 384)
    if not ok then return nil, msg, code end
    local argv = { client, "--defaults-extra-file=" .. optfile, "--batch", "--skip-column-names" }
    for _, a in ipairs(argv_tail) do argv[#argv + 1] = a end
    argv[#argv + 1] = s.name
    local stream
    stream, msg, code = t:open(argv, { stdin_pipe = true })
    if not stream then return nil, msg, code end
    if feed then
      ok, msg, code = feed(stream)
      if not ok then stream:close(); return nil, msg, code end
    end
    stream:send_eof()
    local out = {}
    while true do
      local chunk = stream:read()
      if not chunk then break end
      out[#out + 1] = chunk
    end
    local status, wmsg = stream:wait()
    if status == nil then return nil, wmsg, "stream" end
    if status ~= 0 then
      return nil, ("database %s: %s"):format(db.describe(s), stream:stderr():match("ERROR[^\n]*") or stream:stderr():match("[^\n]+") or ("exit " .. status)), "db"
    end
    return table.concat(out)
  end)
end

-- load_db(t, st, s, object [, ctx]): empty the database, then load the dump object.
function M.load_db(t, st, s, object, ctx)
  if s.driver == "sqlite" then
    return t:with_temp(function(tmp)
      local stream = errors.check(t:open({ "sh", "-c", 'cat > "$1"', "sh", tmp }, { stdin_pipe = true }))
      local ok, msg, code = st:write_to(object, stream)
      local status = stream:wait()
      if not ok then return nil, msg, code end
      if status ~= 0 then return nil, "could not write the database copy", "remote" end
      return t:rename(tmp, s.path) -- readers see the old file or the new one
    end)
  end
  local tables, msg, code = client_run(t, s, { "-e", "SHOW TABLES" })
  if not tables then return nil, msg, code end
  local drops = { "SET FOREIGN_KEY_CHECKS = 0;" }
  for name in tables:gmatch("([^\n]+)") do drops[#drops + 1] = ("DROP TABLE `%s`;"):format(name:gsub("`", "``")) end
  local ok
  ok, msg, code = client_run(t, s, {}, function(stream)
    local w, wmsg, wcode = stream:write(table.concat(drops, "\n") .. "\n")
    if not w then return nil, wmsg, wcode end
    if ctx then pause(ctx, "restore.db-emptied") end
    w, wmsg, wcode = st:write_to(object, stream)
    if not w then return nil, wmsg, wcode end
    return true
  end)
  if not ok then return nil, msg, code end
  return true
end

-- recover(ctx, target): roll back a restore of target that was interrupted (killed,
-- power cut) by what its journal says: the old tree back, the staging tree gone, the
-- database back from the safety dump. Nothing to do without a journal.
function M.recover(ctx, target, in_process)
  local text = core.fs.read(journal_path(ctx, target))
  if not text then return false end
  local j = cjson.decode(text)
  if not in_process then
    ctx:warn("%s: a restore was interrupted (%s); putting the instance back as it was", target.name,
      os.date("!%Y-%m-%d %H:%M UTC", j.started_at or 0))
  end
  local t, st = target:transport(), snapshot.store(ctx)
  if j.old and t:stat(j.old) then
    if t:stat(target.path) then rm_rf(t, target.path) end
    errors.check(t:rename(j.old, target.path))
  end
  if j.staging and t:stat(j.staging) then rm_rf(t, j.staging) end
  if j.safety then
    local settings = errors.check(target:db_settings(ctx:vault()))
    local ok, msg = M.load_db(t, st, settings, j.safety)
    if not ok then errors.fail("%s: rolling back an interrupted restore: %s (journal kept: %s)", target.name, msg, journal_path(ctx, target)) end
  end
  journal_clear(ctx, target)
  return true
end

-- run(ctx, inst, snap, opts) -> summary.  opts: files_only, db_only, target (an Instance,
-- default inst), progress(fmt, ...). Raises on failure, with the target as it was; a
-- restore killed at any point is rolled back by the next restore or backup (recover).
function M.run(ctx, inst, snap, opts)
  opts = opts or {}
  local say = opts.progress or function() end
  local target = opts.target or inst
  local t, st = target:transport(), snapshot.store(ctx)
  local catalog = ctx:catalog()
  local summary = { snapshot = snap.id, instance = inst.name, target = target.name }
  M.recover(ctx, target)

  -- Read the target's database settings, and dump it, before anything changes.
  local settings, safety
  if not opts.files_only and snap.db_object then
    settings = errors.check(target:db_settings(ctx:vault()))
    -- An absent SQLite file has nothing to protect; any other database gets a safety dump.
    if settings.driver ~= "sqlite" or t:stat(settings.path) then
      say("safety dump of %s", db.describe(settings))
      safety = errors.check(backup.dump_db(t, settings, st))
      errors.check(st:sync()) -- a later run must find it, even after a kill
      summary.safety_object = safety.object
    end
  end

  local parent, base = split(target.path)
  local tag = ("%d-%d"):format(os.time(), math.random(1, 1 << 30))
  local staging = ("%s/.tend-restore-%s-%s"):format(parent, base, tag)
  local old = ("%s/.tend-old-%s-%s"):format(parent, base, tag)

  if not opts.db_only then
    local manifest = snapshot.manifest(catalog, snap)
    local bad = snapshot.through_link(manifest)
    if bad then errors.fail("snapshot %d: unsafe path %s (it lies under a symlink); nothing restored", snap.id, bad) end
    say("building %d entries in %s", #manifest, staging)
    local update, finish = require("tend.progress").new(ctx, target.name, snap.files, snap.bytes)
    local files, msg = build(t, st, manifest, staging, update)
    finish()
    if not files then rm_rf(t, staging); errors.fail("%s", msg) end
    t:exec({ "chmod", "--reference", target.path, staging })
    summary.files = files
  end

  journal_write(ctx, target, { started_at = os.time(), snapshot = snap.id,
    staging = not opts.db_only and staging or nil, old = not opts.db_only and old or nil,
    safety = safety and safety.object or nil })
  local ok, err = pcall(function()
    if not opts.db_only then
      if t:stat(target.path) then errors.check(t:rename(target.path, old)) end
      errors.check(t:rename(staging, target.path))
    end
    if settings then
      say("loading the snapshot's database")
      errors.check(M.load_db(t, st, settings, snap.db_object, ctx))
      summary.db_bytes = snap.db_bytes
    end
  end)
  if not ok then -- a failure we see: roll back now, by the same steps as after a kill
    say("restore failed; putting the instance back")
    local msg = errors.is(err) and err.msg or tostring(err)
    local rok, rerr = pcall(M.recover, ctx, target, true)
    if not rok then errors.fail("%s; and rolling back failed: %s", msg, errors.is(rerr) and rerr.msg or tostring(rerr)) end
    errors.fail("%s (the instance is as it was)", msg)
  end
  if not opts.db_only then rm_rf(t, old) end
  journal_clear(ctx, target)
  return summary
end

return M
