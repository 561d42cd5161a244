-- exchange: snapshots to and from portable archives.
-- Our export: files/<the web root>, outside/<its absolute path> for each folder of data
-- outside the web root, db/<dbname>.sql, manifest (one JSON object per
-- line), meta.json; a plain tar, compressed by the file name (.tar.zst .tar.bz2 .tar.gz
-- .tar). Import takes those and Tiki Manager's backup archives (see design.md).
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local cjson = require "cjson"

local M = {}

local COMPRESSION = { { "%.tar%.zst$", "zstd" }, { "%.tzst$", "zstd" }, { "%.tar%.bz2$", "bzip2" },
  { "%.tbz2?$", "bzip2" }, { "%.tar%.gz$", "gzip" }, { "%.tgz$", "gzip" }, { "%.tar$", "none" } }

function M.compression(file)
  for _, c in ipairs(COMPRESSION) do
    if file:find(c[1]) then return c[2] end
  end
  errors.usage("%s: say the format by its name: .tar.zst, .tar.bz2, .tar.gz or .tar", file)
end

-- export(ctx, inst, snap, file) -> files, bytes: the site's files in the archive (its
-- dump, manifest and meta.json are not counted among them)
function M.export(ctx, inst, snap, file)
  local lock <close> = snapshot.lock_store(ctx, "shared") -- gc waits until the objects are read
  local compression = M.compression(file)
  local catalog, st = ctx:catalog(), snapshot.store(ctx)
  local rows = snapshot.manifest(catalog, snap)
  local entries, lines = {}, {}
  local now = snap.started_at
  -- files/ is the web root itself: its mode and mtime are the snapshot's root's
  entries[1] = { path = "files", type = "dir", mode = snap.root_mode or 493, mtime = now, mtime_ns = snap.root_mtime_ns,
    uid = snap.root_uid, gid = snap.root_gid }
  for _, r in ipairs(rows) do
    lines[#lines + 1] = cjson.encode(snapshot.row(r))
    local top = r.path:sub(1, 1) == "/" and "outside" or "files/" -- outside/srv/app-files/...
    local e = snapshot.row(r, top .. r.path)
    e.hardlink = r.hardlink and (top .. r.hardlink)
    entries[#entries + 1] = e
  end
  local dbname
  if snap.db_object then
    local s = inst:db_settings(ctx:vault())
    dbname = (s and (s.name or (s.path and s.path:match("([^/]+)$"))) or "database"):gsub("[^%w._-]", "_")
    entries[#entries + 1] = { path = "db", type = "dir", mode = 493, mtime = now }
    entries[#entries + 1] = { path = "db/" .. dbname .. ".sql", type = "file", mode = 384, mtime = now,
      size = snap.db_bytes, sha256 = snap.db_object }
  end
  local meta = { format = "tend-export", format_version = 1, instance = inst.name, app = snap.app,
    version = snap.version, snapshot = snap.id, taken_at = os.date("!%Y-%m-%dT%H:%M:%SZ", snap.started_at),
    files = snap.files, bytes = snap.bytes, db_driver = snap.db_driver,
    db_file = dbname and ("db/" .. dbname .. ".sql") or nil }
  entries[#entries + 1] = { path = "manifest", type = "file", mode = 420, mtime = now, data = table.concat(lines, "\n") .. "\n" }
  entries[#entries + 1] = { path = "meta.json", type = "file", mode = 420, mtime = now, data = cjson.encode(meta) .. "\n" }
  errors.check(core.archive.write_tar(file, st, snapshot.tar_order(entries), { compression = compression }))
  return snapshot.tally(rows)
end

-- Tiki Manager's manifest.txt: "<md5>    app|data    <abs path>    full|partial" (the
-- oldest have three fields) -> {md5 = {kind=, path=}}
local function tiki_manager_manifest(text)
  local out = {}
  for line in text:gmatch("[^\r\n]+") do
    local md5, kind, path = line:match("^(%x+)    (%a+)    (.-)%s*$")
    if md5 then
      path = path:gsub("    %a+$", "")
      out[md5] = { kind = kind, path = path:gsub("/+$", "") }
    end
  end
  return out
end

-- text_of(st, file, e) -> the bytes of archive entry e, a file, or a job failure.
local function text_of(st, file, e)
  if e.type ~= "file" or not e.sha256 then errors.fail("%s: %s is not a file; nothing imported", file, e.path) end
  return errors.check(st:get_string(e.sha256))
end

-- read_meta(file, text) -> our export's meta.json as a table of strings (and numbers),
-- or a job failure naming what is wrong with it.
local function read_meta(file, text)
  local ok, meta = pcall(cjson.decode, text)
  if not ok or type(meta) ~= "table" then errors.fail("%s: its meta.json is not a JSON object; nothing imported", file) end
  for _, k in ipairs({ "app", "version", "db_driver", "db_file" }) do
    local v = meta[k]
    if v == cjson.null then meta[k] = nil
    elseif v ~= nil and type(v) ~= "string" then errors.fail("%s: meta.json: %s is not a string; nothing imported", file, k) end
  end
  return meta
end

-- utc_time("2026-12-04T08:30:00Z") -> that Unix time | nil
local function utc_time(text)
  local y, mo, d, h, mi, s = tostring(text or ""):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
  if not y then return nil end
  -- os.time reads a table as local time: take the zone's offset at that moment back out
  local t = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
    min = tonumber(mi), sec = tonumber(s), isdst = false })
  local there = os.date("!*t", t)
  there.isdst = false
  return t + (t - os.time(there))
end

-- from_export(st, file, entries, by, add) -> what the archive says: {kind, meta, db, at}.
-- A tend export: files/ is the web root, outside/<abs> each folder outside it.
local function from_export(st, file, entries, by, add)
  local meta = read_meta(file, text_of(st, file, by["meta.json"]))
  for _, e in ipairs(entries) do
    local rel = e.path == "files" and "" or e.path:match("^files/(.+)$")
    local abs = e.path:match("^outside(/.+)$")
    if rel then add(rel, e, "files/") elseif abs then add(abs, e, "outside") end
  end
  return { kind = "tend export", meta = meta, db = meta.db_file and by[meta.db_file], at = utc_time(meta.taken_at) }
end

-- from_tiki_manager(st, file, entries, by, add) -> {kind, meta, db, note, at}: a Tiki
-- Manager backup, <id>-<name>/ with manifest.txt naming a folder per md5; its app folder
-- is the web root, its data folders outside it are kept at their own paths. It was taken
-- when its manifest.txt was written.
local function from_tiki_manager(st, file, entries, by, add)
  local top
  for _, e in ipairs(entries) do top = top or e.path:match("^([^/]+)/manifest%.txt$") end
  if not top then
    errors.usage("%s is neither a tend export (meta.json) nor a Tiki Manager backup (<id>-<name>/manifest.txt)", file)
  end
  local folders = tiki_manager_manifest(text_of(st, file, by[top .. "/manifest.txt"]))
  local root
  for _, f in pairs(folders) do if f.kind == "app" then root = f.path end end
  if not root then errors.fail("%s: its manifest.txt names no app folder", file) end
  local data = {} -- its folders outside the web root, in the snapshot at their own paths
  for _, e in ipairs(entries) do
    local md5, rest = e.path:match("^" .. top:gsub("%p", "%%%0") .. "/(%x+)/?(.*)$")
    local f = md5 and folders[md5]
    local abs = f and (rest ~= "" and (f.path .. "/" .. rest) or f.path)
    if not f or abs == root then
    elseif abs:sub(1, #root + 1) == root .. "/" then
      add(abs:sub(#root + 2), e, top .. "/" .. md5 .. "/")
    elseif f.kind == "data" and f.path:sub(1, 1) == "/" then
      if abs == f.path then data[#data + 1] = f.path end
      add(abs, e, top .. "/" .. md5 .. "/", f.path .. "/")
    end
  end
  table.sort(data)
  return { kind = "Tiki Manager backup", meta = {}, db = by[top .. "/database_dump.sql"],
    note = #data > 0 and ("data outside the web root: %s"):format(table.concat(data, ", ")) or nil,
    at = math.tointeger(by[top .. "/manifest.txt"].mtime) or math.floor(by[top .. "/manifest.txt"].mtime or 0) }
end

-- import(ctx, inst, file) -> snapshot id, summary
function M.import(ctx, inst, file)
  if not core.fs.stat(file) then errors.usage("%s: no such file", file) end
  local st = snapshot.store(ctx)
  local run <close> = snapshot.begin_run(ctx) -- a failed import's objects go (snapshot.sweep)
  local lock <close> = snapshot.lock_store(ctx, "shared")
  local written = st:written()
  local entries = snapshot.resolve_hardlinks(errors.check(core.archive.store_tar(file, st)))
  local by = {}
  for _, e in ipairs(entries) do by[e.path] = e end
  local manifest, top_dir = {}, {} -- and the web root's own mode and mtime
  -- add(path, e [, strip]): e under path in the snapshot; its hard link's first name
  -- loses the same prefix (strip), and the root folder's own mode and mtime are kept.
  local function add(path, e, strip, base)
    if path == "" then top_dir = { mode = e.mode, mtime_ns = e.mtime_ns, uid = e.uid, gid = e.gid }; return end
    local leader = e.hardlink and strip and e.hardlink:sub(1, #strip) == strip and ((base or "") .. e.hardlink:sub(#strip + 1))
    local row = snapshot.row(e, path)
    row.hardlink = leader or nil
    manifest[#manifest + 1] = row
  end
  local got = (by["meta.json"] and from_export or from_tiki_manager)(st, file, entries, by, add)
  local meta, note = got.meta, got.note
  local dbobj, dbbytes = got.db and got.db.sha256, got.db and got.db.size
  local bad, why = snapshot.unsafe(manifest)
  if bad then errors.fail("%s: unsafe path %q (%s); nothing imported", file, bad, why) end
  local files, bytes = snapshot.tally(manifest)
  -- dated when it was taken (forget's retention and a mirror's lag go by that), not now
  local at = got.at and got.at > 0 and got.at <= os.time() and got.at or os.time()
  local snap = { instance_id = inst.id, started_at = at, finished_at = at,
    app = meta.app or inst.app, version = meta.version, files = files, bytes = bytes,
    sent_bytes = 0, stored_bytes = 0, db_driver = dbobj and (meta.db_driver or "mysql") or nil,
    db_object = dbobj, db_bytes = dbbytes, consistent = true, root_mode = top_dir.mode, root_mtime_ns = top_dir.mtime_ns,
    root_uid = top_dir.uid, root_gid = top_dir.gid,
    note = ("imported from %s (%s)%s"):format(file, got.kind, note and ("; " .. note) or "") }
  errors.check(st:sync()) -- every object on disk before the snapshot that needs them
  snap.stored_bytes = st:written() - written
  local id = snapshot.record(ctx:catalog(), snap, manifest)
  snapshot.end_run(ctx, run, true)
  return id, { kind = got.kind, files = files, bytes = bytes, db_bytes = dbbytes, note = note, taken_at = at }
end

return M
