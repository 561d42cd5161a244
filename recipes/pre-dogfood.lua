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
today's data. A DST that is no git or Subversion checkout can take a command instead:
--update CMD runs in its web root behind the page (e.g. "git pull --ff-only", an unpack).]],
  params = {
    { name = "dst", type = "instance", positional = true, required = true, help = "the pre-dogfood copy" },
    { name = "to", type = "string", help = "this version instead of the newest" },
    { name = "update", type = "string", help = "a shell command that updates DST's code instead (run in its web root)" },
    { name = "yes-overwrite-production", type = "bool", help = "DST may be tagged production" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local dst = args.dst
    local src = dst:source("pre-dogfood-of")
    ctx:step("check", dst.copy_check, dst, src, { overwrite_production = args["yes-overwrite-production"] })
    local snap = ctx:step("backup", src.backup, src) -- production's data as it is now
    local summary = ctx:step("copy", dst.copy_from, dst, src, snap, { overwrite_production = args["yes-overwrite-production"],
      keep_maintenance = args.update ~= nil, without_page = args["without-maintenance-page"] })
    if not args.update then -- the update's steps, on the fresh copy
      local plan = ctx:step("target version", dst.update_plan, dst, { to = args.to, latest = not args.to, upgrade = true })
      if plan.changed then
        local before = ctx:step("backup", dst.backup, dst)
        local page = ctx:step("maintenance page on", dst.maintenance_on, dst,
          { without_page = args["without-maintenance-page"] })
        ctx:undo("maintenance page off", function() dst:maintenance_off(page) end)
        ctx:undo(("restore of snapshot %d (files and database)"):format(before.id),
          function() dst:restore(before, { overwrite_production = args["yes-overwrite-production"] }) end)
        ctx:step("code", dst.code_to, dst, plan)
        ctx:step("migration", dst.migrate_db, dst)
        ctx:step("maintenance page off", dst.maintenance_off, dst, page)
        ctx:step("http check", dst.http_check, dst)
        ctx:step("watch baseline", dst.watch_accept, dst)
      end
      summary.from, summary.to, summary.updated = plan.from, plan.to, plan.changed
    else
      ctx:step("update", function() -- the operator's own command; a failure leaves the page up
        local ok, err = pcall(dst.command, dst, args.update)
        if not ok then error(("the update failed: %s; %s stays behind its maintenance page"):format(err, dst.name), 0) end
      end)
      ctx:step("maintenance page off", dst.maintenance_off, dst)
      summary.updated = true
    end
    ctx:info("%s: %s's data of snapshot %d, code %s", dst.name, src.name, snap.id,
      summary.to and ("at " .. summary.to) or (summary.updated and "updated" or "as it was"))
    ctx:result(summary)
  end,
}
