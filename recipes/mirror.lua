-- mirror: keep a copy that lags behind its source (yesterday., aweekago., amonthago.).
return {
  name = "mirror",
  summary = "Sync DST to the newest snapshot of its source that is at least its lag old",
  description = [[
DST must be linked first: tend instance link DST --mirror-of SRC --lag 7d. Picks the
newest snapshot of SRC taken at least the lag before now, and clones it onto DST (see
clone) unless DST holds that snapshot already. Takes no new snapshot: schedule SRC's
backups, and a mirror per lag. --now pretends another time ("2026-01-31 12:00" or
seconds since 1970), to see which snapshot would be used.]],
  params = {
    { name = "dst", type = "instance", positional = true, required = true, help = "the mirror" },
    { name = "now", type = "string", help = "the time to measure the lag from (default: now)" },
    { name = "dry-run", type = "bool", help = "say which snapshot, change nothing" },
    { name = "yes-overwrite-production", type = "bool", help = "DST may be tagged production" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local dst = args.dst
    local src, lag = dst:source("mirror-of")
    local now, bad = os.time(), nil
    if args.now then now, bad = require("tend.duration").when(args.now) end
    if not now then ctx:usage("--now %s", bad) end
    local snap = src:snapshot_aged(lag, now) -- the newest at least the lag old
    local when = os.date("%Y-%m-%d %H:%M", snap.started_at)
    local result = { instance = dst.name, source = src.name, snapshot = snap.id, taken_at = snap.started_at, changed = false }
    local held = dst:copy_of()
    if held and held.source_id == src.id and held.snapshot_id == snap.id and held.kind == "copy" then
      ctx:info("%s: already at snapshot %d of %s (%s); nothing to do", dst.name, snap.id, src.name, when)
    elseif args["dry-run"] then
      ctx:info("%s: would sync to snapshot %d of %s (%s)", dst.name, snap.id, src.name, when)
    else -- a clone of that snapshot (recipes/clone.lua): the same refusals, then the copy
      local plan = ctx:step("check", dst.copy_check, dst, src, { overwrite_production = args["yes-overwrite-production"] }, snap)
      local summary = ctx:step("copy", dst.copy_from, dst, src, snap, { plan = plan,
        overwrite_production = args["yes-overwrite-production"], without_page = args["without-maintenance-page"] })
      ctx:info("%s: now at snapshot %d of %s (%s): %d files sent", dst.name, snap.id, src.name, when, summary.sent_files or 0)
      result.changed, result.sent_files = true, summary.sent_files
    end
    ctx:result(result)
  end,
}
