-- pre-dogfood: tomorrow's code on today's data, for users to try before production.
return {
  name = "pre-dogfood",
  summary = "Clone DST's production source onto DST, then bring DST's code to the newest version",
  description = [[
DST must be linked first: tend instance link next --pre-dogfood-of prod. Clones the
source onto DST (a fresh snapshot; see clone), then brings DST's code to the newest
version there is, of any major (or --to VERSION), the way `tend upgrade` does: a
backup of DST, its maintenance page, the code, the migration, a check, and a rollback
of DST if any of it fails (exit 1; scheduled, mailed). Users then try tomorrow's code on
today's data. A source that is no git or Subversion checkout (and a DST without
--releases) is refused before the clone; such a DST can take a command instead:
--update CMD runs in its web root behind the page (e.g. "git pull --ff-only", an
unpack), with the same backup before it and rollback after a failure.]],
  params = {
    { name = "dst", type = "instance", positional = true, required = true, help = "the pre-dogfood copy" },
    { name = "to", type = "string", help = "this version instead of the newest" },
    { name = "update", type = "string", help = "a shell command that updates DST's code instead (run in its web root)" },
    { name = "yes-overwrite-production", type = "bool", help = "DST may be tagged production" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local dst, prod = args.dst, args["yes-overwrite-production"]
    local src = dst:source("pre-dogfood-of")
    ctx:step("check", dst.copy_check, dst, src, { overwrite_production = prod })
    -- a copy that tend could not update is refused now, not after the clone
    if not args.update then ctx:step("update check", dst.check_updatable, dst, src) end
    local snap = ctx:step("backup", src.backup, src) -- production's data as it is now
    local summary = ctx:step("copy", dst.copy_from, dst, src, snap, { overwrite_production = prod,
      without_page = args["without-maintenance-page"] })
    ctx:step("patches", dst.patches_from, dst, src) -- production's fixes stay on its copy
    -- then the update's steps, on the fresh copy
    local plan = not args.update
      and ctx:step("target version", dst.update_plan, dst, { to = args.to, latest = not args.to, upgrade = true })
    if args.update or plan.changed then
      local before = ctx:step("backup", dst.backup, dst) -- the copy as it came, to go back to
      local page = ctx:step("maintenance page on", dst.maintenance_on, dst, { without_page = args["without-maintenance-page"] })
      ctx:undo("maintenance page off", function() dst:maintenance_off(page) end)
      ctx:undo(("restore of snapshot %d (files and database)"):format(before.id),
        function() dst:restore(before, { overwrite_production = prod }) end)
      if args.update then
        ctx:step("update", dst.command, dst, args.update) -- the operator's own command, in the web root
      else
        ctx:step("patches off", dst.unpatch, dst)
        ctx:step("code", dst.code_to, dst, plan)
        ctx:step("patches on", dst.patch, dst)
      end
      ctx:step("migration", dst.migrate_db, dst)
      ctx:step("maintenance page off", dst.maintenance_off, dst, page)
      ctx:step("http check", dst.http_check, dst)
      ctx:step("watch baseline", dst.watch_accept, dst)
    end
    summary.from, summary.to, summary.updated = plan and plan.from, plan and plan.to, args.update ~= nil or plan.changed
    ctx:info("%s: %s's data of snapshot %d, code %s", dst.name, src.name, snap.id,
      summary.to and ("at " .. summary.to) or (summary.updated and "updated" or "as it was"))
    ctx:result(summary)
  end,
}
