-- watch: every file of an instance, by content, against the baseline the operator
-- accepted. Agentless: one `find` lists the web root (and the instance's watch paths
-- outside it) with types, modes and owners; the host's sha256sum hashes every regular
-- file, so a file changed with its mtime put back is still caught. A host without
-- sha256sum sends its files in one tar stream to be hashed here.
local core = require "tend.core"
local errors = require "tend.errors"
local backup = require "tend.backup"
local transport = require "tend.transport"

local M = {}

local TYPES = backup.TYPES
local FORMAT = "%y\\0%m\\0%U\\0%G\\0%s\\0%p\\0%l\\0"

-- patterns(inst) -> what watch leaves out: the app's caches, the instance's own list,
-- and its SQLite database when that lives in the web root (it changes with every write
-- to the site; backups keep it, watch is for the code).
function M.patterns(inst)
  local out = {}
  local adapter = require("tend.apps").get(inst.app)
  for _, p in ipairs(adapter.ignore or {}) do out[#out + 1] = p end
  for p in (inst.watch_ignore or ""):gmatch("[^\n]+") do out[#out + 1] = p end
  for _, p in ipairs(require("tend.maintenance").files(adapter)) do out[#out + 1] = p end
  local s = inst.db and require("tend.db").parse_url(inst.db)
  local rel = s and s.driver == "sqlite" and s.path:sub(1, #inst.path + 1) == inst.path .. "/" and s.path:sub(#inst.path + 2)
  if rel then
    for _, suffix in ipairs({ "", "-journal", "-wal", "-shm" }) do out[#out + 1] = rel .. suffix end
  end
  return out
end

-- One pass on the host: the listing, a mark, then the SHA-256 of every regular file of
-- the same listing (find's own arguments twice), so no path list goes back to the host.
local LIST_AND_HASH = [[F=$1; H=$2; shift 2
find "$@" -printf "$F" || exit 3
printf '\001tend-sha256\001\n'
find "$@" -type f -print0 | sh -c "$H"]]
local MARK = "\001tend-sha256\001\n"

-- parse(raw, root, prefix) -> {path = entry}
local function parse(raw, root, prefix)
  local out, f = {}, {}
  for field in raw:gmatch("([^%z]*)%z") do
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

-- list(t, root, ignore, prefix [, only]) -> {path = entry}, hashes | nil, msg, code: one
-- run under root (or of the one name `only` in it); paths relative to root, with prefix
-- put before them (for the watch paths outside the web root). A whole tree comes with
-- its files' hashes ({rel = hex}); hashes is nil when the host has no sha256sum.
local function list(t, root, ignore, prefix, only)
  if only then
    local r, msg, code = t:exec({ "find", "./" .. only, "-maxdepth", "0", "-printf", FORMAT }, { cwd = root })
    if not r then return nil, msg, code end
    if r.code ~= 0 then return nil, ("list %s/%s: %s"):format(root, only, require("tend.transport").why(r)), "remote" end
    return parse(r.stdout, root, prefix)
  end
  local argv = backup.find_argv({ "sh", "-c", LIST_AND_HASH, "sh", FORMAT, transport.SHA256SUM, "." }, ignore)
  local r, msg, code = t:exec(argv, { cwd = root })
  if not r then return nil, msg, code end
  local at = r.stdout:find(MARK, 1, true)
  if r.code == 3 or not at then
    return nil, ("list %s: %s"):format(root, require("tend.transport").why(r)), "remote"
  end
  local hashes = r.code ~= 127 and transport.parse_sha256(r.stdout:sub(at + #MARK)) or nil
  return parse(r.stdout:sub(1, at - 1), root, prefix), hashes
end

-- hash_here(ctx, t, root, rels) -> {rel = hex}: a host without sha256sum sends the files.
local function hash_here(ctx, t, root, rels)
  local names = {}
  for i, p in ipairs(rels) do names[i] = "./" .. p end
  local stream = errors.check(t:open({ "tar", "--null", "--no-recursion", "-T", "-", "-cf", "-" },
    { cwd = root, stdin_pipe = true }))
  errors.check(stream:write(table.concat(names, "\0") .. "\0"))
  stream:send_eof()
  local entries = errors.check(core.archive.store_tar(stream, ctx:store()))
  stream:wait()
  local out = {}
  for _, e in ipairs(entries) do out[e.path] = e.sha256 end
  return out
end

-- scan(ctx, inst [, extra [, folders]]) -> {path = entry}: the instance as it is now
-- (extra: more patterns to leave out; folders: more absolute folders, its data outside
-- the web root). Web-root paths are
-- relative ("wp-config.php"); the watch paths outside it absolute ("/etc/php/...").
function M.scan(ctx, inst, extra, folders)
  local t = inst:transport()
  local ignore = M.patterns(inst)
  for _, p in ipairs(extra or {}) do ignore[#ignore + 1] = p end
  local all, hashed = {}, {} -- hashed[root] = {rel = hex}, from the listing's own pass
  local function add(entries, hashes)
    for k, v in pairs(entries) do all[k] = v end
    if hashes then
      for _, v in pairs(entries) do hashed[v.root] = hashed[v.root] or hashes break end
    end
  end
  add(errors.check(list(t, inst.path, ignore, nil)))
  local outsides = {}
  for p in (inst.watch_paths or ""):gmatch("[^\n]+") do outsides[#outsides + 1] = p end
  for _, p in ipairs(folders or {}) do outsides[#outsides + 1] = p end
  for _, outside in ipairs(outsides) do
    local st = t:stat(outside)
    if st and st.type == "dir" then
      add(errors.check(list(t, outside, ignore, outside)))
    elseif st then
      local parent, name = outside:match("^(.*)/([^/]+)$")
      add(errors.check(list(t, parent ~= "" and parent or "/", {}, parent, name)))
    end
  end
  local missing = {} -- files whose root was not hashed in its listing's pass
  for _, e in pairs(all) do
    if e.type == "file" then
      local h = hashed[e.root]
      if h then e.sha256 = h[e.rel] or ("unreadable:" .. e.size)
      else
        missing[e.root] = missing[e.root] or {}
        table.insert(missing[e.root], e)
      end
    end
  end
  for root, files in pairs(missing) do
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

return M
