-- tiki: Tiki's own chores (Tiki Manager's instance:fixpermissions,
-- instance:setup-scheduler-cron, instance:users:temporary).
return {
  name = "tiki",
  summary = "Tiki's chores: fix its permissions, its scheduler's cron line, a temporary user",
  description = [[
tend tiki permissions NAME runs Tiki's setup.sh -n fix in the web root (the modes Tiki
needs on temp/, templates_c/ and its upload folders). tend tiki scheduler NAME puts the
line that runs console.php scheduler:run every minute in the crontab of the instance's
SSH user on its host (once; --off takes it out). tend tiki temporary-user NAME has Tiki
make a user that expires (--expires, 1d), in --groups (Admins), and mail its login
link to --email (default: the instance's --contact); Tiki's auth_token_access
preference must be on.]],
  params = {
    { name = "action", type = "string", positional = true, required = true, choices = { "permissions", "scheduler", "temporary-user" } },
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "off", type = "bool", help = "scheduler: take the cron line out" },
    { name = "email", type = "string", help = "temporary-user: who gets the login link (default: the instance's --contact)" },
    { name = "groups", type = "string", default = "Admins", help = "temporary-user: its groups, comma-separated" },
    { name = "expires", type = "duration", default = "1d", help = "temporary-user: how long it lives" },
  },

  run = function(ctx, args)
    local inst, action = args.instance, args.action
    if action == "permissions" then
      local said = ctx:step("setup.sh fix", inst.chore, inst, "fix_permissions")
      return ctx:result({ instance = inst.name, fixed = true }, (said:gsub("%s+$", "")))
    end
    if action == "scheduler" then
      local changed = ctx:step("crontab", inst.chore, inst, "scheduler", inst.name, not args.off)
      ctx:info("%s: scheduler cron line %s%s", inst.name, args.off and "out of" or "in", changed and "" or " already")
      return ctx:result({ instance = inst.name, scheduler = not args.off, changed = changed })
    end
    local email = args.email or inst.contact
    if not email then ctx:usage("temporary-user needs --email ADDR (or the instance's --contact)") end
    local said = ctx:step("users:temporary", inst.chore, inst, "temporary_user", email, args.groups, args.expires)
    ctx:result({ instance = inst.name, email = email, groups = args.groups, expires = args.expires }, (said:gsub("%s+$", "")))
  end,
}
