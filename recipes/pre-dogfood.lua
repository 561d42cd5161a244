-- pre-dogfood: tomorrow's code on today's data, for users to try before production.
return {
  name = "pre-dogfood",
  summary = "Clone DST's production source onto DST, then bring DST's code to the newest version",
  description = [[
DST must be linked first: tend instance link next --pre-dogfood-of prod. Clones the
source onto DST (a fresh snapshot; see clone), then runs the update step in DST's web
root on its host, while DST still shows its maintenance page: --update CMD (a shell
command such as "git pull --ff-only" or "svn up"), or nothing when none is given.
tend's own update recipe (with its checks and rollback) takes this step's place when
it lands; until then the command is the hook. A failing update leaves DST behind its
maintenance page, with the data cloned, and exits 1.]],
  params = {
    { name = "dst", type = "instance", positional = true, required = true, help = "the pre-dogfood copy" },
    { name = "update", type = "string", help = "shell command that updates DST's code (run in its web root)" },
    { name = "yes-overwrite-production", type = "bool", help = "DST may be tagged production" },
  },

  run = function(ctx, args)
    local copy = require "tend.copy"
    local maintenance = require "tend.maintenance"
    local dst = args.dst
    local src = copy.source_of(ctx, dst, "pre-dogfood-of")
    local function say(fmt, ...) ctx:info("%s: " .. fmt, dst.name, ...) end
    local snap = copy.fresh_snapshot(ctx, src, say)
    local adapter = require("tend.apps").get(dst.app)
    local summary = copy.clone(ctx, src, dst, snap, { overwrite_production = args["yes-overwrite-production"],
      progress = say, keep_maintenance = args.update ~= nil })
    if args.update then
      say("updating: %s", args.update)
      local r, msg = dst:exec(args.update)
      if not r or r.code ~= 0 then
        error(("%s: the update failed: %s; %s stays behind its maintenance page"):format(dst.name,
          msg or (r.stderr:match("([^\n]+)\n?$") or ("exit " .. r.code)), dst.name), 0)
      end
      maintenance.off(dst:transport(), dst.path, adapter)
      summary.updated = true
    end
    ctx:info("%s: %s's data of snapshot %d%s", dst.name, src.name, snap.id, args.update and ", code updated" or "")
    ctx:result(summary)
  end,
}
