-- export: a snapshot as a portable archive that plain tar can read.
return {
  name = "export",
  summary = "Write a snapshot to a .tar.zst / .tar.bz2 / .tar.gz that plain tar can read",
  description = [[
The archive holds files/ (the web root), db/<name>.sql (the database dump), manifest
(one JSON object per line: path, type, mode, size, mtime, sha256, link) and meta.json.
`tend import` reads it back; so does `tar xf`.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "snapshot", type = "string", positional = true, required = true, help = "snapshot id, or latest" },
    { name = "file", type = "path", positional = true, required = true, help = "the archive to write" },
  },

  run = function(ctx, args)
    local snapshot = require "tend.snapshot"
    local exchange = require "tend.exchange"
    local catalog = ctx:catalog()
    local snap = args.snapshot == "latest" and snapshot.latest(catalog, args.instance)
      or snapshot.get(catalog, args.instance, args.snapshot)
    if not snap then ctx:usage("%s has no snapshots (tend backup %s)", args.instance.name, args.instance.name) end
    local files, bytes = exchange.export(ctx, args.instance, snap, args.file)
    ctx:info("wrote %s: snapshot %d of %s, %d files (%d bytes)%s", args.file, snap.id,
      args.instance.name, files, bytes, snap.db_object and (" and the database (%d bytes)"):format(snap.db_bytes) or "")
    ctx:result({ file = args.file, snapshot = snap.id, files = files, bytes = bytes, db_bytes = snap.db_bytes })
  end,
}
