-- transport: how tend reaches an instance's host. Recipes never care which one:
-- both answer exec(argv, opts), open(argv, opts) (a stream), read(path),
-- write(path, data, mode), stat(path), list(dir), mkdir_p(path, mode), rename(from, to),
-- remove(path).
-- `local` runs programs with posix_spawn on this machine; `ssh://USER@HOST[:PORT]` runs
-- them through one pooled SSH session per host, as a POSIX sh script built from argv.
local core = require "tend.core"
local shell = require "tend.shell"
local ssh = require "tend.ssh"
local errors = require "tend.errors"
local proc, fs = core.proc, core.fs

local M = {}

local Local = {}
Local.__index = Local
Local.__tostring = function() return "local" end

-- exec(argv, {stdin=, fds=, env=, cwd=, timeout=, output=}) -> {code, stdout, stderr} | nil, msg, code
function Local:exec(argv, opts) return proc.run(argv, opts) end
function Local:read(path) return fs.read(path) end
function Local:interactive(root)
  io.stdout:flush()
  local ok, how, code = os.execute(("cd %s && exec \"${SHELL:-/bin/sh}\" -l"):format(shell.quote(root)))
  if how == "signal" then return 128 + code, tostring(code) end
  return ok and 0 or code
end
function Local:stat(path) return fs.stat(path) end
function Local:list(path) return fs.list(path) end

-- open(argv, {cwd=, env=, stdin_pipe=}) -> stream: read([max]) (nil at the end),
-- write(data) and send_eof() (with stdin_pipe), wait() -> code, stderr(), close(); also a
-- C reader and writer (archive.store_tar / write_tar take it). No shell involved.
function Local:open(argv, opts)
  opts = opts or {}
  return proc.open(argv, { cwd = opts.cwd, env = opts.env, stdin_pipe = opts.stdin_pipe, fds = opts.fds })
end
function Local:write(path, data, mode) return fs.write_atomic(path, data, mode) end
function Local:prepare_streams() end
function Local:mkdir_p(path, mode) return fs.mkdir_p(path, mode) end
function Local:rename(from, to) return fs.rename(from, to) end
function Local:remove(path) return fs.remove(path) end

-- parse(spec) -> {kind="local"} | {kind="ssh", user=, host=, port=} | nil, msg
function M.parse(spec)
  if spec == nil or spec == "local" then return { kind = "local", spec = "local" } end
  local user, host, port = spec:match("^ssh://([^@/]+)@%[([%x:.]+)%]:?(%d*)/?$") -- [IPv6]
  if not user then user, host, port = spec:match("^ssh://([^@/]+)@([^/:%[%]]+):?(%d*)/?$") end
  if not host then host, port = spec:match("^ssh://%[([%x:.]+)%]:?(%d*)/?$") end
  if not host then host, port = spec:match("^ssh://([^@/:%[%]]+):?(%d*)/?$") end
  if not host then
    return nil, ("bad host %q: use local or ssh://USER@HOST[:PORT] (IPv6: ssh://USER@[ADDR]:PORT)"):format(spec)
  end
  port = tonumber(port) or 22
  if port < 1 or port > 65535 then return nil, ("bad port in %q"):format(spec) end
  return { kind = "ssh", user = user, host = host, port = port, spec = spec }
end

local Ssh = {}

-- counts: what this process (and the child tends it waited for) asked of SSH hosts:
-- commands (exec), streams (open), and the starts of the host user's login shell (sshd
-- runs everything through it, rc files and all). tend --debug prints them at the end.
M.counts = { commands = 0, streams = 0, shells = 0 }
-- trace: with tend --debug, each remote command as it ends, with the seconds it took
M.trace = false
Ssh.__index = Ssh
Ssh.__tostring = function(t) return t.spec end

