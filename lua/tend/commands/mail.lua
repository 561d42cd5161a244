-- commands/mail: tend mail config|test: where alerts go.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local getopts = require("tend.recipe").getopts

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

return mail_cmds
