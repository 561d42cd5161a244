-- maintenance: show or lift an instance's maintenance page by hand.
return {
  name = "maintenance",
  summary = "Put an instance's maintenance page (HTTP 503, Retry-After) on or off",
  description = [[
WordPress: its own .maintenance file. Tiki and generic PHP apps: a page of tend's
(tend-maintenance.php) and a rewrite rule in .htaccess (Apache); the site's own
.htaccess is moved aside and put back byte for byte by `off`. clone, mirror and
migrate-data do this themselves.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "state", type = "string", positional = true, required = true, help = "on or off" },
  },

  run = function(ctx, args)
    local maintenance = require "tend.maintenance"
    local inst = args.instance
    if args.state ~= "on" and args.state ~= "off" then error(("say on or off, not %q"):format(args.state), 0) end
    local adapter = require("tend.apps").get(inst.app)
    maintenance[args.state](inst:transport(), inst.path, adapter)
    ctx:info("%s: maintenance page %s", inst.name, args.state)
    ctx:result({ instance = inst.name, maintenance = args.state == "on" })
  end,
}
