-- show: throwaway instances of any version, for showing a bug (after show.tiki.org). One
-- show host keeps them side by side: instance N lives in ROOT/N and answers at the URL
-- template with {n} replaced (a wildcard DNS name and a web server that maps the first
-- label to the folder: Apache's VirtualDocumentRoot ROOT/%1, nginx's
-- `root ROOT/$sub`). Each is an ordinary instance named show-N, tagged show=yes with its
-- owner, version and expiry, so every job of tend works on it; `show expire` (for
-- cron) removes the expired ones whole. The settings are kept in the catalog's meta.
local errors = require "tend.errors"
local output = require "tend.output"

local M = {}

local KEY = "show.config"

-- FIELDS: the settings `show config` takes, with their defaults.
M.FIELDS = {
  host = "local", ["ssh-key"] = false, root = false, url = false, app = "generic", repo = false, releases = false,
  db = false, migrate = false, admin = "mysql://root@localhost/mysql", ["admin-password-secret"] = false,
  ["password-cmd"] = false, max = 100, ["max-per-owner"] = 3, expires = 14 * 86400, ["min-free"] = 1024,
}

-- config(ctx) -> the show host's settings; a usage error saying how when there are none.
function M.config(ctx)
  local text = ctx:catalog():meta(KEY)
  if not text then
    errors.usage("no show host yet: tend show config --root DIR --url 'https://{n}.show.example.org' --repo URL ...")
  end
  return require("cjson").decode(text)
end

-- configure(ctx, given) -> cfg: the settings given merged into those kept (or the defaults).
function M.configure(ctx, given)
  local text = ctx:catalog():meta(KEY)
  local cfg = text and require("cjson").decode(text) or {}
  for k, default in pairs(M.FIELDS) do
    if given[k] ~= nil then cfg[k] = given[k] elseif cfg[k] == nil and default then cfg[k] = default end
  end
  if not cfg.root or not cfg.root:match("^/") then errors.usage("show config: --root must be an absolute folder") end
  if not cfg.url or not cfg.url:find("{n}", 1, true) then
    errors.usage("show config: --url must hold {n}, the instance's number (https://{n}.show.example.org)")
  end
  if not cfg.repo == not cfg.releases then errors.usage("show config: say where the code comes from: --repo URL or --releases URL") end
  ctx:catalog():meta(KEY, output.json(cfg))
  return cfg
end

