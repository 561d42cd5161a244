-- revert: local changes to an instance's code dropped (Tiki Manager's instance:revert).
return {
  name = "revert",
  summary = "Drop local changes to an instance's code (git or svn), after a backup; untracked files stay",
  description = [[
Lists the tracked files of the instance's checkout that were changed on the host (a
hot fix, a hand edit, a tampering watch found), takes a backup (the way back to the
changed files), then puts them back as the checkout's commit has them. Untracked files
(its config, its uploads, its cache) are not touched; the patches recorded with tend
patch are put back on after. Nothing changed: exit 0, no backup.
--dry-run lists the files and changes nothing.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "dry-run", type = "bool", help = "list the changed files, change nothing" },
    { name = "yes-overwrite-production", type = "bool", help = "the instance may be tagged production" },
  },

  run = function(ctx, args)
    local inst = args.instance
    local changed = ctx:step("changes", inst.code_changes, inst)
    for _, path in ipairs(changed) do ctx:info("%s: changed: %s", inst.name, path) end
    if #changed == 0 or args["dry-run"] then
      if #changed == 0 then ctx:info("%s: its code has no local changes", inst.name) end
      return ctx:result({ instance = inst.name, changed = changed, reverted = false })
    end
    if inst:is_production() and not args["yes-overwrite-production"] then
      ctx:usage("%s is tagged production: add --yes-overwrite-production to drop its local changes", inst.name)
    end
    local snap = ctx:step("backup", inst.backup, inst) -- the changed files, kept
    ctx:step("revert", inst.revert_code, inst)
    ctx:step("patches on", inst.patch, inst) -- the fixes tend keeps on it are no local change
    ctx:info("%s: %d changed files put back (the changes are in snapshot %d)", inst.name, #changed, snap.id)
    ctx:result({ instance = inst.name, changed = changed, reverted = true, snapshot = snap.id })
  end,
}
