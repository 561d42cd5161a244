-- cli: argv in, exit code out. Global flags, the built-in commands, and recipes.
-- Exit codes: 0 success, 1 the job failed, 2 bad usage or input, 3 differences found,
-- 4 another run holds the lock.
local tend = require "tend"
local errors = require "tend.errors"
local Context = require "tend.context"
local recipe = require "tend.recipe"

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
  instance list | show NAME | edit NAME --FIELD VALUE | rm NAME   (--tag K= takes a tag off)
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
  store remote s3://BUCKET[/PREFIX] --endpoint URL --key-id ID [--region R]
                          keep a copy of the store in S3-compatible storage, in step after
                          each backup (secret key from stdin; the store must be encrypted)
  store remote [--off]    show the off-site copy, or stop keeping it
  store sync              bring the off-site copy in step now
  store verify --remote   fetch the off-site copy and read every object back
  store recover s3://BUCKET[/PREFIX] --endpoint URL --key-id ID
                          a new manager from the off-site copy and the vault key

Schedule and alerts:
  schedule add JOB --cron "EXPR" [--mail-to ADDR ...] [--mail-on-success] [--timeout 6h] -- RECIPE ARGS ...
  schedule list | rm JOB  the jobs: cron, last run, status, next run
  schedule sync           write the jobs into your crontab (a managed block; other lines kept)
  schedule sync --systemd ... or as systemd user timers (~/.config/systemd/user) instead
  schedule run JOB        what cron calls: locks, preflight, the recipe, the record, the alert
  status [NAME]           each instance's newest snapshot and its jobs' last runs; exit 1 if one failed
  log [JOB|NAME] [--failed] | log show RUN
                          run history; one run's whole log
  mail config [--url smtp://HOST:PORT] [--from ADDR] [--user NAME] [--tls try|require|none]
                          where alert e-mails go out (password: tend secret set tend.mail.password)
  mail test ADDR          send a test message

REPL:
  repl                    Lua with the engine and your instances by name: prod:exec("uptime"),
                          prod:backup(), prod:snapshots(); Tab completes, history kept
  repl -e EXPR            evaluate one expression or statement, print its values, exit

Recipes (the jobs; each is a Lua file you can copy and change):
%RECIPES%
  recipes                 list recipes with their summaries and where each comes from
  help RECIPE             parameters of one recipe
  RECIPE ARGS ...         run a recipe from --recipes DIR, $TEND_RECIPE_PATH, ~/.config/tend/recipes or the bundled set
  run FILE.lua ARGS ...   run a recipe file

Global options:
  --home DIR   state directory (default $TEND_HOME or ~/.local/share/tend)
  --recipes DIR  look for recipes here first
  --json       machine-readable output
  --quiet      no progress or status lines
  --debug      tracebacks on errors; each SSH command's time; at the end, the count of
               SSH commands and login-shell starts
  --yes        do not ask for confirmation
  --version    print the version

Exit codes: 0 success, 1 the job failed, 2 bad usage or input, 3 watch or compare
found differences, 4 another run holds the lock.
Docs: docs/guide.md, docs/recipes.md; `man tend`.]==]


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
-- killed midway is rolled back before the job starts.
local function recover_instances(ctx, r, args)
  require("tend.home").sweep_scratch(ctx.home) -- a killed run's temp files here
  local journal = require "tend.restore_journal"
  for _, p in ipairs(r.params) do
    local v = p.type == "instance" and args[p.name]
    for _, inst in ipairs(v and (p.list and v or { v }) or {}) do journal.recover(ctx, inst) end
  end
end

-- run_recipe(ctx, r, argv) -> exit code
local function run_recipe(ctx, r, argv)
  if argv[1] == "--help" or argv[1] == "-h" then
    ctx:result(nil, recipe.usage(r))
    return 0
  end
  local args = recipe.parse_args(ctx, r, argv)
  ctx.recipe, ctx.args = r, args -- for ctx:each's children and messages
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

local getopts = recipe.getopts

local commands = {}
M.commands = commands -- schedule add checks a command's name against these

-- Each group's commands live in tend.commands.NAME, loaded when that group runs.
local function lazy(name) return function(ctx, argv) return require("tend.commands." .. name)(ctx, argv) end end
local function lazy_group(name, usage)
  return function(ctx, argv) return group(name, require("tend.commands." .. name), usage)(ctx, argv) end
