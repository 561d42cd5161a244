-- copy_config: the config files of a copy, which must name the copy's database, URL and
-- web root and never its source's. Before the first change on either side, plan() says
-- what each of them will hold: the copy's own live file when it already names the
-- copy's database, else the source's file made to (an adapter's keys for WordPress and
-- Tiki, tend.settings for the --config files of a generic app); it refuses when it cannot
-- be sure. write() puts them in the new tree and reads them back there, before the tree
-- goes live, so a copy that would still name its source never serves a page.
local errors = require "tend.errors"
local apps = require "tend.apps"
local db = require "tend.db"
local settings = require "tend.settings"
local snapshot = require "tend.snapshot"

local M = {}

local LOCAL = { localhost = true, ["127.0.0.1"] = true, ["::1"] = true }

-- same_database(ai, a, bi, b) -> true when settings a (of instance ai) and b (of bi) may
-- be one database: a SQLite file at one path of one host, or one name on one server (a
-- local server of one host, or the same server name).
function M.same_database(ai, a, bi, b)
  if not (a and b) or a.driver ~= b.driver then return false end
  if a.driver == "sqlite" then return ai.host == bi.host and a.path == b.path end
  if tostring(a.name) ~= tostring(b.name) then return false end
  local la, lb = a.socket or LOCAL[a.host or "localhost"], b.socket or LOCAL[b.host or "localhost"]
  if la and lb then
    return ai.host == bi.host and (a.socket or b.socket or (a.port or 3306) == (b.port or 3306)) and true or false
  end
  return not la and not lb and a.host == b.host and (a.port or 3306) == (b.port or 3306)
end

-- snapshot_text(ctx, snap, file) -> the file's bytes as snap holds them | nil
local function snapshot_text(ctx, snap, file)
  local cat = ctx:catalog()
  local row = cat:first("SELECT * FROM manifest_files WHERE manifest_id = ? AND path = ?", snap.manifest_id, file)
  if row and not row.sha256 and row.hardlink then
    row = cat:first("SELECT * FROM manifest_files WHERE manifest_id = ? AND path = ?", snap.manifest_id, row.hardlink)
  end
  if not row or row.type ~= "file" or not row.sha256 then return nil end
  return errors.check(snapshot.store(ctx):get_string(row.sha256))
end

-- parse(adapter, text, file) -> the database a config text names | nil
local function parse(adapter, text, file)
  if adapter.parse_config then return (adapter.parse_config(text, file)) end
  return settings.read({ { file = file, text = text } })
end

-- source_db(ctx, src, text_of) -> src's database settings, as its config (of the
-- snapshot, or of its live tree before one is taken) or --db says, with its password.
local function source_db(ctx, src, text_of)
  if src.db then return errors.check(src:db_settings(ctx:vault())) end
  local adapter, texts = apps.get(src.app), {}
  for _, f in ipairs(src:config_paths()) do
    local text = text_of(f)
    if text then texts[#texts + 1] = { file = f, text = text } end
  end
  local s
  if adapter.parse_config and texts[1] then s = adapter.parse_config(texts[1].text, texts[1].file)
  elseif texts[1] then s = settings.read(texts) end
  if s and src.db_password_secret then s.password = errors.check(ctx:vault():get(src.db_password_secret)) end
  return s
end

local function refuse(dst, fmt, ...)
  errors.usage("%s: " .. fmt .. "; nothing was changed", dst.name, ...)
end

-- linked_parent(f, is_link) -> the first folder of path f (from the web root) that is a
-- symlink (is_link(folder) says) | nil. A copy's config written there would land
-- wherever the link points: often the source's own config (Debian's Roundcube links
-- config/ to /etc/roundcube).
local function linked_parent(f, is_link)
  local at = f:find("/", 1, true)
  while at do
    local dir = f:sub(1, at - 1)
    if is_link(dir) then return dir end
    at = f:find("/", at + 1, true)
  end
end

