-- import: an archive (our export, or a Tiki Manager backup) as a snapshot.
return {
  name = "import",
  summary = "Take a tend export or a Tiki Manager backup archive in as a snapshot",
  description = [[
The archive's files and database dump go into the store and become a snapshot of the
instance, which `tend restore` can then put in place. Tiki Manager backups
(<id>-<name>/manifest.txt, one folder per backed-up path, database_dump.sql) are read
as they are; their folders outside the web root are in the snapshot at their own
paths (a restore writes them where the instance declares its data: --data-dir).]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "file", type = "path", positional = true, required = true },
  },

  run = function(ctx, args)
    local exchange = require "tend.exchange"
    local id, s = exchange.import(ctx, args.instance, args.file)
    ctx:info("%s: snapshot %d from %s (%s): %d files (%d bytes)%s%s", args.instance.name, id,
      args.file, s.kind, s.files, s.bytes, s.db_bytes and (", database " .. s.db_bytes .. " bytes") or ", no database",
      s.note and ("; " .. s.note) or "")
    ctx:result({ snapshot = id, kind = s.kind, files = s.files, bytes = s.bytes, db_bytes = s.db_bytes, note = s.note })
  end,
}
