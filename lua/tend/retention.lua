-- retention: which snapshots a policy keeps. Like restic's forget: keep the N newest,
-- and the newest snapshot of each of the last D days, W weeks and M months that have
-- one; everything not kept by some rule goes.
local M = {}

local function bucket(t, kind)
  if kind == "daily" then return os.date("!%Y-%m-%d", t) end
  if kind == "weekly" then return os.date("!%G-W%V", t) end
  return os.date("!%Y-%m", t)
end

-- plan(snapshots, policy) -> keep, drop (lists of snapshots, newest first), reasons
-- policy: {last=, daily=, weekly=, monthly=} (absent or 0: that rule keeps nothing)
function M.plan(snapshots, policy)
  table.sort(snapshots, function(a, b) return a.started_at > b.started_at or (a.started_at == b.started_at and a.id > b.id) end)
  local why = {}
  for i, s in ipairs(snapshots) do
    if i <= (policy.last or 0) then why[s.id] = { "last" } end
  end
  for _, kind in ipairs({ "daily", "weekly", "monthly" }) do
    local want, seen = policy[kind] or 0, {}
    local taken = 0
    for _, s in ipairs(snapshots) do
      if taken >= want then break end
      local b = bucket(s.started_at, kind)
      if not seen[b] then
        seen[b] = true
        taken = taken + 1
        why[s.id] = why[s.id] or {}
        table.insert(why[s.id], kind)
      end
    end
  end
  local keep, drop = {}, {}
  for _, s in ipairs(snapshots) do
    if why[s.id] then keep[#keep + 1] = s else drop[#drop + 1] = s end
  end
  return keep, drop, why
end

return M
