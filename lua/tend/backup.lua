-- backup: one snapshot of an instance, agentless (the host needs sh, find, tar, mktemp
-- and its database's dump client). Only new or changed files cross the wire; the
-- snapshot is recorded last, in one transaction, so a failed backup leaves none.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local db = require "tend.db"

local M = {}

local TYPES = { f = "file", d = "dir", l = "link", p = "fifo", s = "socket", c = "device", b = "device" }

-- list(t, root) -> {path = {path, type, mode, size, mtime, link}}: one round trip.
function M.list(t, root)
  local r, msg, code = t:exec({ "find", ".", "-printf", "%y\\0%m\\0%s\\0%T@\\0%p\\0%l\\0" }, { cwd = root })
  if not r then return nil, msg, code end
  if r.code ~= 0 then
    return nil, ("list %s: %s"):format(root, r.stderr:match("[^\n]+") or ("find exit " .. r.code)), "remote"
  end
  local out, fields = {}, {}
  for field in r.stdout:gmatch("([^%z]*)%z") do
    fields[#fields + 1] = field
    if #fields == 6 then
      local kind, mode, size, mtime, path, link = table.unpack(fields)
      fields = {}
      path = path:gsub("^%./", "")
      if path ~= "." then
        -- mtime keeps find's fraction (a double holds microseconds today): two writes of
        -- the same size within one second are still two versions.
        local e = { path = path, type = TYPES[kind] or "device", mode = tonumber(mode, 8),
          size = tonumber(size), mtime = tonumber(mtime) }
        if e.type == "link" then e.link = link end
        if e.type ~= "file" then e.size = 0 end
        out[path] = e
      end
    end
  end
  return out
end

local function unchanged(now, before)
  return before and before.type == now.type and before.mode == now.mode and before.size == now.size
    and before.mtime == now.mtime and before.sha256 ~= nil
end

-- fetch(t, root, paths, st [, progress]) -> {path = entry} | nil, msg: one tar stream.
local function fetch(t, root, paths, st, progress)
  local list = {}
  for i, p in ipairs(paths) do list[i] = "./" .. p end
  return t:with_temp(function(tmp)
    local ok, msg, code = t:write(tmp, table.concat(list, "\0") .. "\0", 384)
    if not ok then return nil, msg, code end
    local stream
    stream, msg, code = t:open({ "tar", "--null", "--no-recursion", "--ignore-failed-read",
      "-T", tmp, "-cf", "-" }, { cwd = root })
    if not stream then return nil, msg, code end
    local entries
    entries, msg, code = core.archive.store_tar(stream, st, progress)
    local status = stream:wait()
    if not entries then return nil, msg, code end
    if status ~= 0 then
      return nil, ("tar on the host failed: %s"):format(stream:stderr():match("[^\n]+") or ("exit " .. status)), "remote"
    end
    local by = {}
    for _, e in ipairs(entries) do by[e.path] = e end
    return by
  end)
end

-- dump_db(t, settings, st) -> {object, bytes} | nil, msg, code
function M.dump_db(t, s, st)
  if s.driver == "sqlite" then
    return t:with_temp(function(tmp)
      local r, msg, code = t:exec({ "sqlite3", s.path, ".backup '" .. tmp:gsub("'", "''") .. "'" })
      if not r then return nil, msg, code end
      if r.code ~= 0 then return nil, ("database %s: %s"):format(db.describe(s), r.stderr:match("[^\n]+") or "sqlite3 failed"), "db" end
      local stream = assert(t:open({ "cat", "--", tmp }))
      local hex, size = st:put_stream(stream)
      local status = stream:wait()
      if not hex or status ~= 0 then return nil, ("database %s: could not read the copy"):format(db.describe(s)), "db" end
      return { object = hex, bytes = size }
    end)
  end
  local client = t:which({ "mariadb-dump", "mysqldump" })
  if not client then return nil, ("no mariadb-dump or mysqldump on %s"):format(tostring(t)), "enoent" end
  return t:with_temp(function(optfile)
    local ok, msg, code = t:write(optfile, db.option_file(s), 384)
    if not ok then return nil, msg, code end
    local stream
    stream, msg, code = t:open({ client, "--defaults-extra-file=" .. optfile, "--single-transaction",
      "--quick", "--routines", "--triggers", "--hex-blob", s.name })
    if not stream then return nil, msg, code end
    local hex, size, _, _, tail = st:put_stream(stream)
    local status = stream:wait()
    if not hex then return nil, size, "stream" end
    if status ~= 0 or not tail:find("%-%- Dump completed") then
      local why = stream:stderr():match("[^\n]+") or ("the dump did not end cleanly (exit " .. status .. ")")
      return nil, ("database %s: %s"):format(db.describe(s), why), "db"
    end
    return { object = hex, bytes = size }
  end)
end

-- run(ctx, inst, opts) -> snapshot id, summary.  opts: rehash (hash every file again),
-- progress(fmt, ...). Raises on failure; nothing is recorded then.
function M.run(ctx, inst, opts)
  opts = opts or {}
  local say = opts.progress or function() end
  local catalog, st, t = ctx:catalog(), snapshot.store(ctx), inst:transport()
  local started = os.time()
  -- Objects written before the snapshot is recorded must not be collected meanwhile.
  local lock <close> = snapshot.lock_store(ctx, "shared")
  local adapter, version = inst:detect()
  if not adapter then errors.fail("%s", version) end

  say("listing %s", inst.path)
  local listing = errors.check(M.list(t, inst.path))
  local before = opts.rehash and {} or snapshot.files(catalog, snapshot.latest(catalog, inst))
  local manifest, wanted = {}, {}
  for path, e in pairs(listing) do
    local old = before[path]
    if e.type == "file" and unchanged(e, old) then e.sha256 = old.sha256 end
    if e.type == "file" and not e.sha256 then wanted[#wanted + 1] = path end
    manifest[#manifest + 1] = e
  end
  table.sort(wanted)

  local sent, stored = 0, 0
  if #wanted > 0 then
    say("fetching %d new or changed files", #wanted)
    local total = 0
    for _, p in ipairs(wanted) do total = total + listing[p].size end
    local update, finish = require("tend.progress").new(ctx, inst.name, #wanted, total)
    local got, fmsg = fetch(t, inst.path, wanted, st, update)
    finish()
    errors.check(got, fmsg)
    local kept = {}
    for _, e in ipairs(manifest) do
      local g = got[e.path]
      if e.type == "file" and not e.sha256 then
        if g and g.sha256 then
          -- tar's size and mode are what was stored; the listing's mtime is the precise one
          e.sha256, e.size, e.mode = g.sha256, g.size, g.mode
          sent, stored = sent + g.size, stored + (g.stored or 0)
          kept[#kept + 1] = e
        end -- else it vanished between listing and reading: not in this snapshot
      else
        kept[#kept + 1] = e
      end
    end
    manifest = kept
  end
  table.sort(manifest, function(a, b) return a.path < b.path end)

  local dbinfo, settings, why = nil, inst:db_settings(ctx:vault())
  if not settings and inst.app ~= "generic" then errors.fail("%s", why) end
  if settings then
    say("dumping database %s", db.describe(settings))
    dbinfo = errors.check(M.dump_db(t, settings, st))
  end

  local files, bytes = 0, 0
  for _, e in ipairs(manifest) do
    if e.type == "file" then files, bytes = files + 1, bytes + e.size end
  end
  local snap = { instance_id = inst.id, started_at = started, finished_at = os.time(),
    app = adapter.name, version = version, files = files, bytes = bytes, sent_bytes = sent,
    stored_bytes = stored, db_driver = settings and settings.driver, db_object = dbinfo and dbinfo.object,
    db_bytes = dbinfo and dbinfo.bytes, consistent = true }
  errors.check(st:sync()) -- every object on disk before the snapshot that needs them
  local id = snapshot.record(catalog, snap, manifest)
  snap.id = id
  return id, snap
end

return M
