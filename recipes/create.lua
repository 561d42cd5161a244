-- create: a new instance from its app's repository, at a version, with its database.
return {
  name = "create",
  summary = "Install an app from its git repository at a version, with its database, and register it",
  description = [[
Clones --repo at --version (a tag) into --path on --host (or unpacks that version's
tarball from --releases, checked against its SHA256SUMS), registers the instance, makes
its database when --db names a MySQL one (as blank does, with --admin), runs the app's
migration (--migrate, or the app's own) to build the schema, and checks it.
  tend create shop --app generic --repo https://git.example.org/shop.git --version 1.0 \
    --host ssh://deploy@web1 --path /var/www/shop --url https://shop.example.org \
    --db sqlite:///var/www/shop/data/app.db --migrate "php migrate.php"
Later versions come with tend update / tend upgrade.]],
  params = {
    { name = "instance", type = "string", positional = true, required = true, help = "the new instance's name" },
    { name = "app", type = "string", default = "generic", help = "tiki, wordpress or generic" },
    { name = "repo", type = "string", help = "the git repository to install from" },
    { name = "releases", type = "string", help = "or: the URL of its release tarballs and their SHA256SUMS" },
    { name = "version", type = "string", required = true, help = "the tag to install" },
    { name = "path", type = "string", required = true, help = "the web root to make on the host" },
    { name = "host", type = "string", default = "local", help = "local or ssh://USER@HOST[:PORT]" },
    { name = "url", type = "string", help = "its address" },
    { name = "ssh-key", type = "path", help = "the key to log in with" },
    { name = "db", type = "string", help = "its database: mysql://USER@HOST/DB (made here) or sqlite:///PATH" },
    { name = "migrate", type = "string", help = "the command that builds and migrates its database" },
    { name = "admin", type = "string", default = "mysql://root@localhost/mysql", help = "for a MySQL --db: who creates it" },
  },

  run = function(ctx, args)
    local instance = require "tend.instance"
    if (args.repo == nil) == (args.releases == nil) then ctx:usage("say where the code comes from: --repo URL or --releases URL") end
    local inst = instance.add(ctx:catalog(), args.instance, { app = args.app, path = args.path, host = args.host,
      url = args.url, ["ssh-key"] = args["ssh-key"], db = args.db, migrate = args.migrate, releases = args.releases }, {})
    inst.ctx = ctx
    local function undo(msg)
      instance.rm(ctx:catalog(), inst.name)
      error(msg, 0)
    end
    local t = inst:transport()
    if t:stat(inst.path) and #(t:list(inst.path) or {}) > 0 then undo(("%s is not empty"):format(inst.path)) end
    local s = inst.db and require("tend.db").parse_url(inst.db)
    if s and s.driver == "mysql" then -- the web root, the database and its user, as blank makes them
      local ok, err = pcall(require("tend.recipe").call, ctx, "blank", { inst.name, "--admin", args.admin })
      if not ok then undo(type(err) == "table" and err.msg or tostring(err)) end
      inst = ctx:instance(inst.name)
    end
    local r, msg
    if args.repo then
      ctx:info("%s: cloning %s at %s", inst.name, args.repo, args.version)
      r, msg = t:exec({ "git", "clone", "--quiet", "--branch", args.version, "--", args.repo, inst.path }, { timeout = 1800 })
      if not r or r.code ~= 0 then undo(("git clone: %s"):format(msg or require("tend.transport").why(r))) end
    else
      local release = require "tend.release"
      local ok, err = pcall(function()
        local entry = release.target(release.list(inst.releases), nil, args.version)
        ctx:info("%s: unpacking %s", inst.name, entry.file)
        assert(t:mkdir_p(inst.path, 493))
        release.install(t, inst.path, inst.releases, entry)
      end)
      if not ok then undo(type(err) == "table" and err.msg or tostring(err)) end
    end
    local cmd = inst.migrate or require("tend.apps").get(inst.app).migrate
    if cmd then
      ctx:info("%s: %s", inst.name, cmd)
      r, msg = inst:exec(cmd)
      if not r or r.code ~= 0 then
        undo(("%s: the migration failed: %s (the files stay in %s)"):format(inst.name,
          msg or require("tend.transport").why(r), inst.path))
      end
    end
    local adapter, version = inst:detect()
    ctx:info("%s: created %s %s at %s:%s", inst.name, adapter and adapter.name or inst.app, version or args.version, inst.host, inst.path)
    ctx:result({ instance = inst.name, app = inst.app, version = version, path = inst.path, host = inst.host })
  end,
}
