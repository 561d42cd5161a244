#!/bin/bash
# One remote shell per session (engine/ssh_runner.c with transport.lua's RUNNER) and warm
# spare channels for streams (SPARE), through the engine binding, as the harness's fast
# user and as its slow-shell user (a ~/.bashrc that sleeps and talks on stderr, as real
# servers' rc files do). Output is framed exactly whatever a command prints, stdin is a
# command's own, a timeout or a killed shell fails that command alone, the rc files run
# once for the runner, and what they print never reaches a result.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
T=$(harness_tmp)
export T LUA_PATH="$TEND_SRC/lua/?.lua;$TEND_SRC/lua/?/init.lua;$TEND_SRC/tests/harness/?.lua;;" \
  LUA_CPATH="$TEND_SRC/build/lua/?.so;;"
SLOW_STARTS=
[ -n "${SSHD_SLOW_USER:-}" ] && SLOW_STARTS="$(getent passwd "$SSHD_SLOW_USER" | cut -d: -f6)/rc-starts"
export SLOW_STARTS
lua5.4 - <<'LUA'
local t = require "tap"
local core = require "tend.core"
local transport = require "tend.transport"
local quote = require("tend.shell").quote
local users = { { os.getenv("SSHD_USER"), "" } }
if os.getenv("SSHD_SLOW_USER") then users[2] = { os.getenv("SSHD_SLOW_USER"), os.getenv("SLOW_STARTS") } end
for _, u in ipairs(users) do
local who, starts_file = u[1], u[2]
local function starts()
  local f = starts_file ~= "" and io.open(starts_file)
  if not f then return 0 end
  local n = select(2, f:read("a"):gsub("\n", ""))
  f:close()
  return n
end
local s = assert(core.ssh.connect("127.0.0.1", tonumber(os.getenv("SSHD_PORT")), 5))
assert(s:auth_key(who, os.getenv("SSHD_KEY")))
local before = starts()
local r = assert(s:runner("sh -c " .. quote(transport.RUNNER)))
local function ex(script, opts) return assert(r:exec(script, opts)) end

local x = ex("echo out; echo err >&2; exit 3")
t.is(x.code .. "|" .. x.stdout .. "|" .. x.stderr, "3|out\n|err\n", who .. ": code, stdout and stderr apart")
t.is(ex("true").stderr, "", "... nothing the rc files said reaches a command's stderr")
x = ex("printf 'a\\0b'; printf 'no newline' >&2")
t.is(x.stdout .. "|" .. x.stderr, "a\0b|no newline", "output with NULs and without a final newline")
x = ex("head -c 5000000 /dev/zero | tr '\\0' 'y'")
t.is(#x.stdout .. " " .. (x.stdout:find("[^y]") or "none"), "5000000 none", "5 MB of output intact")
x = ex("cat; echo e >&2", { stdin = { "a", core.vault.secret("b"), "c" } })
t.is(x.stdout, "abc", "stdin pieces, a secret among them, are the command's stdin")
x = ex("head -c 1", { stdin = string.rep("z", 300000) })
t.is(x.stdout, "z", "a command that leaves most of its stdin unread...")
t.is(ex("echo next").stdout, "next\n", "... does not disturb the next command")
t.is(ex("cat").stdout, "", "no stdin: the command reads EOF, not the next command")
x = ex("no-such-command-here")
t.ok(x.code == 127 and x.stderr:match("not found") ~= nil, "a missing command: 127 and the shell's words")
t.is(ex("cd /; pwd; export FOO=1").stdout, "/\n", "a command may cd and export...")
t.is(ex("pwd -P; echo ${FOO:-unset}").stdout, ex("cd && pwd -P").stdout .. "unset\n",
  "... the next starts where the login shell left it, without it")
local all = true
for i = 1, 200 do all = all and ex("echo " .. i).stdout == i .. "\n" end
t.ok(all, "200 commands in a row on one shell, each with its own output")
if starts_file ~= "" then
  t.is(starts() - before, 1, "the rc files ran once for all of them")
end

local ok, msg, code = r:exec("sleep 5", { timeout = 0.3 })
t.is(code, "timeout", "a command past its timeout fails as a timeout")
t.ok(not r:alive(), "... and that runner is closed, not left out of step")
ok, msg, code = (assert(s:runner("sh -c " .. quote(transport.RUNNER)))):exec("kill -KILL $$; sleep 1") -- $$: the runner (a command runs in its subshell)
t.like(msg, "the remote shell ended", "a shell killed under a command fails that command in one line")
r = assert(s:runner("sh -c " .. quote(transport.RUNNER)))
t.is(ex("echo again").stdout, "again\n", "a new runner takes over")

-- spares: started before they are needed, the rc files' words dropped
local sp = assert(s:spare("sh -c " .. quote(transport.SPARE)))
t.ok(sp:settle(30), "a spare settles once its rc files have run")
assert(sp:begin("echo from-stream; cat; echo to-stderr >&2; exit 5"))
sp:write("piped"); sp:send_eof()
local got = {}
for chunk in function() return sp:read() end do got[#got + 1] = chunk end
t.is(table.concat(got), "from-stream\npiped", "a spare becomes the stream: its output, its stdin")
t.is(sp:wait(), 5, "... its exit code")
t.is(sp:stderr(), "to-stderr\n", "... and only its own stderr")
local cold = assert(s:spare("sh -c " .. quote(transport.SPARE)))
assert(cold:begin("head -c 1000000 /dev/zero; echo done >&2")) -- before its rc files ran
local n, other = 0, false
for chunk in function() return cold:read() end do
  n = n + #chunk
  other = other or chunk:find("[^%z]") ~= nil
end
t.is(n .. " " .. tostring(other), "1000000 false", "a spare begun at once: its output alone, 1 MB of zeros")
t.is(cold:wait() .. " " .. cold:stderr(), "0 done\n", "... and its own stderr")
s:close()
end
t.done()
LUA
