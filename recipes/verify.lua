-- verify: read back every stored object a snapshot needs and check its hash; with
-- --restore-to, a restore drill: the snapshot restored here and compared with its manifest.
local snapshot = require "tend.snapshot"

-- drill(ctx, inst, snap, dir): restore snap into dir, read the tree back, report.
local function drill(ctx, inst, snap, dir)
  local restore_drill = require "tend.drill"
  restore_drill.prepare(dir)
  ctx:info("%s: restoring snapshot %d into %s", inst.name, snap.id, dir)
  local ok, got = pcall(restore_drill.restore, ctx, inst, snap, dir)
  if not ok then -- nothing half-made is left
    restore_drill.clear(dir)
    error(got, 0)
  end
  if #got.unmade > 0 then
    ctx:warn("%s: %d sockets or device nodes were not made (tar cannot carry a socket; device nodes need root): %s",
      inst.name, #got.unmade, table.concat(got.unmade, ", "))
  end
  local diffs = restore_drill.compare(snap, snapshot.manifest(ctx:catalog(), snap), dir .. "/files", got.unmade,
    dir .. "/outside")
  local report = { snapshot = snap.id, dir = dir, files = got.files, bytes = got.bytes, database = got.db,
    differences = diffs }
  ctx:result(report, ("restore drill of snapshot %d into %s: %d files%s; %s"):format(snap.id, dir, got.files,
    got.db and (", database in " .. got.db) or "",
    #diffs == 0 and "the tree matches the manifest" or (#diffs .. " differences:\n  " .. table.concat(diffs, "\n  "))))
  if #diffs > 0 then error(("restore drill: %d differences (%s)"):format(#diffs, diffs[1]), 0) end
end

return {
  name = "verify",
  summary = "Re-hash a snapshot's stored files and database dump against its manifest, and check its paths restore",
  description = [[
Without --restore-to, every stored object the snapshots need is read back whole and
checked against its SHA-256, and every path is checked restorable. With
--restore-to DIR, a restore drill: SNAP is restored here into DIR/files (and its
database dump into DIR/db/), then the tree is read back and compared with the manifest
(type, mode, owner where you are root, size, mtime, content, links, hard-link groups).
Exit 0 when all match, 1 with every difference listed. DIR must be new, empty, or an
earlier drill's (which is replaced, so a drill can be scheduled); it is made 0700, as
the tree holds the config file. A drill that fails leaves DIR empty.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "snapshot", type = "string", positional = true, help = "snapshot id or latest; default every snapshot" },
    { name = "restore-to", type = "path", help = "a restore drill into this directory here (new, empty or an earlier drill's)" },
  },

  run = function(ctx, args)
    local catalog, st = ctx:catalog(), snapshot.store(ctx)
    if args.snapshot == "latest" then
      local latest = snapshot.latest(catalog, args.instance)
      if not latest then ctx:usage("%s has no snapshots (tend backup %s)", args.instance.name, args.instance.name) end
      args.snapshot = latest.id
    end
    if args["restore-to"] then
      if not args.snapshot then ctx:usage("--restore-to needs a snapshot: tend verify NAME SNAP --restore-to DIR") end
      return drill(ctx, args.instance, snapshot.get(catalog, args.instance, args.snapshot), args["restore-to"])
    end
    local lock <close> = snapshot.lock_store(ctx, "shared") -- gc waits until the objects are read
    local snaps = args.snapshot and { snapshot.get(catalog, args.instance, args.snapshot) }
      or snapshot.list(catalog, args.instance)
    if #snaps == 0 then ctx:usage("%s has no snapshots (tend backup %s)", args.instance.name, args.instance.name) end
    local checked, bad, seen = 0, {}, {}
    local function check(hex, what)
      if seen[hex] ~= nil then
        if not seen[hex] then bad[#bad + 1] = what end
        return
      end
      local ok, msg = st:verify(hex)
      seen[hex] = ok and true or false
      checked = checked + 1
      if not ok then bad[#bad + 1] = what .. ": " .. msg end
    end
    for _, s in ipairs(snaps) do
      local manifest = snapshot.manifest(catalog, s)
      local unsafe, why = snapshot.unsafe(manifest)
      if unsafe then bad[#bad + 1] = ("snapshot %d %q: cannot be restored (%s)"):format(s.id, unsafe, why) end
      for _, f in ipairs(manifest) do
        if f.sha256 then check(f.sha256, ("snapshot %d %s"):format(s.id, f.path)) end
      end
      if s.db_object then check(s.db_object, ("snapshot %d database"):format(s.id)) end
    end
    local report = { snapshots = #snaps, objects = checked, damaged = bad }
    ctx:result(report, ("%d snapshots, %d objects read back: %s"):format(#snaps, checked,
      #bad == 0 and "all intact" or (#bad .. " damaged:\n  " .. table.concat(bad, "\n  "))))
    if #bad > 0 then error(("%d damaged (%s)"):format(#bad, bad[1]), 0) end
  end,
}
