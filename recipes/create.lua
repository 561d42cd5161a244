-- create: a new instance from its app's repository, at a version, with its database.
return {
  name = "create",
  summary = "Install an app from its git repository at a version, with its database, and register it",
  description = [[
Clones --repo at --version (a tag, a branch or a commit) into --path on --host (or unpacks that version's
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
    { name = "admin-password-secret", type = "string", help = "the vault secret holding --admin's password" },
  },

  -- From "register" on, a failure unregisters the instance again; what it put on the
  -- host stays there for a look (the message says where).
  run = function(ctx, args)
    if (args.repo == nil) == (args.releases == nil) then ctx:usage("say where the code comes from: --repo URL or --releases URL") end
    local inst = ctx:step("register", ctx.add_instance, ctx, args.instance, { app = args.app, path = args.path,
      host = args.host, url = args.url, ["ssh-key"] = args["ssh-key"], db = args.db, migrate = args.migrate,
      releases = args.releases })
    ctx:undo(("%s unregistered (what was made stays in %s)"):format(inst.name, inst.path), function() inst:unregister() end)
    ctx:step("web root", inst.check_empty, inst) -- a new instance goes where nothing is
    if inst:db_driver() == "mysql" then -- the web root, the database and its user, as blank makes them
      local argv = { inst.name, "--admin", args.admin }
      if args["admin-password-secret"] then argv[4], argv[5] = "--admin-password-secret", args["admin-password-secret"] end
      ctx:step("database", ctx.call, ctx, "blank", argv)
      inst = ctx:instance(inst.name) -- as blank left it (its password secret)
    end
    ctx:step("code", inst.install, inst, { repo = args.repo, releases = inst.releases, version = args.version })
    ctx:step("migration", inst.migrate_db, inst) -- builds its schema
    local adapter, version = inst:detect()
    ctx:info("%s: created %s %s at %s:%s", inst.name, adapter and adapter.name or inst.app, version or args.version, inst.host, inst.path)
    ctx:result({ instance = inst.name, app = inst.app, version = version, path = inst.path, host = inst.host })
  end,
}
