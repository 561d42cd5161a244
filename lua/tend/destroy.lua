-- destroy: the mechanisms of `tend destroy` (recipes/destroy.lua): what an instance
-- leaves on its host and in tend (its web root and data folders, its database and
-- database user, its secrets, its catalog rows), the archive that is the way back, and
-- the removals, each one named.
local core = require "tend.core"
local errors = require "tend.errors"
local db = require "tend.db"

local M = {}

-- secrets_of(ctx, inst) -> {name, ...}: the vault secrets inst names that no other
-- instance names (those stay).
local function secrets_of(ctx, inst)
  local mine, out = {}, {}
  for _, k in ipairs({ "db_password_secret", "ssh_password_secret", "ssh_key_passphrase_secret" }) do
    if inst[k] then mine[inst[k]] = true end
  end
  for _, other in ipairs(ctx:instances()) do
    if other.id ~= inst.id then
      for _, k in ipairs({ "db_password_secret", "ssh_password_secret", "ssh_key_passphrase_secret" }) do
        if other[k] then mine[other[k]] = nil end
      end
    end
  end
  for name in pairs(mine) do out[#out + 1] = name end
  table.sort(out)
  return out
end

-- plan(ctx, inst, admin) -> {trees, db, user, sqlite_file, secrets, copies, lines}: what
-- destroy removes, found before anything is done. admin: the database account that
-- drops a MySQL database and its user (blank's --admin).
function M.plan(ctx, inst, admin)
  local p = { trees = { inst.path }, secrets = secrets_of(ctx, inst), copies = {}, lines = {} }
  local s = inst:db_settings(ctx:vault())
  for _, d in ipairs(require("tend.outside").folders(ctx, inst, s, true)) do p.trees[#p.trees + 1] = d end
  if s and s.driver == "mysql" then
    if not s.name:match("^[%w_]+$") or not (s.user or ""):match("^[%w_.-]+$") then
      errors.usage("%s: database %s or user %s is not a plain name; drop it by hand", inst.name, tostring(s.name), tostring(s.user))
    end
    if not admin then errors.usage("%s: say who drops its database (--admin)", inst.name) end
    -- the account that will drop it must get in now, before a backup and an archive are made for nothing
    local ok, why = db.mysql(inst:transport(), admin, "SELECT 1", { database = false })
    if not ok then errors.fail("%s cannot log in to drop %s's database: %s; nothing was changed", db.describe(admin), inst.name, why) end
    p.db, p.admin = s, admin
    p.user = db.account(s)
  elseif s and s.driver == "sqlite" and s.path:sub(1, #inst.path + 1) ~= inst.path .. "/" then
    p.sqlite_file = s.path -- outside the web root: removed on its own
  end
  for _, r in ipairs(ctx:catalog():query([[SELECT i.name, r.kind FROM relations r JOIN instances i
      ON i.id = r.instance_id WHERE r.source_id = ?]], inst.id)) do
    p.copies[#p.copies + 1] = ("%s (%s)"):format(r.name, r.kind)
  end
  for _, tree in ipairs(p.trees) do p.lines[#p.lines + 1] = ("files:    %s (on %s)"):format(tree, inst.host) end
  if p.db then
    p.lines[#p.lines + 1] = ("database: %s, and its user %s"):format(db.describe(p.db), p.user)
  elseif p.sqlite_file then
    p.lines[#p.lines + 1] = ("database: %s"):format(p.sqlite_file)
  elseif s and s.driver == "sqlite" then
    p.lines[#p.lines + 1] = ("database: %s (in its web root, with its files)"):format(s.path)
  end
  for _, name in ipairs(p.secrets) do p.lines[#p.lines + 1] = ("secret:   %s"):format(name) end
  p.lines[#p.lines + 1] = ("catalog:  instance %s, its snapshots, runs and relations"):format(inst.name)
  return p
end

-- archive(ctx, inst, snap, file) -> file: snap exported to file (0600) and read back:
-- every file of the snapshot and its dump are in it, or this raises and nothing goes.
function M.archive(ctx, inst, snap, file)
  errors.check(core.fs.mkdir_p(file:match("^(.*)/[^/]*$") or ".", 448))
  require("tend.exchange").export(ctx, inst, snap, file)
  -- read back by plain tar, as a person restoring from it would: its regular files
  -- (and hard links) against the snapshot's, and its dump
  local r = errors.check(core.proc.run({ "tar", "-tvf", file }, { timeout = 3600 }))
  if r.code ~= 0 then errors.fail("%s does not read back: %s", file, require("tend.transport").why(r)) end
  local files, dump = 0, false
  for line in r.stdout:gmatch("[^\n]+") do
    local kind, name = line:match("^(%S)%S*%s+%S+%s+%S+%s+%S+%s+%S+%s+(.+)$")
    name = name or ""
    if (kind == "-" or kind == "h") and (name:match("^files/") or name:match("^outside/")) then files = files + 1 end
    if name:match("^db/.+%.sql$") then dump = true end
  end
  local want = ctx:catalog():first([[SELECT count(*) AS n FROM manifest_files
    WHERE manifest_id = ? AND type = 'file']], snap.manifest_id).n
  if files ~= want or (snap.db_object ~= nil) ~= dump then
    errors.fail("%s holds %d entries%s where snapshot %d has %d%s; nothing was removed", file, files,
      dump and " and a dump" or "", snap.id, want, snap.db_object and " and a dump" or "")
  end
  return file
end

-- drop_database(ctx, inst, p): the MySQL database and its user dropped (as p.admin), or
-- the SQLite file outside the web root removed.
function M.drop_database(ctx, inst, p)
  local t = inst:transport()
  if p.db then
    M.drop_mysql(t, p.admin, p.db.name, p.user)
  elseif p.sqlite_file then
    for _, suffix in ipairs({ "", "-journal", "-wal", "-shm" }) do t:remove(p.sqlite_file .. suffix) end
  end
end

-- drop_mysql(t, admin, name, account): a MySQL database and its account gone (as admin,
-- from host t); none of them there is no failure.
function M.drop_mysql(t, admin, name, account)
  errors.check(db.mysql(t, admin, ("DROP DATABASE IF EXISTS `%s`;\nDROP USER IF EXISTS %s;\n"):format(name, account),
    { database = false }))
end

-- remove_trees(inst, p): its web root and data folders gone from its host.
function M.remove_trees(inst, p)
  local t = inst:transport()
  for _, tree in ipairs(p.trees) do require("tend.transport").remove_tree(t, tree) end
end

-- forget(ctx, inst, p): its secrets and its catalog rows gone (its journal too).
function M.forget(ctx, inst, p)
  for _, name in ipairs(p.secrets) do pcall(ctx:vault().rm, ctx:vault(), name) end
  ctx:catalog():run("DELETE FROM meta WHERE key = ?", "destroy." .. inst.id)
  inst:unregister()
end

-- journal(ctx, inst, p, file): from here on the destroy goes to its end: its plan and
-- archive kept in the catalog, so a run that was stopped (killed, the link lost) is
-- finished by the next one, which needs no backup of what is half gone.
function M.journal(ctx, inst, p, file)
  local keep = { archive = file, trees = p.trees, user = p.user, sqlite_file = p.sqlite_file, secrets = p.secrets,
    lines = p.lines, copies = p.copies, db = p.db and { name = p.db.name } }
  ctx:catalog():meta("destroy." .. inst.id, require("tend.output").json(keep))
end

-- begun(ctx, inst, admin) -> plan (with plan.archive) | nil: the plan of a destroy of
-- inst that was stopped after its archive was read back.
function M.begun(ctx, inst, admin)
  local text = ctx:catalog():meta("destroy." .. inst.id)
  if not text then return nil end
  local p = require("cjson").decode(text)
  p.admin = p.db and admin
  if not core.fs.stat(p.archive) then
    ctx:warn("%s: the archive of its stopped destroy, %s, is gone; what is left of it goes anyway", inst.name, p.archive)
  end
  return p
end

return M