-- The two remote shells. The login shell starts each (rc files first); each reads a
-- random token on stdin (never in an argv) and says it back on stdout and stderr, so
-- whatever the rc files printed is dropped. RUNNER then runs framed commands for the
-- whole run, one after the other (engine/ssh_runner.c): the login shell starts once,
-- not once per command. SPARE waits, warm, for one stream's script and becomes it.
-- RUNNER reads a command's script as N lines with the shell's own read and runs it in a
-- subshell (its exit, exec, cd and traps its own; the token not in its variables): one
-- fork per command besides the command itself, no process to read the script.
M.RUNNER = [[IFS= read -r T || exit 0
printf '%s\n' "$T"; printf '%s\n' "$T" >&2
while IFS=' ' read -r id n m; do
s=
while [ "$n" -gt 0 ] && IFS= read -r l; do s="$s$l
"; n=$((n - 1)); done
if [ "$m" -gt 0 ]; then head -c "$m" | { (T= l= n= m=; eval "$s"); r=$?; cat >/dev/null; exit $r; }
else (T= l= n= m=; eval "$s") </dev/null; fi
r=$?
printf '%s %s %s\n' "$T" "$id" "$r"; printf '%s %s\n' "$T" "$id" >&2
done]]
M.SPARE = [[IFS= read -r T || exit 0
printf '%s\n' "$T"; printf '%s\n' "$T" >&2
IFS= read -r n || exit 0
s=$(head -c "$n"; echo .); s=${s%.}
exec sh -c "$s"]]

-- Per session: its runner, and for a run that streams, one spare stream channel warming
-- while the run goes on.
local weak = { __mode = "k" }
local runners, spares, streaming = setmetatable({}, weak), setmetatable({}, weak), setmetatable({}, weak)

local function start_spare(session)
  local ch = session:spare("sh -c " .. shell.quote(M.SPARE))
  if ch then M.counts.shells = M.counts.shells + 1 end
  spares[session] = ch
end

-- prepare_streams(): this run will stream (a backup, a restore): a spare channel starts
-- now, its rc files running while other work goes on, and each stream taken is replaced
-- by the next. A run that only runs commands (a check) never starts one.
function Ssh:prepare_streams()
  streaming[self.session] = true
  if not spares[self.session] then start_spare(self.session) end
end

-- runner() -> the session's runner, started when there is none or the last one ended |
-- nil, msg, code
function Ssh:runner()
  local r = runners[self.session]
  if r and r:alive() then return r end
  local msg, code
  r, msg, code = self.session:runner("sh -c " .. shell.quote(M.RUNNER))
  if not r and code == "ended" then -- a nologin shell, a forced command: every job would fail
    return nil, ("%s: logged in, but the account runs no commands (%s); tend needs a login whose shell "
      .. "runs them"):format(self.spec, msg:match("the remote shell ended: (.*)$") or "its shell ended at once"), "noshell"
  end
  if not r then return nil, msg, code end
  M.counts.shells = M.counts.shells + 1
  runners[self.session] = r
  return r
end

-- fd3_line(opts) -> the first line of the channel's stdin that becomes argv's fd 3 (see
-- shell.script), or nil. Only fd 3 can be fed besides stdin.
local function fd3_line(opts, level)
  for k in pairs(opts.fds or {}) do
    if k ~= 3 then error("ssh transport: only fd 3 can be fed, not " .. tostring(k), level + 1) end
  end
  local fd3 = opts.fds and opts.fds[3]
  if fd3 == nil then return nil end
  return type(fd3) == "string" and shell.printf_line(fd3) or fd3:printf_line()
end

