-- maintenance: a page that answers 503 (with Retry-After) while a job changes a site.
-- WordPress has its own switch, a .maintenance file in the web root. Other apps (Tiki,
-- generic PHP) get a page of ours and a rewrite rule in .htaccess that sends every
-- request to it; the site's own .htaccess is moved aside meanwhile and moved back
-- after, so it is byte for byte, inode for inode, what it was.
local errors = require "tend.errors"

local M = {}

local PAGE = "tend-maintenance.php"
local SAVED = ".htaccess.tend-maintenance" -- the site's own .htaccess, while ours is in
local MARK = "# tend maintenance"

M.PAGE_PHP = [[<?php
// Written by tend while it changes this site; tend removes it when done.
http_response_code(503);
header('Retry-After: 600');
header('Cache-Control: no-store');
header('Content-Type: text/html; charset=utf-8');
?><!DOCTYPE html>
<html><head><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>This site is being updated and will be back in a few minutes.</p></body></html>
]]

M.HTACCESS = MARK .. [[: every request goes to the maintenance page.
# The site's own .htaccess is in ]] .. SAVED .. [[ meanwhile (none if that file is absent).
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteCond %{REQUEST_URI} !]] .. PAGE:gsub("%.", "\\.") .. [[$
RewriteRule ^ ]] .. PAGE .. [[ [L]
</IfModule>
<IfModule !mod_rewrite.c>
ErrorDocument 503 /]] .. PAGE .. [[

</IfModule>
]]

local WP_FILE = ".maintenance"
-- $upgrading is read at each request: time() keeps WordPress from calling it stale
-- after its 10 minutes.
local WP_MAINTENANCE = "<?php $upgrading = time(); // written by tend; removed when it is done\n"

local function ours(t, path)
  local src = t:read(path)
  return src and src:sub(1, #MARK) == MARK
end

-- on(t, root, adapter): the maintenance page up in the tree at root. Idempotent.
function M.on(t, root, adapter)
  if adapter.maintenance == "wordpress" then
    return errors.check(t:write(root .. "/" .. WP_FILE, WP_MAINTENANCE, 420))
  end
  errors.check(t:write(root .. "/" .. PAGE, M.PAGE_PHP, 420))
  local htaccess = root .. "/.htaccess"
  if t:stat(htaccess) and not ours(t, htaccess) then errors.check(t:rename(htaccess, root .. "/" .. SAVED)) end
  errors.check(t:write(htaccess, M.HTACCESS, 420))
end

-- off(t, root, adapter): the site as it was before on(). Idempotent.
function M.off(t, root, adapter)
  if adapter.maintenance == "wordpress" then
    if t:stat(root .. "/" .. WP_FILE) then errors.check(t:remove(root .. "/" .. WP_FILE)) end
    return
  end
  local htaccess = root .. "/.htaccess"
  if t:stat(root .. "/" .. SAVED) then
    errors.check(t:rename(root .. "/" .. SAVED, htaccess))
  elseif t:stat(htaccess) and ours(t, htaccess) then
    errors.check(t:remove(htaccess))
  end
  if t:stat(root .. "/" .. PAGE) then errors.check(t:remove(root .. "/" .. PAGE)) end
end

-- is_on(t, root, adapter) -> boolean
function M.is_on(t, root, adapter)
  if adapter.maintenance == "wordpress" then return t:stat(root .. "/" .. WP_FILE) ~= nil end
  return ours(t, root .. "/.htaccess")
end

-- The files maintenance adds to a tree: not part of the site, never backed up as such.
M.FILES = { WP_FILE, PAGE, SAVED }

return M