-- fill(template, n, root) -> the template with {n} and {root} (the instance's web root) in.
local function fill(template, n, root)
  return (template:gsub("{n}", tostring(n)):gsub("{root}", root))
end

-- list(ctx [, owner]) -> {{name, n, version, owner, url, created, expires}, ...} by number.
function M.list(ctx, owner)
  local out = {}
  for _, inst in ipairs(ctx:instances()) do
    local t = inst.tags
    if t.show == "yes" and (not owner or t["show.owner"] == owner) then
      out[#out + 1] = { name = inst.name, n = tonumber(inst.name:match("(%d+)$")), version = t["show.version"],
        owner = t["show.owner"], url = inst.url, created = tonumber(t["show.created"]), expires = tonumber(t["show.expires"]) }
    end
  end
  table.sort(out, function(a, b) return a.n < b.n end)
  return out
end

-- check_limits(ctx, cfg, owner): room for one more: at most cfg.max at once, and
-- cfg["max-per-owner"] of one owner.
function M.check_limits(ctx, cfg, owner)
  local all = M.list(ctx)
  if #all >= cfg.max then
    errors.usage("the show host has %d instances, its limit (show config --max); destroy one or wait for show expire", #all)
  end
  if owner and #M.list(ctx, owner) >= cfg["max-per-owner"] then
    errors.usage("%s has %d show instances, the limit per owner (show config --max-per-owner); destroy or extend one",
      owner, cfg["max-per-owner"])
  end
end

-- host(ctx, cfg) -> the show host's transport (tend's known_hosts, cfg's key).
function M.host(ctx, cfg)
  if cfg.host == "local" then return require("tend.transport").open("local") end
  local t, msg = require("tend.transport").open(cfg.host, { home = ctx.home, name = "the show host", key_file = cfg["ssh-key"] or nil })
  if not t then errors.fail("%s", msg) end
  return t
end

-- check_disk(ctx, cfg): the show host has cfg["min-free"] MB free where the instances go.
function M.check_disk(ctx, cfg)
  local t = M.host(ctx, cfg)
  local r, msg = t:exec({ "sh", "-c", 'mkdir -p "$1" && df -Pk "$1" | tail -1', "sh", cfg.root }, { timeout = 60 })
  if not r then errors.fail("%s", msg) end
  local kb = r.code == 0 and tonumber(r.stdout:match("^%S+%s+%d+%s+%d+%s+(%d+)"))
  if not kb then errors.fail("df %s: %s", cfg.root, require("tend.transport").why(r)) end
  if kb // 1024 < cfg["min-free"] then
    errors.fail("%s on the show host has %d MB free, less than %d (show config --min-free)", cfg.root, kb // 1024, cfg["min-free"])
  end
end

-- plan(ctx, cfg) -> {n, name, path, url, db}: where the next instance goes. Numbers are
-- never given twice: an old link never shows someone else's instance.
function M.plan(ctx, cfg)
  local c = ctx:catalog()
  local n = tonumber(c:meta("show.next") or "1")
  for _, s in ipairs(M.list(ctx)) do if s.n >= n then n = s.n + 1 end end
  c:meta("show.next", tostring(n + 1))
  local path = cfg.root .. "/" .. n
  return { n = n, name = "show-" .. n, path = path, url = fill(cfg.url, n, path), db = cfg.db and fill(cfg.db, n, path) }
end

-- create_argv(cfg, p, version) -> the arguments of `tend create` for it.
function M.create_argv(cfg, p, version)
  local argv = { p.name, "--app", cfg.app, "--version", version, "--path", p.path, "--host", cfg.host, "--url", p.url,
    "--admin", cfg.admin }
  for _, k in ipairs({ "repo", "releases", "ssh-key", "migrate" }) do
    if cfg[k] then argv[#argv + 1], argv[#argv + 2] = "--" .. k, cfg[k] end
  end
  if p.db then argv[#argv + 1], argv[#argv + 2] = "--db", p.db end
  if cfg["admin-password-secret"] then argv[#argv + 1], argv[#argv + 2] = "--admin-password-secret", cfg["admin-password-secret"] end
  return argv
end

-- mark(ctx, inst, owner, version, expires): the show tags on it.
function M.mark(ctx, inst, owner, version, expires)
  local tags = { show = "yes", ["show.version"] = version, ["show.created"] = tostring(os.time()),
    ["show.expires"] = tostring(expires), ["show.owner"] = owner }
  require("tend.instance").edit(ctx:catalog(), inst.name, {}, tags)
end

-- extend(ctx, inst, until_) : its expiry moved.
function M.extend(ctx, inst, until_)
  require("tend.instance").edit(ctx:catalog(), inst.name, {}, { ["show.expires"] = tostring(until_) })
end

-- set_password(ctx, cfg, inst) -> the vault secret's name: a new random admin password,
-- kept in the vault and given to cfg["password-cmd"] on its stdin (run in the web root).
function M.set_password(ctx, cfg, inst)
  if not cfg["password-cmd"] then return nil end
  local key = inst.name .. ".admin-password"
  local secret = ctx:vault():set_password(key, 16)
  local r, msg = inst:exec(cfg["password-cmd"], { stdin = secret, timeout = 300 })
  if not r then errors.fail("%s", msg) end
  if r.code ~= 0 then errors.fail("%s: %s", cfg["password-cmd"], require("tend.transport").why(r)) end
  return key
end

-- mail_owner(ctx, inst, owner, key) -> true | nil, why: the owner told where it is,
-- until when, and (with key) its admin password.
function M.mail_owner(ctx, inst, owner, key)
  local e = tonumber(inst.tags["show.expires"])
  local body = ("Your show instance %s (version %s) is ready:\n\n  %s\n\n"):format(inst.name, inst.tags["show.version"], inst.url)
  if key then body = body .. ("Log in as admin with the password %s\n\n"):format(errors.check(ctx:vault():get(key)):reveal()) end
  body = body .. ("It is removed after %s UTC (tend show extend %s).\n"):format(os.date("!%Y-%m-%d %H:%M", e), inst.name)
  return ctx:mail(owner, ("show instance %s: %s"):format(inst.name, inst.url), body)
end

-- remove(ctx, cfg, inst): an instance gone whole: its database and user (as cfg.admin),
-- its web root, its secrets and catalog rows.
function M.remove(ctx, cfg, inst)
  local destroy = require "tend.destroy"
  local admin = ctx:database_account(cfg.admin, cfg["admin-password-secret"] or nil)
  local p = destroy.plan(ctx, inst, admin)
  destroy.drop_database(ctx, inst, p)
  destroy.remove_trees(inst, p)
  pcall(ctx:vault().rm, ctx:vault(), inst.name .. ".admin-password")
  destroy.forget(ctx, inst, p)
end

-- unmake(ctx, cfg, p): what a failed create made, taken away (create has unregistered
-- the instance by then): the folder under cfg.root, its MySQL database and user, its
-- secrets. The folder was empty before (create checks), so nothing else goes with it.
function M.unmake(ctx, cfg, p)
  local db = require "tend.db"
  local t = M.host(ctx, cfg)
  if p.path:sub(1, #cfg.root + 1) == cfg.root .. "/" then require("tend.transport").remove_tree(t, p.path) end
  local s = p.db and db.parse_url(p.db)
  if s and s.driver == "mysql" and s.name:match("^[%w_]+$") and (s.user or ""):match("^[%w_.-]+$") then
    local admin = ctx:database_account(cfg.admin, cfg["admin-password-secret"] or nil)
    require("tend.destroy").drop_mysql(t, admin, s.name, db.account(s))
  end
  for _, key in ipairs({ p.name .. ".db-password", p.name .. ".admin-password" }) do pcall(ctx:vault().rm, ctx:vault(), key) end
end

-- set_user(ctx, email): an account of the web page, its password read from stdin (or a
-- hidden prompt) and kept as an Argon2id hash.
function M.set_user(ctx, email)
  local core = require "tend.core"
  local pw = errors.check(core.vault.read_secret(("Password for %s: "):format(email)))
  if #pw:reveal() < 8 then errors.usage("a password of at least 8 characters, please") end
  ctx:catalog():meta("show.user." .. email, core.vault.password_hash(pw))
end

function M.remove_user(ctx, email)
  ctx:catalog():run("DELETE FROM meta WHERE key = ?", "show.user." .. email)
end

-- expired(ctx, now) -> the show instances whose expiry is at or before now.
function M.expired(ctx, now)
  local out = {}
  for _, s in ipairs(M.list(ctx)) do if s.expires and s.expires <= now then out[#out + 1] = s end end
  return out
end

return M
