-- watch: every file of an instance, by content, against the baseline the operator
-- accepted. Agentless: one `find` lists the web root (and the instance's watch paths
-- outside it) with types, modes and owners; the host's sha256sum hashes every regular
-- file, so a file changed with its mtime put back is still caught. A host without
-- sha256sum sends its files in one tar stream to be hashed here.
local core = require "tend.core"
local errors = require "tend.errors"
local backup = require "tend.backup"

local M = {}

local TYPES = { f = "file", d = "dir", l = "link", p = "fifo", s = "socket", c = "device", b = "device" }
local FORMAT = "%y\\0%m\\0%U\\0%G\\0%s\\0%p\\0%l\\0"

-- patterns(inst) -> what watch leaves out: the app's caches, the instance's own list.
function M.patterns(inst)
  local out = {}
  for _, p in ipairs(require("tend.apps").get(inst.app).ignore or {}) do out[#out + 1] = p end
  for p in (inst.watch_ignore or ""):gmatch("[^\n]+") do out[#out + 1] = p end
  for _, p in ipairs(require("tend.maintenance").FILES) do out[#out + 1] = p end
  return out
end

-- list(t, root, ignore, prefix [, only]) -> {path = entry} | nil, msg, code: one find
-- under root (or of the one name `only` in it); paths relative to root, with prefix put
-- before them (for the watch paths outside the web root).
local function list(t, root, ignore, prefix, only)
  local argv = backup.find_argv(only and { "find", "./" .. only, "-maxdepth", "0" } or { "find", "." }, ignore, FORMAT)
  local r, msg, code = t:exec(argv, { cwd = root })
  if not r then return nil, msg, code end
  if r.code ~= 0 then
    return nil, ("list %s: %s"):format(root, r.stderr:match("[^\n]+") or ("find exit " .. r.code)), "remote"
  end
  local out, f = {}, {}
  for field in r.stdout:gmatch("([^%z]*)%z") do
    f[#f + 1] = field
    if #f == 7 then
      local rel = f[6]:gsub("^%./?", "")
      local path = prefix and (rel == "" and prefix or (prefix .. "/" .. rel)) or rel
      if path ~= "" then
        local e = { path = path, rel = rel, root = root, type = TYPES[f[1]] or "device", mode = tonumber(f[2], 8),
          uid = tonumber(f[3]), gid = tonumber(f[4]), size = tonumber(f[5]) }
        if e.type == "link" then e.link = f[7] end
        if e.type ~= "file" then e.size = 0 end
        out[path] = e
      end
      f = {}
    end
  end
  return out
end

-- hash_here(ctx, t, root, rels) -> {rel = hex}: a host without sha256sum sends the files.
local function hash_here(ctx, t, root, rels)
  local names = {}
  for i, p in ipairs(rels) do names[i] = "./" .. p end
  local stream = errors.check(t:open({ "tar", "--null", "--no-recursion", "-T", "-", "-cf", "-" }, { cwd = root }))
  stream:write(table.concat(names, "\0") .. "\0")
  stream:send_eof()
  local entries = errors.check(core.archive.store_tar(stream, ctx:store()))
  stream:wait()
  local out = {}
  for _, e in ipairs(entries) do out[e.path] = e.sha256 end
  return out
end

-- scan(ctx, inst [, extra]) -> {path = entry}: the instance as it is now (extra: more
-- patterns to leave out). Web-root paths are
-- relative ("wp-config.php"); the watch paths outside it absolute ("/etc/php/...").
function M.scan(ctx, inst, extra)
  local t = inst:transport()
  local ignore = M.patterns(inst)
  for _, p in ipairs(extra or {}) do ignore[#ignore + 1] = p end
  local all = errors.check(list(t, inst.path, ignore, nil))
  for outside in (inst.watch_paths or ""):gmatch("[^\n]+") do
    local st = t:stat(outside)
    if st and st.type == "dir" then
      for k, v in pairs(errors.check(list(t, outside, ignore, outside))) do all[k] = v end
    elseif st then
      local parent, name = outside:match("^(.*)/([^/]+)$")
      for k, v in pairs(errors.check(list(t, parent ~= "" and parent or "/", {}, parent, name))) do all[k] = v end
    end
  end
  local by_root = {}
  for _, e in pairs(all) do
    if e.type == "file" then
      by_root[e.root] = by_root[e.root] or {}
      table.insert(by_root[e.root], e)
    end
  end
  for root, files in pairs(by_root) do
    local rels = {}
    for i, e in ipairs(files) do rels[i] = e.rel end
    local hashes, msg, code = t:sha256(root, rels)
    if not hashes and code == "enoent" then hashes = hash_here(ctx, t, root, rels) end
    if not hashes then errors.fail("%s: %s", inst.name, msg) end
    for _, e in ipairs(files) do e.sha256 = hashes[e.rel] or ("unreadable:" .. e.size) end
  end
  for _, e in pairs(all) do e.rel, e.root = nil, nil end
  return all
end

-- baseline(ctx, inst) -> {path = entry} | nil (never accepted)
function M.baseline(ctx, inst)
  local rows = ctx:catalog():query("SELECT * FROM watch_files WHERE instance_id = ?", inst.id)
  if #rows == 0 and not ctx:catalog():meta("watch.accepted." .. inst.id) then return nil end
  local out = {}
  for _, r in ipairs(rows) do out[r.path] = r end
  return out
end

-- accept(ctx, inst, now [, paths]): the baseline becomes `now` (scan's), whole or only
-- for the paths given (a path that is gone leaves the baseline).
function M.accept(ctx, inst, now, paths)
  local catalog = ctx:catalog()
  catalog:transaction(function()
    local function put(e)
      catalog:run("INSERT OR REPLACE INTO watch_files(instance_id, path, type, mode, uid, gid, size, sha256, link) "
        .. "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", inst.id, e.path, e.type, e.mode, e.uid, e.gid, e.size, e.sha256, e.link)
    end
    if not paths then
      catalog:run("DELETE FROM watch_files WHERE instance_id = ?", inst.id)
      for _, e in pairs(now) do put(e) end
    else
      for _, p in ipairs(paths) do
        catalog:run("DELETE FROM watch_files WHERE instance_id = ? AND (path = ? OR path LIKE ? ESCAPE '\\')",
          inst.id, p, p:gsub("[%%_\\]", "\\%0") .. "/%")
        for path, e in pairs(now) do
          if path == p or path:sub(1, #p + 1) == p .. "/" then put(e) end
        end
      end
    end
    catalog:meta("watch.accepted." .. inst.id, tostring(os.time()))
  end)
end

-- diff(before, now) -> {added = {path...}, removed = {...}, changed = {{path=, what={...}}...}}, count
function M.diff(before, now)
  local d = { added = {}, removed = {}, changed = {} }
  for path, e in pairs(now) do
    local b = before[path]
    if not b then
      d.added[#d.added + 1] = path
    else
      local what = {}
      if b.type ~= e.type then what[#what + 1] = "type " .. b.type .. " -> " .. e.type
      else
        if e.type == "file" and b.sha256 ~= e.sha256 then what[#what + 1] = "content" end
        if e.type == "link" and b.link ~= e.link then what[#what + 1] = "target " .. tostring(b.link) .. " -> " .. tostring(e.link) end
      end
      if b.mode ~= e.mode then what[#what + 1] = ("mode %o -> %o"):format(b.mode, e.mode) end
      if b.uid and e.uid and (b.uid ~= e.uid or b.gid ~= e.gid) then -- a manifest keeps no owner
        what[#what + 1] = ("owner %d:%d -> %d:%d"):format(b.uid, b.gid, e.uid, e.gid)
      end
      if #what > 0 then d.changed[#d.changed + 1] = { path = path, what = what } end
    end
  end
  for path in pairs(before) do if not now[path] then d.removed[#d.removed + 1] = path end end
  table.sort(d.added)
  table.sort(d.removed)
  table.sort(d.changed, function(a, b) return a.path < b.path end)
  return d, #d.added + #d.removed + #d.changed
end

-- report(d) -> lines: one per difference, "changed  PATH (content, mode 644 -> 666)".
function M.report(d)
  local lines = {}
  for _, c in ipairs(d.changed) do lines[#lines + 1] = ("  changed  %s (%s)"):format(c.path, table.concat(c.what, ", ")) end
  for _, p in ipairs(d.added) do lines[#lines + 1] = "  added    " .. p end
  for _, p in ipairs(d.removed) do lines[#lines + 1] = "  removed  " .. p end
  return lines
end

-- rebaseline(ctx, inst): after tend itself changed the instance (a clone, an update),
-- what it is now is what is accepted, if it is watched at all.
function M.rebaseline(ctx, inst)
  if ctx:catalog():meta("watch.accepted." .. inst.id) then M.accept(ctx, inst, M.scan(ctx, inst)) end
end

M.list = list -- for compare
M.FORMAT = FORMAT
M.check_pattern = backup.check_pattern

return M
