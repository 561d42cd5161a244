-- schedule: jobs kept in the catalog, written into the user's crontab as one managed
-- block (`sync`), and run by cron through `tend schedule run JOB`. A run takes a lock per
-- job and per instance, checks what it needs first (disk, SSH, database), runs the
-- recipe as a child `tend` under a time limit, records itself (status, error, log), and
-- mails an alert when it fails.
local core = require "tend.core"
local errors = require "tend.errors"
local cron = require "tend.cron"
local lock = require "tend.lock"
local shell = require "tend.shell"
local notify = require "tend.notify"
local instance = require "tend.instance"
local cjson = require "cjson"

local M = {}

M.BEGIN = "# BEGIN tend: jobs of `tend schedule` (written by `tend schedule sync`; change them there)"
M.END = "# END tend"
M.DEFAULT_TIMEOUT = 6 * 3600
local TAIL_LINES = 40

local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%w][%w._-]*$") or #name > 100 then
    errors.usage("bad job name %q: use letters, digits and . _ -", tostring(name))
  end
end

local function decode(row)
  row.argv = cjson.decode(row.argv)
  row.mail_to = row.mail_to and row.mail_to ~= "" and row.mail_to or nil
  row.mail_on_success = row.mail_on_success == 1
  return row
end

function M.get(catalog, name)
  local row = catalog:first("SELECT * FROM jobs WHERE name = ?", name)
  return row and decode(row)
end

function M.must_get(catalog, name)
  local job = M.get(catalog, name)
  if not job then errors.usage("no job named %s (tend schedule list)", name) end
  return job
end

-- add(ctx, job): job = {name, cron, argv, mail_to = {addr...}, mail_on_success, webhook, timeout}
function M.add(ctx, job)
  check_name(job.name)
  local ok, why = cron.parse(job.cron)
  if not ok then errors.usage("%s", why) end
  if #job.argv == 0 then errors.usage("schedule add: say what to run after --, e.g. -- backup blog") end
  for _, a in ipairs(job.mail_to or {}) do notify.check_address(a) end
  local catalog = ctx:catalog()
  if M.get(catalog, job.name) then errors.usage("a job named %s exists (tend schedule rm %s first)", job.name, job.name) end
  catalog:run("INSERT INTO jobs(name, cron, argv, mail_to, mail_on_success, webhook, timeout, created_at) "
    .. "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", job.name, job.cron, cjson.encode(job.argv),
    table.concat(job.mail_to or {}, ","), job.mail_on_success and 1 or 0, job.webhook,
    job.timeout or M.DEFAULT_TIMEOUT, os.time())
end

function M.rm(ctx, name)
  local n = ctx:catalog():run("DELETE FROM jobs WHERE name = ?", name)
  if n == 0 then errors.usage("no job named %s (tend schedule list)", name) end
end

-- list(ctx, now) -> jobs, each with last = {id, status, started_at, error} and next_at
function M.list(ctx, now)
  local catalog = ctx:catalog()
  local jobs = catalog:query("SELECT * FROM jobs ORDER BY name")
  for _, job in ipairs(jobs) do
    decode(job)
    job.last = catalog:first("SELECT id, status, started_at, finished_at, error FROM runs WHERE job = ? "
      .. "ORDER BY id DESC LIMIT 1", job.name)
    job.next_at = cron.next(assert(cron.parse(job.cron)), now or os.time())
  end
  return jobs
end

-- The crontab line of a job: cron's shell runs tend with this TEND_HOME. "%" is a line
-- break to cron, so it is escaped.
local function cron_line(ctx, job)
  local argv = { core.exe or "tend", "--home", ctx.home, "schedule", "run", job.name }
  local env = core.lua_dir and ("TEND_LUA_DIR=" .. shell.quote(core.lua_dir) .. " ") or ""
  local text = cron.SHORTCUTS[job.cron:lower()] and job.cron:lower() or job.cron
  return (text .. " " .. env .. shell.join(argv) .. " >/dev/null 2>&1"):gsub("%%", "\\%%")
end

