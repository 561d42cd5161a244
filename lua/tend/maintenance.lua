-- maintenance: a page that answers 503 (with Retry-After) while a job changes a site.
-- An app with a switch of its own (WordPress's .maintenance file) names it in its
-- adapter (`maintenance = {file =, php = function(bypass)}`). Other apps (Tiki,
-- generic PHP) get a page of ours, reached two ways so that it works behind any web
-- server that runs PHP: a rewrite rule in .htaccess (Apache), and a .user.ini whose
-- auto_prepend_file runs the page before every PHP script (PHP-FPM and CGI, behind
-- nginx or anything else). The site's own .htaccess and .user.ini are moved aside
-- meanwhile and moved back after, byte for byte, inode for inode.
-- PHP-FPM caches a folder's .user.ini for user_ini.cache_ttl seconds (300 by default),
-- so after off() it may still prepend the page for a while: where up() found PHP-FPM or
-- CGI, the page stays in place, inert (it shows itself only while a file of ours is in
-- place), and a background job on the host removes it once that time is over.
-- up() is what jobs call: it asks what serves the instance's URL, puts the page on and
-- checks over HTTP that the page is really what the URL answers.
local errors = require "tend.errors"
local core = require "tend.core"

local M = {}

local PAGE = "tend-maintenance.php"
local SAVED = ".htaccess.tend-maintenance" -- the site's own .htaccess, while ours is in
local SAVED_INI = ".user.ini.tend-maintenance" -- and its .user.ini
local MARK = "# tend maintenance"
local INI_MARK = "; tend maintenance"
local LINGER = 330 -- seconds the inert page outlives off(): PHP-FPM's default cache, and some
-- A request with this header (random, one per run) passes the page, so that tend can
-- look at a new copy before anyone else sees it (behind()).
M.BYPASS = core.vault.random_secret(24, "password"):reveal()

M.PAGE_PHP = [[<?php
// Written by tend while it changes this site; tend removes it when done. It runs
// through .htaccess (Apache) or as .user.ini's auto_prepend_file (PHP-FPM); a PHP
// that still holds a .user.ini of tend's in its cache after the work is done finds
// no file of tend's in place and lets the site run.
if (strncmp((string) @file_get_contents(__DIR__ . '/.htaccess', false, null, 0, 18), '# tend maintenance', 18) !== 0
    && strncmp((string) @file_get_contents(__DIR__ . '/.user.ini', false, null, 0, 18), '; tend maintenance', 18) !== 0
    || strncmp(basename($_SERVER['SCRIPT_FILENAME'] ?? ''), 'tend-probe-', 11) === 0
    || ($_SERVER['HTTP_X_TEND_BYPASS'] ?? '') === ']] .. M.BYPASS .. [[') {
    return; // done, or tend asking what runs PHP here, or looking at the site behind the page
}
http_response_code(503);
header('Retry-After: 600');
header('Cache-Control: no-store');
header('X-Tend-Maintenance: on');
header('Content-Type: text/html; charset=utf-8');
?><!DOCTYPE html>
<html><head><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>This site is being updated and will be back in a few minutes.</p></body></html>
<?php exit;
]]

M.HTACCESS = MARK .. [[: every request goes to the maintenance page.
# The site's own .htaccess is in ]] .. SAVED .. [[ meanwhile (none if that file is absent).
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteCond %{REQUEST_URI} !]] .. PAGE:gsub("%.", "\\.") .. [[$
RewriteCond %{REQUEST_URI} !/tend-probe-[0-9]+\.php$
RewriteCond %{HTTP:X-Tend-Bypass} !^]] .. M.BYPASS .. [[$
RewriteRule ^ ]] .. PAGE .. [[ [L]
</IfModule>
<IfModule !mod_rewrite.c>
ErrorDocument 503 /]] .. PAGE .. [[

</IfModule>
]]

-- user_ini(served) -> our .user.ini: the page (at served, the web root as the web
-- server sees it) before every PHP script.
function M.user_ini(served)
  return INI_MARK .. ": every PHP request shows the maintenance page first.\n"
    .. "; The site's own .user.ini is in " .. SAVED_INI .. " meanwhile (none if that file is absent).\n"
    .. ('auto_prepend_file = "%s/%s"\n'):format(served, PAGE)
end

-- own(adapter) -> the app's own switch {file, php} | nil (then the page is ours)
local function own(adapter) return type(adapter.maintenance) == "table" and adapter.maintenance or nil end

-- The page put up and taken down in one command each (not a dozen, each a round trip).
-- OURS: whether file $1 begins with mark $2 (ours, not the site's).
local OURS = [[ours() { [ -f "$1" ] && [ "$(head -c ${#2} -- "$1" 2>/dev/null)" = "$2" ]; }
]]
-- ON: in folder $1, for each (file, saved, mark, bytes) after it: the site's file moved
-- to saved unless it is ours already (saved "": none kept), then ours written from stdin
-- (bytes long) beside it and renamed in, 0644.
local ON = OURS .. [[cd -- "$1" || exit 1
shift
t=; trap 'rm -f -- "$t"' EXIT
while [ $# -ge 4 ]; do
  f=$1 s=$2 m=$3 n=$4; shift 4
  if [ -n "$s" ] && { [ -e "$f" ] || [ -L "$f" ]; } && ! ours "$f" "$m"; then mv -f -T -- "$f" "$s" || exit 1; fi
  t="$f.tend-$$"
  (umask 077 && head -c "$n" > "$t") && chmod 644 -- "$t" && mv -f -T -- "$t" "$f" || exit 1
done]]
-- OFF: in folder $1, for each (file, saved, mark) after $2 (the page) and $3 (seconds
-- it lingers, 0: none): the saved file back, or else ours removed; then the page removed,
-- or, when our .user.ini was in (PHP-FPM may keep prepending it from its cache), left
-- inert and removed by a background job once that cache is over.
local OFF = OURS .. [[root=$1 page=$2 linger=$3
cd -- "$root" || exit 1
shift 3
p=
while [ $# -ge 3 ]; do
  f=$1 s=$2 m=$3 w=; shift 3
  ! ours "$f" "$m" || w=1
  if [ -e "$s" ] || [ -L "$s" ]; then mv -f -T -- "$s" "$f" || exit 1
  elif [ -n "$w" ]; then rm -f -- "$f" || exit 1; fi
  [ "$f" != .user.ini ] || p=$w im=$m
done
[ -e "$page" ] || exit 0
if [ -z "$p" ] || [ "$linger" = 0 ]; then exec rm -f -- "$page"; fi
(sleep "$linger"; ours .user.ini "$im" || rm -f -- "$page") </dev/null >/dev/null 2>&1 &]]
-- IS_ON: whether, in folder $1, our .htaccess (mark $2) or our .user.ini (mark $3) is in.
local IS_ON = OURS .. [[cd -- "$1" 2>/dev/null && { ours .htaccess "$2" || ours .user.ini "$3"; }]]

local function run(t, what, root, argv, stdin)
  local r, msg = t:exec(argv, { stdin = stdin, env = { LC_ALL = "C" } })
  if not r then errors.fail("%s", msg) end
  if r.code ~= 0 then errors.fail("%s the maintenance page in %s: %s", what, root, require("tend.transport").why(r)) end
end

-- on(t, root, adapter [, served]): the maintenance page up in the tree at root (served:
-- where the web server will see that tree, when it is a staging tree). Idempotent.
function M.on(t, root, adapter, served)
  local switch = own(adapter)
  if switch then return errors.check(t:write(root .. "/" .. switch.file, switch.php(M.BYPASS), 420)) end
  local ini = M.user_ini(served or root)
  run(t, "putting up", root, { "sh", "-c", ON, "sh", root, PAGE, "", "", tostring(#M.PAGE_PHP),
    ".htaccess", SAVED, MARK, tostring(#M.HTACCESS), ".user.ini", SAVED_INI, INI_MARK, tostring(#ini) },
    M.PAGE_PHP .. M.HTACCESS .. ini)
end

-- off(t, root, adapter [, linger]): the site as it was before on(). Idempotent. linger:
-- a FastCGI PHP may hold our .user.ini in its cache, so the page goes only later.
function M.off(t, root, adapter, linger)
  local switch = own(adapter)
  if switch then
    if t:stat(root .. "/" .. switch.file) then errors.check(t:remove(root .. "/" .. switch.file)) end
    return
  end
  run(t, "taking down", root, { "sh", "-c", OFF, "sh", root, PAGE, linger and tostring(LINGER) or "0",
    ".htaccess", SAVED, MARK, ".user.ini", SAVED_INI, INI_MARK })
end

-- is_on(t, root, adapter) -> boolean
function M.is_on(t, root, adapter)
  local switch = own(adapter)
  if switch then return t:stat(root .. "/" .. switch.file) ~= nil end
  local r = t:exec({ "sh", "-c", IS_ON, "sh", root, MARK, INI_MARK }, { env = { LC_ALL = "C" } })
  return r ~= nil and r.code == 0
end

-- files(adapter) -> the files maintenance adds to a tree: not part of the site, never
-- watched as such.
function M.files(adapter)
  local out = { PAGE, SAVED, SAVED_INI }
  if own(adapter) then out[#out + 1] = own(adapter).file end
  return out
end

-- What PHP says about itself, asked through the URL by a script in the web root.
local PROBE = [[<?php
header('Content-Type: text/plain');
echo 'tend-probe ', php_sapi_name(), ' ', (int) ini_get('user_ini.cache_ttl'), ' ', ini_get('user_ini.filename') === '' ? '-' : ini_get('user_ini.filename'),
  ' ', (int) ini_get('opcache.enable'), ' ', (int) ini_get('opcache.validate_timestamps'), ' ', (int) ini_get('opcache.revalidate_freq'), "\n";
]]

-- stamp(t, dir) -> dir's mtime, to the nanosecond ("@S.N") | nil; put_stamp(t, dir, s):
-- set back, so that a probe or a refused page leaves the web root as it was.
local function stamp(t, dir)
  local r = t:exec({ "date", "-r", dir, "+@%s.%N" })
  return r and r.code == 0 and r.stdout:match("^(@[%d.]+)") or nil
end
local function put_stamp(t, dir, s)
  if s then t:exec({ "touch", "-d", s, "--", dir }) end
end

-- probe(inst, t) -> {sapi, ttl, user_ini, opcache} | nil, why: what runs PHP at inst's
-- URL; opcache (when on): {validate = timestamps checked, freq = seconds between checks}.
local function probe(inst, t)
  local name = ("tend-probe-%d.php"):format(math.random(1, 1 << 30))
  local path = inst.path .. "/" .. name
  errors.check(t:write(path, PROBE, 420))
  local r, msg = core.http.request({ url = inst.url .. "/" .. name, timeout = 20, max_body = 4096 })
  t:remove(path)
  if not r then return nil, ("%s does not answer (%s)"):format(inst.url, msg) end
  local sapi, ttl, ini, on, validate, freq = r.body:match("^tend%-probe (%S+) (%d+) (%S+) (%d) (%d) (%d+)")
  if r.status ~= 200 or not sapi then
    return nil, ("%s does not run PHP from %s (a script tend put there answered %d)"):format(inst.url, inst.path, r.status)
  end
  return { sapi = sapi, ttl = tonumber(ttl), user_ini = ini ~= "-" and ini or nil,
    opcache = on == "1" and { validate = validate == "1", freq = tonumber(freq) } or nil }
end

-- php_at(inst) -> probe | nil, why: what runs PHP at inst's URL (probe), the web root's
-- mtime put back after.
function M.php_at(inst)
  local t = inst:transport()
  local before = stamp(t, inst.path)
  local p, why = probe(inst, t)
  put_stamp(t, inst.path, before)
  return p, why
end

-- answer(inst) -> the response of inst's URL now | nil
local function answer(inst)
  return (core.http.request({ url = inst.url .. "/", timeout = 20, max_body = 65536 }))
end

local function is_page(r, adapter)
  if not r or r.status ~= 503 then return false end
  return own(adapter) ~= nil or r.headers["x-tend-maintenance"] == "on"
end

-- up(ctx, inst, opts) -> page {fcgi}, for down(): the page on in inst's web root and, when inst has a URL,
-- seen there (HTTP 503 from our page or WordPress's). When it cannot be: the page is
-- taken back and a usage error says what was found and what to configure, unless
-- opts.without_page (then a warning, and the job goes on). opts.say(fmt, ...) for
-- progress.
function M.up(ctx, inst, opts)
  opts = opts or {}
  local say = opts.say or function() end
  local t, adapter = inst:transport(), require("tend.apps").get(inst.app)
  local before = stamp(t, inst.path)
  local function unseen(why)
    if opts.without_page then
      ctx:warn("%s: the maintenance page is not seen: %s; going on without it (--without-maintenance-page)", inst.name, why)
      return { fcgi = true } -- whatever serves it, the page may be prepended
    end
    pcall(M.off, t, inst.path, adapter)
    put_stamp(t, inst.path, before)
    errors.usage("%s: cannot show a maintenance page: %s; nothing was changed (--without-maintenance-page goes on without one)",
      inst.name, why)
  end
  local page = { fcgi = false }
  if not inst.url then
    M.on(t, inst.path, adapter)
    say("maintenance page on (not checked: the instance has no --url)")
    return page
  end
  local settle = 0
  if not own(adapter) then
    local p, why = probe(inst, t)
    if not p then return unseen(why) end
    if p.sapi == "cli-server" then
      return unseen(inst.url .. " is PHP's built-in server (php -S), which reads neither .htaccess nor .user.ini; "
        .. "serve the site with Apache (AllowOverride) or PHP-FPM")
    end
    if p.sapi:match("fpm") or p.sapi:match("cgi") then
      if not p.user_ini then
        return unseen(("%s runs PHP as %s with user_ini.filename empty: set it to .user.ini"):format(inst.url, p.sapi))
      end
      if p.user_ini ~= ".user.ini" then
        return unseen(("%s runs PHP as %s reading %s, not .user.ini"):format(inst.url, p.sapi, p.user_ini))
      end
      settle, page.fcgi = p.ttl + 1, true
    end
  end
  M.on(t, inst.path, adapter)
  -- Each PHP-FPM worker caches .user.ini on its own: one 503 is one worker; all of them
  -- have read ours once the cache time has passed since it was written.
  if settle > 0 then
    say("waiting %ds for PHP-FPM's workers to read .user.ini (user_ini.cache_ttl)", settle)
    core.proc.run({ "sleep", tostring(settle) })
  end
  local deadline, r = os.time() + 5, nil
  repeat
    r = answer(inst)
    if is_page(r, adapter) then
      say("maintenance page on: %s answers 503", inst.url)
      return page
    end
    core.proc.run({ "sleep", "0.5" })
  until os.time() >= deadline
  return unseen(("%s answers %s, not the page (Apache needs AllowOverride for .htaccess; PHP-FPM reads .user.ini)")
    :format(inst.url, r and tostring(r.status) or "nothing"))
end

-- behind(inst) -> response | nil, msg: what inst's URL answers behind its page.
function M.behind(inst)
  return core.http.request({ url = inst.url .. "/", timeout = 30, max_body = 1 << 20,
    headers = { "X-Tend-Bypass: " .. M.BYPASS } })
end

-- down(inst, page [, say]): the page up() put on, off. Without page (a page put on by
-- hand, or in a new tree), tend asks what runs PHP at the URL: unless it can tell that
-- no FastCGI PHP reads .user.ini there, the page lingers, inert, for a while.
function M.down(inst, page, say)
  local t, adapter = inst:transport(), require("tend.apps").get(inst.app)
  if not page then
    local p = not own(adapter) and inst.url and M.is_on(t, inst.path, adapter) and probe(inst, t)
    page = { fcgi = not (p and not p.sapi:match("fpm") and not p.sapi:match("cgi")) }
  end
  M.off(t, inst.path, adapter, page.fcgi)
  if say then say("maintenance page off") end
end

return M
