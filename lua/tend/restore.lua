-- restore: put a snapshot back. Files are built in a staging directory beside the
-- target and swapped in by rename; the database gets a safety dump first, then the
-- snapshot's dump is loaded; any failure puts both back as they were.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local backup = require "tend.backup"
local db = require "tend.db"

local M = {}

local function split(path)
  local parent, base = path:match("^(.*)/([^/]+)$")
  return parent ~= "" and parent or "/", base
end

local function rm_rf(t, path) return t:exec({ "rm", "-rf", "--", path }) end

-- build(t, st, manifest, dir): the snapshot's tree extracted into dir (created).
local function build(t, st, manifest, dir)
  errors.check(t:mkdir_p(dir, 448))
  local stream, omsg, ocode = t:open({ "tar", "-xpf", "-", "--no-same-owner", "-C", dir }, { stdin_pipe = true })
  if not stream then return nil, omsg, ocode end
  local files, msg, code = core.archive.write_tar(stream, st, manifest)
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
  local client = backup.client(t, { "mariadb", "mysql" })
  if not client then return nil, ("no mariadb or mysql client on %s"):format(tostring(t)), "enoent" end
  return backup.with_temp(t, function(optfile)
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

-- load_db(t, st, s, object): empty the database, then load the dump object into it.
function M.load_db(t, st, s, object)
  if s.driver == "sqlite" then
    return backup.with_temp(t, function(tmp)
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
    w, wmsg, wcode = st:write_to(object, stream)
    if not w then return nil, wmsg, wcode end
    return true
  end)
  if not ok then return nil, msg, code end
  return true
end

-- run(ctx, inst, snap, opts) -> summary.  opts: files_only, db_only, target (an Instance,
-- default inst), progress(fmt, ...). Raises on failure, with the target as it was.
function M.run(ctx, inst, snap, opts)
  opts = opts or {}
  local say = opts.progress or function() end
  local target = opts.target or inst
  local t, st = target:transport(), snapshot.store(ctx)
  local catalog = ctx:catalog()
  local summary = { snapshot = snap.id, instance = inst.name, target = target.name }

  -- Read the target's database settings before its files change.
  local settings
  if not opts.files_only and snap.db_object then
    settings = errors.check(target:db_settings(ctx:vault()))
  end

  local parent, base = split(target.path)
  local tag = ("%d-%d"):format(os.time(), math.random(1, 1 << 30))
  local staging = ("%s/.tend-restore-%s-%s"):format(parent, base, tag)
  local old = ("%s/.tend-old-%s-%s"):format(parent, base, tag)
  local swapped = false

  local function undo_files()
    if swapped then
      rm_rf(t, target.path)
      t:rename(old, target.path)
    end
    rm_rf(t, staging)
  end

  if not opts.db_only then
    local manifest = catalog:query("SELECT * FROM snapshot_files WHERE snapshot_id = ? ORDER BY path", snap.id)
    say("building %d entries in %s", #manifest, staging)
    local files, msg = build(t, st, manifest, staging)
    if not files then undo_files(); errors.fail("%s", msg) end
    errors.check(t:exec({ "chmod", "--reference", target.path, staging }))
    local ok
    ok, msg = t:rename(target.path, old)
    if not ok and t:stat(target.path) then undo_files(); errors.fail("%s", msg) end
    swapped = ok and true or false
    ok, msg = t:rename(staging, target.path)
    if not ok then undo_files(); errors.fail("%s", msg) end
    summary.files = files
  end

  local function db_phase()
    if not settings then return end
    say("safety dump of %s", db.describe(settings))
    local safety, msg = backup.dump_db(t, settings, st)
    if not safety then errors.fail("%s", msg) end
    say("loading the snapshot's database")
    local ok, lmsg = M.load_db(t, st, settings, snap.db_object)
    if not ok then
      say("loading failed; putting the database back")
      local back, bmsg = M.load_db(t, st, settings, safety.object)
      if not back then
        errors.fail("%s; and the safety dump %s could not be loaded back: %s", lmsg, safety.object:sub(1, 12), bmsg)
      end
      errors.fail("%s (the instance is as it was)", lmsg)
    end
    summary.db_bytes = snap.db_bytes
    summary.safety_object = safety.object
  end
  -- Whatever goes wrong in the database phase (a bug included), the files go back.
  local ok, err = pcall(db_phase)
  if not ok then
    undo_files()
    error(err, 0)
  end

  if swapped then rm_rf(t, old) end
  return summary
end

return M
