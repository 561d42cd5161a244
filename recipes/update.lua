-- update: the newest code of the same major version, behind a maintenance page, with rollback.
return {
  name = "update",
  summary = "Update an instance to the newest version of its major (or its branch's head), rolling back on failure",
  description = [[
For an instance whose web root is a git checkout (at a tag, or on a branch), a
Subversion working copy, or installed from --releases tarballs. Checks first (disk,
SSH, database), finds the newest version of the same major (1.0 -> 1.1, never 2.0; a
branch: its head), takes a backup, shows the maintenance page, moves the code, runs the
database migration (the instance's --migrate command, or the app's: Tiki's console.php
database:update), lifts the page and checks that the site answers below HTTP 500. Any
failure puts the backup back (files and database, staged as restore does), lifts the
page, and exits 1 with one line saying which step failed and what was undone;
scheduled, that line is mailed. Nothing newer: exit 0. --lag 7d takes the newest
version committed at least that long ago (a branch moves to its newest commit that old;
tags made since do not count): code ages a week before production gets it.
Copy this file to ~/.config/tend/recipes/ to add a step of your own.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "lag", type = "duration", help = "only versions at least this old (7d): a week's grace before new code" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local inst = args.instance
    ctx:step("preflight", inst.preflight, inst)              -- disk, SSH, database: before anything
    local plan = ctx:step("target version", inst.update_plan, inst, { lag = args.lag })
    if not plan.changed then
      ctx:info("%s: already at %s, %s", inst.name, plan.from, plan.newest)
      return ctx:result({ from = plan.from, to = plan.to, changed = false })
    end
    local snap = ctx:step("backup", inst.backup, inst)        -- the way back, before any change
    local page = ctx:step("maintenance page on", inst.maintenance_on, inst,
      { without_page = args["without-maintenance-page"] })
    -- From here a failure undoes, newest first: the backup back, then the page off.
    ctx:undo("maintenance page off", function() inst:maintenance_off(page) end)
    ctx:undo(("restore of snapshot %d (files and database)"):format(snap.id),
      function() inst:restore(snap, { overwrite_production = true }) end)
    ctx:step("patches off", inst.unpatch, inst)           -- the code as its version has it, so it can move
    ctx:step("code", inst.code_to, inst, plan)
    ctx:step("patches on", inst.patch, inst)               -- one that no longer applies fails here, named
    ctx:step("migration", inst.migrate_db, inst)
    ctx:step("maintenance page off", inst.maintenance_off, inst, page)
    ctx:step("http check", inst.http_check, inst)
    ctx:step("watch baseline", inst.watch_accept, inst)      -- the new code is what tend expects now
    ctx:info("%s: updated %s -> %s (backup: snapshot %d)", inst.name, plan.from, plan.to, snap.id)
    ctx:result({ from = plan.from, to = plan.to, changed = true, snapshot = snap.id, files = snap.summary.files })
  end,
}
