-- wrk script: signed 1 KiB GitHub-style webhooks, each a distinct event.
-- The body (and so the signature) is fixed; X-GitHub-Delivery is not
-- signed, so a unique id per request makes each one a new event. The id
-- starts with the send time in microseconds for the sink's latency figure.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now_us()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local body = os.getenv("LOAD_BODY")
local signature = os.getenv("LOAD_SIGNATURE")
local counter = 0
-- setup() runs in wrk's main Lua state and numbers the threads there;
-- thread:set() makes `thread_id` a GLOBAL of each thread's own state. So
-- no `local thread_id` here: request() would read that local (always 0)
-- instead of the global, and every thread would tag its ids as thread 0.
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local id = string.format("%d-%d-%d", now_us(), thread_id, counter)
  return wrk.format("POST", "/hooks/github", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = id,
    ["X-Hub-Signature-256"] = signature,
  }, body)
end

local non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
