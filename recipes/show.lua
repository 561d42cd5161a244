-- show: throwaway instances of any version to show a bug, on a show host (after
-- show.tiki.org).
local show = require "tend.show"

-- which(ctx, text) -> the show instance N or show-N names.
local function which(ctx, text)
  if not text then ctx:usage("say which show instance: N or show-N") end
  local inst = ctx:instance(text:match("^%d+$") and "show-" .. text or text)
  if inst.tags.show ~= "yes" then ctx:usage("%s is no show instance", inst.name) end
  return inst
end

local jobs = {}

function jobs.config(ctx, args)
  local given = {}
  for k in pairs(show.FIELDS) do given[k] = args[k] end
  local cfg = show.configure(ctx, given)
  ctx:result(cfg, ("show host: %s:%s, instances at %s (at most %d, %d per owner, %s each)"):format(cfg.host, cfg.root,
    cfg.url, cfg.max, cfg["max-per-owner"], require("tend.duration").format(cfg.expires)))
end

function jobs.create(ctx, args)
  local cfg = show.config(ctx)
  if not args.version then ctx:usage("show create needs --version V") end
  local src, snap
  if args.from then -- the data to load, found before anything is made
    local name, id = args.from:match("^([^@]+)@?(.*)$")
    src = ctx:instance(name)
    snap = id ~= "" and src:snapshot(id)
  end
  ctx:step("limits", show.check_limits, ctx, cfg, args["for"])          -- how many at once, per owner
  ctx:step("disk", show.check_disk, ctx, cfg)                            -- room on the show host
  local p = show.plan(ctx, cfg)
  -- from here a failure removes what was made: nothing half-made stays on the show host
  ctx:undo(("%s removed"):format(p.name), function() show.unmake(ctx, cfg, p) end)
  ctx:call("create", show.create_argv(cfg, p, args.version))            -- code, database, migration
  local inst = ctx:instance(p.name)
  ctx:step("tags", show.mark, ctx, inst, args["for"], args.version, os.time() + (args.expires or cfg.expires))
  if src then
    snap = snap or ctx:step("backup", src.backup, src)
    ctx:step("data", inst.data_from, inst, src, snap, { without_page = true }) -- nobody uses it yet
  end
  local key = ctx:step("admin password", show.set_password, ctx, cfg, inst)
  inst = ctx:instance(p.name)
  if args["for"] then -- a mail that cannot go out is no reason to take the instance away
    local sent, why = show.mail_owner(ctx, inst, args["for"], key)
    if not sent then ctx:warn("%s: could not mail %s: %s", inst.name, args["for"], why) end
  end
  ctx:info("%s: version %s at %s until %s UTC", inst.name, args.version, inst.url, os.date("!%Y-%m-%d %H:%M", inst.tags["show.expires"]))
  ctx:result({ instance = inst.name, url = inst.url, version = args.version, expires = tonumber(inst.tags["show.expires"]),
    owner = args["for"], password_secret = key }, inst.url)
end

function jobs.list(ctx, args)
  local rows, lines = show.list(ctx, args["for"]), {}
  local now = os.time()
  for _, s in ipairs(rows) do
    lines[#lines + 1] = ("%-9s %-10s %-24s %-40s %s  %s%s"):format(s.name, s.version or "?", s.owner or "-",
      s.url or "", os.date("!%Y-%m-%d %H:%M", s.created), os.date("!%Y-%m-%d %H:%M", s.expires), s.expires <= now and " (expired)" or "")
  end
  ctx:result(rows, #lines > 0 and ("%-9s %-10s %-24s %-40s %-16s  %s\n"):format("NAME", "VERSION", "OWNER", "URL", "CREATED", "EXPIRES")
    .. table.concat(lines, "\n") or "no show instances")
end

function jobs.extend(ctx, args)
  local cfg, inst = show.config(ctx), which(ctx, args.which)
  local until_ = os.time() + (args.expires or cfg.expires)
  ctx:step("extend", show.extend, ctx, inst, until_)
  ctx:result({ instance = inst.name, expires = until_ }, ("%s: until %s UTC"):format(inst.name, os.date("!%Y-%m-%d %H:%M", until_)))
end

function jobs.destroy(ctx, args)
  local cfg, inst = show.config(ctx), which(ctx, args.which)
  ctx:step("destroy", show.remove, ctx, cfg, inst)
  ctx:info("%s: removed (files, database, secrets, catalog)", inst.name)
  ctx:result({ instance = inst.name, removed = true })
end

