-- restore: put an instance back as one of its snapshots was.
return {
  name = "restore",
  summary = "Put a snapshot back, files and database; on failure the instance is left as it was",
  description = [[
Builds the snapshot's files in a staging directory beside the web root and swaps it in
by rename, so visitors never see a half-written site. Before loading the snapshot's
database, the database as it is now is dumped into the store (the safety dump); if
loading fails, the safety dump goes back in and the old files are put back.
SNAP defaults to the newest snapshot. --to OTHER restores into another instance as a
copy (what `clone` does with a snapshot that exists): OTHER keeps its own config file,
and its database gets the snapshot's with the URL and path rewritten for OTHER.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "snapshot", type = "string", positional = true, help = "snapshot id (tend snapshots NAME); default the newest" },
    { name = "to", type = "instance", help = "restore into this instance instead" },
    { name = "files-only", type = "bool", help = "only the files" },
    { name = "db-only", type = "bool", help = "only the database" },
    { name = "yes-overwrite-production", type = "bool", help = "the target is tagged production: overwrite it (in place, a terminal asks instead)" },
  },

  -- Nothing is changed before "stage"; from there on, a step that fails puts back what
  -- was changed and says so. The live tree is replaced in "swap" only, by rename.
  run = function(ctx, args)
    local inst, target = args.instance, args.to or args.instance
    if args["files-only"] and args["db-only"] then ctx:usage("--files-only and --db-only exclude each other") end
    local snap = inst:snapshot(args.snapshot) -- the newest without one
    local job <close> = ctx:step("prepare", target.restore_start, target, snap, { from = inst,
      files_only = args["files-only"], db_only = args["db-only"], overwrite_production = args["yes-overwrite-production"] })
    local summary
    if args["db-only"] then
      summary = ctx:step("database", job.database_only, job)
    else
      ctx:step("stage", job.stage, job)       -- the snapshot's tree built beside the live one
      ctx:step("database", job.database, job) -- a safety dump of the database, then the snapshot's loaded
      ctx:step("swap", job.swap, job)         -- the staged tree renamed in
      summary = ctx:step("finish", job.finish, job)
    end
    ctx:info("%s: restored snapshot %d of %s (%s files%s)", target.name, snap.id, inst.name,
      summary.files or "no", summary.db_bytes and (", database " .. summary.db_bytes .. " bytes") or "")
    ctx:result(summary)
  end,
}
