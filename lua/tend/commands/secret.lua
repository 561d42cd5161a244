-- commands/secret: tend secret set|get|list|rm: the vault.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local output = require "tend.output"
local getopts = require("tend.recipe").getopts

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
  local rows, data = {}, {}
  for _, s in ipairs(ctx:vault():list()) do
    rows[#rows + 1] = { name = s.name, updated = os.date("!%Y-%m-%d %H:%M UTC", s.updated_at) }
    data[#data + 1] = { name = s.name, updated = output.time(s.updated_at) }
  end
  ctx:result(data, #rows == 0 and "no secrets yet (tend secret set KEY)" or output.table_text(rows, { "name", "updated" }))
end

function secret_cmds.rm(ctx, argv)
  local _, pos = getopts(argv, {}, "secret rm")
  if #pos ~= 1 then errors.usage("usage: tend secret rm KEY") end
  ctx:vault():rm(pos[1])
  ctx:info("removed secret %s", pos[1])
end

return secret_cmds
