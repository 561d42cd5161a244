-- apps: one adapter per application; docs/apps.md is the interface. An adapter is a
-- table (a Lua file returning it):
--   name                      "wordpress" (the file's name)
--   detect(t, path)           -> version string | true (this app, version unknown) |
--                             false (not this app) | nil, msg
--   probes                    optional: the files (from the web root) detect reads or
--                             stats; all adapters' are fetched in one round trip first
--   config                    the file holding the database settings ("wp-config.php"),
--   config_files              or a list of them, from the web root
--   parse_config(text, file)  -> settings (see tend.db) | nil: the database a config names
--                             (default: tend.settings.read)
--   db_keys                   how the config names them, {kind = "define"|"assign", name=,
--                             user=, password=, host=}: config_text writes a copy's; without
--                             it tend.settings rewrites every config file of a copy
--   db_settings(t, path, files) -> settings | nil, msg (default: the config files, parsed)
--   data_dirs                 folders of user data (uploads), for migrate-data
--   outside_dirs(t, path, settings) -> {folder, ...} | nil, msg: where this instance keeps
--                             data outside its web root (absolute, or from the web root
--                             with ".."); in every snapshot and copy (tend.outside)
--   ignore                    patterns backups leave out (caches the app rebuilds)
--   caches                    folders emptied in a copy before it goes live
--   maintenance               "htaccess" (tend's page: a rewrite rule and .user.ini; see
--                             tend.maintenance), or the app's own switch: {file = ".maintenance",
--                             php = function(bypass) -> the file's text}, a file whose presence
--                             makes the app answer 503 (a request with the bypass header passes)
--   migrate                   the shell command that migrates its database after new code
--   mail_off(t, root)         optional: make a copy's tree send no e-mail
--   after_copy(t, root, dst)  optional: anything else a copy's new tree needs
--   apply_profile(t, path, name, repo) -> true | nil, msg: optional, a profile the app
--                             applies itself (Tiki's profile:apply), for tend profile
-- t is the instance's transport, so adapters work the same on any host.
-- Adapters are found like recipes: $TEND_APPS_PATH (folders, colon-separated), then
-- $XDG_CONFIG_HOME/tend/apps (~/.config/tend/apps), then the bundled ones; the first
-- file of a name wins. Detection asks the user's adapters first, generic last.
local settings = require "tend.settings"

local M = {}

M.bundled = { "wordpress", "tiki", "generic" }

function M.path()
  local dirs = {}
  for dir in (os.getenv("TEND_APPS_PATH") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = dir end
  local config = os.getenv("XDG_CONFIG_HOME")
  if not config or config == "" then config = (os.getenv("HOME") or "") .. "/.config" end
  dirs[#dirs + 1] = config .. "/tend/apps"
  return dirs
end

-- default_db_settings(adapter) -> db_settings(t, path, files): what an adapter that has
-- none gets: the config files read and parsed (parse_config, or tend.settings).
function M.default_db_settings(adapter)
  return function(t, path, files)
    if #files == 0 then
      -- code "nodb": nothing declares a database; a backup then has none to dump
      return nil, ("tend knows no config file of this %s app: give the instance --db URL, or --config FILE"):format(adapter.name), "nodb"
    end
    local texts = {}
    for _, f in ipairs(files) do
      local text, msg = t:read(path .. "/" .. f)
      if not text then return nil, msg end
      texts[#texts + 1] = { file = f, text = text }
    end
    local s = adapter.parse_config and adapter.parse_config(texts[1].text, texts[1].file) or settings.read(texts)
    if not s then return nil, ("%s name no database tend can read: give the instance --db URL"):format(table.concat(files, ", ")) end
    s.source = s.source or (path .. "/" .. files[1])
    return s
  end
end

local FIELDS = { name = "string", detect = "function", probes = "table", config = "string", config_files = "table",
  parse_config = "function", db_keys = "table", db_settings = "function", data_dirs = "table",
  outside_dirs = "function",
  ignore = "table", caches = "table", maintenance = "any", migrate = "string",
  mail_off = "function", after_copy = "function", apply_profile = "function", description = "string" }

local function errors_fail(...) return require("tend.errors").fail(...) end

-- load_user(name, file) -> adapter: a user's adapter file, checked field by field.
local function load_user(name, file)
  local chunk, msg = loadfile(file, "t")
  if not chunk then errors_fail("app adapter %s: %s", file, msg) end
  local ok, a = pcall(chunk)
  if not ok then errors_fail("app adapter %s: %s", file, tostring(a)) end
  if type(a) ~= "table" then errors_fail("app adapter %s: must return a table", file) end
  for k, v in pairs(a) do
    if not FIELDS[k] then errors_fail("app adapter %s: unknown field '%s' (docs/apps.md)", file, tostring(k)) end
    if FIELDS[k] ~= "any" and type(v) ~= FIELDS[k] then errors_fail("app adapter %s: '%s' must be a %s", file, k, FIELDS[k]) end
  end
  if a.name ~= name then errors_fail("app adapter %s: its name is %q, the file says %q", file, tostring(a.name), name) end
  if not a.detect then errors_fail("app adapter %s: no detect(t, path)", file) end
  local m = a.maintenance
  if m ~= nil and m ~= "htaccess" and not (type(m) == "table" and type(m.file) == "string"
      and m.file:match("^[^/]+$") and type(m.php) == "function") then
    errors_fail("app adapter %s: maintenance is \"htaccess\" or {file = NAME, php = function(bypass)} (docs/apps.md)", file)
  end
  a.data_dirs, a.maintenance, a.file = a.data_dirs or {}, a.maintenance or "htaccess", file
  a.db_settings = a.db_settings or M.default_db_settings(a)
  return a
end

local cache = {}

-- user_names() -> the names of the user's adapters, in path order, each once.
function M.user_names()
  local out, seen = {}, {}
  for _, dir in ipairs(M.path()) do
    for _, e in ipairs(require("tend.core").fs.list(dir) or {}) do
      local name = e:match("^([%w_-]+)%.lua$")
      if name and not seen[name] then out[#out + 1], seen[name] = name, true end
    end
  end
  table.sort(out)
  return out
end

-- get(name) -> adapter | nil, msg
function M.get(name)
  if type(name) ~= "string" or not name:match("^[%w_-]+$") then return nil, ("bad app name %q"):format(tostring(name)) end
  if cache[name] then return cache[name] end
  for _, dir in ipairs(M.path()) do
    local file = dir .. "/" .. name .. ".lua"
    if require("tend.core").fs.stat(file) then
      cache[name] = load_user(name, file)
      return cache[name]
    end
  end
  for _, b in ipairs(M.bundled) do
    if b == name then cache[name] = require("tend.apps." .. name); return cache[name] end
  end
  local known = M.user_names()
  for _, b in ipairs(M.bundled) do known[#known + 1] = b end
  return nil, ("unknown app %q (known: %s; an adapter of your own goes in %s/%s.lua)"):format(name,
    table.concat(known, ", "), M.path()[#M.path()], name)
end

-- order() -> the names detection tries: the user's adapters, then the bundled ones.
function M.order()
  local out = M.user_names()
  for _, b in ipairs(M.bundled) do
    local dup = false
    for _, u in ipairs(out) do dup = dup or u == b end
    if not dup then out[#out + 1] = b end
  end
  -- generic matches anything: always last
  for i, n in ipairs(out) do if n == "generic" then table.remove(out, i); break end end
  out[#out + 1] = "generic"
  return out
end

-- On the host, in the web root ($1): each path after it (the web root first, ".") as
-- "TYPE MODE SIZE MTIME UID GID PATH" (GNU find, links not followed), a "=" line, then
-- the bytes of those that are regular files of at most 1 MiB, in that order. Exit 126
-- when the web root is not there.
local PROBE = [[cd -- "$1" 2>/dev/null || exit 126
shift
find "$@" -maxdepth 0 -printf '%y %m %s %T@ %U %G %p\n' 2>/dev/null
echo =
exec find "$@" -maxdepth 0 -type f -size -1025k -exec cat -- {} + 2>/dev/null]]
local TYPES = { f = "file", d = "dir", l = "link", p = "fifo", s = "socket" }

-- probed(t, root) -> a view of t in which stat(root) and the stat and read of every
-- adapter's probes come from one round trip (the rest goes to t), or t itself where
-- that cannot help (a local root; a host without GNU find, or files that changed while
-- read: each question is then asked alone).
function M.probed(t, root)
  if tostring(t) == "local" then return t end
  local args = { "." }
  for _, name in ipairs(M.order()) do
    local a = M.get(name)
    for _, rel in ipairs(a and a.probes or {}) do args[#args + 1] = "./" .. rel end
  end
  local r = t:exec({ "sh", "-c", PROBE, "sh", root, table.unpack(args) })
  if not r then return t end
  if r.code == 126 then return M.view(t, root, {}, {}, { ["."] = true }) end
  local listing, data = r.stdout:match("^(.-)=\n(.*)$")
  if not listing then return t end
  local stats, order, want = {}, {}, 0
  for line in listing:gmatch("[^\n]+") do
    local kind, mode, size, mtime, uid, gid, path = line:match("^(%a) (%d+) (%d+) ([%d.]+) (%d+) (%d+) (.+)$")
    if not kind then return t end
    local rel = path == "." and "." or path:match("^%./(.+)$")
    if not rel then return t end
    stats[rel] = { type = TYPES[kind] or "device", mode = tonumber(mode, 8), size = math.tointeger(tonumber(size)),
      mtime = math.floor(tonumber(mtime)), uid = math.tointeger(tonumber(uid)), gid = math.tointeger(tonumber(gid)) }
    if kind == "f" and stats[rel].size <= 1048576 then
      order[#order + 1], want = rel, want + stats[rel].size
    end
  end
  if #data ~= want then return t end -- a file changed between the two looks
  local texts, missing, at = {}, {}, 1
  for _, rel in ipairs(order) do
    texts[rel] = data:sub(at, at + stats[rel].size - 1)
    at = at + stats[rel].size
  end
  for i = 2, #args do
    local rel = args[i]:sub(3)
    if not stats[rel] then missing[rel] = true end
  end
  return M.view(t, root, stats, texts, missing)
end

-- view(t, root, stats, texts, missing) -> t, but stat and read of root's probed paths
-- answered from what the probe found.
function M.view(t, root, stats, texts, missing)
  local function rel(path)
    if path == root then return "." end
    return path:sub(1, #root + 1) == root .. "/" and path:sub(#root + 2) or nil
  end
  local function absent(what, path) return nil, ("%s: %s %s: No such file or directory"):format(t.spec, what, path), "enoent" end
  local v = setmetatable({}, { __index = t, __tostring = function() return tostring(t) end })
  local function answered(what, found)
    return function(_, path)
      local k = rel(path)
      if k and found[k] then return found[k] end
      if k and (missing[k] or missing["."]) then return absent(what, path) end
      return t[what](t, path)
    end
  end
  v.stat, v.read = answered("stat", stats), answered("read", texts)
  return v
end

-- detect(t, path) -> adapter, version | nil, msg
function M.detect(t, path)
  for _, name in ipairs(M.order()) do
    local adapter = assert(M.get(name))
    local version, msg = adapter.detect(t, path)
    if version == nil and msg then return nil, msg end
    if version then return adapter, version ~= true and version or nil end
  end
end

-- config_text(adapter, src, settings) -> text | nil, msg: the app's config file src with
-- the database settings of a copy (name, user, host) put in, and its password as
-- tend.settings.MARKS.single (tend.copy_config puts the secret in, in guarded memory).
function M.config_text(adapter, src, s)
  local php = require "tend.php"
  local keys = adapter.db_keys
  if not keys then return nil, ("%s has no database settings to write"):format(adapter.name) end
  local values = { name = s.name, user = s.user, host = require("tend.db").host_spec(s) }
  for _, field in ipairs({ "name", "user", "host" }) do
    local out = php.set(src, keys.kind, keys[field], php.quote(values[field] or ""))
    if not out then return nil, ("%s sets no %s"):format(adapter.config, keys[field]) end
    src = out
  end
  src = php.set(src, keys.kind, keys.password, "'" .. require("tend.settings").MARKS.single .. "'")
  if not src then return nil, ("%s sets no %s"):format(adapter.config, keys.password) end
  return src
end

return M
