-- transport: how tend reaches an instance's host. Recipes never care which one:
-- both answer exec(argv, opts), read(path), stat(path), list(path).
-- `local` runs programs with posix_spawn on this machine; `ssh://` arrives with the
-- SSH transport.
local core = require "tend.core"
local errors = require "tend.errors"
local proc, fs = core.proc, core.fs

local M = {}

local Local = {}
Local.__index = Local
Local.__tostring = function() return "local" end

-- exec(argv, {stdin=, fds=, env=, cwd=, timeout=, output=}) -> {code, stdout, stderr} | nil, msg, code
function Local:exec(argv, opts) return proc.run(argv, opts) end
function Local:read(path) return fs.read(path) end
function Local:stat(path) return fs.stat(path) end
function Local:list(path) return fs.list(path) end

-- parse(spec) -> {kind="local"} | {kind="ssh", user=, host=, port=} | nil, msg
function M.parse(spec)
  if spec == nil or spec == "local" then return { kind = "local", spec = "local" } end
  local user, host, port = spec:match("^ssh://([^@/]+)@([^/:]+):?(%d*)/?$")
  if not user then
    host, port = spec:match("^ssh://([^@/:]+):?(%d*)/?$")
  end
  if not host then
    return nil, ("bad host %q: use local or ssh://USER@HOST[:PORT]"):format(spec)
  end
  port = tonumber(port) or 22
  if port < 1 or port > 65535 then return nil, ("bad port in %q"):format(spec) end
  return { kind = "ssh", user = user, host = host, port = port, spec = spec }
end

-- open(spec) -> transport | nil, msg, code
function M.open(spec)
  local h, msg = M.parse(spec)
  if not h then return nil, msg, "usage" end
  if h.kind == "local" then return setmetatable({ spec = "local" }, Local) end
  return nil, ("%s: SSH transport not available yet"):format(spec), "unsupported"
end

-- must_open(spec) -> transport, raising a job failure otherwise.
function M.must_open(spec) return errors.check(M.open(spec)) end

return M
