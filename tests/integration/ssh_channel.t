#!/bin/bash
# SSH channels through the engine binding (stock lua5.4 + tend.core): 100 MB each way
# intact, four channels at once on one session, stdin from secrets, exit codes, and
# failures as results.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
T=$(harness_tmp)
head -c 100000000 /dev/urandom > "$T/src.bin"
export T LUA_PATH="$TEND_SRC/lua/?.lua;$TEND_SRC/lua/?/init.lua;$TEND_SRC/tests/harness/?.lua;;" \
  LUA_CPATH="$TEND_SRC/build/lua/?.so;;"
lua5.4 - <<'LUA'
local t = require "tap"
local core = require "tend.core"
local T = os.getenv("T")
local function sha(path) return io.popen("sha256sum " .. path):read("a"):match("^%x+") end
local s = assert(core.ssh.connect("127.0.0.1", tonumber(os.getenv("SSHD_PORT")), 5))
assert(s:auth_key(os.getenv("SSHD_USER"), os.getenv("SSHD_KEY")))

local ch = assert(s:open("cat " .. T .. "/src.bin; echo to-stderr >&2; sha256sum " .. T .. "/src.bin >&2"))
t.is(ch:pump_to_file(T .. "/down.bin"), 100000000, "100 MB down one channel into a file")
t.is(ch:wait(), 0, "... the command exits 0")
t.is(sha(T .. "/down.bin"), sha(T .. "/src.bin"), "... and the bytes are intact (sha256 on both ends)")
t.like(ch:stderr(), "^to%-stderr\n" .. sha(T .. "/src.bin"), "stderr is kept apart, in order")

local up = assert(s:open("cat > " .. T .. "/up.bin"))
t.is(up:pump_from_file(T .. "/src.bin"), 100000000, "100 MB up one channel from a file")
t.is(up:wait(), 0, "... the command exits 0")
t.is(sha(T .. "/up.bin"), sha(T .. "/src.bin"), "... and the bytes are intact")

local chans, got = {}, {}
for i = 1, 4 do chans[i] = assert(s:open("for j in 1 2 3; do echo c" .. i .. "-$j; sleep 0.2; done")) end
for i = 1, 4 do got[i] = {} end
local open = 4
while open > 0 do
  open = 0
  for i = 1, 4 do
    local chunk = chans[i]:read()
    if chunk then table.insert(got[i], chunk); open = open + 1 end
  end
end
local all = true
for i = 1, 4 do
  all = all and table.concat(got[i]) == ("c%d-1\nc%d-2\nc%d-3\n"):format(i, i, i)
  t.is(chans[i]:wait(), 0, "channel " .. i .. " of 4 open at once exits 0")
end
t.ok(all, "four channels at once on one session each deliver their own output")

local w = assert(s:open("cat; exit 4"))
w:write("plain+")
w:write(core.vault.secret("from-a-secret"))
w:send_eof()
t.is(w:read(), "plain+from-a-secret", "write takes strings and secrets")
t.is(w:wait(), 4, "the exit code comes back")
local k = assert(s:open("kill -KILL $$"))
local code, sig = k:wait()
t.is(sig, "KILL", "a signal comes back by name")

local f = assert(s:open("cat " .. T .. "/src.bin"))
local ok, msg, errcode = f:pump_to_file("/nonexistent-dir/x")
t.is(errcode, "enoent", "pumping into an impossible file fails as a result")
f:close()
t.like(tostring(f), "closed", "a closed channel says so")
t.ok(not pcall(f.read, f), "reading a closed channel raises")

local late = assert(s:open("cat"))
s:close()
t.ok(not pcall(late.read, late), "a channel of a closed session raises instead of crashing")
collectgarbage()
t.done()
LUA
