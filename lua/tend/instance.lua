-- instance: a web application tend looks after: where it lives (host, path, url), what
-- it is (app), where its data is (db), how it relates to others (dev-of, mirror-of...).
local errors = require "tend.errors"
local transport = require "tend.transport"
local apps = require "tend.apps"
local db = require "tend.db"

local Instance = {}
Instance.__index = Instance
Instance.__tostring = function(i) return ("instance %s (%s at %s:%s)"):format(i.name, i.app, i.host, i.path) end

local M = { Instance = Instance }

M.RELATIONS = { ["dev-of"] = true, ["mirror-of"] = true, ["pre-dogfood-of"] = true, ["template-of"] = true }
M.FIELDS = { app = true, host = true, path = true, url = true, db = true,
  ["db-password-secret"] = true, ["ssh-key"] = true, ["ssh-password-secret"] = true,
  ["ssh-key-passphrase-secret"] = true, exclude = true, contact = true, ["watch-path"] = true,
  ["watch-ignore"] = true, migrate = true, releases = true, ["data-dir"] = true, config = true,
  ["version-file"] = true, ["version-pattern"] = true }

local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%w][%w._-]*$") or #name > 100 then
    errors.usage("bad instance name %q: use letters, digits and . _ -", tostring(name))
  end
end

