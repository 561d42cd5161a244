-- Retention: which snapshots forget keeps.
local retention = require "tend.retention"

local DAY = 86400
local base = os.time({ year = 2026, month = 11, day = 20, hour = 12 }) -- a Friday

local function snaps(offsets)
  local out = {}
  for i, off in ipairs(offsets) do out[i] = { id = i, started_at = base - off } end
  return out
end

local function ids(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = s.id end
  table.sort(out)
  return out
end

describe("retention", function()
  it("keeps the N newest", function()
    local keep, drop = retention.plan(snaps({ 0, 10, 20, 30 }), { last = 2 })
    assert.are.same({ 1, 2 }, ids(keep))
    assert.are.same({ 3, 4 }, ids(drop))
  end)
  it("keeps the newest of each of the last D days that have one", function()
    -- two today, one yesterday, two three days ago
    local keep = retention.plan(snaps({ 0, 3600, DAY, 3 * DAY, 3 * DAY + 60 }), { daily = 2 })
    assert.are.same({ 1, 3 }, ids(keep))
  end)
  it("weekly and monthly pick one per ISO week and per month", function()
    local s = snaps({ 0, 1 * DAY, 8 * DAY, 9 * DAY, 40 * DAY, 70 * DAY })
    assert.are.same({ 1, 3 }, ids((retention.plan(s, { weekly = 2 }))))
    assert.are.same({ 1, 5, 6 }, ids((retention.plan(s, { monthly = 3 }))))
  end)
  it("a snapshot kept by any rule stays, and says why", function()
    local keep, drop, why = retention.plan(snaps({ 0, 5 * DAY, 40 * DAY }), { last = 1, monthly = 2 })
    assert.are.same({ 1, 3 }, ids(keep))
    assert.are.same({ 2 }, ids(drop))
    assert.are.same({ "last", "monthly" }, why[1])
  end)
  it("an empty policy keeps nothing", function()
    local keep, drop = retention.plan(snaps({ 0, 1 }), {})
    assert.are.same({}, keep)
    assert.are.equal(2, #drop)
  end)
end)
