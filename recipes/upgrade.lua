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
      require("tend.errors").usage("%s is tagged production: upgrade a copy first, or add --yes-production", inst.name)
    end
    local r = require("tend.update").run(ctx, inst, { to = args.to, upgrade = true, without_page = args["without-maintenance-page"],
      progress = function(fmt, ...) ctx:info("%s: " .. fmt, inst.name, ...) end })
    if r.changed then ctx:info("%s: upgraded %s -> %s (backup: snapshot %d)", inst.name, r.from, r.to, r.snapshot) end
    ctx:result(r)
  end,
}
