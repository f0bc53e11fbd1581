-- wrk script for benchmarks/serve_load.py: POST /rank with the request bodies of a file (one JSON
-- body per line, varying users), and per status code: a count and, for admitted requests (200),
-- every latency. wrk's own histogram mixes fast 503s with 200s, so the latencies are taken here.
--
-- Run with one connection per thread (-t N -c N): then request() and response() alternate in a
-- thread's Lua state and the time between them is that request's latency, stamped at the same
-- points as wrk's own (request written, response complete).
--
-- A client that gets a 503 waits its Retry-After before its next request (well-behaved clients,
-- the service's contract) unless the third argument is "ignore" (a closed loop that retries at
-- once, the worst case).
--
--   wrk -t 8 -c 8 -d 10s -s serve_load.lua http://127.0.0.1:8765/rank -- bodies.jsonl out.txt honour

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } lr_timespec;
  int clock_gettime(int clk_id, lr_timespec *tp);
]]
local ts = ffi.new("lr_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  out_path = args[2]
  honour_retry_after = args[3] ~= "ignore"
  wait_ms = 0 -- before this thread's next request
  i = id -- each thread starts at its own user
  started = nil
  counts = {}   -- status code -> responses
  admitted = {} -- latencies (ms) of 200s
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  i = i + 1
  started = now_ms()
  return wrk.format("POST", nil, headers, bodies[(i % #bodies) + 1])
end

function delay()
  local ms = wait_ms
  wait_ms = 0
  return ms
end

function response(status, hdrs, _)
  if status == 503 and honour_retry_after then
    local after = hdrs["retry-after"] or hdrs["Retry-After"]
    wait_ms = 1000 * (tonumber(after) or 0)
  end
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
  if status == 200 and started ~= nil then
    admitted[#admitted + 1] = now_ms() - started
  end
  started = nil
end

-- one line per status code ("status 200 1234"), one per admitted latency ("ms 12.3"), then
-- wrk's error counters ("errors connect 0", ...)
function done(summary, _, _)
  -- done() runs in wrk's main Lua state, where init() never ran: the path comes from a thread
  local f = assert(io.open(threads[1]:get("out_path"), "w"))
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("counts")) do
      f:write(string.format("status %s %d\n", code, n))
    end
    for _, ms in ipairs(thread:get("admitted")) do
      f:write(string.format("ms %.3f\n", ms))
    end
  end
  for _, kind in ipairs({ "connect", "read", "write", "status", "timeout" }) do
    f:write(string.format("errors %s %d\n", kind, summary.errors[kind]))
  end
  f:write(string.format("total %d %d\n", summary.requests, summary.duration))
  f:close()
end
