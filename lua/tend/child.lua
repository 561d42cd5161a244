-- child: a tend process of our own (a fan-out's job, the database half of a backup or
-- restore) and what it hands back. The child writes its outcome, {code, error, result},
-- as JSON to the file its parent names in TEND_RESULT_FILE (a scratch file of the
-- parent's in TEND_HOME/tmp, 0600): the exit code and message as the child raised
-- them, never scraped from its stderr.
local core = require "tend.core"
local cjson = require "cjson"
local home = require "tend.home"

local M = {}
local VAR = "TEND_RESULT_FILE"

-- command(ctx, argv, env) -> the argv and options of `tend --home HOME ARGV...` handing
-- its outcome back in a result file.
local function command(ctx, argv, env)
  local file = home.scratch(ctx.home) .. ".result"
  local e = { TEND_LUA_DIR = core.lua_dir or false, [VAR] = file }
  for k, v in pairs(env or {}) do e[k] = v end
  return { core.exe or "tend", "--home", ctx.home, table.unpack(argv) }, { env = e }, file
end

-- spawn(ctx, argv, env) -> child | nil, msg: `tend --home HOME ARGV...` started.
function M.spawn(ctx, argv, env)
  local cmd, opts, file = command(ctx, argv, env)
  local proc, msg = core.proc.spawn(cmd, opts)
  if not proc then return nil, msg end
  return setmetatable({ proc = proc, file = file }, M.mt)
end

-- outcome(r, file) -> {code, error, result, stdout, stderr} of an ended child.
local function outcome(r, file)
  local text = core.fs.read(file)
  core.fs.remove(file)
  local ok, said = pcall(cjson.decode, text or "")
  if not ok or type(said) ~= "table" then said = {} end
  local out = { code = r.code, stdout = r.stdout, stderr = r.stderr, result = said.result,
    error = said.error ~= cjson.null and said.error or nil }
  local counts, theirs = require("tend.transport").counts, type(said.remote) == "table" and said.remote or {}
  for k in pairs(counts) do counts[k] = counts[k] + (tonumber(theirs[k]) or 0) end
  if r.code ~= 0 and not text then -- it ended before it could say anything
    out.error = r.signal and ("killed by signal %s"):format(r.signal) or ("exit %s"):format(tostring(r.code))
  end
  return out
end

-- finish(child) -> outcome {code, error, result, stdout, stderr}: code is the child's
-- exit code; error its one-line message when it raised one ("killed by signal 9", or
-- "exit N", when it ended without a word); result what it answered (ctx:result's data).
function M.finish(child) return outcome(child.proc:result(), child.file) end

-- run(ctx, argv, timeout) -> outcome | nil, msg: a child tend run to its end (killed
-- after timeout seconds, when given).
function M.run(ctx, argv, timeout)
  local cmd, opts, file = command(ctx, argv)
  opts.timeout = timeout
  local r, msg = core.proc.run(cmd, opts)
  if not r then core.fs.remove(file); return nil, msg end
  return outcome(r, file)
end

-- close(child): stop it (it is killed if still running) and remove its result file.
function M.close(child)
  child.proc:close()
  core.fs.remove(child.file)
end

M.mt = { __close = function(c) M.close(c) end } -- `local helper <close> = child.spawn(...)`

-- proc(child) -> the process handle (for proc.wait_any).
function M.proc(child) return child.proc end

-- report(code, msg, result): in a child, its outcome for the parent (cli.main calls
-- this as the run ends). Nothing when no parent asked.
function M.report(code, msg, result)
  local file = os.getenv(VAR)
  if not file or file == "" then return end
  local ok, text = pcall(cjson.encode, { code = code, error = msg or cjson.null, result = result,
    remote = require("tend.transport").counts })
  if not ok then text = cjson.encode({ code = code, error = msg or cjson.null }) end
  core.fs.write_atomic(file, text, 384)
end

return M
