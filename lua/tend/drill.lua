-- drill: a restore drill. A snapshot is restored into a scratch directory on this
-- machine, laid out as an export is (files/ the web root, outside/ its folders of data
-- outside it at their absolute paths, db/ the dump), and the tree
-- is then read back and compared with the manifest, so "this snapshot restores" is a
-- fact checked end to end, not a hope (verify alone only proves the objects are whole).
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local transport = require "tend.transport"
local outside = require "tend.outside"

local M = {}

-- A drill's directory says it is one, so that the next drill (a scheduled one) may
-- replace it; any other directory that is not empty is refused.
local MARK = ".tend-drill"

-- clear(dir): what a drill made in dir removed (the mark stays).
function M.clear(dir)
  local r = core.proc.run({ "rm", "-rf", "--", dir .. "/files", dir .. "/outside", dir .. "/db" })
  if not r or r.code ~= 0 then errors.fail("could not clear %s: %s", dir, r and transport.why(r) or "rm failed") end
end

-- prepare(dir): dir made 0700 (it will hold the config file and its password) and
-- marked, emptied when it holds an earlier drill; a usage error, touching nothing, when
-- it is there and holds anything else.
function M.prepare(dir)
  local st = core.fs.stat(dir)
  if st and st.type ~= "dir" then errors.usage("%s is not a directory", dir) end
  if st and #errors.check(core.fs.list(dir)) > 0 then
    if not core.fs.stat(dir .. "/" .. MARK) then
      errors.usage("%s is not empty and not an earlier drill's: a restore drill wants a new or empty directory", dir)
    end
    M.clear(dir)
  end
  errors.check(core.fs.mkdir_p(dir, 448))
  errors.check(core.fs.chmod(dir, 448))
  errors.check(core.fs.write_atomic(dir .. "/" .. MARK, "a tend restore drill; the next one replaces it\n", 384))
end

-- restore(ctx, inst, snap, dir) -> {files, bytes, unmade, db}: the snapshot's tree in
-- dir/files (modes, owners where we are root, mtimes, links, holes), its dump in
-- dir/db/ (0600), each object verified as it is read.
function M.restore(ctx, inst, snap, dir)
  local tree = require "tend.restore_tree"
  local lock <close> = snapshot.lock_store(ctx, "shared")
  local t, st = transport.open("local"), snapshot.store(ctx)
  local manifest = snapshot.manifest(ctx:catalog(), snap)
  local bad, why = snapshot.unsafe(manifest)
  if bad then errors.fail("snapshot %d: unsafe path %q (%s); it cannot be restored", snap.id, bad, why) end
  local files = dir .. "/files"
  local roots = outside.roots(manifest)
  local web, under, own = outside.split(manifest, roots)
  local function progress(n, bytes) return require("tend.progress").new(ctx, inst.name, n, bytes) end
  local built = errors.check(tree.build(t, st, web, files, dir .. "/.none", {}, progress))
  tree.finish_root(t, files, snap, files)
  local out = { files = built.files, bytes = built.sent_bytes, unmade = built.unmade }
  -- each folder outside the web root under outside/, at its absolute path
  for _, root in ipairs(roots) do
    local at, o = dir .. "/outside" .. root, own[root]
    local part = errors.check(tree.build(t, st, under[root], at, dir .. "/.none", {}, progress))
    tree.finish_root(t, at, outside.root_attrs(o), at)
    out.files, out.bytes = out.files + part.files, out.bytes + part.sent_bytes
    for _, u in ipairs(part.unmade) do out.unmade[#out.unmade + 1] = root .. "/" .. u end
  end
  if snap.db_object then
    errors.check(core.fs.mkdir_p(dir .. "/db", 448))
    out.db = dir .. "/db/" .. (snap.db_driver == "sqlite" and "database.sqlite" or "database.sql")
    local ok, msg = st:get_file(snap.db_object, out.db, 384)
    if not ok then errors.fail("snapshot %d: its database dump does not read back (%s)", snap.id, msg) end
  end
  return out
end

-- compare(snap, manifest, files) -> {difference, ...}: the tree at files read back
-- against the manifest: type, mode, size, mtime (to the nanosecond where recorded),
-- content (SHA-256), link targets, hard-link groups, owners (where we are root) and the
-- root's own mode and mtime. What could not be made (sockets; device nodes when not
-- root) is skipped: restore said so by name.
function M.compare(snap, manifest, files, unmade, outside_at)
  local backup = require "tend.backup"
  local t = transport.open("local")
  local raw = errors.check(backup.listing(t, files, {}))
  local now, root = backup.parse(raw)
  local roots = outside.roots(manifest)
  for _, r in ipairs(roots) do -- read back as a backup lists them
    if core.fs.stat(outside_at .. r) then backup.merge_outside(now, r, errors.check(backup.listing(t, outside_at .. r, {}))) end
  end
  local skip, diffs, hashes = {}, {}, {}
  for _, p in ipairs(unmade or {}) do skip[p] = true end
  local am_root = t:is_root()
  local function differ(path, fmt, ...) diffs[#diffs + 1] = ("%s: " .. fmt):format(path, ...) end
  local function same_time(e, f)
    if f.mtime_ns and e.mtime_ns then return e.mtime_ns == f.mtime_ns end
    return math.floor(e.mtime) == math.floor(f.mtime)
  end
  local by = {}
  for _, f in ipairs(manifest) do by[f.path] = f end
  for _, f in ipairs(manifest) do
    local e = now[f.path]
    if skip[f.path] then
    elseif not e then differ(f.path, "missing")
    elseif e.type ~= f.type then differ(f.path, "a %s, not a %s", e.type, f.type)
    else
      if f.type ~= "link" and e.mode ~= f.mode then differ(f.path, "mode %o, not %o", e.mode, f.mode) end
      if f.type == "file" and e.size ~= f.size then differ(f.path, "%d bytes, not %d", e.size, f.size) end
      if f.type == "link" and e.link ~= f.link then differ(f.path, "links to %q, not %q", e.link, f.link) end
      if not same_time(e, f) then differ(f.path, "mtime %s, not %s", e.mtime_ns, f.mtime_ns or f.mtime) end
      if am_root and f.uid and (e.uid ~= f.uid or e.gid ~= f.gid) then
        differ(f.path, "owner %d:%d, not %d:%d", e.uid, e.gid, f.uid, f.gid)
      end
      local leader = f.hardlink and now[f.hardlink]
      if f.hardlink and not (leader and leader.inode == e.inode) then differ(f.path, "not a hard link to %q", f.hardlink) end
      if f.type == "file" then hashes[#hashes + 1] = f.path end
    end
  end
  for path in pairs(now) do
    if not by[path] then differ(path, "not in the snapshot") end
  end
  local sums = {}
  for _, tree in ipairs(outside.group(hashes, roots)) do
    local at = tree.root and (outside_at .. tree.root) or files
    for k, v in pairs(errors.check(t:sha256(at, tree.paths))) do sums[tree.root and (tree.root .. "/" .. k) or k] = v end
  end
  for _, path in ipairs(hashes) do
    if sums[path] ~= by[path].sha256 then differ(path, "content differs (SHA-256 %s)", sums[path] or "unreadable") end
  end
  if root and snap.root_mode and root.mode ~= snap.root_mode then
    differ(".", "mode %o, not %o", root.mode, snap.root_mode)
  end
  if root and snap.root_mtime_ns and root.mtime_ns ~= snap.root_mtime_ns then
    differ(".", "mtime %s, not %s", root.mtime_ns, snap.root_mtime_ns)
  end
  table.sort(diffs)
  return diffs
end

return M
