-- cli: argv in, exit code out. Global flags, the built-in commands, and recipes.
-- Exit codes: 0 success, 1 the job failed, 2 bad usage or input, 3 differences found,
-- 4 another run holds the lock.
local tend = require "tend"
local errors = require "tend.errors"
local Context = require "tend.context"
local instance = require "tend.instance"
local recipe = require "tend.recipe"
local output = require "tend.output"
local duration = require "tend.duration"
local transport = require "tend.transport"

local M = {}

M.HELP = [==[
Usage: tend [--home DIR] [--recipes DIR] [--json] [--quiet] [--debug] [--yes] COMMAND ...

Keeps web-application instances backed up, cloned, mirrored, watched and updated.
Every job is a Lua recipe you can read, copy and change.

Instances and secrets:
  instance add NAME --app tiki|wordpress|generic --path DIR [--host local|ssh://USER@HOST[:PORT]]
               [--url URL] [--db mysql://USER@HOST[:PORT]/DB | sqlite:///PATH]
               [--db-password-secret KEY] [--ssh-key FILE] [--ssh-key-passphrase-secret KEY]
               [--ssh-password-secret KEY] [--tag K=V ...] [--exclude PATTERN ...]
               [--contact ADDR] [--watch-path /ABS/PATH ...] [--watch-ignore PATTERN ...]
               [--migrate CMD]   (the app's database migration, run in its web root by update)
               [--releases URL]  (release tarballs and their SHA256SUMS, for update without a checkout)
               [--data-dir DIR ...] (folders of user data: from the web root, or absolute outside it)
               [--config FILE ...]  (a generic app's settings files, from the web root: a copy's
                                     are rewritten to name its own database, URL and web root)
               [--version-file FILE [--version-pattern PATTERN]] (where its version is written:
                                     the first dotted number, or the Lua pattern's capture)
  instance list | show NAME | edit NAME --FIELD VALUE | rm NAME
  instance link NAME --dev-of SRC | --mirror-of SRC --lag 1d | --pre-dogfood-of SRC
  secret set KEY          value from stdin or a hidden prompt (never an argument)
  secret get KEY [--show] the value on stdout (a terminal only with --show)
  secret list | rm KEY

Hosts:
  host list                          the hosts instances live on
  host check NAME                    connect, verify the host key, log in, say who and what
  host trust NAME                    add the host's key to tend's known_hosts (shows its fingerprint)
  exec NAME|--all|--tag K=V [-j N] -- CMD ...
                                     run CMD in the instances' web roots; its exit code is ours

Store:
  store verify            read back every stored object and check its hash
  store gc [--dry-run]    remove objects no snapshot needs (never while a backup runs)
  store cat SHA256        an object's bytes on stdout
  store encrypt           encrypt new objects (key kept in the vault; back the vault key up)

Schedule and alerts:
  schedule add JOB --cron "EXPR" [--mail-to ADDR ...] [--mail-on-success] [--timeout 6h] -- RECIPE ARGS ...
  schedule list | rm JOB  the jobs: cron, last run, status, next run
  schedule sync           write the jobs into your crontab (a managed block; other lines kept)
  schedule run JOB        what cron calls: locks, preflight, the recipe, the record, the alert
  log [JOB|NAME] [--failed] | log show RUN
                          run history; one run's whole log
  mail config [--url smtp://HOST:PORT] [--from ADDR] [--user NAME] [--tls try|require|none]
                          where alert e-mails go out (password: tend secret set tend.mail.password)
  mail test ADDR          send a test message

REPL:
  repl                    Lua with the engine and your instances by name: prod:exec("uptime"),
                          prod:backup(), prod:snapshots(); Tab completes, history kept
  repl -e EXPR            evaluate one expression or statement, print its values, exit

Recipes:
  recipes                 list recipes with their summaries
  help RECIPE             parameters of one recipe
  RECIPE ARGS ...         run a recipe from --recipes DIR, $TEND_RECIPE_PATH, ~/.config/tend/recipes or the bundled set
  run FILE.lua ARGS ...   run a recipe file

Global options:
  --home DIR   state directory (default $TEND_HOME or ~/.local/share/tend)
  --recipes DIR  look for recipes here first
  --json       machine-readable output
  --quiet      no progress or status lines
  --debug      tracebacks on errors
  --yes        do not ask for confirmation
  --version    print the version

Exit codes: 0 success, 1 the job failed, 2 bad usage or input, 3 watch or compare
found differences, 4 another run holds the lock.
Docs: docs/guide.md, docs/recipes.md; `man tend`.]==]

-- getopts(argv, spec, what) -> opts, positionals.  spec: {name = "value"|"bool"|"list"}.
local function getopts(argv, spec, what)
  local opts, pos, i = {}, {}, 1
  while i <= #argv do
    local word = argv[i]
    local name, inline = word:match("^%-%-([%w-]+)=(.*)$")
    name = name or word:match("^%-%-([%w-]+)$") or word:match("^%-(%a)$")
    if name then
      local kind = spec[name]
      if not kind then errors.usage("%s: unknown option %s", what, word) end
      if kind == "bool" then
        opts[name] = true
      else
        local v = inline or argv[i + 1]
        if v == nil then errors.usage("%s: --%s needs a value", what, name) end
        if not inline then i = i + 1 end
        if kind == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], v)
        else
          opts[name] = v
        end
      end
    elseif word == "--" then
      table.move(argv, i + 1, #argv, #pos + 1, pos)
      break
    else
      pos[#pos + 1] = word
    end
    i = i + 1
  end
  return opts, pos
end

local function parse_tags(list)
  local tags = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([%w._-]+)=(.*)$")
    if not k then errors.usage("bad --tag %q: use KEY=VALUE", kv) end
    tags[k] = v
  end
  return tags
end

local INSTANCE_OPTS = { app = "value", host = "value", path = "value", url = "value", db = "value",
  ["db-password-secret"] = "value", ["ssh-key"] = "value", ["ssh-password-secret"] = "value",
  ["ssh-key-passphrase-secret"] = "value", tag = "list", exclude = "list", contact = "value",
  ["watch-path"] = "list", ["watch-ignore"] = "list", migrate = "value", releases = "value", ["data-dir"] = "list", config = "list",
  ["version-file"] = "value", ["version-pattern"] = "value" }

local function instance_fields(opts)
  local fields = {}
  for k, v in pairs(opts) do if instance.FIELDS[k] then fields[k] = v end end
  return fields
end

local function show_instance(ctx, inst)
  local d = inst:describe()
  local lines = {
    { "name", d.name }, { "app", d.app }, { "host", d.host }, { "path", d.path },
    { "url", d.url or "-" }, { "db", d.db or "(from the app's config file)" },
  }
  if d.db_password_secret then lines[#lines + 1] = { "db password", "secret " .. d.db_password_secret } end
  if d.ssh_key then lines[#lines + 1] = { "ssh key", d.ssh_key } end
  if d.ssh_key_passphrase_secret then lines[#lines + 1] = { "ssh key passphrase", "secret " .. d.ssh_key_passphrase_secret } end
  if d.ssh_password_secret then lines[#lines + 1] = { "ssh password", "secret " .. d.ssh_password_secret } end
  if #d.exclude > 0 then lines[#lines + 1] = { "exclude", table.concat(d.exclude, " ") } end
  if d.contact then lines[#lines + 1] = { "contact", d.contact } end
  if d.watch_paths then lines[#lines + 1] = { "watch paths", (d.watch_paths:gsub("\n", " ")) } end
  if d.watch_ignore then lines[#lines + 1] = { "watch ignores", (d.watch_ignore:gsub("\n", " ")) } end
  if d.migrate then lines[#lines + 1] = { "migrate", d.migrate } end
  if d.releases then lines[#lines + 1] = { "releases", d.releases } end
  if #d.data_dirs > 0 then lines[#lines + 1] = { "data dirs", table.concat(d.data_dirs, " ") } end
  if #d.outside_dirs > 0 then lines[#lines + 1] = { "data outside", table.concat(d.outside_dirs, " ") } end
  if d.version_file then lines[#lines + 1] = { "version from", d.version_file .. (d.version_pattern and (" " .. d.version_pattern) or "") } end
  if #d.config_files > 0 then lines[#lines + 1] = { "config files", table.concat(d.config_files, " ") } end
  local tags = {}
  for k, v in pairs(d.tags) do tags[#tags + 1] = k .. "=" .. v end
  table.sort(tags)
  if #tags > 0 then lines[#lines + 1] = { "tags", table.concat(tags, " ") } end
  for _, r in ipairs(d.relations) do
    lines[#lines + 1] = { r.kind, r.source .. (r.lag and (" (lag " .. duration.format(r.lag) .. ")") or "") }
  end
  ctx:result(d, output.report_text(lines))
end

local instance_cmds = {}

function instance_cmds.add(ctx, argv)
  local opts, pos = getopts(argv, INSTANCE_OPTS, "instance add")
  if #pos ~= 1 then errors.usage("usage: tend instance add NAME --app APP --path DIR [...]") end
  local inst = instance.add(ctx:catalog(), pos[1], instance_fields(opts), parse_tags(opts.tag))
  ctx:info("added instance %s", inst.name)
  show_instance(ctx, inst)
end

function instance_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "instance list")
  if #pos > 0 then errors.usage("usage: tend instance list") end
  local rows = {}
  for _, inst in ipairs(instance.list(ctx:catalog())) do rows[#rows + 1] = inst:describe() end
  ctx:result(rows, #rows == 0 and "no instances yet (tend instance add NAME --app APP --path DIR)"
    or output.table_text(rows, { "name", "app", "host", "path", "url" }))
end

function instance_cmds.show(ctx, argv)
  local _, pos = getopts(argv, {}, "instance show")
  if #pos ~= 1 then errors.usage("usage: tend instance show NAME") end
  show_instance(ctx, ctx:instance(pos[1]))
end

function instance_cmds.edit(ctx, argv)
  local opts, pos = getopts(argv, INSTANCE_OPTS, "instance edit")
  if #pos ~= 1 then errors.usage("usage: tend instance edit NAME --FIELD VALUE ...") end
  local fields = instance_fields(opts)
  if next(fields) == nil and not opts.tag then errors.usage("instance edit: nothing to change") end
  local inst = instance.edit(ctx:catalog(), pos[1], fields, parse_tags(opts.tag))
  ctx:info("updated instance %s", inst.name)
  show_instance(ctx, inst)
end

function instance_cmds.rm(ctx, argv)
  local _, pos = getopts(argv, {}, "instance rm")
  if #pos ~= 1 then errors.usage("usage: tend instance rm NAME") end
  instance.rm(ctx:catalog(), pos[1])
  ctx:info("removed instance %s (its files and database are untouched)", pos[1])
end

function instance_cmds.link(ctx, argv)
  local opts, pos = getopts(argv, { ["dev-of"] = "value", ["mirror-of"] = "value",
    ["pre-dogfood-of"] = "value", ["template-of"] = "value", lag = "value" }, "instance link")
  if #pos ~= 1 then errors.usage("usage: tend instance link NAME --dev-of SRC | --mirror-of SRC --lag 1d | --pre-dogfood-of SRC") end
  local kind, source
  for k in pairs(instance.RELATIONS) do
    if opts[k] then
      if kind then errors.usage("instance link: give one relation at a time") end
      kind, source = k, opts[k]
    end
  end
  if not kind then errors.usage("instance link: say --dev-of, --mirror-of or --pre-dogfood-of") end
  local lag
  if opts.lag then
    local msg
    lag, msg = duration.parse(opts.lag)
    if not lag then errors.usage("--lag: %s", msg) end
  end
  show_instance(ctx, instance.link(ctx:catalog(), pos[1], kind, source, lag))
end

local secret_cmds = {}

function secret_cmds.set(ctx, argv)
  local _, pos = getopts(argv, {}, "secret set")
  if #pos ~= 1 then errors.usage("usage: tend secret set KEY   (the value is read from stdin or a hidden prompt)") end
  local vault = ctx:vault()
  vault:key() -- ask for a passphrase before the secret, not after
  local value = errors.check(tend.core.vault.read_secret(("Value for %s: "):format(pos[1])))
  vault:set(pos[1], value)
  value:wipe()
  ctx:info("stored secret %s", pos[1])
end

-- secret get KEY [--show]: the value on stdout, as it is (no newline), for a place tend
-- cannot write it (a copy's config, a password manager). A terminal gets it only with
-- --show: a password left on a screen is a password shown to whoever passes.
function secret_cmds.get(ctx, argv)
  local opts, pos = getopts(argv, { show = "bool" }, "secret get")
  if #pos ~= 1 then errors.usage("usage: tend secret get KEY [--show]   (the value on stdout)") end
  local tty = tend.core.fs.isatty(1)
  if tty and not opts.show then
    errors.usage("stdout is a terminal: pipe it (tend secret get %s | ...) or add --show", pos[1])
  end
  local value, msg, code = ctx:vault():get(pos[1])
  if not value then (code == "enoent" and errors.usage or errors.fail)("%s", msg) end
  local ok, wmsg = value:write_fd(1)
  value:wipe()
  errors.check(ok, wmsg)
  if tty then io.stdout:write("\n") end
end

function secret_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "secret list")
  if #pos > 0 then errors.usage("usage: tend secret list") end
  local rows = {}
  for _, s in ipairs(ctx:vault():list()) do
    rows[#rows + 1] = { name = s.name, updated = os.date("!%Y-%m-%d %H:%M", s.updated_at) }
  end
  ctx:result(rows, #rows == 0 and "no secrets yet (tend secret set KEY)" or output.table_text(rows, { "name", "updated" }))
end

function secret_cmds.rm(ctx, argv)
  local _, pos = getopts(argv, {}, "secret rm")
  if #pos ~= 1 then errors.usage("usage: tend secret rm KEY") end
  ctx:vault():rm(pos[1])
  ctx:info("removed secret %s", pos[1])
end

local host_cmds = {}

-- The hosts the instances live on: {spec = {instances...}}, specs sorted.
local function known_hosts(ctx)
  local by_spec, specs = {}, {}
  for _, inst in ipairs(ctx:instances()) do
    if not by_spec[inst.host] then
      by_spec[inst.host] = {}
      specs[#specs + 1] = inst.host
    end
    table.insert(by_spec[inst.host], inst)
  end
  table.sort(specs)
  return by_spec, specs
end

-- A host named by an instance or by its ssh:// spec -> spec, instance (for auth options)
local function resolve_host(ctx, name)
  local inst = instance.get(ctx:catalog(), name)
  if inst then
    inst.ctx = ctx
    return inst.host, inst
  end
  local by_spec = known_hosts(ctx)
  if by_spec[name] then
    local first = by_spec[name][1]
    return name, first
  end
  local h = transport.parse(name)
  if not h then errors.usage("no instance or host named %q (tend host list)", name) end
  return h.spec, nil
end

function host_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "host list")
  if #pos > 0 then errors.usage("usage: tend host list") end
  local by_spec, specs = known_hosts(ctx)
  local rows = {}
  for _, spec in ipairs(specs) do
    local names = {}
    for _, inst in ipairs(by_spec[spec]) do names[#names + 1] = inst.name end
    rows[#rows + 1] = { host = spec, instances = table.concat(names, ",") }
  end
  ctx:result(rows, #rows == 0 and "no hosts yet: they come from instances (tend instance add)"
    or output.table_text(rows, { "host", "instances" }))
end

function host_cmds.check(ctx, argv)
  local _, pos = getopts(argv, {}, "host check")
  if #pos ~= 1 then errors.usage("usage: tend host check NAME   (an instance, or ssh://USER@HOST[:PORT])") end
  local spec, inst = resolve_host(ctx, pos[1])
  local started = os.clock()
  local opts = inst and inst:ssh_options(ctx, { fresh = true }) or { home = ctx.home, name = spec, fresh = true }
  local t = errors.check(transport.open(spec, spec ~= "local" and opts or nil))
  local r = errors.check(t:exec({ "sh", "-c", "id -un; uname -sr" }))
  local user, system = r.stdout:match("^([^\n]*)\n([^\n]*)")
  local report = { host = spec, user = user, system = system, ok = r.code == 0 }
  local lines = { { "host", spec }, { "logged in as", user or "?" }, { "system", system or "?" } }
  if t.session then
    report.fingerprint = t.session:hostkey().fingerprint
    table.insert(lines, 2, { "host key", t.session:hostkey().type .. " " .. report.fingerprint .. " (trusted)" })
  end
  report.seconds = os.clock() - started
  ctx:result(report, output.report_text(lines))
end

function host_cmds.trust(ctx, argv)
  local _, pos = getopts(argv, {}, "host trust")
  if #pos ~= 1 then errors.usage("usage: tend host trust NAME   (an instance, or ssh://USER@HOST[:PORT])") end
  local spec = resolve_host(ctx, pos[1])
  local h = transport.parse(spec)
  if h.kind == "local" then errors.usage("%s is this machine: nothing to trust", pos[1]) end
  local key, msg = require("tend.ssh").trust_host(h, ctx.home)
  if not key then errors.fail("%s", msg) end
  ctx:result({ host = spec, type = key.type, fingerprint = key.fingerprint, added = key.added },
    ("%s %s %s: %s"):format(spec, key.type, key.fingerprint,
      key.added and ("trusted, added to " .. ctx.home .. "/known_hosts") or "already trusted"))
end

-- exec NAME|--all|--tag K=V [-j N] -- CMD...
local function commands_exec(ctx, argv)
  local sep
  for i, a in ipairs(argv) do if a == "--" then sep = i break end end
  if not sep or sep == #argv then errors.usage("usage: tend exec NAME|--all|--tag K=V [-j N] -- CMD ...") end
  local cmd = table.move(argv, sep + 1, #argv, 1, {})
  local opts, pos = getopts(table.move(argv, 1, sep - 1, 1, {}), { all = "bool", tag = "list", j = "value" }, "exec")
  local targets = {}
  if opts.all or opts.tag then
    if #pos > 0 then errors.usage("exec: give NAME or --all/--tag, not both") end
    local want = parse_tags(opts.tag)
    for _, inst in ipairs(ctx:instances()) do
      local match = true
      for k, v in pairs(want) do if inst.tags[k] ~= v then match = false end end
      if match then targets[#targets + 1] = inst end
    end
    if #targets == 0 then errors.usage("exec: no instance matches") end
  elseif #pos == 1 then
    targets[1] = ctx:instance(pos[1])
  else
    errors.usage("usage: tend exec NAME|--all|--tag K=V [-j N] -- CMD ...")
  end
  if #targets == 1 and not (opts.all or opts.tag) then
    local r = errors.check(targets[1]:exec(cmd, { output = "inherit" }))
    return r.code
  end
  return require("tend.fanout").exec(ctx, targets, cmd, tonumber(opts.j) or 1)
end

local store_cmds = {}

-- store verify: every object in the store reads back to its name.
function store_cmds.verify(ctx, argv)
  local _, pos = getopts(argv, {}, "store verify")
  if #pos > 0 then errors.usage("usage: tend store verify") end
  local snapshot = require "tend.snapshot"
  local st, bad = snapshot.store(ctx), {}
  local all = snapshot.objects(ctx)
  local encrypted = tend.core.fs.stat(ctx.home .. "/store/encryption") ~= nil
  local plain = encrypted and 0 or nil
  for _, hex in ipairs(all) do
    local ok, msg = st:verify(hex)
    if not ok then bad[#bad + 1] = msg end
    if ok and encrypted and not st:sealed(hex) then plain = plain + 1 end
  end
  ctx:result({ objects = #all, damaged = bad, encrypted = encrypted, unencrypted = plain },
    ("%d objects: %s%s"):format(#all,
      #bad == 0 and "all intact" or (#bad .. " damaged\n  " .. table.concat(bad, "\n  ")),
      (plain or 0) > 0 and ("\n%d objects were stored before encryption and are not encrypted"):format(plain) or ""))
  if #bad > 0 then errors.fail("store: %d damaged objects", #bad) end
end

-- store gc: remove objects no snapshot references; never while a backup runs.
function store_cmds.gc(ctx, argv)
  local opts, pos = getopts(argv, { ["dry-run"] = "bool" }, "store gc")
  if #pos > 0 then errors.usage("usage: tend store gc [--dry-run]") end
  local snapshot = require "tend.snapshot"
  local lock <close> = snapshot.lock_store(ctx, "exclusive")
  local keep = snapshot.referenced(ctx:catalog())
  for hex in pairs(require("tend.restore").pinned(ctx)) do keep[hex] = true end
  local st = snapshot.store(ctx)
  local removed, freed = 0, 0
  for _, hex in ipairs(st:list()) do
    if not keep[hex] then
      local kind, path, _, len = st:locate(hex)
      local size = kind == "pack" and len or ((tend.core.fs.stat(path) or {}).size or 0)
      if not opts["dry-run"] then errors.check(st:remove(hex)) end
      removed, freed = removed + 1, freed + size
    end
  end
  local packs = 0
  if not opts["dry-run"] then
    packs = st:prune()
    -- objects a killed run was writing (no run writes while gc holds the store)
    local tmp = ctx.home .. "/store/tmp"
    for _, name in ipairs(tend.core.fs.list(tmp) or {}) do tend.core.fs.remove(tmp .. "/" .. name) end
    -- the notes of runs that ended badly: gc has just removed what they name
    for _, run in ipairs(snapshot.ended_runs(ctx)) do tend.core.fs.remove(run.path); run.lock:release() end
  end
  ctx:result({ removed = removed, freed_bytes = freed, packs_removed = packs, dry_run = opts["dry-run"] or false },
    ("%s %d unreferenced objects (%d bytes)%s"):format(opts["dry-run"] and "would remove" or "removed", removed, freed,
      packs > 0 and ("; %d empty packs deleted"):format(packs) or ""))
end

-- store encrypt: new objects are sealed with a key kept in the vault.
function store_cmds.encrypt(ctx, argv)
  local _, pos = getopts(argv, {}, "store encrypt")
  if #pos > 0 then errors.usage("usage: tend store encrypt") end
  local Vault = require "tend.vault"
  local snapshot = require "tend.snapshot"
  local lock <close> = snapshot.lock_store(ctx, "exclusive")
  local st = snapshot.store(ctx)
  if tend.core.fs.stat(ctx.home .. "/store/encryption") then
    errors.usage("the store is encrypted already")
  end
  local vault = ctx:vault()
  local key = vault:get(Vault.STORE_KEY) -- left by an earlier attempt, never used
  if not key then
    vault:set(Vault.STORE_KEY, tend.core.vault.random_secret(32))
    key = errors.check(vault:get(Vault.STORE_KEY))
  end
  errors.check(st:encrypt(key))
  local before = #st:list()
  ctx:result({ encrypted = true, unencrypted = before },
    ("the store is encrypted from now on (key %s in the vault)%s"):format(Vault.STORE_KEY,
      before > 0 and ("; the %d objects stored before stay unencrypted until gc drops them"):format(before) or ""))
end

-- store cat HEX: an object's bytes on stdout, for inspection.
function store_cmds.cat(ctx, argv)
  local _, pos = getopts(argv, {}, "store cat")
  if #pos ~= 1 or not pos[1]:match("^%x+$") or #pos[1] ~= 64 then errors.usage("usage: tend store cat SHA256") end
  local data = errors.check(require("tend.snapshot").store(ctx):get_string(pos[1]))
  io.stdout:write(data)
end

local mail_cmds = {}

-- mail config [--url U] [--from A] [--user U] [--tls try|require|none]: where alerts go
-- out; with no option, what is set. The password is the secret tend.mail.password.
function mail_cmds.config(ctx, argv)
  local notify = require "tend.notify"
  local opts, pos = getopts(argv, { url = "value", from = "value", user = "value", tls = "value" }, "mail config")
  if #pos > 0 then errors.usage("usage: tend mail config [--url smtp://HOST:PORT] [--from ADDR] [--user NAME] [--tls try|require|none]") end
  if opts.url and opts.url ~= "" and not opts.url:match("^smtps?://[^/%s]+") then
    errors.usage("mail config: --url must be smtp://HOST[:PORT] or smtps://HOST[:PORT], not %q", opts.url)
  end
  if opts.from and opts.from ~= "" then notify.check_address(opts.from) end
  if opts.tls and not ({ try = true, require = true, none = true })[opts.tls] then
    errors.usage("mail config: --tls is try, require or none, not %q", opts.tls)
  end
  local catalog = ctx:catalog()
  for _, k in ipairs(notify.KEYS) do
    if opts[k] == "" then
      catalog:run("DELETE FROM meta WHERE key = ?", "mail." .. k)
    elseif opts[k] then
      catalog:meta("mail." .. k, opts[k])
    end
  end
  local now = {}
  for _, k in ipairs(notify.KEYS) do now[k] = catalog:meta("mail." .. k) end
  local lines = {}
  for _, k in ipairs(notify.KEYS) do lines[#lines + 1] = ("%-5s %s"):format(k .. ":", now[k] or "-") end
  lines[#lines + 1] = ("password: %s"):format(now.user and ("secret " .. notify.PASSWORD) or "-")
  ctx:result(now, table.concat(lines, "\n"))
end

-- mail test ADDR: send a test message the way alerts go.
function mail_cmds.test(ctx, argv)
  local notify = require "tend.notify"
  local _, pos = getopts(argv, {}, "mail test")
  if #pos ~= 1 then errors.usage("usage: tend mail test ADDRESS") end
  notify.check_address(pos[1])
  local ok, msg, code = notify.send(ctx, pos[1], "tend: test message",
    "This is a test message from tend. Alerts about failed jobs will come the same way.\n")
  if not ok and code == "config" then errors.usage("%s", msg) end
  errors.check(ok, msg, code)
  ctx:result({ sent = true, to = pos[1] }, "sent a test message to " .. pos[1])
end

local schedule_cmds = {}

local SCHEDULE_ADD = "usage: tend schedule add JOB --cron \"EXPR\" [--mail-to ADDR ...] [--mail-on-success]\n"
  .. "                         [--webhook URL] [--timeout 6h] -- RECIPE ARGS ..."

function schedule_cmds.add(ctx, argv)
  local opts, pos = getopts(argv, { cron = "value", ["mail-to"] = "list", ["mail-on-success"] = "bool",
    webhook = "value", timeout = "value" }, "schedule add")
  local name = table.remove(pos, 1)
  if not name or not opts.cron then errors.usage("%s", SCHEDULE_ADD) end
  if #pos == 0 then errors.usage("schedule add: say what to run after --, e.g. -- backup blog\n%s", SCHEDULE_ADD) end
  if not require("tend.recipe").find(pos[1]) and not M.commands[pos[1]] then
    errors.usage("schedule add: %s is neither a recipe nor a tend command (tend recipes)", pos[1])
  end
  local timeout
  if opts.timeout then timeout = errors.check(duration.parse(opts.timeout)) end
  if opts.webhook and not opts.webhook:match("^https?://") then errors.usage("schedule add: --webhook must be an http(s) URL") end
  local schedule = require "tend.schedule"
  schedule.add(ctx, { name = name, cron = opts.cron, argv = pos, mail_to = opts["mail-to"],
    mail_on_success = opts["mail-on-success"], webhook = opts.webhook, timeout = timeout })
  ctx:info("added job %s (%s); tend schedule sync puts it in the crontab", name, opts.cron)
end

local function when(t) return t and os.date("%Y-%m-%d %H:%M", t) or "-" end

function schedule_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule list")
  if #pos > 0 then errors.usage("usage: tend schedule list") end
  local jobs = require("tend.schedule").list(ctx)
  local rows = {}
  for i, job in ipairs(jobs) do
    rows[i] = { job = job.name, cron = job.cron, command = require("tend.shell").join(job.argv),
      last_run = job.last and when(job.last.started_at) or "never", status = job.last and job.last.status or "-",
      next_run = when(job.next_at), mail_to = job.mail_to }
  end
  ctx:result(rows, #rows == 0 and "no jobs yet (tend schedule add)"
    or output.table_text(rows, { "job", "cron", "last_run", "status", "next_run", "command" }))
end

function schedule_cmds.rm(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule rm")
  if #pos ~= 1 then errors.usage("usage: tend schedule rm JOB") end
  require("tend.schedule").rm(ctx, pos[1])
  ctx:info("removed job %s; tend schedule sync takes it out of the crontab", pos[1])
end

function schedule_cmds.sync(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule sync")
  if #pos > 0 then errors.usage("usage: tend schedule sync") end
  local changed = require("tend.schedule").sync(ctx)
  ctx:result({ changed = changed }, changed and "crontab updated" or "crontab already up to date")
end

function schedule_cmds.run(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule run")
  if #pos ~= 1 then errors.usage("usage: tend schedule run JOB") end
  local code, run = require("tend.schedule").run(ctx, pos[1])
  ctx:result({ run = run.id, status = run.status, error = run.error, alert = run.alert })
  return code
end

-- log [JOB|NAME] [--failed] | log show RUN
local function commands_log(ctx, argv)
  local catalog = ctx:catalog()
  if argv[1] == "show" then
    local id = tonumber(argv[2])
    if not id or argv[3] then errors.usage("usage: tend log show RUN") end
    local r = catalog:first("SELECT * FROM runs WHERE id = ?", id)
    if not r then errors.usage("no run %d (tend log)", id) end
    local lines = {
      ("run %d of job %s%s: %s%s"):format(r.id, r.job, r.instance ~= "" and (" (" .. r.instance .. ")") or "", r.status,
        r.exit_code and (" (exit " .. r.exit_code .. ")") or ""),
      ("started %s, took %ss"):format(when(r.started_at), r.finished_at and (r.finished_at - r.started_at) or "?") }
    if r.error then lines[#lines + 1] = "error: " .. r.error end
    if r.alert then lines[#lines + 1] = "alert: " .. r.alert end
    lines[#lines + 1] = ""
    lines[#lines + 1] = r.log or ""
    ctx:result(r, table.concat(lines, "\n"))
    return
  end
  local opts, pos = getopts(argv, { failed = "bool" }, "log")
  if #pos > 1 then errors.usage("usage: tend log [JOB|INSTANCE] [--failed] | log show RUN") end
  local where, args = {}, {}
  if pos[1] then
    where[#where + 1] = "(job = ? OR ',' || instance || ',' LIKE '%,' || ? || ',%')"
    args[#args + 1], args[#args + 2] = pos[1], pos[1]
  end
  if opts.failed then where[#where + 1] = "status = 'failed'" end
  local sql = "SELECT id, job, instance, started_at, finished_at, status, error FROM runs"
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") .. " ORDER BY id DESC LIMIT 50"
  local rows = catalog:query(sql, table.unpack(args))
  local text = {}
  for i, r in ipairs(rows) do
    text[i] = { run = r.id, job = r.job, instance = r.instance ~= "" and r.instance or "-", started = when(r.started_at),
      status = r.status, error = r.error or "" }
  end
  ctx:result(rows, #rows == 0 and "no runs yet" or output.table_text(text, { "run", "job", "instance", "started", "status", "error" }))
end

local function group(name, cmds, usage)
  return function(ctx, argv)
    local sub = argv[1]
    if not sub or sub == "--help" then
      ctx:result(nil, usage)
      return sub and 0 or 2
    end
    local fn = cmds[sub]
    if not fn then errors.usage("unknown command 'tend %s %s'\n%s", name, sub, usage) end
    return fn(ctx, table.move(argv, 2, #argv, 1, {}))
  end
end

-- recover_instances(ctx, r, args): a restore of any instance the job names that was
-- killed midway is rolled back before the job starts (not in a restore's own helper,
-- whose parent holds that restore).
local function recover_instances(ctx, r, args)
  if os.getenv("TEND_RESTORE_HELPER_OF") then return end
  require("tend.home").sweep_scratch(ctx.home) -- a killed run's temp files here
  local restore = require "tend.restore"
  for _, p in ipairs(r.params) do
    local v = p.type == "instance" and args[p.name]
    for _, inst in ipairs(v and (p.list and v or { v }) or {}) do restore.recover(ctx, inst) end
  end
end

-- run_recipe(ctx, r, argv) -> exit code
local function run_recipe(ctx, r, argv)
  if argv[1] == "--help" or argv[1] == "-h" then
    ctx:result(nil, recipe.usage(r))
    return 0
  end
  local args = recipe.parse_args(ctx, r, argv)
  local ok, result = pcall(function()
    recover_instances(ctx, r, args)
    return r.run(ctx, args)
  end)
  if not ok then
    local e = ctx:rollback(result) -- the job's undos, newest first
    local bare = e.msg
    if e.code == 1 then e = errors.within(e, r.name) end
    e.bare = bare -- what a parent tend is told (tend.child): its own recipe's name it knows
    error(e, 0)
  end
  return math.tointeger(result) or 0
end

local commands = {}
M.commands = commands -- schedule add checks a command's name against these

commands.instance = group("instance", instance_cmds,
  "usage: tend instance add|list|show|edit|rm|link ... (tend --help)")
commands.secret = group("secret", secret_cmds, "usage: tend secret set KEY | get KEY [--show] | list | rm KEY")
commands.host = group("host", host_cmds, "usage: tend host list | check NAME | trust NAME")
commands.store = group("store", store_cmds, "usage: tend store verify | gc [--dry-run] | cat SHA256 | encrypt")
commands.schedule = group("schedule", schedule_cmds, "usage: tend schedule add JOB --cron EXPR -- RECIPE ARGS | list | rm JOB | sync | run JOB")
commands.log = commands_log
commands.mail = group("mail", mail_cmds, "usage: tend mail config [--url URL] [--from ADDR] [--user NAME] [--tls MODE] | test ADDR")
commands.exec = commands_exec

-- repl [-e EXPR]
function commands.repl(ctx, argv)
  local opts, pos = getopts(argv, { e = "value" }, "repl")
  if #pos > 0 then errors.usage("usage: tend repl [-e EXPR]") end
  return require("tend.repl").run(ctx, { expr = opts.e })
end

-- helper: work a tend process hands to a child of its own (not for people; not listed).
--   helper dump-db NAME PARENT_PID   the instance's database into the store (backup)
function commands.helper(ctx, argv)
  if argv[1] ~= "dump-db" or not argv[2] or not tonumber(argv[3]) then
    errors.usage("usage: tend helper dump-db NAME PARENT_PID (tend runs this itself)")
  end
  ctx:result(require("tend.backup").dump_helper(ctx, ctx:instance(argv[2]), tonumber(argv[3])))
end

function commands.recipes(ctx, argv)
  if #argv > 0 then errors.usage("usage: tend recipes") end
  local list = recipe.all()
  local rows = {}
  for _, r in ipairs(list) do rows[#rows + 1] = { name = r.name, summary = r.summary, from = r.origin } end
  local lines = {}
  for _, r in ipairs(rows) do lines[#lines + 1] = ("  %-16s %s"):format(r.name, r.summary) end
  ctx:result(rows, "Recipes (tend help RECIPE for parameters):\n" .. table.concat(lines, "\n"))
end

function commands.help(ctx, argv)
  if #argv == 0 then ctx:result(nil, M.HELP); return 0 end
  if #argv > 1 then errors.usage("usage: tend help RECIPE") end
  local src, origin = recipe.find(argv[1])
  if not src then errors.usage("no recipe named %q (tend recipes lists them)", argv[1]) end
  local r = recipe.load(src, origin)
  ctx:result({ name = r.name, summary = r.summary, params = r.params, from = r.origin }, recipe.usage(r))
end

function commands.run(ctx, argv)
  local file = argv[1]
  if not file then errors.usage("usage: tend run FILE.lua ARGS ...") end
  local src, msg = tend.core.fs.read(file)
  if not src then errors.usage("%s", msg) end
  return run_recipe(ctx, recipe.load(src, file), table.move(argv, 2, #argv, 1, {}))
end

local GLOBAL = { home = "value", recipes = "value", json = "bool", quiet = "bool", debug = "bool", yes = "bool" }

-- Split global flags (before the command) from the command and its arguments.
local function parse_global(argv)
  local opts, i = {}, 1
  while i <= #argv and argv[i]:sub(1, 2) == "--" do
    local name, inline = argv[i]:match("^%-%-([%w-]+)=(.*)$")
    name = name or argv[i]:sub(3)
    if name == "version" or name == "help" then opts[name] = true
    elseif GLOBAL[name] == "bool" then
      opts[name] = inline == nil or inline == "true" or inline == "yes" or inline == "1"
      if inline and not opts[name] and inline ~= "false" and inline ~= "no" and inline ~= "0" then
        errors.usage("--%s: %q is not true or false", name, inline)
      end
    elseif GLOBAL[name] == "value" then
      opts[name] = inline or argv[i + 1]
      if opts[name] == nil then errors.usage("--%s needs a value", name) end
      if not inline then i = i + 1 end
    else
      errors.usage("unknown option %s (tend --help)", argv[i])
    end
    i = i + 1
  end
  return opts, argv[i], table.move(argv, i + 1, #argv, 1, {})
end

local function dispatch(argv, state)
  local opts, cmd, rest = parse_global(argv)
  state.debug = opts.debug
  if opts.recipes then recipe.extra = { opts.recipes } end
  if opts.version then io.stdout:write("tend ", tend.version, "\n"); return 0 end
  if opts.help or cmd == "-h" then io.stdout:write(M.HELP, "\n"); return 0 end
  if not cmd then io.stderr:write(M.HELP, "\n"); return 2 end
  local ctx = Context.new({ home = opts.home, json = opts.json, quiet = opts.quiet, debug = opts.debug, yes = opts.yes })
  state.ctx = ctx
  if commands[cmd] then return commands[cmd](ctx, rest) or 0 end
  local src, origin = recipe.find(cmd)
  if not src then errors.usage("unknown command or recipe %q (tend --help, tend recipes)", cmd) end
  return run_recipe(ctx, recipe.load(src, origin), rest)
end

-- main(argv) -> exit code.  Errors become one line on stderr; --debug adds the traceback.
function M.main(argv)
  local state = {}
  local trace
  local ok, result = xpcall(dispatch, function(e)
    trace = debug.traceback(errors.is(e) and e.msg or tostring(e), 2)
    return e
  end, argv, state)
  if state.ctx then state.ctx:close() end
  local answer = state.ctx and state.ctx.answer
  if ok then
    require("tend.child").report(math.tointeger(result) or 0, nil, answer)
    return result
  end
  local msg, code = errors.message(result), errors.is(result) and result.code or 1
  io.stderr:write("tend: ", msg, "\n")
  if state.debug then io.stderr:write(trace, "\n") end
  require("tend.child").report(code, errors.is(result) and result.bare or msg, answer)
  return code
end

return M
