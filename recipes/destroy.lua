-- destroy: an instance gone for good, its archive kept as the way back.
return {
  name = "destroy",
  summary = "Remove an instance: its files, database, database user, secrets and catalog rows (an archive kept)",
  description = [[
For copies that have served (a show instance, a pre-dogfood, an old mirror). Lists what
goes first; --dry-run stops there. Then: a backup of the instance, exported to an
archive (--archive FILE, default $TEND_HOME/destroyed/NAME-DATE.tar.zst, 0600) and read
back whole with tar; only then its MySQL database and user are dropped (as --admin,
blank's account) or its SQLite file removed, its web root and data folders deleted, the
secrets no other instance uses removed from the vault, and its catalog rows
(snapshots, runs, relations) forgotten. tend import brings the archive back as a
snapshot of a new instance. An instance tagged production is never destroyed. Asks for
the instance's name at a terminal; elsewhere it needs the global --yes. A destroy
stopped after its archive was read back (killed, the link lost) is finished by the next
run, with the same archive.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "dry-run", type = "bool", help = "say what would be removed, remove nothing" },
    { name = "archive", type = "path", help = "where the archive goes (.tar.zst, .tar.gz, ...)" },
    { name = "admin", type = "string", default = "mysql://root@localhost/mysql",
      help = "who drops the database and its user: mysql://USER@HOST[:PORT]/DB" },
    { name = "admin-password-secret", type = "string", help = "the vault secret holding the admin's password" },
  },

  run = function(ctx, args)
    local inst = args.instance
    if inst:is_production() then
      ctx:usage("%s is tagged production: tend destroys no production instance; nothing was changed", inst.name)
    end
    local admin = ctx:database_account(args.admin, args["admin-password-secret"])
    -- a destroy that was stopped after its archive was read back is finished, not begun again
    local begun = ctx:step("journal", inst.destroy_begun, inst, admin)
    local plan = begun or ctx:step("plan", inst.destroy_plan, inst, admin) -- everything that goes, found first
    if begun then ctx:info("%s: a destroy was stopped after its archive %s was read back: finishing it", inst.name, begun.archive) end
    for _, line in ipairs(plan.lines) do ctx:info("%s: %s", inst.name, line) end
    if #plan.copies > 0 then ctx:warn("%s is the source of %s", inst.name, table.concat(plan.copies, ", ")) end
    if args["dry-run"] then return ctx:result({ instance = inst.name, dry_run = true, removes = plan.lines }) end
    ctx:confirm(inst.name, ("destroy %s"):format(inst.name))
    local file = begun and begun.archive
      or args.archive or ("%s/destroyed/%s-%s.tar.zst"):format(ctx.home, inst.name, os.date("!%Y%m%d-%H%M%S"))
    if not begun then
      local snap = ctx:step("backup", inst.backup, inst)              -- the way back ...
      ctx:step("archive", inst.archive, inst, snap, file)             -- ... kept outside the catalog, read back
      ctx:step("journal", inst.destroy_journal, inst, plan, file)     -- from here on, the next run finishes it
    end
    ctx:step("database", inst.drop_database, inst, plan)
    ctx:step("files", inst.remove_files, inst, plan)
    ctx:step("catalog", inst.forget, inst, plan)                      -- secrets, snapshots, runs, the instance
    ctx:info("%s: destroyed; its archive is %s (tend import NAME %s brings it back)", inst.name, file, file)
    ctx:result({ instance = inst.name, archive = file, removed = plan.lines })
  end,
}