-- merged(current, ctx [, none]) -> the crontab text with our block replaced by the jobs'
-- lines (or removed, when there are none, or with none: systemd starts them); every
-- other line kept as it was.
function M.merged(current, ctx, none)
  local out, inside = {}, false
  for line in (current .. (current:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
    if line == M.BEGIN then
      inside = true
    elseif inside and line == M.END then
      inside = false
    elseif not inside then
      out[#out + 1] = line
    end
  end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  local jobs = none and {} or ctx:catalog():query("SELECT * FROM jobs ORDER BY name")
  if #jobs > 0 then
    if #out > 0 then out[#out + 1] = "" end
    out[#out + 1] = M.BEGIN
    for _, job in ipairs(jobs) do out[#out + 1] = cron_line(ctx, decode(job)) end
    out[#out + 1] = M.END
  end
  return #out > 0 and table.concat(out, "\n") .. "\n" or ""
end

-- sync(ctx [, none]) -> changed, text: the user's crontab with our block up to date
-- (with none: without it).
function M.sync(ctx, none)
  local crontab, here = require "tend.crontab", require("tend.transport").open("local")
  local current = crontab.read(here)
  local text = M.merged(current, ctx, none)
  if text == current then return false, text end
  crontab.write(here, text)
  return true, text
end

-- The instances a job is about: the words of its command that name one (all of them
-- for --all).
local function instances_of(ctx, argv)
  local catalog, out = ctx:catalog(), {}
  for _, word in ipairs(argv) do
    if word == "--all" then return instance.list(catalog) end
  end
  for i, word in ipairs(argv) do
    local inst = i > 1 and instance.get(catalog, word)
    if inst then out[#out + 1] = inst end
  end
  return out
end

-- The last lines of a log.
local function tail(text, n)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

-- mail(ctx, job, run) -> what happened, or nil when the job mails no one.
local function mail(ctx, job, run)
  local to = {}
  for a in (job.mail_to or ""):gmatch("[^,]+") do to[#to + 1] = a end
  local failed = run.status == "failed"
  if #to == 0 then return nil end
  local subject = ("tend: job %s %s%s"):format(job.name, failed and "FAILED" or "succeeded",
    run.instance and run.instance ~= "" and (" (" .. run.instance .. ")") or "")
  local body = table.concat({
    ("Job:       %s"):format(job.name),
    ("Instance:  %s"):format(run.instance ~= "" and run.instance or "-"),
    ("Command:   tend %s"):format(shell.join(job.argv)),
    ("Started:   %s"):format(os.date("!%Y-%m-%d %H:%M:%S UTC", run.started_at)),
    ("Took:      %ds"):format(run.finished_at - run.started_at),
    ("Status:    %s%s"):format(run.status, run.exit_code and (" (exit " .. run.exit_code .. ")") or ""),
    failed and ("Cause:     %s"):format(run.error or "?") or nil,
    "",
    ("Run %d; the whole log: tend log show %d"):format(run.id, run.id),
    "",
    "Last lines of the log:",
    tail(run.log or "", TAIL_LINES),
  }, "\n")
  local ok, msg = notify.send(ctx, to, subject, body)
  return ok and ("mailed to " .. table.concat(to, ", ")) or ("the alert mail failed: " .. msg)
end

-- alert(ctx, job, run) -> what was sent, or nil: the mail, and the webhook's JSON POST,
-- for a failed run (a succeeding one too with --mail-on-success).
local function alert(ctx, job, run)
  local failed = run.status == "failed"
  if not (failed or job.mail_on_success) then return nil end
  local said = {}
  if job.webhook then
    local ok, msg = notify.post(job.webhook, { job = job.name, instance = run.instance, run = run.id,
      status = run.status, exit_code = run.exit_code, error = run.error, started_at = run.started_at,
      finished_at = run.finished_at, command = job.argv })
    said[#said + 1] = ok and ("posted to " .. job.webhook) or ("the webhook failed: " .. msg)
  end
  said[#said + 1] = mail(ctx, job, run)
  return #said > 0 and table.concat(said, "; ") or nil
end

-- run(ctx, name) -> exit code: what cron calls. The job's exit code; 4 when it is
-- running already.
function M.run(ctx, name)
  local catalog = ctx:catalog()
  local job = M.must_get(catalog, name)
  local job_lock <close>, dead = lock.take(ctx, "job", name)
  if dead then -- the run that held it was killed: its record says so now
    catalog:run("UPDATE runs SET status = 'failed', finished_at = ?, error = ? WHERE job = ? AND status = 'running'",
      os.time(), ("killed: pid %s ended without finishing"):format(tostring(dead.pid)), name)
  end
  local insts = instances_of(ctx, job.argv)
  local names, inst_locks = {}, {}
  for i, inst in ipairs(insts) do
    names[i] = inst.name
    inst_locks[i] = lock.take(ctx, "instance", inst.name)
  end
  local run = { job = name, instance = table.concat(names, ","), started_at = os.time(), status = "running" }
  local _
  _, run.id = catalog:run("INSERT INTO runs(job, instance, started_at, status) VALUES (?, ?, ?, 'running')",
    run.job, run.instance, run.started_at)

  local ok, err = pcall(function()
    local cause = require("tend.preflight")(ctx, insts)
    if cause then
      run.status, run.exit_code, run.error, run.log = "failed", 1, cause, "preflight: " .. cause .. "\n"
      return
    end
    -- the job's tend hands back its exit code and message (tend.child); its output is the log
    local o, msg = require("tend.child").run(ctx, job.argv, job.timeout)
    if not o then
      run.status, run.exit_code, run.error, run.log = "failed", 1, msg, msg .. "\n"
      return
    end
    run.log = o.stderr .. (o.stdout ~= "" and ("\n" .. o.stdout) or "")
    run.exit_code = o.code or 1
    run.status = o.code == 0 and "ok" or "failed"
    if run.status == "failed" then run.error = o.error or ("exit " .. tostring(o.code)) end
  end)
  if not ok then -- tend's own failure around the job: recorded and alerted all the same
    local msg = errors.message(err)
    run.status, run.exit_code, run.error, run.log = "failed", 1, msg, (run.log or "") .. msg .. "\n"
  end
  run.finished_at = os.time()
  run.alert = alert(ctx, job, run)
  catalog:run("UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, error = ?, log = ?, alert = ? WHERE id = ?",
    run.finished_at, run.status, run.exit_code, run.error, run.log, run.alert, run.id)
  for _, l in ipairs(inst_locks) do l:release() end
  for part in (run.alert or ""):gmatch("[^;]+") do
    if part:match("failed: ") then ctx:warn("%s: %s", name, (part:gsub("^ ", ""))) end
  end
  if run.status == "failed" then io.stderr:write(("tend: job %s failed: %s\n"):format(name, run.error)) end
  return run.status == "ok" and 0 or (run.exit_code ~= 0 and run.exit_code or 1), run
end

return M
