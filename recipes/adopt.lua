-- adopt: take over an installed site: tend finds out what it is and registers it.
return {
  name = "adopt",
  summary = "Register an existing install: its app, version and database detected on its host",
  description = [[
Looks at the web root on its host: which app it is (WordPress, Tiki, else generic) and
its version; for WordPress and Tiki, the database settings in wp-config.php or
db/local.php (read as data, never run), and asks the database whether it answers.
Registers the instance under NAME with what it found. The host's key must be trusted
first (tend host trust ssh://USER@HOST). Then: tend backup NAME.]],
  params = {
    { name = "instance", type = "string", positional = true, required = true, help = "the name to give it" },
    { name = "path", type = "string", required = true, help = "its web root on the host" },
    { name = "host", type = "string", default = "local", help = "local or ssh://USER@HOST[:PORT]" },
    { name = "url", type = "string", help = "its address" },
    { name = "ssh-key", type = "path", help = "the key to log in with" },
    { name = "db", type = "string", help = "its database, when no config file says (a generic app)" },
    { name = "db-password-secret", type = "string", help = "the vault secret with that database's password" },
  },

  run = function(ctx, args)
    local instance = require "tend.instance"
    local apps = require "tend.apps"
    local fields = { app = "generic", path = args.path, host = args.host, url = args.url, ["ssh-key"] = args["ssh-key"],
      db = args.db, ["db-password-secret"] = args["db-password-secret"] }
    local probe = instance.add(ctx:catalog(), args.instance, fields, {}) -- registered to be reached...
    probe.ctx = ctx
    local ok, adapter, version = pcall(probe.detect, probe)
    if not ok or not adapter then
      instance.rm(ctx:catalog(), args.instance) -- ...and gone again when it cannot be
      local msg = ok and version or tend.message(adapter)
      -- the instance is gone, so a hint to trust its host names the host itself
      local quoted = ("tend host trust " .. args.instance):gsub("%p", "%%%0")
      error((msg:gsub(quoted, function() return "tend host trust " .. tostring(args.host) .. ", then adopt again" end)), 0)
    end
    local inst = instance.edit(ctx:catalog(), args.instance, { app = adapter.name }, {})
    inst.ctx = ctx
    local report = { instance = inst.name, app = adapter.name, version = version, host = inst.host, path = inst.path }
    local info, why = inst:check_db(ctx:vault())
    report.database = info and info.where or nil
    report.db_problem = why
    ctx:info("%s: adopted %s %s at %s:%s%s", inst.name, adapter.name, version or "(version unknown)", inst.host, inst.path,
      info and (", database " .. info.where .. " (" .. info.tables .. " tables)") or (why and ("; database: " .. why) or ""))
    -- what could not be found, and how to say it
    if adapter.name == "generic" and not inst.db then
      ctx:warn("%s: no database declared (tend reads no config file of a generic app); if it has one: "
        .. "tend instance edit %s --db mysql://USER@HOST/DB --db-password-secret KEY, or --db sqlite:///PATH",
        inst.name, inst.name)
    end
    if not version then
      ctx:warn("%s: version unknown; tend reads it from the first line of a VERSION file in the web root", inst.name)
    end
    ctx:result(report)
  end,
}
