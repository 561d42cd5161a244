-- Progress: the rate is a moving average, and no ETA is given before it has settled.
local progress = require "tend.progress"

describe("progress", function()
  it("gives no ETA in the first seconds", function()
    local rate_of = progress.rater(100)
    local rate, elapsed = rate_of(1e6, 101)
    assert.are.equal("p: 1/10 files, 1.0 MB/32.0 MB, 1.0 MB/s, ETA --",
      progress.line("p", 1, 10, 1e6, 32e6, rate, elapsed))
  end)

  it("does not let a slow first second set the ETA", function()
    -- 32 MB at 1 MB/s after a first second that moved 10 kB: 32 s, not 3200 s
    local rate_of = progress.rater(0)
    local bytes, rate, elapsed = 1e4, nil, nil
    rate_of(bytes, 1)
    for t = 2, 6 do
      bytes = bytes + 1e6
      rate, elapsed = rate_of(bytes, t)
    end
    local text = progress.line("p", 5, 10, bytes, 32e6, rate, elapsed)
    local eta = tonumber(text:match("ETA (%d+)s$"))
    assert.is_true(eta ~= nil and eta >= 20 and eta <= 40, text)
  end)

  it("writes long ETAs in minutes", function()
    assert.are.equal("p: 0/1 files, 0.0 MB/600.0 MB, 1.0 MB/s, ETA 10m00s", progress.line("p", 0, 1, 0, 600e6, 1e6, 5))
  end)
end)