-- inside(t, root, f) -> true | where f's folder really is, when a symlink on the way leads
-- out of root (checked on the host, in the new tree, right before writing).
local IN_TREE = [[d=$(cd -P -- "$(dirname -- "$1/$2")" 2>/dev/null && pwd) || exit 0
r=$(cd -P -- "$1" && pwd) || exit 0
case "$d/" in "$r"/*) exit 0 ;; esac
printf '%s' "$d"; exit 3]]
local function inside(t, root, f)
  local r = t:exec({ "sh", "-c", IN_TREE, "sh", root, f })
  if r and r.code == 3 then return r.stdout end
  return true
end

-- refuse_linked(ctx, src, dst, snap, files): refused when a config file lies
-- under a symlink of src's tree (a copy's would be written wherever it points).
local function refuse_linked(ctx, src, dst, snap, files)
  local function is_link(dir)
    if snap then
      local row = ctx:catalog():first("SELECT type FROM manifest_files WHERE manifest_id = ? AND path = ?", snap.manifest_id, dir)
      return row and row.type == "link"
    end
    local st = src:transport():stat(src.path .. "/" .. dir)
    return st and st.type == "link"
  end
  for _, f in ipairs(files) do
    local dir = linked_parent(f, is_link)
    if dir then
      refuse(dst, "%s lies under %s, a symlink in %s's tree: a copy's %s would be written wherever it points "
        .. "(%s's own config, most likely); make %s a folder of the copy's own, or declare config files that are "
        .. "inside the web root", f, dir, src.name, f, src.name, dir)
    end
  end
end

-- without_files(src, dst, fdb) -> nil: an app with no config file declared copies only
-- when its database is a SQLite file at the same place in both trees; else refused.
local function without_files(src, dst, fdb)
  if not fdb then return nil end
  local a, b = fdb, dst.db and db.parse_url(dst.db)
  if a.driver == "sqlite" and b and b.driver == "sqlite" then
    local rel = a.path:sub(1, #src.path + 1) == src.path .. "/" and a.path:sub(#src.path + 2)
    if rel and b.path == dst.path .. "/" .. rel then return nil end -- the copy's own file, named alike
  end
  refuse(dst, "a copy of %s's files would still name %s's database in whatever file holds it (tend knows "
    .. "no config file of a generic app): declare the files that hold its settings (tend instance edit %s "
    .. "--config FILE), or copy the database only (--db-only)", src.name, src.name, dst.name)
end

-- target_db(ctx, src, dst, fdb) -> dst's database settings; refused when tend cannot
-- tell them, or they are src's own database.
local function target_db(ctx, src, dst, fdb)
  local ok, s = pcall(function() return errors.check(dst:db_settings(ctx:vault())) end)
  if not ok then
    refuse(dst, "tend cannot tell which database the copy is to use (%s): give it one (tend instance edit %s --db URL)",
      errors.message(s), dst.name)
  end
  if M.same_database(src, fdb, dst, s) then
    refuse(dst, "its database is %s's own (%s): a copy needs a database of its own (tend instance edit %s --db URL, "
      .. "or tend blank %s)", src.name, db.describe(fdb), dst.name, dst.name)
  end -- (check_databases says the same for a copy of the database alone)
  return s
end

-- keyed_file(plan, dst, f, live, base, tdb): a config file of an adapter with db_keys:
-- kept when it names the copy's database already, else its keys written.
local function keyed_file(plan, dst, f, live, base, tdb)
  local adapter = plan.adapter
  local named = live and parse(adapter, live, f)
  if not tdb or (named and M.same_database(dst, named, dst, tdb) and named.user == tdb.user) then
    plan.files[#plan.files + 1] = { file = f, keep = true, changes = { f .. ": kept (it names the copy's database)" } }
    return
  end
  local text, why = apps.config_text(adapter, base, tdb)
  if not text then refuse(dst, "%s", why) end
  plan.files[#plan.files + 1] = { file = f, text = text, modes = { single = true },
    changes = { ("%s: database settings set to the copy's (%s)"):format(f, db.describe(tdb)) } }
end

-- plan(ctx, src, dst, snap [, mapping]) -> plan | nil (nothing to plan: no config files
-- and no database the files could name). snap may be nil (before the fresh backup of a
-- clone): then src's live files stand for it. mapping: where dst keeps src's data
-- outside the web root (tend.outside.map), rewritten in the config as well. Raises a
-- usage error when the copy could end up naming src's database, URL or web root.
function M.plan(ctx, src, dst, snap, mapping)
  local adapter, files = apps.get(dst.app), dst:config_paths()
  local t = dst:transport()
  local function text_of(f)
    if snap then return snapshot_text(ctx, snap, f) end
    return src:transport():read(src.path .. "/" .. f)
  end
  refuse_linked(ctx, src, dst, snap, files)
  local fdb = source_db(ctx, src, text_of)
  if #files == 0 then return without_files(src, dst, fdb) end
  local tdb = fdb and target_db(ctx, src, dst, fdb) or nil
  local from = { url = src.url, root = src.path, db = fdb }
  local to = { url = dst.url, root = dst.path, db = tdb, folders = require("tend.outside").pairs_of(mapping) }
  local plan = { files = {}, password = tdb and tdb.password, to = to, from = from, adapter = adapter }
  local texts, problems = {}, {}
  for _, f in ipairs(files) do
    local live = t:read(dst.path .. "/" .. f)
    local base = live or text_of(f)
    if not base then
      if not adapter.db_keys then
        refuse(dst, "%s is in neither %s's web root nor %s", f, dst.name, snap and ("snapshot " .. snap.id) or src.name)
      end
    elseif adapter.db_keys then
      keyed_file(plan, dst, f, live, base, tdb)
    else
      local r = settings.rewrite(base, f, from, to)
      for _, p in ipairs(r.problems) do problems[#problems + 1] = p end
      if #r.changes == 0 then r.changes = { f .. ": kept (nothing in it names " .. src.name .. ")" } end
      plan.files[#plan.files + 1] = { file = f, text = r.text, modes = r.modes, changes = r.changes, keep = r.text == base }
      texts[#texts + 1] = { file = f, text = r.text }
    end
  end
  if #problems > 0 then
    refuse(dst, "its config would still name %s:\n  %s\nchange those lines in %s's files by hand, or write an adapter "
      .. "for the app (docs/apps.md)", src.name, table.concat(problems, "\n  "), dst.name)
  end
  if tdb and #texts > 0 then
    local why = settings.check(texts, to)
    if why then
      refuse(dst, "after rewriting, %s: %s; give the files that hold the database settings (--config) or --db",
        table.concat(files, ", "), why)
    end
  end
  return plan
end

-- check_databases(ctx, src, dst): refused when dst's database may be src's own (a copy
-- of the database alone would load src's dump into src).
function M.check_databases(ctx, src, dst)
  local ok_a, a = pcall(function() return errors.check(src:db_settings(ctx:vault())) end)
  local ok_b, b = pcall(function() return errors.check(dst:db_settings(ctx:vault())) end)
  if ok_a and ok_b and M.same_database(src, a, dst, b) then
    refuse(dst, "its database is %s's own (%s): a copy needs a database of its own (tend instance edit %s --db URL, "
      .. "or tend blank %s)", src.name, db.describe(a), dst.name, dst.name)
  end
end

-- changes(plan) -> lines: what the plan does to each file (passwords as ********).
function M.changes(plan)
  local out = {}
  for _, f in ipairs(plan and plan.files or {}) do
    for _, c in ipairs(f.changes) do out[#out + 1] = c end
  end
  return out
end

-- verify(plan, t, root): the files in root (the new tree) name the copy's database and
-- not the source's; raises otherwise.
function M.verify(plan, t, root)
  local texts = {}
  for _, f in ipairs(plan.files) do
    local text = t:read(root .. "/" .. f.file)
    if text then
      if plan.adapter.db_keys then
        local named = plan.adapter.parse_config(text, f.file)
        if plan.to.db and not (named and M.same_database({ host = "" }, named, { host = "" }, plan.to.db)) then
          errors.fail("%s does not name the copy's database after writing it", f.file)
        end
      else
        texts[#texts + 1] = { file = f.file, text = text }
        local left = settings.leftovers(text, f.file, plan.from, plan.to)
        if #left > 0 then errors.fail("%s", table.concat(left, "; ")) end
      end
    end
  end
  if plan.to.db and #texts > 0 then
    local why = settings.check(texts, plan.to)
    if why then errors.fail("the copy's config files, read back: %s", why) end
  end
end

-- write(plan, t, root): the planned files into root (the new tree, before it goes
-- live), the password put in from guarded memory, then read back (verify).
function M.write(plan, t, root)
  local core = require "tend.core"
  local pw = plan.password
  if type(pw) ~= "userdata" then pw = core.vault.secret(pw or "") end
  for _, f in ipairs(plan.files) do
    local real = inside(t, root, f.file)
    if real ~= true then
      errors.fail("%s: its folder leads out of the new tree (to %s); nothing was written there", f.file, real)
    end
    if not f.keep then
      local path = root .. "/" .. f.file
      local content = f.text
      for mode in pairs(f.modes) do
        if f.text:find(settings.MARKS[mode], 1, true) then content = pw:format(content, mode, settings.MARKS[mode]) end
      end
      errors.check(t:write(path, content, (t:stat(path) or {}).mode or 416)) -- as readable as the web server had it
    end
  end
  M.verify(plan, t, root)
end

return M
