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

  run = function(ctx, args)
    local snapshot = require "tend.snapshot"
    local restore = require "tend.restore"
    local inst = args.instance
    if args["files-only"] and args["db-only"] then ctx:usage("--files-only and --db-only exclude each other") end
    local snap = args.snapshot and snapshot.get(ctx:catalog(), inst, args.snapshot)
      or snapshot.latest(ctx:catalog(), inst)
    if not snap then ctx:usage("%s has no snapshots (tend backup %s)", inst.name, inst.name) end
    local target = args.to or inst
    local summary = restore.run(ctx, inst, snap, {
      target = target, files_only = args["files-only"], db_only = args["db-only"],
      overwrite_production = args["yes-overwrite-production"],
      progress = function(fmt, ...) ctx:info("%s: " .. fmt, target.name, ...) end,
    })
    ctx:info("%s: restored snapshot %d of %s (%s files%s)", target.name, snap.id, inst.name,
      summary.files or "no", summary.db_bytes and (", database " .. summary.db_bytes .. " bytes") or "")
    ctx:result(summary)
  end,
}
