-- verify: read back every stored object a snapshot needs and check its hash.
return {
  name = "verify",
  summary = "Re-hash a snapshot's stored files and database dump against its manifest, and check its paths restore",
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "snapshot", type = "string", positional = true, help = "snapshot id; default every snapshot" },
  },

  run = function(ctx, args)
    local snapshot = require "tend.snapshot"
    local catalog, st = ctx:catalog(), snapshot.store(ctx)
    local lock <close> = snapshot.lock_store(ctx, "shared") -- gc waits until the objects are read
    local snaps = args.snapshot and { snapshot.get(catalog, args.instance, args.snapshot) }
      or snapshot.list(catalog, args.instance)
    if #snaps == 0 then error(("%s has no snapshots"):format(args.instance.name), 0) end
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