-- one_per_line(v, check) -> the non-empty items of v (a string or a list), each through
-- check, one per line; nil when none is left (an empty value clears the field).
local function one_per_line(v, check)
  local ok = {}
  for _, p in ipairs(type(v) == "string" and { v } or v) do
    if p ~= "" then ok[#ok + 1] = check(p) end
  end
  return #ok > 0 and table.concat(ok, "\n") or nil
end

-- relative(option, p, what, e.g.) -> p as a path inside the web root, from it; a usage
-- error for an absolute path or one that climbs out.
function M.relative(option, p, what, eg)
  local q = p:gsub("/+$", "")
  if q == "" or q:sub(1, 1) == "/" or ("/" .. q .. "/"):find("/%.%.?/") then
    errors.usage("%s %q: %s inside the web root, as a path from it (%s)", option, p, what, eg)
  end
  return q
end

-- Validate one field's value as given on the command line; returns the stored value.
local validate = {
  app = function(v)
    local adapter, msg = apps.get(v)
    if not adapter then errors.usage("%s", msg) end
    return v
  end,
  host = function(v)
    local h, msg = transport.parse(v)
    if not h then errors.usage("%s", msg) end
    return h.spec
  end,
  path = function(v)
    if v:sub(1, 1) ~= "/" then errors.usage("--path must be absolute, got %q", v) end
    return (v:gsub("(.)/+$", "%1"))
  end,
  url = function(v)
    if not v:match("^https?://[^%s]+$") then errors.usage("bad --url %q: use http(s)://HOST[/PATH]", v) end
    return (v:gsub("/+$", ""))
  end,
  db = function(v)
    local s, msg = db.parse_url(v)
    if not s then errors.usage("%s", msg) end
    return v
  end,
  ["db-password-secret"] = function(v) return v end,
  ["ssh-key"] = function(v)
    if v:sub(1, 1) ~= "/" then errors.usage("--ssh-key must be an absolute path, got %q", v) end
    return v
  end,
  ["ssh-password-secret"] = function(v) return v end,
  ["ssh-key-passphrase-secret"] = function(v) return v end,
  migrate = function(v) return v end,
  releases = function(v)
    if not v:match("^https?://[^%s]+$") then errors.usage("bad --releases %q: an http(s) URL of a folder", v) end
    return (v:gsub("/+$", ""))
  end,
  contact = function(v) return require("tend.notify").check_address(v) end,
  -- the lists (a value per --option), stored one per line
  ["watch-path"] = function(v)
    return one_per_line(v, function(p)
      if p:sub(1, 1) ~= "/" or ("/" .. p .. "/"):find("/%.%.?/") then errors.usage("--watch-path must be absolute, got %q", p) end
      return (p:gsub("(.)/+$", "%1"))
    end)
  end,
  ["watch-ignore"] = function(v) return one_per_line(v, require("tend.backup").check_pattern) end,
  ["data-dir"] = function(v)
    -- from the web root, or absolute: data kept outside it (tend.outside)
    return one_per_line(v, function(p)
      if p:sub(1, 1) ~= "/" then return M.relative("--data-dir", p, "a folder", "uploads, /srv/app-files") end
      local q = require("tend.outside").normal(p)
      if not q or q ~= p:gsub("/+$", "") then
        errors.usage("--data-dir %q: an absolute folder without \".\" or \"..\" (/srv/app-files)", p)
      end
      return q
    end)
  end,
  ["version-file"] = function(v) return M.relative("--version-file", v, "a file", "VERSION, lib/version.php") end,
  ["version-pattern"] = function(v)
    local ok = pcall(string.find, "0.0 x", v) -- a malformed pattern raises (most, here)
    if not ok or not v:find("%(.-%)") then
      errors.usage("--version-pattern %q: a Lua pattern with one capture, e.g. \"VERSION', '([^']+)\"", v)
    end
    return v
  end,
  config = function(v)
    return one_per_line(v, function(p) return M.relative("--config", p, "a file", "config.php, .env") end)
  end,
  exclude = function(v) return one_per_line(v, require("tend.backup").check_pattern) end,
}

local COLUMNS = { ["watch-path"] = "watch_paths", ["data-dir"] = "data_dirs", config = "config_files" }
local function column(field) return COLUMNS[field] or (field:gsub("-", "_")) end

local function load_extras(catalog, inst)
  inst.tags = {}
  for _, t in ipairs(catalog:query("SELECT key, value FROM instance_tags WHERE instance_id = ? ORDER BY key", inst.id)) do
    inst.tags[t.key] = t.value
  end
  inst.relations = catalog:query([[SELECT r.kind, s.name AS source, r.lag FROM relations r
    JOIN instances s ON s.id = r.source_id WHERE r.instance_id = ? ORDER BY r.kind]], inst.id)
  return inst
end

-- get(catalog, name) -> Instance | nil, msg
function M.get(catalog, name)
  local row = catalog:first("SELECT * FROM instances WHERE name = ?", name)
  if not row then
    local names = {}
    for i, r in ipairs(catalog:query("SELECT name FROM instances ORDER BY name")) do names[i] = r.name end
    return nil, ("no instance named %q%s (tend instance list)"):format(name, require("tend.suggest").hint(name, names))
  end
  return setmetatable(load_extras(catalog, row), Instance)
end

-- must_get(catalog, name) -> Instance, or a usage error (exit 2).
function M.must_get(catalog, name)
  local inst, msg = M.get(catalog, name)
  if not inst then errors.usage("%s", msg) end
  return inst
end

function M.list(catalog)
  local out = {}
  for _, row in ipairs(catalog:query("SELECT * FROM instances ORDER BY name")) do
    out[#out + 1] = setmetatable(load_extras(catalog, row), Instance)
  end
  return out
end

local function set_tags(catalog, id, tags)
  for k, v in pairs(tags or {}) do
    if v == "" then -- --tag KEY= takes the tag off
      catalog:run("DELETE FROM instance_tags WHERE instance_id = ? AND key = ?", id, k)
    else
      catalog:run("INSERT INTO instance_tags(instance_id, key, value) VALUES (?, ?, ?) "
        .. "ON CONFLICT(instance_id, key) DO UPDATE SET value = excluded.value", id, k, v)
    end
  end
end

-- parse_tags(list) -> {key = value}: --tag KEY=VALUE words; a usage error for a bad one.
function M.parse_tags(list)
  local tags = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([%w._-]+)=(.*)$")
    if not k then errors.usage("bad --tag %q: use KEY=VALUE", kv) end
    tags[k] = v
  end
  return tags
end

-- add(catalog, name, fields, tags) -> Instance.  fields use CLI names (db-password-secret).
function M.add(catalog, name, fields, tags)
  check_name(name)
  if not fields.app then errors.usage("instance add: --app is required (tiki, wordpress or generic)") end
  if not fields.path then errors.usage("instance add: --path is required") end
  if M.get(catalog, name) then errors.usage("instance %s already exists (tend instance edit %s ...)", name, name) end
  local v = {}
  for field, value in pairs(fields) do v[column(field)] = validate[field](value) end
  catalog:transaction(function()
    local _, id = catalog:run([[INSERT INTO instances(name, app, host, path, url, db,
      db_password_secret, ssh_key, ssh_password_secret, ssh_key_passphrase_secret, exclude,
      contact, watch_paths, watch_ignore, migrate, releases, data_dirs, config_files, version_file,
      version_pattern, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
      name, v.app, v.host or "local", v.path, v.url, v.db, v.db_password_secret, v.ssh_key,
      v.ssh_password_secret, v.ssh_key_passphrase_secret, v.exclude, v.contact, v.watch_paths,
      v.watch_ignore, v.migrate, v.releases, v.data_dirs, v.config_files, v.version_file, v.version_pattern, os.time())
    set_tags(catalog, id, tags)
  end)
  return M.get(catalog, name)
end

-- edit(catalog, name, fields, tags): fields with an empty string value are cleared.
function M.edit(catalog, name, fields, tags)
  local inst = M.must_get(catalog, name)
  catalog:transaction(function()
    for field, value in pairs(fields) do
      local stored = value ~= "" and validate[field](value) or nil -- "" (or {""}) clears
      if stored == nil and (field == "app" or field == "path" or field == "host") then
        errors.usage("--%s cannot be empty", field)
      end
      catalog:run(("UPDATE instances SET %s = ? WHERE id = ?"):format(column(field)), stored, inst.id)
    end
    set_tags(catalog, inst.id, tags)
  end)
  return M.get(catalog, name)
end

function M.rm(catalog, name)
  local inst = M.must_get(catalog, name)
  catalog:run("DELETE FROM instances WHERE id = ?", inst.id)
  catalog:run("DELETE FROM meta WHERE key = ?", "written." .. inst.id) -- tend.written's record
end

-- link(catalog, name, kind, source, lag_seconds)
function M.link(catalog, name, kind, source_name, lag)
  if not M.RELATIONS[kind] then errors.usage("unknown relation %q", kind) end
  local inst, src = M.must_get(catalog, name), M.must_get(catalog, source_name)
  if inst.id == src.id then errors.usage("an instance cannot be %s itself", kind) end
  if kind == "mirror-of" and not lag then errors.usage("--mirror-of needs --lag (1d, 7d, 30d...)") end
  catalog:run("INSERT INTO relations(instance_id, kind, source_id, lag) VALUES (?, ?, ?, ?) "
    .. "ON CONFLICT(instance_id, kind) DO UPDATE SET source_id = excluded.source_id, lag = excluded.lag",
    inst.id, kind, src.id, lag)
  return M.get(catalog, name)
end

-- is_production() -> boolean: tagged env=production (or production=...): nothing
-- overwrites it with another instance's data unless asked by name.
function Instance:is_production()
  return self.tags.env == "production" or self.tags.production ~= nil
end

-- The instance's view for humans and --json: never a secret's value, only its name.
function Instance:describe()
  return { name = self.name, app = self.app, host = self.host, path = self.path, url = self.url,
    db = self.db, db_password_secret = self.db_password_secret, ssh_key = self.ssh_key,
    ssh_password_secret = self.ssh_password_secret,
    ssh_key_passphrase_secret = self.ssh_key_passphrase_secret,
    exclude = self:excludes(), tags = require("tend.output").object(self.tags), relations = self.relations, contact = self.contact,
    watch_paths = self.watch_paths, watch_ignore = self.watch_ignore, migrate = self.migrate,
    releases = self.releases, data_dirs = self:data_folders(), outside_dirs = self:outside_dirs(), config_files = self:config_paths(),
    version_file = self.version_file, version_pattern = self.version_pattern }
end

-- config_paths() -> the files (from the web root) that hold the instance's settings: its
-- app's own config file, or the ones declared with --config (a generic app's).
function Instance:config_paths()
  local out, seen = {}, {}
  local own = apps.get(self.app) or {}
  local function add(f) if not seen[f] then out[#out + 1], seen[f] = f, true end end
  if own.config then add(own.config) end
  for _, f in ipairs(own.config_files or {}) do add(f) end
  for f in (self.config_files or ""):gmatch("[^\n]+") do add(f) end
  return out
end

-- data_folders() -> the folders of user data (from the web root): the app's own (uploads),
-- then the instance's declared ones (--data-dir), each once.
function Instance:data_folders()
  local out, seen = {}, {}
  local own = apps.get(self.app)
  for _, d in ipairs(own and own.data_dirs or {}) do
    if not seen[d] then out[#out + 1], seen[d] = d, true end
  end
  for d in (self.data_dirs or ""):gmatch("[^\n]+") do
    if not seen[d] and d:sub(1, 1) ~= "/" then out[#out + 1], seen[d] = d, true end
  end
  return out
end

-- outside_dirs() -> the declared data folders outside the web root (absolute --data-dir);
-- tend.outside.folders adds the app's own.
function Instance:outside_dirs()
  local out = {}
  for d in (self.data_dirs or ""):gmatch("[^\n]+") do
    if d:sub(1, 1) == "/" then out[#out + 1] = d end
  end
  return out
end

-- excludes() -> the instance's own backup exclusions (the app's come on top)
function Instance:excludes()
  local out = {}
  for p in (self.exclude or ""):gmatch("[^\n]+") do out[#out + 1] = p end
  return out
end

-- ssh_options(ctx) -> the options tend.ssh.session needs for this instance's host.
function Instance:ssh_options(ctx, extra)
  local opts = { home = ctx.home, name = self.name, key_file = self.ssh_key }
  if self.ssh_password_secret then
    opts.password = errors.check(ctx:vault():get(self.ssh_password_secret))
  end
  if self.ssh_key_passphrase_secret then
    opts.key_passphrase = errors.check(ctx:vault():get(self.ssh_key_passphrase_secret))
  end
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- transport() -> the host's transport, connected on first use (raises on failure).
function Instance:transport()
  if not self._t then
    local opts = self.ctx and self.host ~= "local" and self:ssh_options(self.ctx) or nil
    local t, msg = transport.open(self.host, opts)
    if not t then errors.fail("instance %s: %s", self.name, msg) end
    self._t = t
  end
  return self._t
end

-- exec(argv | "shell command" [, opts]) -> {code, stdout, stderr} | nil, msg: in the web root.
function Instance:exec(argv, opts)
  if type(argv) == "string" then argv = { "sh", "-c", argv } end
  opts = opts or {}
  opts.cwd = opts.cwd or self.path
  return self:transport():exec(argv, opts)
end

-- detect() -> adapter, version | nil, msg: what the files on the host say the app is.
function Instance:detect()
  local t = apps.probed(self:transport(), self.path) -- what detection reads, in one round trip
  if not t:stat(self.path) then
    return nil, ("instance %s: %s not found on %s"):format(self.name, self.path, self.host), "enoent"
  end
  local adapter, version = apps.detect(t, self.path)
  if adapter and self.version_file then
    local src = t:read(self.path .. "/" .. self.version_file)
    local matched, found = pcall(string.match, src or "", self.version_pattern or M.VERSION_PATTERN)
    if not matched then return nil, ("instance %s: --version-pattern: %s"):format(self.name, found) end
    if not src or not found then
      return nil, ("instance %s: %s has no version%s"):format(self.name, self.version_file,
        self.version_pattern and (" matching " .. self.version_pattern) or "")
    end
    version = found
  end
  return adapter, version
end

-- What --version-file is searched for when no --version-pattern is given: the first
-- dotted number (2.3, 1.6.5, 10.0.0-rc1).
M.VERSION_PATTERN = "(%d+%.%d+[%w.%-+]*)"

-- db_settings(vault) -> settings | nil, msg, code.  --db wins over the app's config file;
-- the password comes from the vault when --db-password-secret names one. Code "nodb":
-- neither the instance nor its app declares a database (an app with no config file).
function Instance:db_settings(vault)
  local s, msg, code
  if self.db then
    s = assert(db.parse_url(self.db))
  else
    local adapter = apps.get(self.app)
    if not adapter then return nil, ("instance %s: unknown app %s"):format(self.name, self.app) end
    s, msg, code = adapter.db_settings(self:transport(), self.path, self:config_paths())
    if not s then return nil, ("instance %s: %s"):format(self.name, msg), code end
  end
  if self.db_password_secret then
    local secret, smsg = vault:get(self.db_password_secret)
    if not secret then return nil, ("instance %s: %s"):format(self.name, smsg) end
    s.password = secret
  end
  return s
end

-- check_db(vault) -> {where, server, tables} | nil, msg: the database answers.
function Instance:check_db(vault)
  local s, msg = self:db_settings(vault)
  if not s then return nil, msg end
  local info, why = db.ping(self:transport(), s)
  if not info then return nil, why end
  info.where = db.describe(s)
  return info
end

return M
