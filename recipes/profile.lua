-- profile: apply a configuration profile to an instance; applying it again changes nothing more.
return {
  name = "profile",
  summary = "Apply a profile (files, SQL, a Lua step; Tiki: console.php profile:apply) to an instance",
  description = [[
PROFILE is a folder on this machine holding any of:
  files/        copied into the web root (same relative paths)
  *.sql         run in the instance's database, in name order (write them to be
                re-runnable: INSERT OR REPLACE, CREATE TABLE IF NOT EXISTS, ...)
  profile.lua   returns function(ctx, inst), run last
For a Tiki instance, a PROFILE that is no such folder is a Tiki profile name, applied by
Tiki itself: php console.php profile:apply PROFILE [--repo REPO]. Applying a profile
twice gives what applying it once gave, so "re-install and re-apply until right" is
safe to put on a schedule.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "profile", type = "string", positional = true, required = true, help = "a folder, or a Tiki profile name" },
    { name = "repo", type = "string", default = "profiles.tiki.org", help = "Tiki: the profiles repository" },
  },

  run = function(ctx, args)
    local inst = args.instance
    local done = require("tend.profile").apply(ctx, inst, args.profile, { repo = args.repo })
    ctx:info("%s: profile %s applied%s", inst.name, args.profile, done.app and (" by " .. inst.app)
      or (": %d files, %d SQL files%s"):format(done.files, done.sql, done.lua and ", its Lua step" or ""))
    ctx:result(done)
  end,
}
