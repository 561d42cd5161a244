-- snapshot: what the catalog knows of an instance's backups. A snapshot is a manifest
-- (one row per path: type, mode, size, mtime, sha256 or link target; snapshots of an
-- unchanged tree share one) plus the object of its database dump; the bytes live in
-- the object store ($TEND_HOME/store).
local core = require "tend.core"
local errors = require "tend.errors"

local M = {}

function M.store(ctx) return ctx:store() end

-- lock_store(ctx, kind) -> lock: "shared" for runs that add or need objects (backups,
-- restores, imports, verifies), waiting; "exclusive" for gc, which never waits: it fails
-- with code "locked" (exit 4).
function M.lock_store(ctx, kind)
  ctx:store() -- the store's directory must exist to hold the lock
  local lock, msg, code = core.fs.lock(ctx.home .. "/store/lock", kind, kind == "shared")
  if not lock then
    if code == "locked" then errors.raise(4, "the store is in use by a backup, restore or import; try again when it ends") end
    errors.fail("%s", msg)
  end
  return lock
end

-- Runs that add objects (backups, imports, a backup's dump helper) mark themselves
-- with a file in store/runs/, locked while they live, in which the store notes each
-- object they add. A run that fails, or was killed (its file no longer locked), leaves
-- objects nothing needs: sweep removes those, by name, as soon as no other run holds
-- the store (until then they wait for it, or for gc).

-- begin_run(ctx) -> run: this process's run file, locked, noting the objects it adds.
-- Take it before the store's shared lock, so that end_run's sweep finds that free.
function M.begin_run(ctx)
  local st = ctx:store()
  local dir = ctx.home .. "/store/runs"
  errors.check(core.fs.mkdir_p(dir, 448))
  local path = ("%s/%d-%d-%d.run"):format(dir, os.time(), core.proc.pid(), math.random(1, 1 << 30))
  local run = { path = path, lock = errors.check(core.fs.lock(path, "exclusive", false)), adopted = {} }
  errors.check(st:note_added(path))
  return setmetatable(run, { __close = function(r, err) if err ~= nil and not r.done then M.end_run(ctx, r, false) end end })
end

-- end_run(ctx, run, ok): a run that recorded its snapshot forgets its notes (and those
-- of helpers it adopted); one that failed gives them to sweep. Call it with the
-- store's shared lock released.
function M.end_run(ctx, run, ok)
  if run.done then return end
  run.done = true
  ctx:store():note_added(nil)
  if ok then
    for _, p in ipairs(run.adopted) do core.fs.remove(p) end
    core.fs.remove(run.path)
  end
  run.lock:release()
  if not ok then pcall(M.sweep, ctx) end
end

-- sweep(ctx) -> objects removed: what failed and killed runs added that no snapshot
-- (and no restore journal) needs, when no other run holds the store; else 0, and the
-- notes stay for the next sweep or gc.
-- ended_runs(ctx) -> {{path, lock}, ...}: the run files no live run holds, each now
-- locked by us (release them when done).
function M.ended_runs(ctx)
  local dir, ended = ctx.home .. "/store/runs", {}
  for _, name in ipairs(core.fs.list(dir) or {}) do
    local lock = name:match("%.run$") and core.fs.lock(dir .. "/" .. name, "exclusive", false)
    if lock then ended[#ended + 1] = { path = dir .. "/" .. name, lock = lock } end
  end
  return ended
end

function M.sweep(ctx)
  local ended = M.ended_runs(ctx)
  if #ended == 0 then return 0 end
  local removed = 0
  local store_lock = core.fs.lock(ctx.home .. "/store/lock", "exclusive", false)
  if store_lock then
    local st, keep = ctx:store(), M.referenced(ctx:catalog())
    for hex in pairs(require("tend.restore_journal").pinned(ctx)) do keep[hex] = true end
    for _, run in ipairs(ended) do
      local f = io.open(run.path, "rb")
      for hex in (f and f:read("a") or ""):gmatch("(%x+)\n") do
        if #hex == 64 and not keep[hex] and st:remove(hex) then removed = removed + 1 end
      end
      if f then f:close() end
      core.fs.remove(run.path)
    end
    st:prune() -- packs a killed run left unindexed
    store_lock:release()
  end
  for _, run in ipairs(ended) do run.lock:release() end
  return removed
end

-- referenced(catalog) -> {hex = true}: every object some snapshot needs.
function M.referenced(catalog)
  local keep = {}
  for _, r in ipairs(catalog:query("SELECT DISTINCT sha256 FROM manifest_files WHERE sha256 IS NOT NULL")) do keep[r.sha256] = true end
  for _, r in ipairs(catalog:query("SELECT db_object FROM snapshots WHERE db_object IS NOT NULL")) do keep[r.db_object] = true end
  return keep
end

-- objects(ctx) -> {hex, ...}: every object in the store, loose or packed.
function M.objects(ctx) return M.store(ctx):list() end

-- forget(catalog, ids): drop snapshots from the catalog (their objects stay until gc).
function M.forget(catalog, ids)
  catalog:transaction(function()
    for _, id in ipairs(ids) do catalog:run("DELETE FROM snapshots WHERE id = ?", id) end
  end)
end

-- list(catalog, inst) -> snapshots, newest first
function M.list(catalog, inst)
  return catalog:query("SELECT * FROM snapshots WHERE instance_id = ? ORDER BY started_at DESC, id DESC", inst.id)
end

-- latest(catalog, inst) -> the newest snapshot or nil
function M.latest(catalog, inst) return M.list(catalog, inst)[1] end

-- get(catalog, inst, id) -> snapshot | raises a usage error naming what is missing
function M.get(catalog, inst, id)
  local n = math.tointeger(tonumber(id))
  local row = n and catalog:first("SELECT * FROM snapshots WHERE id = ? AND instance_id = ?", n, inst.id)
  if not row then errors.usage("instance %s has no snapshot %s (tend snapshots %s)", inst.name, tostring(id), inst.name) end
  return row
end

-- manifest(catalog, snap) -> rows of its manifest, by path
function M.manifest(catalog, snap)
  return catalog:query("SELECT * FROM manifest_files WHERE manifest_id = ? ORDER BY path", snap.manifest_id)
end

-- files(catalog, snap) -> {path = row}
function M.files(catalog, snap)
  local out = {}
  if not snap then return out end
  for _, f in ipairs(catalog:query("SELECT * FROM manifest_files WHERE manifest_id = ?", snap.manifest_id)) do
    out[f.path] = f
  end
  return out
end

-- through_link(manifest) -> the first path that lies under a symlink of the same
-- manifest ("link/passwd" with link -> /etc), or nil. Extracting such a path would
-- write wherever the link points, so no such manifest is imported or restored.
function M.through_link(manifest)
  local links = {}
  for _, e in ipairs(manifest) do if e.type == "link" then links[e.path] = true end end
  if next(links) == nil then return nil end
  for _, e in ipairs(manifest) do
    local at = e.path:find("/[^/]*$")
    while at do
      if links[e.path:sub(1, at - 1)] then return e.path end
      at = e.path:sub(1, at - 1):find("/[^/]*$")
    end
  end
end

-- unsafe(manifest) -> path, why | nil: the first entry that cannot be restored inside a
-- target as it is named: an absolute path that is not in a folder of data outside the
-- web root (a folder row of its own, tend.outside), an empty, "." or ".." component, a
-- NUL, or a path under a symlink of the same manifest (see through_link).
function M.unsafe(manifest)
  local outside = require "tend.outside"
  local roots = outside.roots(manifest)
  local function tree(p) return outside.tree_of(p, roots) end
  for _, e in ipairs(manifest) do
    local p = e.path
    if p == "" then return p, "an empty name" end
    local home = tree(p)
    if not home then return p, "not relative to the web root, nor in a folder of data outside it" end
    if e.hardlink and tree(e.hardlink) ~= home then return p, "a hard link to another tree" end
    if home ~= "" then p = p:sub(2) end
    if p:find("\0", 1, true) then return p, "a NUL in the name" end
    for part in (p .. "/"):gmatch("([^/]*)/") do
      if part == "" or part == "." or part == ".." then return p, "a \"" .. part .. "\" component" end
    end
  end
  local linked = M.through_link(manifest)
  if linked then return linked, "it lies under a symlink" end
end

-- The fields of a manifest row (manifest_files' columns but its id).
M.FIELDS = { "path", "type", "mode", "size", "mtime", "mtime_ns", "uid", "gid", "sha256", "link", "hardlink",
  "sparse", "rdev" }

-- row(e [, path]) -> a manifest row of entry e (a tar entry, a listing's, another row),
-- at path instead of e.path when given; only a file has a size.
function M.row(e, path)
  local r = {}
  for _, k in ipairs(M.FIELDS) do r[k] = e[k] end
  r.path, r.size = path or e.path, e.type == "file" and (e.size or 0) or 0
  return r
end

-- tar_order(entries) -> a copy of entries in the order a tar of them must have: each
-- folder's whole contents right after it ("a/x" before "a.b", which byte order puts
-- between them, and whose extraction would change a's mtime after tar has set it), and
-- in each hard-link group the first one written holding the data, the others linked
-- to it. A group's holder that is not among entries is there already (taken from the
-- live tree).
function M.tar_order(entries)
  local out, key, present = {}, {}, {}
  for i, e in ipairs(entries) do
    local c = {}
    for k, v in pairs(e) do c[k] = v end
    out[i], key[c], present[e.path] = c, (e.path:gsub("/", "\0")), true
  end
  table.sort(out, function(a, b) return key[a] < key[b] end)
  local holder = {}
  for _, e in ipairs(out) do
    local group = e.hardlink or e.path
    if e.type == "file" and present[group] then
      e.hardlink = holder[group]
      holder[group] = holder[group] or e.path
    end
  end
  return out
end

-- data_bytes(e) -> the bytes of file e that are not holes (what crosses for it).
function M.data_bytes(e)
  if not e.sparse then return e.size end
  local n = 0
  for len in e.sparse:gmatch("%+(%d+)") do n = n + tonumber(len) end
  return n
end

-- resolve_hardlinks(entries) -> entries: tar's hard-link entries (type "hardlink",
-- link = the path that holds the data) as files of that content, hardlink = that path.
-- One whose target is not among the entries is refused.
function M.resolve_hardlinks(entries)
  local by, groups = {}, {}
  for _, e in ipairs(entries) do by[e.path] = e end
  for _, e in ipairs(entries) do
    if e.type == "hardlink" then
      local target = by[e.link]
      if not target or target.type ~= "file" then
        errors.fail("%q is a hard link to %q, which the archive does not hold before it", e.path, tostring(e.link))
      end
      e.type, e.link, e.sha256, e.size, e.sparse = "file", nil, target.sha256, target.size, target.sparse
      groups[target.path] = groups[target.path] or { target.path }
      table.insert(groups[target.path], e.path)
    end
  end
  -- each group's first path by byte order holds the data, as a backup's listing has it
  for _, g in pairs(groups) do
    table.sort(g)
    by[g[1]].hardlink = nil
    for i = 2, #g do by[g[i]].hardlink = g[1] end
  end
  return entries
end

-- tally(manifest) -> files, bytes: the manifest sorted by path (in place), and counted.
function M.tally(manifest)
  table.sort(manifest, function(a, b) return a.path < b.path end)
  local files, bytes = 0, 0
  for _, e in ipairs(manifest) do
    if e.type == "file" then files, bytes = files + 1, bytes + e.size end
  end
  return files, bytes
end

-- record(catalog, snap, manifest, listing) -> id: the snapshot and its manifest in one
-- transaction, so a snapshot is visible whole or not at all. With snap.manifest_id set
-- (an unchanged tree) the manifest is shared and `manifest` is not needed.
function M.record(catalog, snap, manifest, listing)
  local id
  catalog:transaction(function()
    local _
    if not snap.manifest_id then
      _, snap.manifest_id = catalog:run("INSERT INTO manifests(listing) VALUES (?)", listing)
      for _, f in ipairs(manifest) do f.manifest_id = snap.manifest_id end
      local columns = { "manifest_id", table.unpack(M.FIELDS) }
      errors.check(catalog.db:insert_many(("INSERT INTO manifest_files(%s) VALUES (%s)"):format(
        table.concat(columns, ", "), ("?, "):rep(#columns - 1) .. "?"), manifest, columns))
    end
    _, id = catalog:run([[INSERT INTO snapshots(instance_id, started_at, finished_at, app, version,
      files, bytes, sent_bytes, stored_bytes, db_driver, db_object, db_bytes, consistent, note,
      manifest_id, listed_at, root_mode, root_mtime_ns, root_uid, root_gid, db_signal)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
      snap.instance_id, snap.started_at, snap.finished_at, snap.app, snap.version, snap.files,
      snap.bytes, snap.sent_bytes, snap.stored_bytes, snap.db_driver, snap.db_object, snap.db_bytes,
      snap.consistent and 1 or 0, snap.note, snap.manifest_id, snap.listed_at, snap.root_mode, snap.root_mtime_ns,
      snap.root_uid, snap.root_gid, snap.db_signal)
  end)
  return id
end

return M
