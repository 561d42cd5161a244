-- maintenance: show or lift an instance's maintenance page by hand.
return {
  name = "maintenance",
  summary = "Put an instance's maintenance page (HTTP 503, Retry-After) on or off",
  description = [[
WordPress: its own .maintenance file. Tiki and generic PHP apps: a page of tend's
(tend-maintenance.php), reached through a rewrite rule in .htaccess (Apache) and through
.user.ini's auto_prepend_file (PHP-FPM behind nginx or any server); the site's own
.htaccess and .user.ini are moved aside and put back byte for byte by `off`. With a
--url, `on` checks over HTTP that the page answers 503, and when it cannot (PHP's
built-in server reads neither file) takes it back and exits 2, unless
--without-maintenance-page. clone, mirror, migrate-data and update do this themselves.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "state", type = "string", positional = true, required = true, choices = { "on", "off" } },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local maintenance = require "tend.maintenance"
    local inst = args.instance
    local function say(fmt, ...) ctx:info("%s: " .. fmt, inst.name, ...) end
    if args.state == "on" then
      maintenance.up(ctx, inst, { say = say, without_page = args["without-maintenance-page"] })
    else
      maintenance.down(inst, nil, say)
    end
    ctx:result({ instance = inst.name, maintenance = args.state == "on" })
  end,
}
