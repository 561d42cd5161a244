-- Tiki: tiki-setup.php marks it, lib/setup/twversion.class.php says the version,
-- db/local.php holds the database settings ($host_tiki, $dbs_tiki, ...).
local php = require "tend.php"
local db = require "tend.db"

local M = { name = "tiki", config = "db/local.php",
  ignore = { "temp/cache/*", "temp/templates_c/*", "templates_c/*" }, -- rebuilt by Tiki
  data_dirs = { "files", "img/wiki", "img/wiki_up", "img/trackers" },
  db_keys = { kind = "assign", name = "dbs_tiki", user = "user_tiki", password = "pass_tiki", host = "host_tiki" },
  maintenance = "htaccess",
  migrate = "php console.php database:update", -- after new code (tend update)
}

-- apply_profile(t, path, name, repo) -> true | nil, msg: Tiki applies a profile of its
-- profile repository itself.
function M.apply_profile(t, path, name, repo)
  local r, msg = t:exec({ "php", "console.php", "profile:apply", name, repo or "profiles.tiki.org" }, { cwd = path })
  if not r then return nil, msg end
  if r.code ~= 0 then return nil, require("tend.transport").why(r) end
  return true
end

-- The preferences that name a folder of uploaded files (file galleries, wiki attachments,
-- tracker attachments, image galleries, batch uploads, podcasts); Tiki recommends keeping
-- them outside the web root. Each one set is part of the instance, whatever *_use_db says
-- now: files stored there before a switch stay there.
M.DIR_PREFS = { "fgal_use_dir", "w_use_dir", "t_use_dir", "gal_use_dir", "fgal_batch_dir", "gal_batch_dir",
  "fgal_podcast_dir" }

-- outside_dirs(t, path, settings) -> the folders those preferences name (a database
-- without Tiki's tables yet names none).
function M.outside_dirs(t, path, settings)
  local names = {}
  for i, n in ipairs(M.DIR_PREFS) do names[i] = "'" .. n .. "'" end
  local out, msg, code = db.mysql(t, settings, ("SELECT value FROM tiki_preferences WHERE name IN (%s) AND value <> ''")
    :format(table.concat(names, ", ")))
  if not out then
    if tostring(msg):find("doesn't exist", 1, true) then return {} end
    return nil, msg, code
  end
  local dirs = {}
  for line in out:gmatch("[^\n]+") do dirs[#dirs + 1] = line end
  return dirs
end

-- Tiki's chores (tend tiki), done Tiki's own way.

-- fix_permissions(t, path) -> what setup.sh said: Tiki's setup.sh, non-interactive,
-- sets the modes its folders need (temp/, templates_c/, files/ writable by the web server).
function M.fix_permissions(t, path)
  local r, msg = t:exec({ "bash", "setup.sh", "-n", "fix" }, { cwd = path, timeout = 1800 })
  if not r then return nil, msg end
  if r.code ~= 0 then return nil, "setup.sh -n fix: " .. require("tend.transport").why(r) end
  return r.stdout
end

-- scheduler(t, path, name, on) -> changed: the line in the host user's crontab that runs
-- Tiki's scheduler (console.php scheduler:run) every minute, added or (on false) removed.
function M.scheduler(t, path, name, on)
  local q = require("tend.shell").quote
  local line = ("* * * * * cd %s && php -q console.php scheduler:run >/dev/null 2>&1"):format(q(path))
  return require("tend.crontab").set(t, "# tend: tiki scheduler of " .. name, on and line or nil)
end

-- temporary_user(t, path, email, groups, seconds) -> what Tiki said: a user that expires,
-- in those groups, its login link mailed to email by Tiki (console.php users:temporary;
-- Tiki's auth_token_access preference must be on).
function M.temporary_user(t, path, email, groups, seconds)
  local r, msg = t:exec({ "php", "console.php", "users:temporary", "--emails=" .. email, "--groups=" .. groups,
    "--expiry=" .. seconds, "--prefix=tend" }, { cwd = path, timeout = 300 })
  if not r then return nil, msg end
  if r.code ~= 0 then return nil, "users:temporary: " .. (r.stderr:match("%S") and require("tend.transport").why(r) or r.stdout) end
  return r.stdout
end

M.probes = { "tiki-setup.php", "lib/setup/twversion.class.php" }
function M.detect(t, path)
  if not t:stat(path .. "/tiki-setup.php") then return false end
  local src = t:read(path .. "/lib/setup/twversion.class.php")
  if not src then return false end
  return src:match("%$this%->version%s*=%s*['\"]([^'\"]+)['\"]") or true
end

-- parse_config(src, where) -> settings | nil, msg: the database db/local.php's text names.
function M.parse_config(src, where)
  local a = php.assignments(src)
  if not a.dbs_tiki then return nil, where .. ": no $dbs_tiki set" end
  local s = db.mysql_host(a.host_tiki or "localhost")
  s.driver, s.name, s.user, s.password = "mysql", a.dbs_tiki, a.user_tiki, a.pass_tiki
  s.source = where
  return s
end

function M.db_settings(t, path)
  local src, msg = t:read(path .. "/db/local.php")
  if not src then return nil, msg end
  return M.parse_config(src, path .. "/db/local.php")
end

return M
