-- update: the newest code of the same major version, behind a maintenance page, with rollback.
return {
  name = "update",
  summary = "Update an instance to the newest version of its major (or its branch's head), rolling back on failure",
  description = [[
For an instance whose web root is a git checkout (at a tag, or on a branch) or a
Subversion working copy. Checks first (disk, SSH, database), finds the newest tag of
the same major version (1.0 -> 1.1, never 2.0; a branch: its head), takes a backup,
shows the maintenance page, moves the code, runs the database migration (the
instance's --migrate command, or the app's: Tiki's console.php database:update), lifts
the page and checks that the site answers below HTTP 500. Any failure puts the backup
back (files and database, staged as restore does), lifts the page, and exits 1 with
one line saying what failed; scheduled, that line is mailed. Nothing newer: exit 0.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local inst = args.instance
    local r = require("tend.update").run(ctx, inst, { without_page = args["without-maintenance-page"], progress = function(fmt, ...) ctx:info("%s: " .. fmt, inst.name, ...) end })
    if r.changed then ctx:info("%s: updated %s -> %s (backup: snapshot %d)", inst.name, r.from, r.to, r.snapshot) end
    ctx:result(r)
  end,
}
