-- outside: an instance's data outside its web root (Tiki's file galleries where its
-- preferences say, a folder declared with --data-dir /srv/app-files). A snapshot holds
-- such a folder's files under their absolute paths ("/srv/app-files/a.pdf") and the
-- folder itself as a row at its own path; the web root's files stay relative. A restore
-- writes such a folder only where the target instance says its data is, and a copy gets
-- folders of its own (map), never its source's.
local errors = require "tend.errors"
local apps = require "tend.apps"

local M = {}

-- normal(p [, base]) -> p as an absolute path without ".", ".." or doubled and trailing
-- slashes (a relative p is taken from base) | nil when it names "/" or climbs above it.
function M.normal(p, base)
  if p:sub(1, 1) ~= "/" then
    if not base then return nil end
    p = base .. "/" .. p
  end
  local parts = {}
  for part in p:gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif part ~= "." then parts[#parts + 1] = part end
  end
  if #parts == 0 then return nil end
  return "/" .. table.concat(parts, "/")
end

-- within(p, dir) -> whether p is dir or lies under it.
function M.within(p, dir) return p == dir or p:sub(1, #dir + 1) == dir .. "/" end

local function overlap(a, b) return M.within(a, b) or M.within(b, a) end

-- tidy(list, root) -> the folders of list that lie outside root, each once, none inside
-- another of them, sorted.
local function tidy(list, root)
  table.sort(list)
  local out = {}
  for _, p in ipairs(list) do
    if not overlap(p, root) and not (out[#out] and M.within(p, out[#out])) then out[#out + 1] = p end
  end
  return out
end

-- folders(ctx, inst [, settings [, lenient]]) -> {abs, ...}: where inst keeps data
-- outside its web root: its declared absolute --data-dir, and the folders its app names
-- (an adapter's outside_dirs, which may read them from the database: Tiki's
-- preferences). Raises when the app cannot say, unless lenient (then warns: the
-- declared ones still count). Second result: {abs = {relative spellings the app used}}.
function M.folders(ctx, inst, settings, lenient)
  local list, spelled = {}, {}
  for _, d in ipairs(inst:outside_dirs()) do list[#list + 1] = d end
  local adapter = apps.get(inst.app)
  if adapter and adapter.outside_dirs then
    if not settings then
      local s = inst:db_settings(ctx:vault())
      settings = s
    end
    if settings then
      local named, msg, code = adapter.outside_dirs(inst:transport(), inst.path, settings)
      if not named and lenient then
        ctx:warn("%s: cannot read where %s keeps data outside its web root (%s)", inst.name, inst.app, msg)
      end
      for _, d in ipairs(named or (lenient and {}) or errors.check(named, msg, code)) do
        local abs = M.normal(d, inst.path)
        list[#list + 1] = abs
        -- a relative spelling ("../files/") names another folder from a copy's web root
        if abs and d:sub(1, 1) ~= "/" then spelled[abs] = spelled[abs] or {}; table.insert(spelled[abs], d) end
      end
    end
  end
  return tidy(list, inst.path), spelled
end

-- roots(rows) -> {abs, ...}: the outside folders a manifest holds (sorted): its
-- absolute folder rows whose parent it does not hold.
function M.roots(rows)
  local dirs, out = {}, {}
  for _, r in ipairs(rows) do if r.type == "dir" and r.path:sub(1, 1) == "/" then dirs[r.path] = true end end
  for p in pairs(dirs) do
    if not dirs[p:match("^(.*)/[^/]+$")] then out[#out + 1] = p end
  end
  table.sort(out)
  return out
end

-- split(rows) -> web root rows, {root = {row with path from root, ...}}, {root = root's
-- own row}: a manifest cut into its trees.
function M.split(rows, roots)
  local web, under, own = {}, {}, {}
  for _, root in ipairs(roots) do under[root] = {} end
  for _, r in ipairs(rows) do
    local root = M.tree_of(r.path, roots)
    if root == "" then web[#web + 1] = r
    elseif root == r.path then own[root] = r
    elseif root then
      local c = {}
      for k, v in pairs(r) do c[k] = v end
      c.path = r.path:sub(#root + 2)
      if c.hardlink then c.hardlink = c.hardlink:sub(#root + 2) end
      table.insert(under[root], c)
    end
  end
  return web, under, own
end

-- tree_of(path, roots) -> "" (a path of the web root) | the root of roots path lies in
-- (or is) | nil (absolute, in none of them).
function M.tree_of(path, roots)
  if path:sub(1, 1) ~= "/" then return "" end
  for _, r in ipairs(roots) do if M.within(path, r) then return r end end
end

-- group(paths, roots) -> {{root = nil (the web root) | folder, paths = {from it}}, ...}:
-- paths by the tree they lie in, the web root's first (paths in no tree are left out).
function M.group(paths, roots)
  local web, under = {}, {}
  for _, p in ipairs(paths) do
    local r = M.tree_of(p, roots)
    if r == "" then web[#web + 1] = p
    elseif r and r ~= p then
      under[r] = under[r] or {}
      table.insert(under[r], p:sub(#r + 2))
    end
  end
  local out = {}
  if #web > 0 then out[1] = { paths = web } end
  for _, r in ipairs(roots) do if under[r] then out[#out + 1] = { root = r, paths = under[r] } end end
  return out
end

-- root_attrs(row) -> a folder's own row as restore.finish_root takes it (a snapshot's
-- root_* fields).
function M.root_attrs(row)
  row = row or {}
  return { root_mode = row.mode, root_mtime_ns = row.mtime_ns, root_uid = row.uid, root_gid = row.gid }
end

local function basename(p) return p:match("([^/]+)$") end

-- default_for(dst, root) -> the folder a copy gets for its source's root when it says of
-- none: beside the copy's web root, "<web root>-data/<the root's name>".
local function default_for(dst, root) return ("%s-data/%s"):format(dst.path, basename(root)) end

-- map(src, src_folders, dst, dst_folders, roots) -> {{from = root, to = folder,
-- declared = bool}, ...}: where a copy of src keeps each of roots (src's outside
-- folders in a snapshot). In place (src is dst) each stays where it is, and must be one
-- of dst_folders. Into a copy: dst's own folder of the same name, else its next folder
-- not yet taken, else default_for; never one of src's, its web root's, or inside dst's.
-- Raises a usage error (nothing was changed) when no safe folder is there.
function M.map(src, src_folders, dst, dst_folders, roots)
  local out = {}
  local function refuse(fmt, ...) errors.usage("%s: " .. fmt .. "; nothing was changed", dst.name, ...) end
  if src.id == dst.id then
    for _, root in ipairs(roots) do
      local ok = false
      for _, f in ipairs(dst_folders) do if M.within(root, f) then ok = true end end
      if not ok then
        refuse("the snapshot holds %s outside the web root, which is not where %s keeps data: declare it "
          .. "(tend instance edit %s --data-dir %s) to restore it there", root, dst.name, dst.name, root)
      end
      if overlap(root, dst.path) then refuse("the snapshot's folder %s overlaps the web root %s", root, dst.path) end
      out[#out + 1] = { from = root, to = root, declared = true }
    end
    return out
  end
  -- by name first; the rest pair up in order when both sides have as many left
  local by_name, taken, left, unmatched = {}, {}, {}, {}
  for _, root in ipairs(roots) do
    for _, f in ipairs(dst_folders) do
      if not taken[f] and basename(f) == basename(root) then by_name[root], taken[f] = f, true; break end
    end
    if not by_name[root] then unmatched[#unmatched + 1] = root end
  end
  for _, f in ipairs(dst_folders) do if not taken[f] then left[#left + 1] = f end end
  if #left == #unmatched then
    for i, root in ipairs(unmatched) do by_name[root] = left[i] end
  end
  for _, root in ipairs(roots) do
    local to = by_name[root]
    local declared = to ~= nil
    to = to or default_for(dst, root)
    local theirs = { src.path }
    for _, f in ipairs(src_folders) do theirs[#theirs + 1] = f end
    for _, f in ipairs(roots) do theirs[#theirs + 1] = f end
    for _, f in ipairs(theirs) do
      if overlap(to, f) then
        refuse("its folder for %s's %s would be %s, which is %s's own (%s): declare a folder of its own "
          .. "(tend instance edit %s --data-dir /path/of/its/own)", src.name, root, to, src.name, f, dst.name)
      end
    end
    if overlap(to, dst.path) then refuse("its folder for %s's %s would be %s, in or around its web root", src.name, root, to) end
    for _, o in ipairs(out) do
      if overlap(o.to, to) then refuse("its folders for %s and %s would overlap (%s, %s)", o.from, root, o.to, to) end
    end
    out[#out + 1] = { from = root, to = to, declared = declared }
  end
  return out
end

-- pairs_of(mapping) -> {{from, to}, ...}: what a copy's database and config say instead:
-- each folder, and each relative spelling the source's app used for it (longest first,
-- so that a folder inside another's name is replaced whole).
function M.pairs_of(mapping)
  local out = {}
  for _, m in ipairs(mapping or {}) do
    if m.from ~= m.to then
      out[#out + 1] = { m.from, m.to }
      for _, raw in ipairs(m.spellings or {}) do out[#out + 1] = { raw, m.to .. (raw:match("/$") or "") } end
    end
  end
  table.sort(out, function(a, b) return #a[1] > #b[1] end)
  return out
end

-- mapping(ctx, src, dst, roots) -> map's mapping of a snapshot's folders outside the web
-- root (roots) to dst's, asking both instances where they keep data ({} when there are
-- none); each entry has the relative spellings src's app used for it (spellings).
function M.mapping(ctx, src, dst, roots)
  if #roots == 0 then return {} end
  local src_folders, spelled = {}, {}
  if src.id ~= dst.id then
    local ok, f, sp = pcall(M.folders, ctx, src) -- the source may be out of reach (a mirror)
    if ok then src_folders, spelled = f, sp end
  end
  local mapping = M.map(src, src_folders, dst, M.folders(ctx, dst, nil, true), roots)
  for _, m in ipairs(mapping) do m.spellings = spelled[m.from] end
  return mapping
end

-- declare(ctx, dst, mapping, say): the folders a copy got for its source's data outside
-- the web root, where it declared none, become its declared --data-dir: its own backups
-- hold them, and the next copy uses them again.
function M.declare(ctx, dst, mapping, say)
  local dirs, new = {}, {}
  for d in (dst.data_dirs or ""):gmatch("[^\n]+") do dirs[#dirs + 1] = d end
  for _, m in ipairs(mapping) do
    if not m.declared then dirs[#dirs + 1], new[#new + 1] = m.to, m.to end
  end
  if #new == 0 then return end
  require("tend.instance").edit(ctx:catalog(), dst.name, { ["data-dir"] = dirs })
  dst.data_dirs = table.concat(dirs, "\n")
  say("%s keeps its copy of the data outside the web root in %s (now its --data-dir)", dst.name, table.concat(new, ", "))
end

-- shared(folders, roots) -> the first of folders that is or holds one of roots, or lies
-- in one, and that root | nil
function M.shared(folders, roots)
  for _, f in ipairs(folders) do
    for _, r in ipairs(roots) do if overlap(f, r) then return f, r end end
  end
end

return M
