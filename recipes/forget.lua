-- forget: drop old snapshots by a retention policy (objects go at the next store gc).
return {
  name = "forget",
  summary = "Drop snapshots a retention policy does not keep (--dry-run shows which)",
  description = [[
Keeps the --keep-last newest snapshots, and the newest of each of the last --keep-daily
days, --keep-weekly ISO weeks and --keep-monthly months that have one (times in UTC).
Tiki Manager's default is close to --keep-daily 7 --keep-weekly 5 --keep-monthly 12.
The stored files of forgotten snapshots are removed by `tend store gc`.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "keep-last", type = "int", default = 0 },
    { name = "keep-daily", type = "int", default = 0 },
    { name = "keep-weekly", type = "int", default = 0 },
    { name = "keep-monthly", type = "int", default = 0 },
    { name = "dry-run", type = "bool", help = "say what would go, change nothing" },
  },

  run = function(ctx, args)
    local snapshot = require "tend.snapshot"
    local retention = require "tend.retention"
    local policy = { last = args["keep-last"], daily = args["keep-daily"],
      weekly = args["keep-weekly"], monthly = args["keep-monthly"] }
    if policy.last + policy.daily + policy.weekly + policy.monthly == 0 then
      ctx:usage("say what to keep: --keep-last, --keep-daily, --keep-weekly or --keep-monthly")
    end
    local catalog = ctx:catalog()
    local keep, drop, why = retention.plan(snapshot.list(catalog, args.instance), policy)
    local lines, report = {}, { keep = {}, drop = {}, dry_run = args["dry-run"] or false }
    for _, s in ipairs(keep) do
      table.insert(report.keep, { id = s.id, reasons = why[s.id] })
      lines[#lines + 1] = ("keep  %4d  %s  (%s)"):format(s.id, os.date("!%Y-%m-%d %H:%M", s.started_at), table.concat(why[s.id], ", "))
    end
    local ids = {}
    for _, s in ipairs(drop) do
      ids[#ids + 1] = s.id
      table.insert(report.drop, { id = s.id })
      lines[#lines + 1] = ("%s  %4d  %s"):format(args["dry-run"] and "would drop" or "drop", s.id, os.date("!%Y-%m-%d %H:%M", s.started_at))
    end
    if not args["dry-run"] then snapshot.forget(catalog, ids) end
    ctx:result(report, table.concat(lines, "\n"))
  end,
}