function jobs.expire(ctx, args)
  local cfg = show.config(ctx)
  local now, bad = os.time(), nil
  if args.now then now, bad = require("tend.duration").when(args.now) end
  if not now then ctx:usage("--now %s", bad) end
  local gone, failed = {}, 0
  for _, s in ipairs(show.expired(ctx, now)) do
    local ok, err = pcall(ctx.step, ctx, "expire", show.remove, ctx, cfg, ctx:instance(s.name))
    if ok then gone[#gone + 1] = s.name else failed = failed + 1; ctx:warn("%s", require("tend.errors").message(err)) end
  end
  ctx:info("%d expired show instances removed%s", #gone, failed > 0 and (", " .. failed .. " could not be") or "")
  ctx:result({ removed = gone, failed = failed })
  return failed > 0 and 1 or 0
end

function jobs.export(ctx, args)
  local inst = which(ctx, args.which)
  local file = args.to or ("%s/%s-%s.tar.gz"):format(os.getenv("PWD") or ".", inst.name, os.date("!%Y%m%d-%H%M"))
  local snap = ctx:step("backup", inst.backup, inst)
  return ctx:call("export", { inst.name, tostring(snap.id), file })
end

function jobs.user(ctx, args)
  if not args.which or not args.which:match("^[^@%s]+@[^@%s]+$") then ctx:usage("show user EMAIL: say whose account") end
  if args.remove then
    show.remove_user(ctx, args.which)
  else
    ctx:step("password", show.set_user, ctx, args.which)
  end
  ctx:result({ user = args.which, removed = args.remove or false },
    ("%s: account %s"):format(args.which, args.remove and "removed" or "set"))
end

function jobs.serve(ctx, args)
  show.config(ctx) -- configured first
  local addr, port = args.listen:match("^([%d.]+):(%d+)$")
  if not addr then ctx:usage("--listen %q: say ADDR:PORT (127.0.0.1:8080)", args.listen) end
  require("tend.web").serve(ctx, addr, tonumber(port), function(...) ctx:info(...) end)
end

return {
  name = "show",
  summary = "Throwaway instances of any version on a show host: create, list, extend, destroy, expire, export",
  description = [==[
tend show config --root /srv/show --url 'https://{n}.show.example.org' --repo URL ...
  says where they live: instance N in ROOT/N on --host, at the URL with {n} replaced (a
  wildcard DNS name; Apache: VirtualDocumentRoot ROOT/%1), its --db (with {n} and {root}:
  mysql://show_{n}@127.0.0.1/show_{n}, made as --admin; or sqlite://{root}/data/app.db),
  its --migrate, a --password-cmd that sets the admin password read from its stdin, and
  the limits: --max at once, --max-per-owner, --expires (default lifetime), --min-free MB.
tend show create --version V [--from NAME[@SNAP]] [--for EMAIL] [--expires 14d]
  installs that version (a tag, a branch, a commit) as show-N, loads NAME's data from a
  snapshot when asked, sets a new admin password (kept in the vault) and mails the URL
  and password to --for. A failure removes what it made.
tend show list | extend N [--expires 7d] | destroy N | export N [--to FILE] | expire [--now T]
  expire (for cron) removes every instance past its time whole: files, database, its
  user, secrets, catalog rows. export writes a backup of it (dump and files) for a
  developer.
tend show user EMAIL [--remove]   an account of the web page (its password from stdin)
tend show serve [--listen 127.0.0.1:8080]
  the web page: log in, the list, a new instance of a version from the repository's
  tags and branches (its progress, then its URL and admin password), extend or destroy
  your own. Put it behind a TLS proxy to reach it from elsewhere.]==],
  params = {
    { name = "action", type = "string", positional = true, required = true,
      choices = { "config", "create", "list", "extend", "destroy", "expire", "export", "serve", "user" } },
    { name = "which", type = "string", positional = true, help = "extend, destroy, export: the instance (N or show-N); user: an e-mail" },
    { name = "listen", type = "string", default = "127.0.0.1:8080", help = "serve: the address and port of the web page" },
    { name = "remove", type = "bool", help = "user: take the account away" },
    { name = "version", type = "string", help = "create: the version (tag, branch or commit)" },
    { name = "from", type = "string", help = "create: load the data of this instance (NAME or NAME@SNAP)" },
    { name = "for", type = "string", help = "create: the owner's e-mail (gets the URL and password); list: only theirs" },
    { name = "expires", type = "duration", help = "create, extend: how long from now (default: show config --expires)" },
    { name = "now", type = "string", help = "expire: the time to compare with (default: now)" },
    { name = "to", type = "path", help = "export: the archive to write (default: ./show-N-DATE.tar.gz)" },
    -- show config
    { name = "host", type = "string", help = "config: local or ssh://USER@HOST[:PORT]" },
    { name = "ssh-key", type = "path", help = "config: the key to log in with" },
    { name = "root", type = "string", help = "config: the folder with one sub-folder per instance" },
    { name = "url", type = "string", help = "config: the instances' URL, {n} their number" },
    { name = "app", type = "string", help = "config: tiki, wordpress or generic" },
    { name = "repo", type = "string", help = "config: the git repository" },
    { name = "releases", type = "string", help = "config: or the release tarballs' URL" },
    { name = "db", type = "string", help = "config: their database, {n} and {root} filled in" },
    { name = "migrate", type = "string", help = "config: the command that builds the schema" },
    { name = "admin", type = "string", help = "config: who creates and drops MySQL databases" },
    { name = "admin-password-secret", type = "string", help = "config: its password's vault secret" },
    { name = "password-cmd", type = "string", help = "config: sets the app's admin password, read from stdin" },
    { name = "max", type = "int", help = "config: instances at once (100)" },
    { name = "max-per-owner", type = "int", help = "config: per owner (3)" },
    { name = "min-free", type = "int", help = "config: MB that must be free on the show host (1024)" },
  },

  run = function(ctx, args) return jobs[args.action](ctx, args) end,
}