end
commands.instance = lazy_group("instance", "usage: tend instance add|list|show|edit|rm|link ... (tend --help)")
commands.secret = lazy_group("secret", "usage: tend secret set KEY | get KEY [--show] | list | rm KEY")
commands.host = lazy_group("host", "usage: tend host list | check NAME | trust NAME")
commands.store = lazy_group("store", "usage: tend store verify [--remote] | gc [--dry-run] | cat SHA256 | encrypt | remote | sync | recover")
commands.schedule = lazy_group("schedule", "usage: tend schedule add JOB --cron EXPR -- RECIPE ARGS | list | rm JOB | sync | run JOB")
commands.log = lazy("log")
commands.status = lazy("status")
commands.mail = lazy_group("mail", "usage: tend mail config [--url URL] [--from ADDR] [--user NAME] [--tls MODE] | test ADDR")
commands.exec = lazy("exec")

-- repl [-e EXPR]
function commands.repl(ctx, argv)
  local opts, pos = getopts(argv, { e = "value" }, "repl")
  if #pos > 0 then errors.usage("usage: tend repl [-e EXPR]") end
  return require("tend.repl").run(ctx, { expr = opts.e })
end

-- helper: work a tend process hands to a child of its own (not for people; not listed).
--   helper dump-db NAME PARENT_PID                  the instance's database into the store (backup)
--   helper restore-db NAME SNAP TARGET PARENT_PID   the database half of a restore
function commands.helper(ctx, argv)
  if argv[1] == "dump-db" and argv[2] and tonumber(argv[3]) and not argv[4] then
    ctx:result(require("tend.backup").dump_helper(ctx, ctx:instance(argv[2]), tonumber(argv[3])))
  elseif argv[1] == "restore-db" and argv[4] and tonumber(argv[5]) and not argv[6] then
    local inst = ctx:instance(argv[2])
    local snap = require("tend.snapshot").get(ctx:catalog(), inst, argv[3])
    if not snap then errors.usage("%s has no snapshot %s", inst.name, argv[3]) end
    ctx:result(require("tend.restore").db_helper(ctx, inst, snap, ctx:instance(argv[4]), tonumber(argv[5])))
  else
    errors.usage("usage: tend helper dump-db NAME PARENT_PID | restore-db NAME SNAP TARGET PARENT_PID (tend runs this itself)")
  end
end

-- __complete CWORD WORD...: the shell's completion asks what may stand at word CWORD
-- (tools/tend.bash-completion; not for people; not listed).
commands.__complete = function(ctx, argv)
  local cword = math.tointeger(tonumber(argv[1]))
  if not cword then errors.usage("usage: tend __complete CWORD WORD...") end
  local ok, list = pcall(require("tend.complete").candidates, ctx, table.move(argv, 2, #argv, 1, {}), cword)
  if ok then io.stdout:write(table.concat(list, "\n"), #list > 0 and "\n" or "") end
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

-- help_text() -> tend --help, with the recipes found on the recipe path and their summaries.
function M.help_text()
  local lines = {}
  for _, r in ipairs(recipe.all()) do lines[#lines + 1] = ("  %-23s %s"):format(r.name, r.summary) end
  return (M.HELP:gsub("%%RECIPES%%", function() return table.concat(lines, "\n") end))
end

function commands.help(ctx, argv)
  if #argv == 0 then ctx:result(nil, M.help_text()); return 0 end
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
  require("tend.transport").trace = opts.debug or false
  if opts.recipes then recipe.extra = { opts.recipes } end
  if opts.version then io.stdout:write("tend ", tend.version, " (", tend.core.build, ")\n"); return 0 end
  if opts.help or cmd == "-h" then io.stdout:write(M.help_text(), "\n"); return 0 end
  if not cmd then io.stderr:write(M.help_text(), "\n"); return 2 end
  local ctx = Context.new({ home = opts.home, json = opts.json, quiet = opts.quiet, debug = opts.debug, yes = opts.yes })
  state.ctx = ctx
  if commands[cmd] then return commands[cmd](ctx, rest) or 0 end
  local src, origin = recipe.find(cmd)
  if not src then
    local names = {}
    for name in pairs(commands) do names[#names + 1] = name end
    for _, r in ipairs(recipe.all()) do names[#names + 1] = r.name end
    table.sort(names)
    errors.usage("unknown command or recipe %q%s (tend --help, tend recipes)", cmd, require("tend.suggest").hint(cmd, names))
  end
  return run_recipe(ctx, recipe.load(src, origin), rest)
end

-- main(argv) -> exit code.  Errors become one line on stderr; --debug adds the traceback.
function M.main(argv)
  local state = {}
  local trace
  local ok, result = xpcall(dispatch, function(e)
    trace = debug.traceback(errors.message(e), 2)
    return e
  end, argv, state)
  if state.ctx then state.ctx:close() end
  if state.debug then
    local c = require("tend.transport").counts
    io.stderr:write(("tend: debug: %d remote commands and %d streams over SSH: %d login-shell start-ups\n")
      :format(c.commands, c.streams, c.shells))
  end
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
