-- upgrade: a new major version, the update's way (backup, maintenance page, rollback).
return {
  name = "upgrade",
  summary = "Upgrade an instance to the version given (a new major), rolling back on failure",
  description = [[
As update, to the version --to names (a tag of the instance's repository). Not worth
scheduling: after one run the instance is there. An instance tagged production is
refused unless --yes-production says it is meant; try it on a copy first
(tend pre-dogfood, or clone then upgrade).]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "to", type = "string", required = true, help = "the version to upgrade to" },
    { name = "yes-production", type = "bool", help = "the instance is tagged production, and this is meant" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local inst = args.instance
    if inst:is_production() and not args["yes-production"] then
      ctx:usage("%s is tagged production: upgrade a copy first, or add --yes-production", inst.name)
    end
    ctx:step("preflight", inst.preflight, inst)
    local plan = ctx:step("target version", inst.update_plan, inst, { to = args.to, upgrade = true })
    if not plan.changed then
      ctx:info("%s: already at %s, %s", inst.name, plan.from, plan.newest)
      return ctx:result({ from = plan.from, to = plan.to, changed = false })
    end
    local snap = ctx:step("backup", inst.backup, inst)
    local page = ctx:step("maintenance page on", inst.maintenance_on, inst,
      { without_page = args["without-maintenance-page"] })
    ctx:undo("maintenance page off", function() inst:maintenance_off(page) end)
    ctx:undo(("restore of snapshot %d (files and database)"):format(snap.id),
      function() inst:restore(snap, { overwrite_production = true }) end)
    ctx:step("patches off", inst.unpatch, inst)           -- the code as its version has it, so it can move
    ctx:step("code", inst.code_to, inst, plan)
    ctx:step("patches on", inst.patch, inst)               -- one that no longer applies fails here, named
    ctx:step("migration", inst.migrate_db, inst)
    ctx:step("maintenance page off", inst.maintenance_off, inst, page)
    ctx:step("http check", inst.http_check, inst)
    ctx:step("watch baseline", inst.watch_accept, inst)
    ctx:info("%s: upgraded %s -> %s (backup: snapshot %d)", inst.name, plan.from, plan.to, snap.id)
    ctx:result({ from = plan.from, to = plan.to, changed = true, snapshot = snap.id, files = snap.summary.files })
  end,
}
