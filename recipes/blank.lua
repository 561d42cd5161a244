-- blank: an empty place for a copy: its web root, its database and database user.
return {
  name = "blank",
  summary = "Create an instance's empty web root, its database and its database user (password into the vault)",
  description = [[
Register the instance first, with the database it is to have:
  tend instance add next --app wordpress --host ssh://deploy@web1 --path /var/www/next \
    --url https://next.example.org --db mysql://next@localhost/next
Then `tend blank next` makes the web root, and, connecting as --admin (default root
over the host's socket, as Debian's MariaDB allows), creates the database and the user
with the password of the instance's --db-password-secret when that secret is in the
vault, else a random one kept there (as the declared key, or NAME.db-password, then
set as the instance's --db-password-secret). Nothing that exists is touched: a web root with files
in it or a database with tables in it stops the recipe. Then `tend clone SRC NAME`.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "admin", type = "string", default = "mysql://root@localhost/mysql",
      help = "who creates the database: mysql://USER@HOST[:PORT]/DB[?socket=PATH]" },
    { name = "admin-password-secret", type = "string", help = "the vault secret holding the admin's password" },
  },

  run = function(ctx, args)
    local db = require "tend.db"
    local instance = require "tend.instance"
    local inst = args.instance
    local t = inst:transport()
    if t:stat(inst.path) and #(t:list(inst.path) or {}) > 0 then
      error(("%s: %s is not empty; blank makes new instances only"):format(inst.name, inst.path), 0)
    end
    local s = inst.db and db.parse_url(inst.db)
    if not s then ctx:usage("%s has no --db: say which database to create (tend instance edit %s --db mysql://USER@HOST/DB)", inst.name, inst.name) end
    if s.driver == "sqlite" then
      assert(t:mkdir_p(inst.path, 493))
      assert(t:mkdir_p(s.path:match("^(.*)/[^/]+$"), 493))
      ctx:result({ instance = inst.name, path = inst.path, database = db.describe(s) })
      return
    end
    if not s.name:match("^[%w_]+$") or not s.user:match("^[%w_.-]+$") then
      ctx:usage("%s: database and user names must be letters, digits and _ (got %s, %s)", inst.name, s.name, s.user)
    end
    local admin, why = db.parse_url(args.admin)
    if not admin or admin.driver ~= "mysql" then ctx:usage("--admin: %s", why or "a mysql:// URL") end
    if args["admin-password-secret"] then admin.password = assert(ctx:vault():get(args["admin-password-secret"])) end
    local tables = assert(db.mysql(t, admin, ("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '%s'"):format(s.name)))
    if tonumber(tables) and tonumber(tables) > 0 then
      error(("%s: database %s exists and has %s tables; blank makes new instances only"):format(inst.name, s.name, tables:match("%d+")), 0)
    end
    local who = db.account(s)
    -- A password the operator already keeps under the declared key is used, never
    -- replaced: it may be written in places tend does not know.
    local key = inst.db_password_secret or inst.name .. ".db-password"
    local vault = ctx:vault()
    local kept = vault:get(key)
    local sql = (kept or vault:set_password(key, 24)):format(table.concat({
      ("CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"):format(s.name),
      ("CREATE USER IF NOT EXISTS %s;"):format(who),
      ("ALTER USER %s IDENTIFIED BY '%%s';"):format(who),
      ("GRANT ALL PRIVILEGES ON `%s`.* TO %s;"):format(s.name, who),
    }, "\n") .. "\n", "single")
    assert(db.mysql(t, admin, sql, { database = false }))
    assert(t:mkdir_p(inst.path, 493))
    instance.edit(ctx:catalog(), inst.name, { ["db-password-secret"] = key }, {})
    ctx:info("%s: made %s and database %s for %s (%s password in the vault as %s)", inst.name, inst.path, s.name, who,
      kept and "its" or "a new", key)
    ctx:result({ instance = inst.name, path = inst.path, database = db.describe(s), user = who, password_secret = key })
  end,
}
