-- vcs: the code of an instance that is a git or Subversion checkout, moved on its host.
-- A git checkout on a branch follows it (pull --ff-only); one at a tag moves to the
-- newest tag of the same major version (an update) or to the tag asked for (an
-- upgrade). svn: `svn update` to the repository's newest revision (or --to REV).
-- Untracked files (the config, the uploads) stay where they are.
local errors = require "tend.errors"
local why = require("tend.transport").why

local M = {}

-- kind(t, root) -> "git" | "svn" | nil
function M.kind(t, root)
  if t:stat(root .. "/.git") then return "git" end
  if t:stat(root .. "/.svn") then return "svn" end
end

-- run(t, argv) -> stdout (trimmed) | nil, "PROG SUBCMD: its last line of stderr", code
local function run(t, argv)
  local r, msg, code = t:exec(argv, { timeout = 600 })
  if not r then return nil, msg, code end
  if r.code ~= 0 then
    return nil, ("%s %s: %s"):format(argv[1], argv[argv[1] == "git" and 4 or 2], why(r)), "remote"
  end
  return (r.stdout:gsub("%s+$", ""))
end

local function git(t, root, ...) return run(t, { "git", "-C", root, ... }) end

-- parts("2.10.1") -> {2, 10, 1}: how versions are ordered (1.9 before 1.10).
local function parts(v)
  local out = {}
  for n in tostring(v):gmatch("%d+") do out[#out + 1] = tonumber(n) end
  return out
end

function M.newer(a, b) -- is version a after version b?
  local x, y = parts(a), parts(b)
  for i = 1, math.max(#x, #y) do
    if (x[i] or -1) ~= (y[i] or -1) then return (x[i] or -1) > (y[i] or -1) end
  end
  return false
end

local function major(v) return parts(v)[1] end

-- state(t, root) -> {kind, tag, branch, commit}: where the checkout is.
function M.state(t, root)
  local kind = M.kind(t, root)
  if kind == "svn" then
    return { kind = "svn", commit = errors.check(run(t, { "svn", "info", "--non-interactive", "--show-item", "revision", root })) }
  end
  if kind ~= "git" then return nil end
  local s = { kind = "git", commit = errors.check(git(t, root, "rev-parse", "--short", "HEAD")) }
  s.tag = git(t, root, "describe", "--tags", "--exact-match", "HEAD")
  s.branch = git(t, root, "symbolic-ref", "-q", "--short", "HEAD")
  return s
end

-- svn_target: the repository's newest revision (or the one at opts.before, or opts.to)
-- when it is not the working copy's.
local function svn_target(t, root, s, opts)
  if opts.to then return opts.to ~= s.commit and opts.to or nil end
  local rev = opts.before and os.date("!{%Y-%m-%dT%H:%M:%SZ}", opts.before) or "HEAD"
  local head, msg, code = run(t, { "svn", "info", "--non-interactive", "-r", rev, "--show-item", "revision", root })
  if not head and opts.before and tostring(msg):match("E195012") then return nil end -- the path is younger than that
  errors.check(head, msg, code)
  return tonumber(head) and tonumber(head) > tonumber(s.commit) and head or nil
end

-- branch_target: the branch's name when its upstream has commits HEAD lacks; with
-- before, the upstream's newest commit by then (a hash), when HEAD lacks it.
local function branch_target(t, root, s, before)
  if not before then
    local head = errors.check(git(t, root, "rev-parse", "--short", "@{upstream}"))
    return head ~= s.commit and s.branch or nil
  end
  local commit = errors.check(git(t, root, "rev-list", "-1", "--before=@" .. before, "@{upstream}"))
  if commit == "" or git(t, root, "merge-base", "--is-ancestor", commit, "HEAD") then return nil end
  return errors.check(git(t, root, "rev-parse", "--short", commit))
end

-- target(t, root, state, opts) -> the version to move to, or nil when there is none
-- newer. Fetches first. opts.to: a tag (upgrade); opts.latest: the newest tag of any
-- major; else the newest tag of the same major, or the branch's head. opts.before (a
-- time): only versions committed by then count (update --lag).
function M.target(t, root, s, opts)
  if s.kind == "svn" then return svn_target(t, root, s, opts) end
  local tags = M.tags(t, root, opts.before)
  if opts.to then
    for _, tag in ipairs(tags) do if tag == opts.to then return opts.to end end
    errors.usage("no version %s in the repository (it has %s)", opts.to, table.concat(tags, ", "))
  end
  if opts.latest then
    local best
    for _, tag in ipairs(tags) do if not best or M.newer(tag, best) then best = tag end end
    return best and best ~= s.tag and (not s.tag or M.newer(best, s.tag)) and best or nil
  end
  if s.branch and not s.tag then return branch_target(t, root, s, opts.before) end
  if not s.tag then errors.fail("the checkout is at commit %s, neither a tag nor a branch: say --to", s.commit) end
  local best
  for _, tag in ipairs(tags) do
    if major(tag) == major(s.tag) and M.newer(tag, best or s.tag) then best = tag end
  end
  return best
end

-- tags(t, root [, before]) -> {tag, ...}, oldest version first: the repository's tags,
-- fetched first; with before (a time), those made by then.
function M.tags(t, root, before)
  errors.check(git(t, root, "fetch", "--tags", "--quiet"))
  local tags = {}
  local refs = errors.check(git(t, root, "for-each-ref", "--format=%(creatordate:unix) %(refname:short)", "refs/tags"))
  for when, tag in (refs .. "\n"):gmatch("(%d+) ([^\n]+)\n") do
    if not before or tonumber(when) <= before then tags[#tags + 1] = tag end
  end
  table.sort(tags, function(a, b) return M.newer(b, a) end)
  return tags
end

-- changes(t, root) -> {path, ...}: the tracked files changed in the checkout (modified or
-- deleted); untracked files (the config, uploads) are not changes of the code.
function M.changes(t, root)
  local kind, out = M.kind(t, root), {}
  if kind == "git" then
    for path in (errors.check(git(t, root, "diff", "--name-only", "HEAD")) .. "\n"):gmatch("([^\n]+)\n") do
      out[#out + 1] = path
    end
  elseif kind == "svn" then
    local text = errors.check(run(t, { "svn", "status", "--non-interactive", "-q", root }))
    for flag, path in (text .. "\n"):gmatch("(%S)%s+([^\n]+)\n") do
      if flag ~= "?" then out[#out + 1] = path:sub(1, #root + 1) == root .. "/" and path:sub(#root + 2) or path end
    end
  else
    return nil
  end
  return out
end

-- revert(t, root): the tracked files as the checkout's commit has them; untracked files
-- are left alone.
function M.revert(t, root)
  if M.kind(t, root) == "svn" then return errors.check(run(t, { "svn", "revert", "-R", "-q", root })) end
  errors.check(git(t, root, "checkout", "--quiet", "HEAD", "--", "."))
end

-- switch(t, root, state, to): the checkout moved to `to` (from target).
function M.switch(t, root, s, to)
  if s.kind == "svn" then
    local argv = { "svn", "update", "--non-interactive", "-q", "-r", to, root }
    return errors.check(run(t, argv))
  end
  if s.branch and not s.tag then -- a branch moves forward, to its head or to a commit of it
    if to == s.branch then return errors.check(git(t, root, "pull", "--ff-only", "--quiet")) end
    return errors.check(git(t, root, "merge", "--ff-only", "--quiet", to))
  end
  errors.check(git(t, root, "checkout", "--quiet", to))
end

-- bisecting(t, root) -> bool: a git bisect is under way in the checkout.
function M.bisecting(t, root)
  return t:stat(root .. "/.git/BISECT_START") ~= nil
end

-- bisect(t, root, ...) -> {done, commit, subject, left}: `git bisect ...` (start BAD
-- GOOD, good, bad, skip) and where it left the checkout: the commit to try next and how
-- many are left, or (done) the first bad commit.
function M.bisect(t, root, ...)
  local out = errors.check(git(t, root, "bisect", ...))
  if out:match("only 'skip'ped commits left") then
    errors.fail("only skipped commits are left: the first bad one is among them (git bisect log in %s)", root)
  end
  local first = out:match("(%x+) is the first bad commit")
  local commit = errors.check(git(t, root, "rev-parse", "--short", first or "HEAD"))
  return { done = first ~= nil, commit = commit, left = tonumber(out:match("Bisecting: (%d+) revision")),
    subject = errors.check(git(t, root, "log", "-1", "--format=%s", commit)) }
end

-- bisect_reset(t, root): the checkout back where it was when the bisect began.
function M.bisect_reset(t, root)
  errors.check(git(t, root, "bisect", "reset"))
end

M.major = major
return M