-- exec(argv, opts): as Local:exec, through the session's runner; fd 3 crosses as the
-- first line of stdin, into a pipe on the host, never a file.
function Ssh:exec(argv, opts)
  opts = opts or {}
  local stdin, fd3 = {}, fd3_line(opts, 2)
  if fd3 then stdin[#stdin + 1] = fd3 end
  if opts.stdin then stdin[#stdin + 1] = opts.stdin end
  local script = shell.script(argv, { cwd = opts.cwd, env = opts.env, fd3 = fd3 ~= nil })
  if opts.output == "inherit" and #stdin == 0 then return self:exec_live("sh -c " .. shell.quote(script)) end
  local runner, msg, code = self:runner()
  if not runner then return nil, msg, code end
  M.counts.commands = M.counts.commands + 1
  local r
  local began = M.trace and proc.now()
  r, msg, code = runner:exec(script, { stdin = stdin, timeout = opts.timeout })
  if began then
    local words = table.concat(argv, " "):gsub("%s+", " ")
    io.stderr:write(("tend: debug: %6.3f s %s: %s\n"):format(proc.now() - began, self.spec, words:sub(1, 100)))
  end
  if not r then return nil, msg, code end
  if r.code == 127 and r.stderr:match("not found") then
    return nil, ("%s: %s: command not found"):format(self.spec, argv[1]), "enoent"
  end
  if r.code == 126 and opts.cwd and r.stderr:match("cd") then
    return nil, ("%s: %s: %s"):format(self.spec, opts.cwd, "no such directory"), "enoent"
  end
  if opts.output == "inherit" then
    io.stdout:write(r.stdout)
    io.stderr:write(r.stderr)
  end
  return r
end

-- open(argv, {cwd=, env=, fds=}) -> stream, as Local:open (an SSH channel; its stdin is
-- always writable); fds[3] as in exec. It takes the warm spare, if any, and (after
-- prepare_streams) starts the next.
function Ssh:open(argv, opts)
  opts = opts or {}
  local fd3 = fd3_line(opts, 2)
  M.counts.streams = M.counts.streams + 1
  local ch = spares[self.session]
  spares[self.session] = nil
  if not ch then
    local msg, code
    ch, msg, code = self.session:spare("sh -c " .. shell.quote(M.SPARE))
    if not ch then return nil, msg, code end
    M.counts.shells = M.counts.shells + 1
  end
  if streaming[self.session] then start_spare(self.session) end
  local ok, msg, code = ch:begin(shell.script(argv, { cwd = opts.cwd, env = opts.env, fd3 = fd3 ~= nil }))
  if ok and fd3 then ok, msg, code = ch:write(fd3) end
  if not ok then ch:close(); return nil, msg, code end
  return ch
end

-- close_all(): the runners and spares ended, then every SSH session (end of a run). An
-- unused spare's shell reads the end of its stdin once its rc files are done, and exits.
function M.close_all()
  for s, ch in pairs(spares) do ch:close(); spares[s] = nil end
  for s, r in pairs(runners) do r:close(); runners[s] = nil end
  ssh.close_all()
end

-- exec_live(cmd) -> {code, signal}: output straight to our stdout and stderr as it comes.
function Ssh:exec_live(cmd)
  io.stdout:flush()
  M.counts.commands, M.counts.shells = M.counts.commands + 1, M.counts.shells + 1
  local ch, msg, code = self.session:open(cmd)
  if not ch then return nil, msg, code end
  local ok
  ok, msg, code = ch:pump_to_fds(1, 2)
  if not ok then ch:close(); return nil, msg, code end
  local status, sig = ch:wait()
  ch:close()
  if not status then return nil, sig end
  return { code = status, signal = sig, stdout = "", stderr = "" }
end

-- interactive(root) -> code, signal: the user's login shell in root, for a person (a
-- terminal on the host when ours is one; else our stdin fed to it).
function Ssh:interactive(root)
  io.stdout:flush()
  M.counts.commands, M.counts.shells = M.counts.commands + 1, M.counts.shells + 1
  return self.session:interactive(("cd %s && exec \"${SHELL:-/bin/sh}\" -l"):format(shell.quote(root)))
end

-- run argv; a non-zero exit becomes nil, "spec: why(r)", code.
function Ssh:run(argv)
  local r, msg, code = self:exec(argv)
  if not r then return nil, msg, code end
  if r.code ~= 0 then
    local why = M.why(r)
    return nil, ("%s: %s"):format(self.spec, why), why:match("No such file") and "enoent" or "remote"
  end
  return r.stdout
end

-- Small files: through the runner too, not SFTP: sshd starts sftp-server through the
-- login shell as well (Debian's default Subsystem), rc files and all.

-- file_error(self, r, what, path) -> nil, msg, code for a file command that failed: its
-- code from the words GNU and busybox print (the C locale's).
local function file_error(self, r, what, path)
  local why = M.why(r)
  local code = why:match("No such file") and "enoent" or why:match("Permission denied") and "eacces"
    or why:match("No space left") and "enospc" or why:match("File exists") and "enotdir"
    or why:match("Not a directory") and "enotdir" or "remote"
  return nil, ("%s: %s %s: %s"):format(self.spec, what, path, why), code
end

local function file_op(self, what, path, argv, opts)
  opts = opts or {}
  opts.env = { LC_ALL = "C" }
  local r, msg, code = self:exec(argv, opts)
  if not r then return nil, msg, code end
  if r.code ~= 0 then return file_error(self, r, what, path) end
  return r
end

-- read(path) -> data | nil, msg, code
function Ssh:read(path)
  local r, msg, code = file_op(self, "read", path, { "cat", "--", path })
  if not r then return nil, msg, code end
  return r.stdout
end

-- stat(path) -> {type, mode, size, mtime, uid, gid} of path itself (a link is a link)
local TYPE_BITS = { [0x8] = "file", [0x4] = "dir", [0xA] = "link", [0x1] = "fifo", [0xC] = "socket" }
function Ssh:stat(path)
  local r, msg, code = file_op(self, "stat", path, { "stat", "-c", "%f %s %Y %u %g", "--", path })
  if not r then return nil, msg, code end
  local raw, size, mtime, uid, gid = r.stdout:match("^(%x+) (%d+) (%d+) (%d+) (%d+)")
  if not raw then return nil, ("%s: stat %s: %s"):format(self.spec, path, r.stdout), "remote" end
  raw = tonumber(raw, 16)
  return { type = TYPE_BITS[raw >> 12] or "device", mode = raw & 4095, size = math.tointeger(tonumber(size)),
    mtime = math.tointeger(tonumber(mtime)), uid = math.tointeger(tonumber(uid)), gid = math.tointeger(tonumber(gid)) }
end

-- mkdir_p(path [, mode]): path and its missing parents (the last one with mode)
function Ssh:mkdir_p(path, mode)
  local r, msg, code = file_op(self, "mkdir", path, { "mkdir", "-p", "-m", ("%o"):format(mode or 493), "--", path })
  if not r then return nil, msg, code end
  return true
end

-- remove(path): a file (or link), not a folder
function Ssh:remove(path)
  local r, msg, code = file_op(self, "remove", path, { "rm", "--", path })
  if not r then return nil, msg, code end
  return true
end

-- rename(from, to): replaces `to`, atomically (rename(2), by the host's mv).
function Ssh:rename(from, to)
  local r, msg, code = file_op(self, "rename", from, { "mv", "-f", "-T", "--", from, to })
  if not r then return nil, msg, code end
  return true
end

-- write(path, data [, mode]): to a temp name beside path (0600 while it is written),
-- then renamed over it, so readers see the old file or the new one, never half of it;
-- the temp name is gone whatever failed.
local WRITE = [[t="$1.tend-$$"; trap 'rm -f -- "$t"' EXIT
(umask 077 && cat > "$t") && chmod "$2" "$t" && mv -f -T -- "$t" "$1"]]
function Ssh:write(path, data, mode)
  local r, msg, code = file_op(self, "write", path, { "sh", "-c", WRITE, "sh", path, ("%o"):format(mode or 420) },
    { stdin = data })
  if not r then return nil, msg, code end
  return true
end

function Ssh:list(dir)
  local out, msg, code = self:run({ "find", dir, "-mindepth", "1", "-maxdepth", "1", "-printf", "%f\\0" })
  if not out then return nil, msg, code end
  local names = {}
  for name in out:gmatch("([^%z]+)%z") do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- sha256sum over a NUL-separated list on stdin, on every core of the host: line-buffered
-- output keeps each line one write, so the processes' lines never interleave.
M.SHA256SUM = [[command -v sha256sum >/dev/null || exit 127
n=$(nproc 2>/dev/null || echo 1)
if [ "$n" -gt 1 ] && command -v stdbuf >/dev/null; then exec xargs -0 -P "$n" -n 1000 stdbuf -oL sha256sum --; fi
exec xargs -0 sha256sum --]]

-- What every transport can do through its own exec.
for _, class in ipairs({ Local, Ssh }) do
  -- which(names) -> the first of names the host has (mariadb-dump, mysqldump...) | nil
  -- when it has none | nil, msg, code when the host could not be asked (a lost
  -- connection is not a missing program)
  function class:which(names)
    local tests = {}
    for i, n in ipairs(names) do tests[i] = "command -v " .. shell.quote(n) end
    local r, msg, code = self:exec({ "sh", "-c", table.concat(tests, " || ") })
    if not r then return nil, msg, code end
    return r.code == 0 and r.stdout:match("([^/\n]+)\n") or nil
  end

  -- zstd() -> whether the host has zstd (asked once): tend compresses what crosses with
  -- it, both ways; raises when the host cannot be asked
  function class:zstd()
    if self.has_zstd == nil then
      local z, msg = self:which({ "zstd" })
      if not z and msg then errors.fail("%s", msg) end
      self.has_zstd = z == "zstd"
    end
    return self.has_zstd
  end

  -- is_root() -> whether the login is root on the host (asked once); raises when the
  -- host cannot be asked
  function class:is_root()
    if self.root == nil then
      local r, msg = self:exec({ "id", "-u" })
      if not r then require("tend.errors").fail("%s", msg) end
      self.root = r.code == 0 and r.stdout:match("^0\n") ~= nil
    end
    return self.root
  end

  -- with_temp(fn) -> fn(tmp)'s results: a temp file on the host (mktemp, 0600) that
  -- fn may use, removed afterwards whatever happens.
  function class:with_temp(fn)
    local r, msg, code = self:exec({ "mktemp" })
    if not r or r.code ~= 0 then return nil, msg or ("%s: mktemp failed"):format(tostring(self)), code end
    local tmp = r.stdout:match("^(%S+)")
    local ok, a, b, c = pcall(fn, tmp)
    self:exec({ "rm", "-f", "--", tmp })
    if not ok then error(a, 0) end
    return a, b, c
  end

  -- sha256(root, paths) -> {path = hex} | nil, msg, code: the files' SHA-256s computed on
  -- the host by its sha256sum, in one run (what cannot be read is left out).
  function class:sha256(root, paths)
    if #paths == 0 then return {} end
    local list = {}
    for i, p in ipairs(paths) do list[i] = "./" .. p end
    local r, msg, code = self:exec({ "sh", "-c", M.SHA256SUM },
      { cwd = root, stdin = table.concat(list, "\0") .. "\0" })
    if not r then return nil, msg, code end
    if r.code == 127 then return nil, ("%s: no sha256sum"):format(tostring(self)), "enoent" end
    return M.parse_sha256(r.stdout)
  end
end

-- why(r) -> what a finished command said of its failure, in one line: the last line of
-- its stderr (what a login shell's rc files print comes first), but for the closing
-- summary of tar and the like, which points back to the line before; or its exit status.
-- The one way tend words a failed command.
function M.why(r)
  local lines = {}
  for line in (r.stderr or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  local last = lines[#lines]
  if last and last:match("Exiting with failure status") and #lines > 1 then last = lines[#lines - 1] end
  return last or ("exit " .. tostring(r.code))
end

-- remove_tree(t, path): path (a folder and all in it) gone from t's host, or raises.
function M.remove_tree(t, path)
  local r, msg = t:exec({ "rm", "-rf", "--", path })
  if not r then errors.fail("%s", msg) end
  if r.code ~= 0 then errors.fail("rm %s: %s", path, M.why(r)) end
end

-- stream_why(stream, status) -> the same for a stream (t:open) that ended with status.
function M.stream_why(stream, status) return M.why({ stderr = stream:stderr(), code = status }) end

-- parse_sha256(text) -> {path = hex}: sha256sum's lines for "./PATH" names.
function M.parse_sha256(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    -- GNU marks a name holding \ or a newline with a leading \ and escapes them
    local esc, hex, path = line:match("^(\\?)(%x+) [ *]%./(.*)$")
    if hex then
      if esc == "\\" then path = path:gsub("\\(.)", { n = "\n", ["\\"] = "\\" }) end
      out[path] = hex
    end
  end
  return out
end

-- open(spec [, opts]) -> transport | nil, msg, code.  opts for ssh: see tend.ssh.session.
function M.open(spec, opts)
  local h, msg = M.parse(spec)
  if not h then return nil, msg, "usage" end
  if h.kind == "local" then return setmetatable({ spec = "local" }, Local) end
  local s, smsg, code = ssh.session(h, opts or {})
  if not s then return nil, smsg, code end
  return setmetatable({ spec = h.spec, session = s, host = h }, Ssh)
end

return M
